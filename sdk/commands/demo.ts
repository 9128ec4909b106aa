/**
 * `ape demo`: the README's main job, RAG end to end. On the embedded default model (SmolLM2-135M-Instruct),
 * cache a corpus of a few hundred short documents (country facts generated from the country-json
 * package: capitals, national dishes, currencies; src/eval/data.ts), then for each question retrieve
 * the top k documents by BM25 (`ape.search`) and answer over them, sequential and APE side by side with
 * their timings, and print both modes' accuracy over the questions asked.
 *
 *   ape demo [--model <dir|file.gguf>] [--docs N] [--questions N] [--k N] [--max-tokens N] [--store <url>]
 */
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "../../src/errors.ts";
import { getGpu } from "../../src/gpu/device.ts";
import { runtimeName } from "../../src/runtime.ts";
import { countryCorpus, isCorrect, seeded, shuffle } from "../../src/eval/data.ts";
import { Ape, type GenerateResult } from "../ape.ts";
import { parseArgs } from "./args.ts";
import { MODEL_HELP, openModel } from "./model_arg.ts";
import { progressBar } from "./progress.ts";

interface Facts {
  documents: string[];
  questions: { question: string; answers: string[] }[];
}

export const PREFIX = "Answer the question with a short phrase, using the documents below.\n\n";

export function loadFacts(): Facts {
  return JSON.parse(readFileSync(new URL("../../examples/data/facts.json", import.meta.url), "utf8"));
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    usage: "ape demo [options]\n\nCaches the bundled documents, then answers questions over them, sequential and APE side by side.",
    help: {
      model: MODEL_HELP!.model,
      docs: ["N", "documents to cache (default: 48 on a CPU adapter, else all 625)"],
      questions: ["N", "questions to answer (default: 4 on a CPU adapter, else 12)"],
      k: ["N", "documents retrieved per question (default 3)"],
      "max-tokens": ["N", "tokens per answer at most (default 16)"],
      store: ["URL", "context cache: memory: (default), file:///path or redis://host:port"],
    },
    string: ["model", "docs", "questions", "k", "max-tokens", "store"],
  });
  const gpu = await getGpu();
  const corpus = countryCorpus();
  const int = (flag: string, dflt: number) => {
    const v = Number(a.string[flag] ?? dflt);
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`--${flag} must be a positive integer (got '${a.string[flag]}')`);
    return v;
  };
  const nDocs = Math.min(corpus.documents.length, int("docs", gpu.isCpu ? 48 : corpus.documents.length));
  const nQ = int("questions", gpu.isCpu ? 4 : 12);
  const k = int("k", 3);
  const maxTokens = int("max-tokens", 16);
  // a seeded draw of the corpus (all three kinds of fact), and questions about documents in it
  const order = shuffle([...corpus.documents.keys()], seeded(7));
  const chosen = order.slice(0, nDocs);
  const docs = chosen.map((i) => corpus.documents[i]);
  const questions = chosen.slice(0, nQ).map((i) => corpus.questions[i]);
  console.log(`apekit demo on ${runtimeName()}, adapter: ${gpu.description}`);
  let t = performance.now();
  const model = await openModel(a.string.model);
  console.log(`model: ${model.model.source} (${model.model.config.layers} layers, ${model.model.layers[0].qkv.format} weights), loaded in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const ape = await Ape.create(model, { prefix: PREFIX, store: a.string.store ?? "memory:" });
  try {
    t = performance.now();
    const handles = await ape.cache(docs, { onProgress: progressBar("caching documents") });
    const tokens = handles.reduce((n, h) => n + h.tokens, 0);
    console.log(`cached ${handles.length} documents (${tokens} tokens) in ${((performance.now() - t) / 1000).toFixed(1)} s, encoded in parallel once`);
    console.log(`each question: the top ${k} documents by BM25 (ape.search), then APE with T = ${ape.defaults.temperature}, S = ${ape.defaults.scale}\n`);
    const mark = (ok: boolean) => (ok ? "ok  " : "MISS");
    const fmt = (r: GenerateResult, ok: boolean) => `${mark(ok)} ${JSON.stringify(r.text.trim())}  (first token ${r.stats.timeToFirstTokenMs.toFixed(0)} ms, total ${r.stats.totalMs.toFixed(0)} ms)`;
    const right = { sequential: 0, ape: 0, retrieved: 0 };
    for (const q of questions) {
      const hits = await ape.search(q.question, { k });
      const found = hits.some((h) => h.text === corpus.documents[q.doc]);
      const seq = await ape.generateText({ query: q.question, contexts: hits, mode: "sequential", maxTokens, stop: ["\n"] });
      const par = await ape.generateText({ query: q.question, contexts: hits, mode: "ape", maxTokens, stop: ["\n"] });
      const okSeq = isCorrect(seq.text, q.answers), okApe = isCorrect(par.text, q.answers);
      right.sequential += Number(okSeq);
      right.ape += Number(okApe);
      right.retrieved += Number(found);
      console.log(`Q: ${q.question}   (expected ${JSON.stringify(q.answers[0])}; ${found ? "its document retrieved" : "its document NOT retrieved"})`);
      console.log(`  sequential: ${fmt(seq, okSeq)}`);
      console.log(`  APE:        ${fmt(par, okApe)}`);
    }
    const share = (n: number) => `${n}/${questions.length} (${((n / Math.max(1, questions.length)) * 100).toFixed(0)}%)`;
    console.log(`\naccuracy: sequential ${share(right.sequential)}, APE ${share(right.ape)}; answering document among the top ${k}: ${share(right.retrieved)}`);
    const s = ape.stats();
    console.log(`\ncache: ${s.hits.gpu} GPU hits, ${s.misses} misses, ${s.entries.gpu} contexts resident (${(s.bytes.gpu / 1e6).toFixed(1)} MB)`);
    return 0;
  } finally {
    await ape.close();
    model.destroy();
  }
}
