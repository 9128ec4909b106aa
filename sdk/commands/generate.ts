/**
 * `ape generate`: answer a query over contexts through Ape.generate, streaming the text.
 *
 *   ape generate [--model <dir|file.gguf>] [--store <url>] [--prefix TEXT] [--context TEXT]... --query TEXT
 *                [--mode sequential|parallel|ape] [--temperature T] [--scale S] [--max-tokens N] [--raw] [--json]
 *   ape generate [--model ...] --prompt TEXT [--max-tokens N]      plain generation, no template
 *
 * With --json it prints {"text": "...", "stats": {...}} instead of streaming.
 */
import process from "node:process";
import { InvalidArgumentError } from "../../src/errors.ts";
import { Ape, type Mode } from "../ape.ts";
import { parseArgs } from "./args.ts";
import { openModel } from "./model_arg.ts";

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    string: ["model", "store", "prefix", "query", "prompt", "mode", "temperature", "scale", "max-tokens", "system", "dtype", "compute", "seed", "sampling-temperature", "top-k", "top-p"],
    multi: ["context"],
    boolean: ["raw", "json"],
  });
  const num = (flag: string, positive = true) => {
    const v = a.string[flag];
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isFinite(x) || (positive ? x <= 0 : x < 0)) throw new InvalidArgumentError(`--${flag} must be a ${positive ? "positive" : "non-negative"} number (got '${v}')`);
    return x;
  };
  const mode = (a.string.mode ?? "ape") as Mode;
  if (!["sequential", "parallel", "ape"].includes(mode)) throw new InvalidArgumentError(`--mode must be sequential, parallel or ape (got '${a.string.mode}')`);
  const prompt = a.string.prompt;
  if (prompt === undefined && a.string.query === undefined) throw new InvalidArgumentError("--query TEXT (or --prompt TEXT) is required");
  const maxTokens = num("max-tokens") ?? 128;
  if (!Number.isInteger(maxTokens)) throw new InvalidArgumentError("--max-tokens must be an integer");
  const model = await openModel(a.string.model, a.string.dtype, a.string.compute);
  const raw = a.boolean.raw || prompt !== undefined;
  const ape = await Ape.create(model, {
    prefix: prompt !== undefined ? "" : a.string.prefix, system: a.string.system, raw, store: a.string.store ?? "memory:",
    documentTemplate: raw ? "{text}" : undefined,
  });
  try {
    const sampling = { temperature: num("sampling-temperature", false), topK: num("top-k", false), topP: num("top-p"), seed: num("seed", false) };
    const events = ape.generate({
      query: prompt ?? a.string.query!, contexts: a.multi.context, mode: prompt !== undefined ? "sequential" : mode,
      temperature: num("temperature"), scale: num("scale"), maxTokens, sampling,
    });
    for await (const ev of events) {
      if (ev.type === "token" && !a.boolean.json) process.stdout.write(ev.text);
      if (ev.type === "done") {
        if (a.boolean.json) console.log(JSON.stringify({ text: ev.text, stats: ev.stats }));
        else process.stdout.write("\n");
      }
    }
    return 0;
  } finally {
    await ape.close();
    model.destroy();
  }
}
