// The sampler bank (src/engine/sampler.ts SamplerBank: every row of a batched step sampled in ONE dispatch)
// against independent expectations: each row's choice equals the single-row Sampler's on the same logits,
// settings, history and step, greedy rows equal a CPU argmax (after the repetition penalty), sampled rows
// equal a CPU implementation of the same draw (HF order: penalty, temperature, top-k, top-p, the RNG keyed
// by (seed, step)), and a row with a NaN logit is refused while the others are sampled.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { readBuffer, storageBuffer, uploadF32 } from "../src/gpu/buffers.ts";
import { Program } from "../src/engine/program.ts";
import { checkSampling, Sampler, SamplerBank, type SamplingOptions } from "../src/engine/sampler.ts";
import { runtimeName } from "../src/runtime.ts";
import { randomModel, rng, tinyConfig } from "./reference/random_model.ts";

const NONFINITE = 0xffffffff;

/** shaders/sample.wgsl's random01: a uniform float in [0, 1) from (seed, step). */
function random01(seed: number, step: number): number {
  let x = (Math.imul(seed, 747796405) + Math.imul(step, 2891336453) + 1) >>> 0;
  for (let i = 0; i < 3; i++) {
    x = (Math.imul(x, 747796405) + 2891336453) >>> 0;
    const w = Math.imul(((x >>> ((x >>> 28) + 4)) ^ x) >>> 0, 277803737) >>> 0;
    x = ((w >>> 22) ^ w) >>> 0;
  }
  return (x >>> 8) / 16777216;
}

/** The sampling algorithm on the CPU (sorting instead of bisection, float64 sums): the id it chooses. */
function cpuSample(row: Float32Array, sampling: SamplingOptions, history: number[], step: number): number {
  const s = checkSampling(sampling);
  const l = Float32Array.from(row);
  if (l.some((x) => !Number.isFinite(x))) return NONFINITE;
  const p = s.repetitionPenalty;
  if (p !== 1) for (const i of new Set(history)) l[i] = l[i] > 0 ? l[i] / p : l[i] * p;
  const ids = Array.from(l.keys());
  if (s.temperature <= 0) return ids.reduce((b, i) => (l[i] > l[b] ? i : b), 0); // lowest id on ties
  for (let i = 0; i < l.length; i++) l[i] = l[i] / s.temperature;
  const sorted = [...ids].sort((a, b) => l[b] - l[a] || a - b);
  let thr = l[sorted[sorted.length - 1]];
  if (s.topK > 0 && s.topK < l.length) thr = l[sorted[s.topK - 1]];
  const mx = l[sorted[0]];
  const w = (i: number) => (l[i] >= thr ? Math.exp(l[i] - mx) : 0);
  if (s.topP < 1) {
    const total = ids.reduce((t, i) => t + w(i), 0);
    let acc = 0;
    for (const i of sorted) { // the smallest set of the most likely tokens reaching topP of the mass
      acc += w(i);
      if (acc >= s.topP * total) {
        thr = l[i];
        break;
      }
    }
  }
  const total = ids.reduce((t, i) => t + w(i), 0);
  const u = random01(s.seed, step) * total;
  let acc = 0;
  for (const i of ids) {
    acc += w(i);
    if (w(i) > 0 && acc > u) return i;
  }
  return sorted[0];
}

interface RowSpec {
  sampling: SamplingOptions;
  history: number[];
  step: number;
  /** NaN at this id (the row is refused). */
  nan?: number;
}

