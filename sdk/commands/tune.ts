/**
 * `ape tune [--model M] [--task rag|icl] [--samples N] [--k N] [--shots N] [--json]`
 *
 * The paper's procedure for APE's temperature T and scale S: a greedy search over [0.1, 1.0] in steps
 * of 0.1 on a validation split (T first, with S at the paper's 0.9; then S at the best T; a value
 * replaces the current one only when strictly better), for shared prefixes of the paper's 10, 20 and
 * 40 tokens (the task's instruction, cut to that many tokens). The best (prefix, T, S) is written
 * where `loadModel` finds it for this model (src/eval/tuned.ts: a JSON file beside the model in
 * apekit's model cache), so every later `Ape` on the model uses that T and S by default.
 */
import process from "node:process";
import { InvalidArgumentError } from "../../src/errors.ts";
import { getGpu } from "../../src/gpu/device.ts";
import { type TunedFile, writeTuned } from "../../src/eval/tuned.ts";
import type { ApeModel } from "../load.ts";
import { plainIds } from "../prompt.ts";
import { parseArgs } from "./args.ts";
import { MODEL_HELP, openModel } from "./model_arg.ts";
import { evalIcl, evalRag, type RunOptions, type Variant } from "./eval.ts";

export const GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
export const PREFIX_TOKENS = [10, 20, 40];

const LONG_INSTRUCTION = {
  rag: "Answer the question with a short phrase, using the documents below. Each document states one fact, and " +
    "exactly one of them answers the question. Read every document carefully, find the one that answers the question " +
    "and reply with its words only, without explanation, without repeating the question, and without adding anything else.",
  icl: "Classify each e-mail as spam or ham. Examples follow, each an e-mail with its label: spam is unsolicited bulk " +
    "mail, advertising or fraud; ham is ordinary mail between people or from lists they joined. Read the examples " +
    "carefully, then label the last e-mail with one word, spam or ham, and nothing else.",
};

/** The task's instruction cut to `tokens` tokens of the model's tokenizer, then a blank line. */
export function prefixOf(model: ApeModel, task: "rag" | "icl", tokens: number): string {
  const ids = plainIds(model, LONG_INSTRUCTION[task]);
  return model.tokenizer.decode(Array.from(ids.subarray(0, tokens))).trim() + "\n\n";
}

export interface TuneStep {
  prefixTokens: number;
  temperature: number;
  scale: number;
  accuracy: number;
}

