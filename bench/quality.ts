/**
 * `ape bench quality [--model <path>] [--split test|validation|holdout|demo] [--distractors K] [--questions N]
 *                    [--modes sequential,parallel,ape] [--max-tokens N] [--temperature T] [--scale S]
 *                    [--grid T1,T2,..:S1,S2,..] [--prefix TEXT] [--system TEXT] [--doc-template T]
 *                    [--query-template T] [--json]`
 *
 * Answer accuracy over short factual documents the model has never seen. The sets live in
 * bench/data/quality.json (331 one-sentence documents, mostly invented organisations, places and people
 * plus some real capitals; 120 validation, 80 test and 120 holdout questions, each with its own gold
 * document; bench/data/check_quality_data.py checks the set) and,
 * for `--split demo`, examples/data/facts.json (the demo's documents). Each question gets its gold
 * document among K distractors (default 5, chosen and ordered by a fixed seed), as a retriever's top K+1
 * would; every document is encoded once and cached. The answer is the first line generated, and counts
 * when it contains one of the expected strings (case-insensitive). APE runs with the Ape instance's
 * T and S (the model's tuned pair, else 0.9 / 0.9) unless `--temperature` / `--scale` name others.
 *
 * `--grid` is the paper's way of choosing APE's temperature T and scale S: it scores APE at every (T, S)
 * pair on the chosen split (use `--split validation`), besides sequential and parallel, and prints the
 * best pair. The test split then measures the chosen pair. `--prefix` replaces the instruction at the start
 * of the user turn (the shared prefix's text; `\n` for newlines), `--system` the system message,
 * `--doc-template` the wrapping of each document ("{text}\n\n") and `--query-template` that of the
 * question ("Question: {query}"), for every mode alike. `--split holdout` is a third set of questions kept
 * for the final measurement of a protocol chosen on validation.
 */
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "../src/errors.ts";
import { Ape, type ContextHandle, type Mode } from "../sdk/ape.ts";
import { loadModel } from "../sdk/load.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { loadFacts, PREFIX } from "../sdk/commands/demo.ts";

export type Split = "test" | "validation" | "holdout" | "demo";

export interface QualityQuestion {
  question: string;
  answers: string[];
  /** Index of the answering document. */
  doc: number;
}

export interface QualitySet {
  documents: string[];
  questions: QualityQuestion[];
}

export interface QualityResult {
  mode: Mode;
  temperature: number;
  scale: number;
  correct: number;
  total: number;
  answers: { question: string; answer: string; ok: boolean }[];
}

/** The questions of a split with their documents. */
export function loadQualitySet(split: Split): QualitySet {
  if (split === "demo") {
    const facts = loadFacts();
    const documents = facts.documents;
    const questions = facts.questions.map((q) => ({
      ...q,
      doc: documents.findIndex((d) => q.answers.some((a) => d.toLowerCase().includes(a.toLowerCase()))),
    }));
    return { documents, questions };
  }
  if (!["test", "validation", "holdout"].includes(split)) {
    throw new InvalidArgumentError(`--split must be test, validation, holdout or demo (got '${split}')`);
  }
  const data = JSON.parse(readFileSync(new URL("./data/quality.json", import.meta.url), "utf8"));
  return { documents: data.documents, questions: data[split] };
}

/** The contexts of question `qi`: its gold document among `k` distractors, in a seeded order. */
export function contextsFor(docCount: number, gold: number, qi: number, k: number): number[] {
  let s = 0x2545f491 + qi * 7919;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const shuffle = (a: number[]) => {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };
  const others = shuffle([...Array(docCount).keys()].filter((i) => i !== gold)).slice(0, k);
  return shuffle([gold, ...others]);
}

/** Whether an answer contains one of the expected strings. */
export function isCorrect(answer: string, expected: string[]): boolean {
  const a = answer.toLowerCase();
  return expected.some((e) => a.includes(e.toLowerCase()));
}

export interface QualityOptions {
  model?: string;
  split?: Split;
  distractors?: number;
  questions?: number;
  modes?: Mode[];
  maxTokens?: number;
  temperature?: number;
  scale?: number;
  /** APE is scored at every (T, S) pair of the grid (instead of `temperature`/`scale`). */
  grid?: { temperatures: number[]; scales: number[] };
  /** Instruction text of the shared prefix (default: the demo's). */
  prefix?: string;
  /** System message (default: the chat template's). */
  system?: string;
  /** Wrapping of each document and of the question (defaults: the SDK's). */
  documentTemplate?: string;
  queryTemplate?: string;
  log?: (s: string) => void;
}