describe(`sampler bank on ${runtimeName()}`, () => {
  const V = 3001; // not a multiple of 4 or 32: the last mask word and argmax lanes are partial
  let model: Model;
  const rand = rng(7);

  beforeAll(async () => {
    const cfg = tinyConfig({ vocabSize: V });
    const { tensors } = randomModel(cfg, 3);
    model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "bank" });
  });
  afterAll(() => model?.destroy());

  function logitRow(spec: RowSpec): Float32Array {
    const l = Float32Array.from({ length: V }, () => (rand() * 2 - 1) * 3);
    // a few clear favourites (the penalty rows see them in their history)
    for (const [i, v] of [[17, 6], [2999, 5.5], [1500, 5.8]] as const) l[i] = v;
    if (spec.nan !== undefined) l[spec.nan] = NaN;
    return l;
  }

  /** Row `spec` sampled alone by a single-row Sampler: its chosen id, its next id and its mask after. */
  async function alone(logits: Float32Array, spec: RowSpec) {
    const dev = model.gpu.device;
    const s = new Sampler(model, spec.sampling, spec.step + 1, spec.history);
    const prog = new Program(dev);
    const buf = uploadF32(dev, logits);
    try {
      s.record(prog, buf);
      s.setStep(spec.step);
      prog.submit();
      const token = new Uint32Array(await readBuffer(dev, s.tokens, 4, spec.step * 4))[0];
      const next = new Uint32Array(await readBuffer(dev, s.next, 4))[0];
      const seen = new Uint32Array(await readBuffer(dev, s.seen, Math.ceil(V / 32) * 4));
      return { token, next, seen };
    } finally {
      s.destroy();
      prog.destroy();
      buf.destroy();
    }
  }

  it("one dispatch samples every row as its own Sampler would alone (greedy, top-k / top-p with seeds, penalty, a NaN row refused)", async () => {
    const hist = [17, 1500, 4, 8]; // 2999 (8.5) is not in it
    const rows: RowSpec[] = [
      { sampling: {}, history: [], step: 0 }, // greedy
      { sampling: { temperature: 0.9, topK: 40, topP: 0.9, seed: 11 }, history: [], step: 3 },
      { sampling: { temperature: 1.3, seed: 5 }, history: [3, 9], step: 0 },
      { sampling: { repetitionPenalty: 1.8 }, history: hist, step: 5 }, // greedy: the favourites penalised
      { sampling: { temperature: 0.7, topP: 0.8, repetitionPenalty: 1.3, seed: 99 }, history: hist, step: 2 },
      { sampling: { temperature: 1, seed: 2 }, history: [], step: 1, nan: 77 }, // refused (sampled path)
      { sampling: { temperature: 2.5, topK: 300, seed: 123456789 }, history: [1], step: 9 },
      { sampling: { repetitionPenalty: 1.5 }, history: [5], step: 4, nan: 3000 }, // refused (greedy path)
      { sampling: { temperature: 5, topK: 1, seed: 8 }, history: [], step: 6 }, // top-k 1: the argmax
      { sampling: { temperature: 1.1, topK: 20, topP: 0.5, repetitionPenalty: 0.7, seed: 4 }, history: [200, 201], step: 7 },
    ];
    const n = rows.length;
    const logits = rows.map(logitRow);
    // a favourite shared by every row: different steps and seeds must still make the sampled rows differ
    const want = await Promise.all(rows.map((r, i) => alone(logits[i], r)));

    // the bank: rows' samplers as a Batcher holds them, each with a different first step in the bank
    const dev = model.gpu.device;
    const first = rows.map((r) => Math.max(0, r.step - 2));
    const samplers = rows.map((r) => new Sampler(model, r.sampling, r.step + 3, r.history));
    // tokens sampled before the bank (in the samplers' own buffers): 1000 + step
    samplers.forEach((s, i) => first[i] > 0 && dev.queue.writeBuffer(s.tokens, 0, Uint32Array.from({ length: first[i] }, (_, t) => 1000 + t)));
    samplers.forEach((s, i) => dev.queue.writeBuffer(s.next, 0, new Uint32Array([40 + i])));
    const bank = new SamplerBank(model, samplers, first);
    const all = new Float32Array(n * V);
    logits.forEach((l, i) => all.set(l, i * V));
    const buf = uploadF32(dev, all);
    const next = storageBuffer(dev, n * 4, "next");
    const prog = new Program(dev);
    try {
      let enc = dev.createCommandEncoder();
      bank.load(enc, next);
      dev.queue.submit([enc.finish()]);
      expect(Array.from(new Uint32Array(await readBuffer(dev, next, n * 4)))).toEqual(rows.map((_, i) => 40 + i)); // last ids loaded
      bank.record(prog, buf, next);
      expect(prog.steps.length).toBe(1);
      expect(prog.steps[0].grid).toEqual([n, 1, 1]);
      // rows before the sampled step: the bank writes nothing there (its slots between first and step stay 0)
      bank.setSteps(rows.map((r) => r.step));
      prog.submit();

      const got = new Uint32Array(await readBuffer(dev, next, n * 4));
      // readback through the bank: steps 0 .. step, the ones before `first` from the samplers' own buffers
      for (let i = 0; i < n; i++) {
        const r = rows[i];
        const stage = storageBuffer(dev, (r.step + 1) * 4, "stage");
        enc = dev.createCommandEncoder();
        bank.copyTokens(enc, i, 0, r.step + 1, stage, 0);
        dev.queue.submit([enc.finish()]);
        const toks = Array.from(new Uint32Array(await readBuffer(dev, stage, (r.step + 1) * 4)));
        stage.destroy();
        const before = Array.from({ length: first[i] }, (_, t) => 1000 + t);
        expect(toks, `row ${i} read back`).toEqual([...before, ...Array(r.step - first[i]).fill(0), want[i].token]);
      }
      rows.forEach((r, i) => {
        const refused = r.nan !== undefined;
        expect(want[i].token === NONFINITE, `row ${i}: alone refused`).toBe(refused);
        expect(got[i], `row ${i}: next`).toBe(want[i].next);
        if (refused) expect(got[i], `row ${i}: a refused row's next input`).toBe(0);
        // independent of the GPU: the CPU's choice (greedy: the penalised argmax)
        expect(want[i].token, `row ${i}: CPU sampling`).toBe(cpuSample(logits[i], r.sampling, r.history, r.step));
      });
      expect(want[3].token).toBe(2999); // the penalty moved the greedy choice off the favourites it saw
      expect(want[0].token).toBe(17);
      expect(want[8].token).toBe(17);
      expect(new Set([1, 2, 4, 6, 9].map((i) => want[i].token)).size).toBeGreaterThan(1); // the sampled rows do draw

      // hand-back: masks (with the chosen ids), last ids and the bank's tokens into each sampler
      enc = dev.createCommandEncoder();
      bank.unload(enc, next, rows.map((r) => r.step + 1));
      dev.queue.submit([enc.finish()]);
      for (let i = 0; i < n; i++) {
        const s = samplers[i], r = rows[i];
        const toks = Array.from(new Uint32Array(await readBuffer(dev, s.tokens, (r.step + 1) * 4)));
        expect(toks[r.step], `row ${i}: token handed back`).toBe(want[i].token);
        expect(toks.slice(0, first[i])).toEqual(Array.from({ length: first[i] }, (_, t) => 1000 + t));
        expect(new Uint32Array(await readBuffer(dev, s.next, 4))[0]).toBe(want[i].next);
        expect(Array.from(new Uint32Array(await readBuffer(dev, s.seen, Math.ceil(V / 32) * 4))), `row ${i}: mask`).toEqual(Array.from(want[i].seen));
      }
    } finally {
      prog.destroy();
      bank.destroy();
      for (const s of samplers) s.destroy();
      buf.destroy();
      next.destroy();
    }
  });

  it("a bank of one row and a replayed bank (the step advancing) match the single-row Sampler step by step", async () => {
    const dev = model.gpu.device;
    const sampling = { temperature: 0.8, topK: 50, repetitionPenalty: 1.4, seed: 31 };
    const logits = logitRow({ sampling, history: [], step: 0 });
    const steps = 5;
    // alone: the same logits each step (re-uploaded: sampling modifies them in place), the mask growing
    const solo = new Sampler(model, sampling, steps, [17]);
    const banked = new Sampler(model, sampling, steps, [17]);
    const bank = new SamplerBank(model, [banked], [0]);
    const a = uploadF32(dev, logits), b = uploadF32(dev, logits);
    const next = storageBuffer(dev, 4, "next");
    const pa = new Program(dev), pb = new Program(dev);
    try {
      solo.record(pa, a);
      bank.record(pb, b, next);
      let enc = dev.createCommandEncoder();
      bank.load(enc, next);
      dev.queue.submit([enc.finish()]);
      for (let t = 0; t < steps; t++) {
        dev.queue.writeBuffer(a, 0, logits);
        dev.queue.writeBuffer(b, 0, logits);
        solo.setStep(t);
        bank.setSteps([t]);
        pa.submit();
        pb.submit();
      }
      enc = dev.createCommandEncoder();
      bank.unload(enc, next, [steps]);
      dev.queue.submit([enc.finish()]);
      const want = Array.from(new Uint32Array(await readBuffer(dev, solo.tokens, steps * 4)));
      expect(Array.from(new Uint32Array(await readBuffer(dev, banked.tokens, steps * 4)))).toEqual(want);
    } finally {
      for (const x of [solo, banked, bank, pa, pb, a, b, next]) x.destroy();
    }
  });
});
