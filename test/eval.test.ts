// `ape eval` / `ape tune` smoke runs on a tiny fixture model (few samples): result shapes and counts,
// the fidelity reference (one context, T = S = 1, parallel = sequential exactly: KL ~ 0), the context
// limit (sequential skipped, said so), the report and PNG plots, the data sets, the greedy T/S search on
// a function with a known optimum, and the tuned file that loadModel reads for defaults.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Ape, type ApeModel, loadModel } from "../sdk/mod.ts";
import { ablation, evalFidelity, evalIcl, evalRag, klDivergence, labelOf, ragContexts, ragIndex, type RunOptions } from "../sdk/commands/eval.ts";
import { greedy, GRID } from "../sdk/commands/tune.ts";
import { countryCorpus, iclSet, ragSet } from "../src/eval/data.ts";
import { targets, writeReport } from "../src/eval/report.ts";
import { readTuned, tunedPath, writeTuned } from "../src/eval/tuned.ts";
import { runtimeName } from "../src/runtime.ts";

const MODEL = new URL("../fixtures/models/llama3", import.meta.url).pathname;

describe(`ape eval / tune on ${runtimeName()}`, () => {
  let model: ApeModel;
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), "apekit-eval-"));
    dirs.push(d);
    return d;
  };
  beforeAll(async () => {
    model = await loadModel(MODEL);
  });
  afterAll(() => {
    model?.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const opts = (samples: number): RunOptions => ({ samples, split: "test", concurrency: 2, temperature: 0.5, scale: 0.8, maxTokens: 3 });

  it("data: RAG contexts hold the gold once among BM25 distractors; ICL splits balanced and disjoint; the country corpus", async () => {
    const set = ragSet("test");
    const index = await ragIndex(set);
    for (const qi of [0, 1, 2]) {
      const c = await ragContexts(set, index, qi, 5);
      expect(c.length).toBe(5);
      expect(new Set(c).size).toBe(5);
      expect(c.filter((i) => i === set.questions[qi].doc).length).toBe(1);
      expect(await ragContexts(set, index, qi, 5)).toEqual(c); // seeded
    }
    // the best BM25 match that is not the gold is among the distractors
    const q = set.questions[0];
    const top = (await index.search(q.question, 3)).map((h) => Number(h.id)).find((i) => i !== q.doc)!;
    expect(await ragContexts(set, index, 0, 3)).toContain(top);
    const icl = iclSet({ poolSize: 16, validation: 8, test: 8 });
    expect(icl.pool.filter((e) => e.label === "spam").length).toBe(8);
    const texts = [...icl.pool, ...icl.validation, ...icl.test].map((e) => e.text);
    expect(new Set(texts).size).toBe(32);
    expect(icl.pool[0].text).toMatch(/^Subject: /);
    expect(labelOf("Label: Spam.")).toBe("spam");
    expect(labelOf("this is champagne, ham")).toBe("ham");
    const corpus = countryCorpus();
    expect(corpus.documents.length).toBeGreaterThan(300);
    expect(corpus.documents[corpus.questions[0].doc]).toContain(corpus.questions[0].answers[0]);
  });

  it("klDivergence: 0 for equal distributions, the closed form for two tokens", () => {
    const p = Float32Array.of(1, 2, 3);
    expect(klDivergence(p, Float32Array.of(11, 12, 13))).toBeLessThan(1e-7); // softmax is shift-invariant
    const a = 1 / (1 + Math.exp(-1)), b = 0.5; // p = softmax(1, 0), q = softmax(0, 0)
    expect(klDivergence(Float32Array.of(1, 0), Float32Array.of(0, 0))).toBeCloseTo(a * Math.log(a / b) + (1 - a) * Math.log((1 - a) / b), 6);
  });

  it("fidelity: with one context, plain parallel is sequential (KL ~ 0), with or without the shared prefix; APE's T/S and more contexts are not", async () => {
    const r = await evalFidelity(model, [1, 3], opts(2));
    expect(r.rows.map((row) => row.name)).toEqual(ablation(0.5, 0.8).slice(1).map((v) => v.name));
    const kl = (name: string, k: number) => r.rows.find((row) => row.name.startsWith(name))!.points.find((p) => p.x === k)!.kl!;
    // each row against sequential encoding of its own prompt: one context is sequential in both layouts
    expect(kl("+ shared prefix", 1)).toBeLessThan(1e-3);
    expect(kl("parallel, no shared prefix", 1)).toBeLessThan(1e-3);
    expect(kl("parallel, no shared prefix", 3)).toBeGreaterThan(1e-3);
    expect(kl("+ scale", 1)).toBeGreaterThan(1e-4);
    expect(kl("+ shared prefix", 3)).toBeGreaterThan(kl("+ shared prefix", 1));
    for (const row of r.rows) for (const p of row.points) expect(p.samples).toBe(2);
  });

  it("rag and icl: every ablation row at every point; sequential past the model's positions is skipped and said; report + plots", async () => {
    const rag = await evalRag(model, [2], opts(2));
    expect(rag.rows.map((r) => [r.mode, r.sharedPrefix, r.temperature, r.scale])).toEqual([
      ["sequential", true, 1, 1], ["parallel", false, 1, 1], ["parallel", true, 1, 1], ["ape", true, 0.5, 1], ["ape", true, 0.5, 0.8],
    ]);
    for (const row of rag.rows) {
      expect(row.points).toHaveLength(1);
      expect(row.points[0].total).toBe(2);
      expect(row.points[0].accuracy).toBe(row.points[0].correct / 2);
      expect(row.points[0].correct).toBeLessThanOrEqual(2);
    }
    const icl = await evalIcl(model, [1, 24], opts(1));
    const seq = icl.rows[0];
    expect(seq.points[0].accuracy).not.toBeNull(); // one shot fits the tiny model's 512 positions
    expect(seq.points[1].accuracy).toBeNull();
    expect(seq.points[1].note).toMatch(/positions; the model has 512/);
    for (const row of icl.rows.slice(1)) expect(row.points.every((p) => p.accuracy !== null)).toBe(true);
    const out = tmp();
    const rep = { model: MODEL, runtime: runtimeName(), adapter: "test", date: new Date().toISOString(), temperature: 0.5, scale: 0.8, tasks: { rag, icl } };
    const written = await writeReport(out, rep);
    expect(written.map((p) => p.slice(out.length + 1)).sort()).toEqual(["RESULTS.md", "plots/icl_accuracy.png", "plots/rag_accuracy.png", "plots/results.json"]);
    for (const png of ["rag_accuracy", "icl_accuracy"]) {
      const b = readFileSync(join(out, "plots", `${png}.png`));
      expect([...b.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(b.readUInt32BE(16)).toBeGreaterThan(400); // IHDR width
    }
    const md = readFileSync(join(out, "RESULTS.md"), "utf8");
    expect(md).toContain("| + scale (APE) (T 0.5, S 0.8) |");
    expect(md).toContain("sequential runs out of context at 24 shots");
    expect(targets(rep).join("\n")).toMatch(/(MET|NOT MET): ICL: APE above plain parallel/);
    // a second run's task merges into the same report
    await writeReport(out, { ...rep, tasks: { fidelity: { task: "fidelity", x: "k", split: "test", samples: 1, seconds: 0, rows: [] } } });
    expect(Object.keys(JSON.parse(readFileSync(join(out, "plots", "results.json"), "utf8")).tasks).sort()).toEqual(["fidelity", "icl", "rag"]);
  });

  it("requests the KV pool cannot hold together wait for each other instead of failing", async () => {
    const probe = await Ape.create(model);
    const perToken = probe.stats().pool.bytesPerToken;
    await probe.close();
    // room for about one sequential request (a one-shot ICL prompt, ~300 tokens) at a time, four in flight
    const r = await evalIcl(model, [1], { ...opts(4), concurrency: 4, gpuBudgetBytes: perToken * 560, variants: ablation(0.5, 0.8).slice(0, 1) });
    expect(r.rows[0].points[0]).toMatchObject({ x: 1, total: 4 });
    expect(r.rows[0].points[0].accuracy).not.toBeNull();
  });

  it("tune: the greedy search finds a known optimum (T first at S 0.9, then S)", async () => {
    const calls: number[] = [];
    const f = (T: number, S: number) => -((T - 0.3) ** 2) - (S - 0.7) ** 2 - (T === 0.3 && S === 0.7 ? 0 : 0.001);
    const steps = await greedy(async (vs) => (calls.push(vs.length), vs.map((v) => f(v.temperature, v.scale))), 20, () => {});
    expect(calls).toEqual([GRID.length, GRID.length]);
    const best = steps[steps.length - 1];
    expect([best.temperature, best.scale, best.prefixTokens]).toEqual([0.3, 0.7, 20]);
    // ties keep the paper's 0.9
    const flat = await greedy(async (vs) => vs.map(() => 0.5), 10, () => {});
    expect([flat.at(-1)!.temperature, flat.at(-1)!.scale]).toEqual([0.9, 0.9]);
  });

  it("tune's file: written beside the model in apekit's model cache (bound to the fingerprint); loadModel and Ape use it", async () => {
    const cache = tmp();
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = cache;
    try {
      const fp = model.model.fingerprint;
      expect(tunedPath(MODEL, fp)).toBe(join(cache, "apekit", "models", "tuned", `${fp}.json`));
      expect(tunedPath(join(cache, "apekit", "models", "m1", "model.gguf"), fp)).toBe(join(cache, "apekit", "models", "m1", "ape-tuned.json"));
      expect(readTuned(MODEL, fp)).toBeUndefined();
      const file = { version: 1 as const, modelFingerprint: fp, temperature: 0.3, scale: 0.6, task: "rag", prefixTokens: 20, prefix: "p", split: "validation", samples: 4, accuracy: 0.5, date: "now" };
      writeTuned(MODEL, file);
      expect(readTuned(MODEL, fp)).toEqual({ temperature: 0.3, scale: 0.6 });
      const tuned = await loadModel(MODEL);
      try {
        expect(tuned.apeDefaults).toEqual({ temperature: 0.3, scale: 0.6 });
        const ape = await Ape.create(tuned);
        expect(ape.defaults).toEqual({ temperature: 0.3, scale: 0.6 });
        await ape.close();
      } finally {
        tuned.destroy();
      }
      // a file at the model's path that names another model (a replaced model file) is not used
      writeFileSync(tunedPath(MODEL, fp), JSON.stringify({ ...file, modelFingerprint: "other" }));
      expect(readTuned(MODEL, fp)).toBeUndefined();
      writeFileSync(tunedPath(MODEL, fp), "{ not json");
      expect(readTuned(MODEL, fp)).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
  });
});
