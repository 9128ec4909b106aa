/**
 * A Bun application: cache a few documents once, then answer questions over them with APE, printing
 * one JSON line per answer.
 *
 *   bun examples/bun_app.ts "What is the capital of Vermont?" ...     # APEKIT_MODEL, APEKIT_STORE
 */
import { Ape, loadModel } from "../sdk/mod.ts";

const documents = [
  "The capital of Vermont is Montpelier.",
  "Brightwater Robotics was founded by Tomas Okafor in 2004.",
  "The Zephyrine Bridge is 1,240 metres long.",
];
const questions = process.argv.slice(2);
if (questions.length === 0) questions.push("What is the capital of Vermont?");

const model = await loadModel(process.env.APEKIT_MODEL || undefined);
const ape = await Ape.create(model, {
  prefix: "Answer the question with a short phrase, using the documents below.\n\n",
  store: process.env.APEKIT_STORE || "memory:",
});
try {
  const contexts = await ape.cache(documents);
  for (const query of questions) {
    const { text, stats } = await ape.generateText({ query, contexts, maxTokens: Number(process.env.APEKIT_MAX_TOKENS ?? 24) });
    console.log(JSON.stringify({ query, answer: text.trim(), timeToFirstTokenMs: Math.round(stats.timeToFirstTokenMs), cacheHits: stats.cacheHits }));
  }
} finally {
  await ape.close();
  model.destroy();
}