/** Greedy T then S search for one prefix; every measured point is returned, the best last. */
export async function greedy(
  measure: (vs: Variant[]) => Promise<number[]>, prefixTokens: number, log: (s: string) => void,
): Promise<TuneStep[]> {
  const steps: TuneStep[] = [];
  const v = (temperature: number, scale: number): Variant => ({ name: `T ${temperature} S ${scale}`, mode: "ape", sharedPrefix: true, temperature, scale });
  const pick = async (vs: Variant[], start: number) => {
    const acc = await measure(vs);
    vs.forEach((x, i) => steps.push({ prefixTokens, temperature: x.temperature, scale: x.scale, accuracy: acc[i] }));
    let best = start;
    for (let i = 0; i < vs.length; i++) if (acc[i] > acc[best]) best = i;
    return { v: vs[best], accuracy: acc[best] };
  };
  const startT = GRID.indexOf(0.9);
  const t = await pick(GRID.map((T) => v(T, 0.9)), startT);
  log(`prefix ${prefixTokens} tokens: best T ${t.v.temperature} (S 0.9): ${(t.accuracy * 100).toFixed(1)}%`);
  const s = await pick(GRID.map((S) => v(t.v.temperature, S)), startT);
  log(`prefix ${prefixTokens} tokens: best S ${s.v.scale} (T ${t.v.temperature}): ${(s.accuracy * 100).toFixed(1)}%`);
  steps.push({ prefixTokens, temperature: s.v.temperature, scale: s.v.scale, accuracy: s.accuracy });
  return steps;
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    usage: "ape tune [options]\n\nChooses APE's T and S for a model on a validation split; later loads of the model use them.",
    help: {
      model: MODEL_HELP!.model,
      task: ["rag|icl", "what to tune on (default rag)"],
      samples: ["N", "validation questions / e-mails (default 40)"],
      k: ["N", "rag: contexts per question (default 10)"],
      shots: ["N", "icl: demonstrations (default 16)"],
      "prefix-tokens": ["N,..", "shared prefix lengths to try (default 10,20,40)"],
      concurrency: ["N", "requests in flight at once (default 16 on a GPU, 2 on a CPU adapter)"],
      "dry-run": "measure and print, but do not write the tuned file",
      json: "print the result as JSON on stdout",
    },
    string: ["model", "task", "samples", "k", "shots", "prefix-tokens", "concurrency"],
    boolean: ["json", "dry-run"],
  });
  const task = (a.string.task ?? "rag") as "rag" | "icl";
  if (task !== "rag" && task !== "icl") throw new InvalidArgumentError(`--task must be rag or icl (got '${a.string.task}')`);
  const int = (flag: string, dflt: number) => {
    const s = a.string[flag];
    if (s === undefined) return dflt;
    const v = Number(s);
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`--${flag} must be a positive integer (got '${s}')`);
    return v;
  };
  const prefixTokens = (a.string["prefix-tokens"] ?? PREFIX_TOKENS.join(",")).split(",").map((s) => {
    const v = Number(s);
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`--prefix-tokens: '${s}' is not a positive integer`);
    return v;
  });
  const gpu = await getGpu();
  const log = (s: string) => (a.boolean.json ? process.stderr : process.stdout).write(s + "\n");
  const model = await openModel(a.string.model);
  try {
    const opts: RunOptions = {
      samples: int("samples", 40), split: "validation", temperature: 0.9, scale: 0.9,
      concurrency: int("concurrency", gpu.isCpu ? 2 : 16), gpuBudgetBytes: (gpu.isCpu ? 256 : 4096) * 1024 * 1024,
    };
    const t0 = performance.now();
    const all: TuneStep[] = [];
    let best: TuneStep | undefined;
    let bestPrefix = "";
    for (const n of prefixTokens) {
      const prefix = prefixOf(model, task, n);
      const measure = async (variants: Variant[]) => {
        const r = task === "rag"
          ? await evalRag(model, [int("k", 10)], { ...opts, variants }, prefix)
          : await evalIcl(model, [int("shots", 16)], { ...opts, variants }, prefix);
        return r.rows.map((row) => row.points[0].accuracy ?? 0);
      };
      const steps = await greedy(measure, n, log);
      all.push(...steps);
      const chosen = steps[steps.length - 1];
      if (!best || chosen.accuracy > best.accuracy) (best = chosen, bestPrefix = prefix);
    }
    const file: TunedFile = {
      version: 1, modelFingerprint: model.model.fingerprint, temperature: best!.temperature, scale: best!.scale, task,
      prefixTokens: best!.prefixTokens, prefix: bestPrefix, split: "validation", samples: opts.samples, accuracy: best!.accuracy, date: new Date().toISOString(),
    };
    const path = a.boolean["dry-run"] ? undefined : writeTuned(model.model.source, file);
    log(`chosen: T ${file.temperature}, S ${file.scale} with a ${file.prefixTokens}-token prefix: ${(file.accuracy * 100).toFixed(1)}% on ${file.samples} validation ${task === "rag" ? "questions" : "e-mails"} (${((performance.now() - t0) / 1000).toFixed(0)} s)${path ? `; written to ${path}` : ""}`);
    if (a.boolean.json) console.log(JSON.stringify({ ...file, path, steps: all }));
    return 0;
  } finally {
    model.destroy();
  }
}
