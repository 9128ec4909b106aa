/**
 * `ape demo`: the README's main job. On the embedded default model (SmolLM2-135M-Instruct), cache a
 * set of short factual documents shipped in examples/data/facts.json, then answer questions over
 * them, sequential and APE side by side with their timings.
 *
 *   ape demo [--model <dir|file.gguf>] [--docs N] [--questions N] [--max-tokens N] [--store <url>]
 */
import { readFileSync } from "node:fs";
import { getGpu } from "../../src/gpu/device.ts";
import { runtimeName } from "../../src/runtime.ts";
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
      docs: ["N", "documents to cache (default: 12 on a CPU adapter, else all)"],
      questions: ["N", "questions to answer (default 4)"],
      "max-tokens": ["N", "tokens per answer at most (default 16)"],
      store: ["URL", "context cache: memory: (default), file:///path or redis://host:port"],
    },
    string: ["model", "docs", "questions", "max-tokens", "store"],
  });
  const gpu = await getGpu();
  const facts = loadFacts();
  const nDocs = Math.min(facts.documents.length, Number(a.string.docs ?? (gpu.isCpu ? 12 : facts.documents.length)));
  const nQ = Number(a.string.questions ?? 4);
  const maxTokens = Number(a.string["max-tokens"] ?? 16);
  const docs = facts.documents.slice(0, nDocs);
  const questions = facts.questions.filter((q) => q.answers.some((ans) => docs.some((d) => d.includes(ans)))).slice(0, nQ);
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
    console.log(`APE with T = ${ape.defaults.temperature}, S = ${ape.defaults.scale}\n`);
    const fmt = (r: GenerateResult) => `${JSON.stringify(r.text.trim())}  (first token ${r.stats.timeToFirstTokenMs.toFixed(0)} ms, total ${r.stats.totalMs.toFixed(0)} ms)`;
    for (const q of questions) {
      const seq = await ape.generateText({ query: q.question, contexts: handles, mode: "sequential", maxTokens });
      const par = await ape.generateText({ query: q.question, contexts: handles, mode: "ape", maxTokens });
      console.log(`Q: ${q.question}`);
      console.log(`  sequential: ${fmt(seq)}`);
      console.log(`  APE:        ${fmt(par)}`);
    }
    const s = ape.stats();
    console.log(`\ncache: ${s.hits.gpu} GPU hits, ${s.misses} misses, ${s.entries.gpu} contexts resident (${(s.bytes.gpu / 1e6).toFixed(1)} MB)`);
    return 0;
  } finally {
    await ape.close();
    model.destroy();
  }
}
