/**
 * `ape eval rag|icl|fidelity [--model M] [--k N]... [--shots N]... [--samples N] [--split S] [--json]`
 *
 * The paper's measurements on one model, each mode and ablation step side by side:
 * - rag: each question's gold document among k - 1 distractors (BM25's best matches for the question
 *   over the collection, topped up at random; a seeded order), exact match (the answer's first line
 *   contains the expected string) for k = 3, 5, 10, 20, 50 on a held-out split (src/eval/data.ts).
 * - icl: few-shot spam / ham classification of SpamAssassin e-mails, each demonstration its own
 *   context, n = 4 .. 256 shots; sequential is skipped where its prompt exceeds the model's positions.
 * - fidelity: the mean KL divergence KL(sequential || mode) of the first answer token's distribution,
 *   on the rag task's inputs, for every k (each row against sequential encoding of its own prompt).
 * Rows (the paper's ablation): sequential; parallel without a shared prefix (contexts encoded alone
 * from position 0: raw layout, the instruction after the contexts); + shared prefix (plain parallel);
 * + temperature (APE's T, S = 1); + scale (APE's T and S). T and S are the model's defaults (`ape tune`'s
 * file, the default model's pair, else the paper's 0.9 / 0.9) unless --temperature / --scale name others.
 *
 * Writes `<out>/RESULTS.md`, `<out>/plots/*.png` and `<out>/plots/results.json` (tasks merged with
 * the ones an earlier run wrote); `--json` prints this run's results on stdout; `--no-plots` skips the
 * PNGs (the charting packages are dev dependencies). `ape eval report FILE.json...` merges the results
 * of earlier runs (their --json output or results.json, e.g. one per task run on the GPU machine) and
 * writes the report and plots from them, without a model.
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { CapacityError, InvalidArgumentError } from "../../src/errors.ts";
import { Engine } from "../../src/engine/engine.ts";
import { modeLogits } from "../../src/ape/ape.ts";
import { openStore } from "../../src/cache/store.ts";
import { getGpu } from "../../src/gpu/device.ts";
import { runtimeName } from "../../src/runtime.ts";
import { type IclExample, iclSet, isCorrect, ragSet, type RagSet, seeded, shuffle } from "../../src/eval/data.ts";
import { type AccuracyResult, type EvalReport, type FidelityResult, type Variant, writeReport } from "../../src/eval/report.ts";
import { Ape, type ApeOptions, type ContextHandle } from "../ape.ts";
import type { ApeModel } from "../load.ts";
import { promptLayout } from "../prompt.ts";
import { SearchIndex } from "../search.ts";
import { parseArgs } from "./args.ts";
import { MODEL_HELP, openModel } from "./model_arg.ts";

export type { AccuracyResult, EvalReport, FidelityResult, Variant } from "../../src/eval/report.ts";

/** The instruction of the rag task (the demo's). */
export const RAG_PREFIX = "Answer the question with a short phrase, using the documents below.\n\n";
export const ICL_PREFIX = "Classify each e-mail as spam or ham. Examples:\n\n";
const ICL_QUESTION = "E-mail to classify:\n";

/** The prompt options of a task: with the shared prefix (chat layout) and without one (raw layout). */
export function taskOptions(task: "rag" | "icl", prefix?: string): { shared: ApeOptions; alone: ApeOptions } {
  if (task === "rag") {
    const p = prefix ?? RAG_PREFIX;
    return {
      shared: { prefix: p },
      alone: { raw: true, prefix: "", queryTemplate: `${p.trim()} (The documents are above.)\nQuestion: {query}\nAnswer:` },
    };
  }
  const p = prefix ?? ICL_PREFIX;
  return {
    shared: { prefix: p, queryTemplate: `${ICL_QUESTION}{query}\n\nIs this e-mail spam or ham? Answer with one word.` },
    alone: { raw: true, prefix: "", queryTemplate: `Classify e-mails as spam or ham (examples above).\n\n${ICL_QUESTION}{query}\nLabel:` },
  };
}

