/**
 * `ape logits`: logits of the last position (or every position with --all) for given ids, in
 * sequential, parallel or APE mode.
 *
 *   ape logits --model <dir> --ids 1,2,3 --json [--all]
 *   ape logits --model <dir> --mode sequential|parallel|ape [--prefix-ids 1,2] [--context-ids 4,5]...
 *              --query-ids 7,8 [--temperature T] [--scale S] --json
 *   (--prefix TEXT, --context TEXT (repeatable) and --query TEXT tokenize each part on its own as plain
 *    text, laid out by sdk/prompt.ts's raw layout: the model's BOS starts the prefix where the model's
 *    prompts start with one, as in `ape generate --raw`)
 */
import { InvalidArgumentError } from "../../src/errors.ts";
import { Engine } from "../../src/engine/engine.ts";
import { type ApeMode, modeLogits, sequentialLogits } from "../../src/ape/ape.ts";
import { parseArgs, parseIds } from "./args.ts";
import { openModel } from "./model_arg.ts";
import { rawLayout } from "../prompt.ts";

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    string: ["model", "ids", "mode", "prefix-ids", "query-ids", "temperature", "scale", "prefix", "query", "kv-budget"],
    multi: ["context-ids", "context"],
    boolean: ["json", "all"],
  });
  const loaded = await openModel(a.string.model);
  const { model } = loaded;
  const engine = new Engine(model, { kvBudgetBytes: a.string["kv-budget"] ? Number(a.string["kv-budget"]) : undefined });
  try {
    let logits: Float32Array;
    let rows = 1;
    if (a.string.ids !== undefined) {
      if (a.string.mode || a.string["query-ids"] || a.string.query) throw new InvalidArgumentError("--ids cannot be combined with --mode/--query-ids/--query");
      const ids = parseIds("ids", a.string.ids);
      if (ids.length === 0) throw new InvalidArgumentError("--ids: no token ids given");
      logits = await sequentialLogits(engine, ids, a.boolean.all);
      rows = a.boolean.all ? ids.length : 1;
    } else {
      const mode = (a.string.mode ?? "sequential") as ApeMode;
      if (!["sequential", "parallel", "ape"].includes(mode)) throw new InvalidArgumentError(`--mode must be sequential, parallel or ape (got '${mode}')`);
      const layout = rawLayout(loaded, { raw: true, prefix: a.string.prefix, documentTemplate: "{text}", queryTemplate: "{query}" });
      const prefix = a.string["prefix-ids"] !== undefined ? parseIds("prefix-ids", a.string["prefix-ids"]) : a.string.prefix !== undefined ? layout.prefixIds : new Uint32Array(0);
      const contexts = [...a.multi["context-ids"].map((s) => parseIds("context-ids", s)), ...a.multi.context.map((s) => layout.documentIds(s))];
      const query = a.string["query-ids"] !== undefined ? parseIds("query-ids", a.string["query-ids"]) : a.string.query !== undefined ? layout.queryIds(a.string.query) : undefined;
      if (!query || query.length === 0) throw new InvalidArgumentError("--query-ids or --query is required (and must not be empty)");
      const num = (flag: string) => {
        const v = a.string[flag];
        if (v === undefined) return undefined;
        const x = Number(v);
        if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`--${flag} must be a positive number (got '${v}')`);
        return x;
      };
      logits = await modeLogits(engine, mode, { prefix, contexts, query, temperature: num("temperature"), scale: num("scale") }, loaded.apeDefaults);
    }
    const V = model.config.vocabSize;
    const round = (x: number) => Number(x.toPrecision(8));
    if (a.boolean.json) {
      const out = a.boolean.all
        ? Array.from({ length: rows }, (_, r) => Array.from(logits.subarray(r * V, (r + 1) * V), round))
        : Array.from(logits.subarray(0, V), round);
      console.log(JSON.stringify({ logits: out }));
    } else {
      const last = logits.subarray((rows - 1) * V, rows * V);
      const top = Array.from(last).map((v, i) => [v, i]).sort((x, y) => y[0] - x[0]).slice(0, 5);
      console.log(`top tokens of the last position: ${top.map(([v, i]) => `${i} (${v.toFixed(3)})`).join(", ")}`);
    }
    return 0;
  } finally {
    engine.destroy();
    loaded.destroy();
  }
}
