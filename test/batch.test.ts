// Continuous batching (src/engine/batch.ts): overlapping generations decode in shared batched steps
// and each gives exactly the tokens of the same request decoded alone (generate.ts decode, itself
// checked against the float64 reference in generate.test.ts); requests join and leave between steps.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { decode, type DecodeRequest } from "../src/engine/generate.ts";
import { Batcher } from "../src/engine/batch.ts";
import { encodeContexts, encodePrefix, type EncodedPrefix, startQuery } from "../src/ape/ape.ts";
import type { KvBlock } from "../src/engine/kv_pool.ts";
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
