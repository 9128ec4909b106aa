/**
 * `ape bench quality [--model <path>] [--distractors K] [--questions N] [--modes sequential,parallel,ape] [--max-tokens N]
 *                    [--temperature T] [--scale S]`
 *
 * Answer accuracy over short factual documents the model has never seen (examples/data/facts.json:
 * real capitals among invented organisations, founders and years). Every document is cached once (on
 * first use); each question gets the document that answers it among K distractors (default 5, chosen and ordered
 * by a fixed seed), as a retriever's top K+1 would. An answer counts when it contains one of the
 * expected strings.
 * Prints accuracy per mode and APE's share of sequential accuracy (the default-model issue asks for
 * sequential >= 50% and APE >= 90% of sequential).
 */
import { InvalidArgumentError } from "../src/errors.ts";
import { Ape, type Mode } from "../sdk/ape.ts";
import { loadModel } from "../sdk/load.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { loadFacts, PREFIX } from "../sdk/commands/demo.ts";

export interface QualityResult {
  mode: Mode;
  correct: number;
  total: number;
  answers: { question: string; answer: string; ok: boolean }[];
}

/** The contexts of question `qi`: its answering document among `k` distractors, in a seeded order. */
export function contextsFor(docs: string[], answers: string[], qi: number, k: number): number[] {
  const gold = docs.findIndex((d) => answers.some((a) => d.includes(a)));
  let s = 0x2545f491 + qi * 7919;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const others = docs.map((_, i) => i).filter((i) => i !== gold).sort(() => rand() - 0.5).slice(0, k);
  const picked = [gold, ...others];
  return picked.sort(() => rand() - 0.5);
}

export async function measureQuality(opts: {
  model?: string; distractors?: number; questions?: number; modes?: Mode[]; maxTokens?: number; temperature?: number; scale?: number;
  log?: (s: string) => void;
}): Promise<QualityResult[]> {
  const facts = loadFacts();
  const docs = facts.documents;
  const questions = facts.questions.slice(0, opts.questions ?? 1000);
  const model = await loadModel(opts.model);
  const ape = await Ape.create(model, { prefix: PREFIX });
  try {
    const results: QualityResult[] = [];
    for (const mode of opts.modes ?? ["sequential", "parallel", "ape"]) {
      const r: QualityResult = { mode, correct: 0, total: questions.length, answers: [] };
      for (const [qi, q] of questions.entries()) {
        // cached on first use: later questions and modes hit the cache
        const contexts = await ape.cache(contextsFor(docs, q.answers, qi, opts.distractors ?? 5).map((i) => docs[i]));
        const { text } = await ape.generateText({ query: q.question, contexts, mode, maxTokens: opts.maxTokens ?? 24, temperature: opts.temperature, scale: opts.scale });
        const ok = q.answers.some((a) => text.toLowerCase().includes(a.toLowerCase()));
        r.answers.push({ question: q.question, answer: text.trim(), ok });
        if (ok) r.correct++;
        opts.log?.(`${mode.padEnd(10)} ${ok ? "ok  " : "MISS"} ${q.question} -> ${JSON.stringify(text.trim())}`);
      }
      results.push(r);
    }
    return results;
  } finally {
    await ape.close();
    model.destroy();
  }
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { string: ["model", "distractors", "questions", "modes", "max-tokens", "temperature", "scale"], boolean: ["json"] });
  const modes = (a.string.modes ?? "sequential,parallel,ape").split(",") as Mode[];
  for (const m of modes) if (!["sequential", "parallel", "ape"].includes(m)) throw new InvalidArgumentError(`--modes: unknown mode '${m}'`);
  const results = await measureQuality({
    model: a.string.model, distractors: a.string.distractors ? Number(a.string.distractors) : undefined, questions: a.string.questions ? Number(a.string.questions) : undefined,
    modes, maxTokens: a.string["max-tokens"] ? Number(a.string["max-tokens"]) : undefined, log: a.boolean.json ? undefined : console.log,
    temperature: a.string.temperature ? Number(a.string.temperature) : undefined, scale: a.string.scale ? Number(a.string.scale) : undefined,
  });
  const seq = results.find((r) => r.mode === "sequential");
  for (const r of results) {
    const share = seq && seq.correct > 0 ? ` (${((r.correct / seq.correct) * 100).toFixed(0)}% of sequential)` : "";
    console.log(`${r.mode}: ${r.correct}/${r.total} = ${((r.correct / r.total) * 100).toFixed(0)}%${share}`);
  }
  if (a.boolean.json) console.log(JSON.stringify(results));
  return 0;
}
