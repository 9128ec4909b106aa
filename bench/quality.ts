/**
 * `ape bench quality [--model <path>] [--docs N] [--questions N] [--modes sequential,parallel,ape] [--max-tokens N]`
 *
 * Answer accuracy over short factual documents the model has never seen (examples/data/facts.json:
 * real capitals among invented organisations, founders and years), all documents given as contexts
 * (the others are distractors). An answer counts when it contains one of the expected strings.
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

export async function measureQuality(opts: { model?: string; docs?: number; questions?: number; modes?: Mode[]; maxTokens?: number; log?: (s: string) => void }): Promise<QualityResult[]> {
  const facts = loadFacts();
  const docs = facts.documents.slice(0, opts.docs ?? facts.documents.length);
  const questions = facts.questions.filter((q) => q.answers.some((a) => docs.some((d) => d.includes(a)))).slice(0, opts.questions ?? 1000);
  const model = await loadModel(opts.model);
  const ape = await Ape.create(model, { prefix: PREFIX });
  try {
    const handles = await ape.cache(docs);
    const results: QualityResult[] = [];
    for (const mode of opts.modes ?? ["sequential", "parallel", "ape"]) {
      const r: QualityResult = { mode, correct: 0, total: questions.length, answers: [] };
      for (const q of questions) {
        const { text } = await ape.generateText({ query: q.question, contexts: handles, mode, maxTokens: opts.maxTokens ?? 24 });
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
  const a = parseArgs(argv, { string: ["model", "docs", "questions", "modes", "max-tokens"], boolean: ["json"] });
  const modes = (a.string.modes ?? "sequential,parallel,ape").split(",") as Mode[];
  for (const m of modes) if (!["sequential", "parallel", "ape"].includes(m)) throw new InvalidArgumentError(`--modes: unknown mode '${m}'`);
  const results = await measureQuality({
    model: a.string.model, docs: a.string.docs ? Number(a.string.docs) : undefined, questions: a.string.questions ? Number(a.string.questions) : undefined,
    modes, maxTokens: a.string["max-tokens"] ? Number(a.string["max-tokens"]) : undefined, log: a.boolean.json ? undefined : console.log,
  });
  const seq = results.find((r) => r.mode === "sequential");
  for (const r of results) {
    const share = seq && seq.correct > 0 ? ` (${((r.correct / seq.correct) * 100).toFixed(0)}% of sequential)` : "";
    console.log(`${r.mode}: ${r.correct}/${r.total} = ${((r.correct / r.total) * 100).toFixed(0)}%${share}`);
  }
  if (a.boolean.json) console.log(JSON.stringify(results));
  return 0;
}
