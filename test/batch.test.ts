// Continuous batching (src/engine/batch.ts): overlapping generations decode in shared batched steps
// and each gives exactly the tokens of the same request decoded alone (generate.ts decode, itself
// checked against the float64 reference in generate.test.ts); requests join and leave between steps.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { decode, type DecodeRequest } from "../src/engine/generate.ts";
import type { SamplingOptions } from "../src/engine/sampler.ts";
import { Batcher } from "../src/engine/batch.ts";
import { encodeContexts, encodePrefix, type EncodedPrefix, startQuery } from "../src/ape/ape.ts";
import type { KvBlock } from "../src/engine/kv_pool.ts";
import { readBuffer } from "../src/gpu/buffers.ts";
import { runtimeName } from "../src/runtime.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, rng, tinyConfig } from "./reference/random_model.ts";

interface Spec {
  kind: "sequential" | "ape" | "parallel";
  prompt: number[];
  contexts?: number;
  maxTokens: number;
  T?: number;
  S?: number;
}

describe(`continuous batching on ${runtimeName()}`, () => {
  const cfg = tinyConfig({ vocabSize: 61 });
  let model: Model, engine: Engine, ref: CpuReference, prefix: EncodedPrefix, ctx: KvBlock[];
  const rand = rng(23);
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
  const prefixIds = ids(3);
  const docs = [ids(7), ids(4), ids(9), ids(5)];

  beforeAll(async () => {
    const { tensors, ref: w } = randomModel(cfg, 5, 0.5);
    model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "b" });
    engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
    ref = new CpuReference(cfg, w);
    prefix = await encodePrefix(engine, Uint32Array.from(prefixIds));
    ctx = await encodeContexts(engine, prefix, docs.map((d) => Uint32Array.from(d)));
  });
  afterAll(() => {
    engine?.destroy();
    model?.destroy();
  });

  /** A request's live block and DecodeRequest (the caller releases the block). */
  function request(spec: Spec, extra: Partial<DecodeRequest> = {}): DecodeRequest {
    const prompt = Uint32Array.from(spec.prompt);
    if (spec.kind === "sequential") {
      const block = engine.pool.allocate(prompt.length + spec.maxTokens, 0);
      return { prompt, block, maxTokens: spec.maxTokens, group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }), ...extra };
    }
    const T = spec.kind === "ape" ? spec.T ?? 0.9 : 1, S = spec.kind === "ape" ? spec.S ?? 0.9 : 1;
    const live = startQuery(engine, { prefix, contexts: ctx.slice(0, spec.contexts ?? 2), query: prompt, temperature: T, scale: S, reserve: spec.maxTokens });
    return { prompt, block: live.block, group: live.group, temperature: T, scale: S, maxTokens: spec.maxTokens, ...extra };
  }

  async function collect(gen: AsyncGenerator<number[]>, req: DecodeRequest): Promise<number[]> {
    const out: number[] = [];
    try {
      for await (const c of gen) out.push(...c);
    } finally {
      engine.pool.release(req.block);
    }
    return out;
  }
  const alone = (spec: Spec, extra: Partial<DecodeRequest> = {}) => {
    const r = request(spec, { stepsPerReadback: 3, ...extra });
    return collect(decode(engine, r), r);
  };

  const specs: Spec[] = [
    { kind: "ape", prompt: ids(3), contexts: 2, maxTokens: 9 },
    { kind: "sequential", prompt: ids(6), maxTokens: 12 },
    { kind: "ape", prompt: ids(2), contexts: 4, maxTokens: 5, T: 0.5, S: 0.8 }, // another T and S: its own cohort
    { kind: "parallel", prompt: ids(4), contexts: 3, maxTokens: 14 },
    { kind: "sequential", prompt: ids(11), maxTokens: 3 },
    { kind: "ape", prompt: ids(5), contexts: 1, maxTokens: 10 },
    { kind: "sequential", prompt: ids(2), maxTokens: 7 },
    { kind: "ape", prompt: ids(4), contexts: 3, maxTokens: 6 },
  ];

  it("8 overlapping greedy generations (APE, parallel and sequential, joining and leaving) each equal the request decoded alone", async () => {
    const want: number[][] = [];
    for (const s of specs) want.push(await alone(s));
    // the reference agrees with one of them (decode itself is checked in generate.test.ts)
    const seq = [...specs[1].prompt];
    for (let i = 0; i < 3; i++) {
      const l = ref.sequential(seq);
      const last = l[l.length - 1];
      seq.push(last.indexOf(Math.max(...last)));
    }
    expect(want[1].slice(0, 3)).toEqual(seq.slice(specs[1].prompt.length));

    const free = engine.pool.freeTokens();
    const batcher = new Batcher(engine, { stepsPerReadback: 2, maxRows: 64 });
    const got: Promise<number[]>[] = [];
    // five start together; three join later, while the others are mid-decode
    for (const s of specs.slice(0, 5)) {
      const r = request(s);
      got.push(collect(batcher.decode(r), r));
    }
    while (batcher.counters.steps < 3) await new Promise((r) => setTimeout(r, 1));
    for (const s of specs.slice(5)) {
      const r = request(s);
      got.push(collect(batcher.decode(r), r));
      await new Promise((r) => setTimeout(r, 5));
    }
    const res = await Promise.all(got);
    res.forEach((r, i) => expect(r, `request ${i} (${specs[i].kind})`).toEqual(want[i]));
    // forward passes really were shared: the first five join together, APE (T 0.9) rows 0 and sequential
    // rows 1, 4 in one pass (later joiners add to it while it lives)
    expect(batcher.counters.widest).toBeGreaterThanOrEqual(3);
    expect(batcher.counters.rows).toBeGreaterThan(batcher.counters.passes);
    expect(batcher.size).toBe(0);
    expect(engine.pool.freeTokens()).toBe(free);
  });

  it("overlapping SAMPLED generations (temperature, top-k / top-p, seeds, repetition penalty; joining and leaving) each equal the request decoded alone", async () => {
    // every row samples in one bank dispatch with its own settings, RNG step and mask; rows move between
    // cohorts (multi-row banks, one-row cohorts sampling alone) as others join and leave, handing their state on
    const sampled: { spec: Spec; sampling: SamplingOptions; history?: number[] }[] = [
      { spec: { kind: "sequential", prompt: ids(5), maxTokens: 15 }, sampling: { temperature: 1.2, seed: 1 } },
      { spec: { kind: "ape", prompt: ids(3), contexts: 2, maxTokens: 4 }, sampling: { temperature: 0.9, topK: 12, topP: 0.9, seed: 2 } },
      { spec: { kind: "sequential", prompt: ids(3), maxTokens: 9 }, sampling: { temperature: 1.5, topP: 0.8, repetitionPenalty: 1.5, seed: 3 }, history: ids(6) },
      { spec: { kind: "parallel", prompt: ids(4), contexts: 3, maxTokens: 11 }, sampling: { repetitionPenalty: 1e6 } }, // greedy, never repeats
      { spec: { kind: "ape", prompt: ids(2), contexts: 2, maxTokens: 7, T: 0.5, S: 0.8 }, sampling: { temperature: 1, topK: 8, seed: 9 } }, // its own cohort
      // joining later, while the others are mid-decode
      { spec: { kind: "sequential", prompt: ids(6), maxTokens: 8 }, sampling: { temperature: 1, topK: 5, repetitionPenalty: 2, seed: 4 } },
      { spec: { kind: "ape", prompt: ids(4), contexts: 1, maxTokens: 12 }, sampling: { temperature: 2, repetitionPenalty: 1.3, seed: 0xffffffff } },
      { spec: { kind: "ape", prompt: ids(3), contexts: 3, maxTokens: 6, T: 0.5, S: 0.8 }, sampling: { temperature: 0.7, topP: 0.95, seed: 77 } },
    ];
    const extra = (i: number): Partial<DecodeRequest> => ({ sampling: sampled[i].sampling, history: sampled[i].history });
    const want: number[][] = [];
    for (let i = 0; i < sampled.length; i++) want.push(await alone(sampled[i].spec, extra(i)));
    expect(await alone(sampled[0].spec)).not.toEqual(want[0]); // sampling is not greedy here
    expect(new Set(want[3]).size).toBe(want[3].length); // the penalty of 1e6 forbids repeats (the masks are live)

    const free = engine.pool.freeTokens();
    const batcher = new Batcher(engine, { stepsPerReadback: 2, maxRows: 64 });
    const got: Promise<number[]>[] = [];
    for (let i = 0; i < 5; i++) {
      const r = request(sampled[i].spec, extra(i));
      got.push(collect(batcher.decode(r), r));
    }
    while (batcher.counters.steps < 3) await new Promise((r) => setTimeout(r, 1));
    for (let i = 5; i < sampled.length; i++) {
      const r = request(sampled[i].spec, extra(i));
      got.push(collect(batcher.decode(r), r));
      await new Promise((r) => setTimeout(r, 5));
    }
    const res = await Promise.all(got);
    res.forEach((r, i) => expect(r, `request ${i} (${sampled[i].spec.kind}, ${JSON.stringify(sampled[i].sampling)})`).toEqual(want[i]));
    expect(batcher.counters.widest).toBeGreaterThanOrEqual(3); // sampled in banks of several rows
    expect(batcher.counters.cohortsRecorded).toBeGreaterThanOrEqual(4); // rows moved between cohorts
    expect(batcher.size).toBe(0);
    expect(engine.pool.freeTokens()).toBe(free);
  });

  it("a row with NaN logits fails only its own sequence; the others in its bank decode on", async () => {
    // one request's context gets a NaN value once its first token is out: from then on its APE row's
    // logits are NaN (refused in the bank), while the sequential rows beside it do not attend that context
    const dev = model.gpu.device;
    const bad = await encodeContexts(engine, prefix, [Uint32Array.from(ids(6))]);
    const at = engine.pool.blockBytes(bad[0]).offset;
    const original = await readBuffer(dev, engine.pool.v[0], cfg.headDim * 4, at);
    const saved = ctx;
    try {
      ctx = [bad[0], ...saved];
      const badSpec: Spec = { kind: "ape", prompt: ids(3), contexts: 1, maxTokens: 8 };
      const okSpecs: Spec[] = [{ kind: "sequential", prompt: ids(4), maxTokens: 8 }, { kind: "sequential", prompt: ids(3), maxTokens: 7 }];
      const okExtra = [{ sampling: { temperature: 1.1, seed: 5 } }, {}];
      const badWant = await alone(badSpec, { sampling: { temperature: 1, seed: 1 } });
      const want = [await alone(okSpecs[0], okExtra[0]), await alone(okSpecs[1], okExtra[1])];
      const batcher = new Batcher(engine, { stepsPerReadback: 2, maxRows: 64 });
      const badReq = request(badSpec, { sampling: { temperature: 1, seed: 1 } });
      const badRun = (async () => {
        const out: number[] = [];
        try {
          for await (const c of batcher.decode(badReq)) {
            if (out.length === 0) dev.queue.writeBuffer(engine.pool.v[0], at, new Float32Array(cfg.headDim).fill(NaN));
            out.push(...c);
          }
          return { out, error: undefined as unknown };
        } catch (error) {
          return { out, error };
        } finally {
          engine.pool.release(badReq.block);
        }
      })();
      const okReqs = okSpecs.map((s, i) => request(s, okExtra[i]));
      const okRuns = okReqs.map((r) => collect(batcher.decode(r), r));
      const { out, error } = await badRun;
      expect(error).toMatchObject({ code: "E_NON_FINITE" });
      expect(out.length).toBeGreaterThanOrEqual(1);
      expect(out).toEqual(badWant.slice(0, out.length)); // its tokens until the NaN were its own
      expect(await Promise.all(okRuns)).toEqual(want);
      expect(batcher.counters.widest).toBe(3); // the refused row shared the bank with the others
    } finally {
      ctx = saved;
      dev.queue.writeBuffer(engine.pool.v[0], at, original);
      engine.pool.release(bad[0]);
    }
  });

  it("over a long context (split-K decode attention, rows with lists of different lengths) batched equals alone", async () => {
    // CPU adapters take the split-K decode kernels from 1024 keys (GPUs from 512): one 1100-token context
    const long = await encodeContexts(engine, prefix, [Uint32Array.from(ids(1100))]);
    try {
      const saved = ctx;
      ctx = [long[0], ...saved];
      const mix: Spec[] = [
        { kind: "ape", prompt: ids(3), contexts: 1, maxTokens: 5 },
        { kind: "ape", prompt: ids(2), contexts: 3, maxTokens: 4 },
        { kind: "sequential", prompt: ids(5), maxTokens: 5 },
      ];
      const want: number[][] = [];
      for (const s of mix) want.push(await alone(s));
      const batcher = new Batcher(engine, { stepsPerReadback: 2, maxRows: 8 });
      const got = await Promise.all(mix.map((s) => {
        const r = request(s);
        return collect(batcher.decode(r), r);
      }));
      ctx = saved;
      got.forEach((g, i) => expect(g, `request ${i}`).toEqual(want[i]));
      expect(batcher.counters.widest).toBe(3);
      expect(model.kernels.has("attention_decode_keys") || model.kernels.has("attention_decode")).toBe(true); // the path it is about
    } finally {
      engine.pool.release(long[0]);
    }
  });

  it("a stop id, an abort and a consumer that stops early end only their own sequence", async () => {
    const base = { kind: "sequential" as const, prompt: ids(5), maxTokens: 10 };
    const free = await alone(base);
    const eos = free[4];
    const other = { kind: "ape" as const, prompt: ids(3), contexts: 2, maxTokens: 12 };
    const otherWant = await alone(other);
    const batcher = new Batcher(engine, { stepsPerReadback: 2, maxRows: 64 });
    const stopReq = request(base, { stopIds: [eos] });
    const ac = new AbortController();
    const abortReq = request(base, { signal: ac.signal });
    const earlyReq = request(base);
    const otherReq = request(other);
    const stopped = collect(batcher.decode(stopReq), stopReq);
    const aborted = (async () => {
      const out: number[] = [];
      try {
        for await (const c of batcher.decode(abortReq)) {
          out.push(...c);
          if (out.length >= 2) ac.abort();
        }
      } finally {
        engine.pool.release(abortReq.block);
      }
      return out;
    })();
    const early = (async () => {
      const out: number[] = [];
      try {
        for await (const c of batcher.decode(earlyReq)) {
          out.push(...c);
          if (out.length >= 3) break;
        }
      } finally {
        engine.pool.release(earlyReq.block);
      }
      return out;
    })();
    const rest = collect(batcher.decode(otherReq), otherReq);
    const abortedError = aborted.then(() => undefined, (e) => e);
    expect(await stopped).toEqual(free.slice(0, free.indexOf(eos) + 1));
    expect(await abortedError).toMatchObject({ code: "E_ABORTED" });
    expect((await early).slice(0, 3)).toEqual(free.slice(0, 3));
    expect(await rest).toEqual(otherWant);
    expect(batcher.size).toBe(0);
  });

  it("close() ends live sequences with E_CLOSED and refuses new ones", async () => {
    const batcher = new Batcher(engine, { stepsPerReadback: 1, maxRows: 64 });
    const r = request({ kind: "sequential", prompt: ids(4), maxTokens: 40 });
    const gen = batcher.decode(r);
    const first = await gen.next();
    expect(first.done).toBe(false);
    await batcher.close();
    await expect(gen.next()).rejects.toMatchObject({ code: "E_CLOSED" });
    engine.pool.release(r.block);
    const r2 = request({ kind: "sequential", prompt: ids(4), maxTokens: 4 });
    await expect(batcher.decode(r2).next()).rejects.toMatchObject({ code: "E_CLOSED" });
    engine.pool.release(r2.block);
    expect(batcher.size).toBe(0);
  });
});