/** The paper's ablation at APE's T and S. */
export function ablation(temperature: number, scale: number): Variant[] {
  return [
    { name: "sequential", mode: "sequential", sharedPrefix: true, temperature: 1, scale: 1 },
    { name: "parallel, no shared prefix", mode: "parallel", sharedPrefix: false, temperature: 1, scale: 1 },
    { name: "+ shared prefix (parallel)", mode: "parallel", sharedPrefix: true, temperature: 1, scale: 1 },
    { name: "+ temperature", mode: "ape", sharedPrefix: true, temperature, scale: 1 },
    { name: "+ scale (APE)", mode: "ape", sharedPrefix: true, temperature, scale },
  ];
}

/** The label an answer gives: the first "spam" or "ham" word in it. */
export function labelOf(answer: string): "spam" | "ham" | undefined {
  return answer.toLowerCase().match(/\b(spam|ham)\b/)?.[1] as "spam" | "ham" | undefined;
}

/** The contexts (document indices) of rag question `qi` at `k`: its gold among BM25's and random distractors. */
export async function ragContexts(set: RagSet, index: SearchIndex, qi: number, k: number): Promise<number[]> {
  const q = set.questions[qi];
  const rand = seeded(0x5eed + qi * 1009 + k);
  const picked = (await index.search(q.question, k + 4)).map((h) => Number(h.id)).filter((i) => i !== q.doc).slice(0, k - 1);
  const rest = shuffle([...set.documents.keys()].filter((i) => i !== q.doc && !picked.includes(i)), rand);
  return shuffle([q.doc, ...picked, ...rest.slice(0, k - 1 - picked.length)], rand);
}

export async function ragIndex(set: RagSet): Promise<SearchIndex> {
  const index = new SearchIndex(await openStore("memory:"), "eval-rag");
  await index.add(set.documents.map((text, i) => ({ id: String(i), text })));
  return index;
}

export interface RunOptions {
  /** Questions / test examples per point. */
  samples: number;
  split: string;
  /** Requests in flight at once (Ape batches them into one decode step). */
  concurrency: number;
  temperature: number;
  scale: number;
  variants?: Variant[];
  log?: (s: string) => void;
  gpuBudgetBytes?: number;
  /** Tokens per answer at most (default: rag 24, as bench quality; icl 8: "This e-mail is spam."). */
  maxTokens?: number;
}

interface Item {
  query: string;
  contexts: number[];
  ok: (answer: string) => boolean;
}

/**
 * Runs items through `ape` `concurrency` at a time; the number answered correctly. A request the KV pool
 * cannot hold next to the others in flight (CapacityError) waits for one of them to end and is retried;
 * alone, its error is the answer.
 */