export async function measureQuality(opts: QualityOptions): Promise<QualityResult[]> {
  const set = loadQualitySet(opts.split ?? "test");
  const questions = set.questions.slice(0, opts.questions ?? 1000);
  const model = await loadModel(opts.model);
  const ape = await Ape.create(model, {
    prefix: opts.prefix ?? PREFIX, system: opts.system, documentTemplate: opts.documentTemplate, queryTemplate: opts.queryTemplate,
  });
  try {
    const contexts: ContextHandle[][] = [];
    for (const [qi, q] of questions.entries()) {
      contexts.push(await ape.cache(contextsFor(set.documents.length, q.doc, qi, opts.distractors ?? 5).map((i) => set.documents[i])));
    }
    const runs: { mode: Mode; temperature: number; scale: number }[] = [];
    for (const mode of opts.modes ?? ["sequential", "parallel", "ape"]) {
      if (mode !== "ape") runs.push({ mode, temperature: 1, scale: 1 });
      else if (opts.grid) for (const t of opts.grid.temperatures) for (const s of opts.grid.scales) runs.push({ mode, temperature: t, scale: s });
      else runs.push({ mode, temperature: opts.temperature ?? ape.defaults.temperature, scale: opts.scale ?? ape.defaults.scale });
    }
    const results: QualityResult[] = [];
    for (const run of runs) {
      const r: QualityResult = { ...run, correct: 0, total: questions.length, answers: [] };
      for (const [qi, q] of questions.entries()) {
        const { text } = await ape.generateText({
          query: q.question, contexts: contexts[qi], mode: run.mode, maxTokens: opts.maxTokens ?? 24, stop: ["\n"],
          temperature: run.temperature, scale: run.scale,
        });
        const ok = isCorrect(text, q.answers);
        r.answers.push({ question: q.question, answer: text.trim(), ok });
        if (ok) r.correct++;
        opts.log?.(`${label(run).padEnd(18)} ${ok ? "ok  " : "MISS"} ${q.question} -> ${JSON.stringify(text.trim())}`);
      }
      results.push(r);
    }
    return results;
  } finally {
    await ape.close();
    model.destroy();
  }
}

const label = (r: { mode: Mode; temperature: number; scale: number }) => (r.mode === "ape" ? `ape T=${r.temperature} S=${r.scale}` : r.mode);

/** Command-line text with `\n` for newlines. */
const cliText = (s: string | undefined) => s?.replaceAll("\\n", "\n");

const numbers = (s: string, flag: string) =>
  s.split(",").map((x) => {
    const v = Number(x);
    if (!(v > 0 && v <= 4)) throw new InvalidArgumentError(`${flag}: '${x}' is not a number in (0, 4]`);
    return v;
  });

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { string: ["model", "split", "distractors", "questions", "modes", "max-tokens", "temperature", "scale", "grid", "prefix", "system", "doc-template", "query-template"], boolean: ["json"] });
  const modes = (a.string.modes ?? "sequential,parallel,ape").split(",") as Mode[];
  for (const m of modes) if (!["sequential", "parallel", "ape"].includes(m)) throw new InvalidArgumentError(`--modes: unknown mode '${m}'`);
  let grid: QualityOptions["grid"];
  if (a.string.grid) {
    const [t, s] = a.string.grid.split(":");
    if (!t || !s) throw new InvalidArgumentError("--grid must look like 0.5,0.7,0.9:0.6,0.8,1.0 (temperatures:scales)");
    grid = { temperatures: numbers(t, "--grid temperatures"), scales: numbers(s, "--grid scales") };
  }
  const int = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const results = await measureQuality({
    model: a.string.model, split: (a.string.split ?? "test") as Split, distractors: int(a.string.distractors), questions: int(a.string.questions),
    modes, maxTokens: int(a.string["max-tokens"]), log: a.boolean.json ? undefined : console.log, grid,
    prefix: cliText(a.string.prefix), system: cliText(a.string.system),
    documentTemplate: cliText(a.string["doc-template"]), queryTemplate: cliText(a.string["query-template"]),
    temperature: a.string.temperature ? numbers(a.string.temperature, "--temperature")[0] : undefined,
    scale: a.string.scale ? numbers(a.string.scale, "--scale")[0] : undefined,
  });
  const seq = results.find((r) => r.mode === "sequential");
  for (const r of results) {
    const share = seq && seq.correct > 0 ? ` (${((r.correct / seq.correct) * 100).toFixed(0)}% of sequential)` : "";
    console.log(`${label(r)}: ${r.correct}/${r.total} = ${((r.correct / r.total) * 100).toFixed(0)}%${share}`);
  }
  const apes = results.filter((r) => r.mode === "ape");
  if (apes.length > 1) {
    const best = apes.reduce((b, r) => (r.correct > b.correct ? r : b));
    console.log(`best APE pair: T=${best.temperature} S=${best.scale} (${best.correct}/${best.total})`);
  }
  if (a.boolean.json) console.log(JSON.stringify(results.map(({ answers: _, ...r }) => r)));
  return 0;
}