async function score(ape: Ape, v: Variant, handles: ContextHandle[], items: Item[], maxTokens: number, concurrency: number, stop: string[]): Promise<number> {
  let next = 0, correct = 0, running = 0;
  let ended: () => void = () => {};
  let oneEnded = new Promise<void>((r) => (ended = r));
  const answer = async (it: Item): Promise<string> => {
    for (;;) {
      running++;
      let refused = false;
      try {
        return (await ape.generateText({
          query: it.query, contexts: it.contexts.map((i) => handles[i]), mode: v.mode, temperature: v.temperature, scale: v.scale, maxTokens, stop,
        })).text;
      } catch (e) {
        if (!(e instanceof CapacityError) || running === 1) throw e;
        refused = true;
      } finally {
        running--;
        if (!refused) (ended(), oneEnded = new Promise<void>((r) => (ended = r)));
      }
      // wait for a request that got its memory to end (a refusal frees nothing), then try again
      if (running > 0) await oneEnded;
      await new Promise((r) => setTimeout(r, 0));
    }
  };
  const worker = async () => {
    while (next < items.length) {
      const it = items[next++];
      if (it.ok(await answer(it))) correct++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return correct;
}

/** Accuracy of every variant at every x (k or shots) on the given items. */
async function accuracy(
  model: ApeModel, task: "rag" | "icl", documents: string[], xs: number[], itemsAt: (x: number) => Promise<Item[]>,
  opts: RunOptions, maxTokens: number, stop: string[], prefix?: string,
): Promise<AccuracyResult> {
  const t0 = performance.now();
  const variants = opts.variants ?? ablation(opts.temperature, opts.scale);
  const o = taskOptions(task, prefix);
  const maxPos = model.model.config.maxPositions;
  const result: AccuracyResult = {
    task, x: task === "rag" ? "k" : "shots", split: opts.split, samples: 0, seconds: 0,
    rows: variants.map((v) => ({ ...v, points: [] })),
  };
  const itemsByX: Item[][] = [];
  for (const x of xs) itemsByX.push(await itemsAt(x));
  for (const shared of [true, false]) {
    const vs = variants.map((v, i) => [v, i] as const).filter(([v]) => v.sharedPrefix === shared);
    if (vs.length === 0) continue;
    const options = shared ? o.shared : o.alone;
    const layout = promptLayout(model, options);
    const ape = await Ape.create(model, { ...options, gpuBudgetBytes: opts.gpuBudgetBytes });
    try {
      // only the documents some item uses are cached (in one batched call)
      const used = [...new Set(itemsByX.flat().flatMap((it) => it.contexts))].sort((p, q) => p - q);
      const handles: ContextHandle[] = [];
      (await ape.cache(used.map((i) => documents[i]))).forEach((h, j) => (handles[used[j]] = h));
      for (const [xi, x] of xs.entries()) {
        const items = itemsByX[xi];
        result.samples = items.length;
        for (const [v, i] of vs) {
          // positions the longest request needs: the whole prompt in sequential mode, else prefix + longest context + query
          const need = Math.max(...items.map((it) => {
            const ctx = it.contexts.map((c) => handles[c].tokens);
            const q = layout.queryIds(it.query).length;
            return layout.prefixIds.length + (v.mode === "sequential" ? ctx.reduce((a, b) => a + b, 0) : Math.max(0, ...ctx)) + q + maxTokens;
          }));
          if (need > maxPos) {
            result.rows[i].points.push({ x, correct: 0, total: items.length, accuracy: null, note: `needs ${need} positions; the model has ${maxPos}` });
            opts.log?.(`${task} ${result.x}=${x} ${v.name}: skipped (needs ${need} positions of ${maxPos})`);
            continue;
          }
          const correct = await score(ape, v, handles, items, maxTokens, opts.concurrency, stop);
          result.rows[i].points.push({ x, correct, total: items.length, accuracy: correct / items.length });
          opts.log?.(`${task} ${result.x}=${x} ${v.name}: ${correct}/${items.length}`);
        }
      }
    } finally {
      await ape.close();
    }
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

export async function evalRag(model: ApeModel, ks: number[], opts: RunOptions, prefix?: string): Promise<AccuracyResult> {
  const set = ragSet(opts.split);
  const index = await ragIndex(set);
  const n = Math.min(opts.samples, set.questions.length);
  const itemsAt = async (k: number) => {
    const items: Item[] = [];
    for (let qi = 0; qi < n; qi++) {
      const q = set.questions[qi];
      items.push({ query: q.question, contexts: await ragContexts(set, index, qi, Math.min(k, set.documents.length)), ok: (a) => isCorrect(a, q.answers) });
    }
    return items;
  };
  return await accuracy(model, "rag", set.documents, ks, itemsAt, opts, opts.maxTokens ?? 24, ["\n"], prefix);
}

/** The ICL examples of a split ("validation", else the test examples). */
export function iclExamples(split: string): { pool: IclExample[]; examples: IclExample[] } {
  const s = iclSet();
  return { pool: s.pool, examples: split === "validation" ? s.validation : s.test };
}

export async function evalIcl(model: ApeModel, shots: number[], opts: RunOptions, prefix?: string): Promise<AccuracyResult> {
  const { pool, examples } = iclExamples(opts.split);
  for (const n of shots) if (n > pool.length) throw new InvalidArgumentError(`--shots ${n}: the demonstration pool has ${pool.length} e-mails`);
  const documents = pool.map((e) => `${e.text}\nLabel: ${e.label}`);
  const test = examples.slice(0, opts.samples);
  const itemsAt = (n: number) =>
    Promise.resolve(test.map((e) => ({ query: e.text, contexts: [...Array(n).keys()], ok: (a: string) => labelOf(a) === e.label })));
  return await accuracy(model, "icl", documents, shots, itemsAt, opts, opts.maxTokens ?? 8, ["\n"], prefix);
}

/** KL(p || q) of two logit vectors' softmax distributions (nats). */
export function klDivergence(p: Float32Array, q: Float32Array): number {
  const lse = (x: Float32Array) => {
    let m = -Infinity;
    for (const v of x) m = Math.max(m, v);
    let s = 0;
    for (const v of x) s += Math.exp(v - m);
    return m + Math.log(s);
  };
  const lp = lse(p), lq = lse(q);
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i] - lp;
    kl += Math.exp(a) * (a - (q[i] - lq));
  }
  return Math.max(0, kl);
}

export async function evalFidelity(model: ApeModel, ks: number[], opts: RunOptions): Promise<FidelityResult> {
  const t0 = performance.now();
  const set = ragSet(opts.split);
  const index = await ragIndex(set);
  const variants = (opts.variants ?? ablation(opts.temperature, opts.scale)).filter((v) => v.mode !== "sequential");
  const o = taskOptions("rag");
  const layouts = { shared: promptLayout(model, o.shared), alone: promptLayout(model, o.alone) };
  const n = Math.min(opts.samples, set.questions.length);
  const maxPos = model.model.config.maxPositions;
  const engine = new Engine(model.model, { kvBudgetBytes: opts.gpuBudgetBytes });
  const result: FidelityResult = { task: "fidelity", x: "k", split: opts.split, samples: n, seconds: 0, rows: variants.map((v) => ({ ...v, points: [] })) };
  try {
    for (const k of ks) {
      const sums = variants.map(() => 0);
      let counted = 0;
      for (let qi = 0; qi < n; qi++) {
        const docs = (await ragContexts(set, index, qi, Math.min(k, set.documents.length))).map((i) => set.documents[i]);
        const q = set.questions[qi].question;
        const parts = (l: typeof layouts.shared) => ({ prefix: l.prefixIds, contexts: docs.map((d) => l.documentIds(d)), query: l.queryIds(q) });
        const seqParts = parts(layouts.shared);
        const total = seqParts.prefix.length + seqParts.contexts.reduce((a, c) => a + c.length, 0) + seqParts.query.length;
        if (total > maxPos) continue;
        // each variant against sequential encoding of its own prompt (the no-prefix row's raw layout has its own)
        const refs = { shared: await modeLogits(engine, "sequential", seqParts), alone: undefined as Float32Array | undefined };
        for (const [i, v] of variants.entries()) {
          const p = parts(v.sharedPrefix ? layouts.shared : layouts.alone);
          const ref = v.sharedPrefix ? refs.shared : (refs.alone ??= await modeLogits(engine, "sequential", p));
          const logits = await modeLogits(engine, v.mode, { ...p, temperature: v.temperature, scale: v.scale });
          sums[i] += klDivergence(ref, logits);
        }
        counted++;
      }
      for (const [i, v] of variants.entries()) {
        result.rows[i].points.push({ x: k, kl: counted ? sums[i] / counted : null, samples: counted });
        opts.log?.(`fidelity k=${k} ${v.name}: mean KL ${counted ? (sums[i] / counted).toFixed(4) : "-"} over ${counted}`);
      }
    }
  } finally {
    engine.destroy();
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

const ints = (flag: string, values: string[]) =>
  values.flatMap((s) => s.split(",")).map((s) => {
    const v = Number(s);
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`--${flag}: '${s}' is not a positive integer`);
    return v;
  });

const positive = (flag: string, s: string | undefined) => {
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!(v > 0) || !Number.isFinite(v)) throw new InvalidArgumentError(`--${flag} must be a positive number (got '${s}')`);
  return v;
};

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    usage: "ape eval rag|icl|fidelity... [options]\n\nRAG / ICL accuracy and KL to sequential for every mode and ablation step; writes RESULTS.md and plots.",
    help: {
      model: MODEL_HELP!.model,
      k: ["N", "contexts per question for rag / fidelity (default 3,5,10,20,50)"],
      shots: ["N", "demonstrations for icl (default 4,8,16,32,64,128,256)"],
      samples: ["N", "questions (test e-mails) per point (default 80; fidelity: 40)"],
      split: ["S", "validation | test | holdout (default test)"],
      temperature: ["T", "APE's temperature (default: the model's)"],
      scale: ["S", "APE's scale (default: the model's)"],
      concurrency: ["N", "requests in flight at once (default 16 on a GPU, 2 on a CPU adapter)"],
      "gpu-budget": ["MIB", "KV memory per Ape instance (default 4096 on a GPU, 256 on a CPU adapter)"],
      out: ["DIR", "where RESULTS.md and plots/ go (default: the clone's docs/)"],
      json: "print this run's results as JSON on stdout",
      "no-plots": "write RESULTS.md and results.json but no PNG plots",
    },
    string: ["model", "samples", "split", "temperature", "scale", "concurrency", "gpu-budget", "out"],
    multi: ["k", "shots"],
    boolean: ["json", "no-plots"],
  });
  const out = a.string.out ?? new URL("../../docs/", import.meta.url).pathname;
  if (a.positional[0] === "report") {
    const files = a.positional.slice(1);
    if (files.length === 0) throw new InvalidArgumentError("ape eval report: name the results files (FILE.json...)");
    const reports = files.map((f) => {
      try {
        return JSON.parse(readFileSync(f, "utf8")) as EvalReport;
      } catch (e) {
        throw new InvalidArgumentError(`${f}: not a results file (${(e as Error).message})`);
      }
    });
    const merged: EvalReport = { ...reports[0], tasks: Object.assign({}, ...reports.map((r) => r.tasks)) };
    console.log(`wrote ${(await writeReport(out, merged, { plots: !a.boolean["no-plots"], merge: false })).join(", ")}`);
    return 0;
  }
  const tasks = a.positional.length ? a.positional : ["rag", "icl", "fidelity"];
  for (const t of tasks) if (!["rag", "icl", "fidelity"].includes(t)) throw new InvalidArgumentError(`ape eval: unknown task '${t}' (rag, icl or fidelity)`);
  const ks = a.multi.k.length ? ints("k", a.multi.k) : [3, 5, 10, 20, 50];
  const shots = a.multi.shots.length ? ints("shots", a.multi.shots) : [4, 8, 16, 32, 64, 128, 256];
  const split = a.string.split ?? "test";
  if (!["validation", "test", "holdout"].includes(split)) throw new InvalidArgumentError(`--split must be validation, test or holdout (got '${split}')`);
  const gpu = await getGpu();
  const log = (s: string) => (a.boolean.json ? process.stderr : process.stdout).write(s + "\n");
  const model = await openModel(a.string.model);
  try {
    const T = positive("temperature", a.string.temperature) ?? model.apeDefaults?.temperature ?? 0.9;
    const S = positive("scale", a.string.scale) ?? model.apeDefaults?.scale ?? 0.9;
    const samples = positive("samples", a.string.samples);
    const opts: RunOptions = {
      samples: samples ?? 80, split, temperature: T, scale: S, log,
      concurrency: positive("concurrency", a.string.concurrency) ?? (gpu.isCpu ? 2 : 16),
      gpuBudgetBytes: (positive("gpu-budget", a.string["gpu-budget"]) ?? (gpu.isCpu ? 256 : 4096)) * 1024 * 1024,
    };
    const report: EvalReport = {
      model: model.model.source, runtime: runtimeName(), adapter: gpu.description, date: new Date().toISOString(), temperature: T, scale: S, tasks: {},
    };
    log(`ape eval ${tasks.join(" ")} on ${report.runtime}, ${report.adapter}; model ${report.model}; APE T=${T} S=${S}`);
    if (tasks.includes("rag")) report.tasks.rag = await evalRag(model, ks, opts);
    if (tasks.includes("icl")) report.tasks.icl = await evalIcl(model, shots, opts);
    if (tasks.includes("fidelity")) report.tasks.fidelity = await evalFidelity(model, ks, { ...opts, samples: samples ?? 40 });
    const written = await writeReport(out, report, { plots: !a.boolean["no-plots"] });
    log(`wrote ${written.join(", ")}`);
    if (a.boolean.json) console.log(JSON.stringify(report));
    return 0;
  } finally {
    model.destroy();
  }
}
