import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { decode } from "../src/engine/generate.ts";
import { encodeContexts, encodePrefix, sequentialLogits, startQuery } from "../src/ape/ape.ts";
import { runtimeName } from "../src/runtime.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, relError, rng, tinyConfig } from "./reference/random_model.ts";

function argmax(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

describe(`GPU decode loop on ${runtimeName()}`, () => {
  const cfg = tinyConfig({ vocabSize: 61 });
  let model: Model, engine: Engine, ref: CpuReference;
  const rand = rng(11);
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));

  beforeAll(async () => {
    const { tensors, ref: w } = randomModel(cfg, 5, 0.5);
    model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "g" });
    engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
    ref = new CpuReference(cfg, w);
  });
  afterAll(() => {
    engine?.destroy();
    model?.destroy();
  });

  async function run(prompt: number[], maxTokens: number, opts: Partial<Parameters<typeof decode>[1]> = {}) {
    const block = engine.pool.allocate(prompt.length + maxTokens, 0);
    try {
      const out: number[] = [];
      for await (const chunk of decode(engine, {
        prompt: Uint32Array.from(prompt), block, maxTokens, stepsPerReadback: 5,
        group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }), ...opts,
      })) out.push(...chunk);
      return out;
    } finally {
      engine.pool.release(block);
    }
  }

  it("greedy decoding reproduces the reference's tokens (several readback chunks)", async () => {
    const prompt = ids(6);
    const got = await run(prompt, 12);
    const seq = [...prompt];
    const want: number[] = [];
    for (let i = 0; i < 12; i++) {
      const logits = ref.sequential(seq);
      const t = argmax(logits[logits.length - 1]);
      want.push(t);
      seq.push(t);
    }
    expect(got).toEqual(want);
  });

  it("streamed recording (a submit after every layer while the rest is recorded) gives the same logits and tokens", async () => {
    const streamed = new Engine(model, { kvBudgetBytes: 4 << 20, layersPerSubmit: 1 });
    try {
      expect([engine.layersPerSubmit, streamed.layersPerSubmit]).toEqual([model.gpu.isCpu ? 0 : 4, 1]);
      const prompt = Uint32Array.from(ids(9));
      const whole = new Engine(model, { kvBudgetBytes: 4 << 20, layersPerSubmit: 0 });
      try {
        const want = await sequentialLogits(whole, prompt, true);
        expect(Array.from(await sequentialLogits(streamed, prompt, true))).toEqual(Array.from(want));
      } finally {
        whole.destroy();
      }
      const block = streamed.pool.allocate(prompt.length + 8, 0);
      const got: number[] = [];
      try {
        for await (const chunk of decode(streamed, {
          prompt, block, maxTokens: 8, stepsPerReadback: 3, group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }),
        })) got.push(...chunk);
      } finally {
        streamed.pool.release(block);
      }
      expect(got).toEqual(await run(Array.from(prompt), 8));
    } finally {
      streamed.destroy();
    }
  });

  it("stops right after an end-of-sequence id", async () => {
    const prompt = ids(4);
    const free = await run(prompt, 10);
    const eos = free[3];
    const got = await run(prompt, 10, { stopIds: [eos] });
    expect(got).toEqual(free.slice(0, free.indexOf(eos) + 1));
  });

  it("the first token comes out before any decode step is submitted (CPU adapters run work inside submit)", async () => {
    const queue = model.gpu.device.queue;
    const submit = queue.submit;
    let submits = 0;
    queue.submit = (buffers: Iterable<GPUCommandBuffer>) => (submits++, submit.call(queue, buffers));
    const prompt = ids(5);
    // submits before the first chunk: with maxTokens 12 the same as a 1-token decode (prefill and readback)
    const firstChunkSubmits = async (maxTokens: number) => {
      const block = engine.pool.allocate(prompt.length + maxTokens, 0);
      submits = 0;
      let at = -1, count = 0, first = 0;
      try {
        for await (const chunk of decode(engine, {
          prompt: Uint32Array.from(prompt), block, maxTokens, stepsPerReadback: 6, firstChunk: 1,
          group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }),
        })) {
          if (at < 0) (at = submits, first = chunk.length);
          count += chunk.length;
        }
      } finally {
        engine.pool.release(block);
      }
      return { at, first, count };
    };
    try {
      const one = await firstChunkSubmits(1);
      const twelve = await firstChunkSubmits(12);
      expect(one).toMatchObject({ first: 1, count: 1 });
      expect(twelve).toMatchObject({ first: 1, count: 12 });
      expect(twelve.at).toBe(one.at);
    } finally {
      queue.submit = submit;
    }
  });

  it("top-k = 1 sampling equals greedy; a seed reproduces a sampled run; top-k bounds the choices", async () => {
    const prompt = ids(5);
    const greedy = await run(prompt, 8);
    expect(await run(prompt, 8, { sampling: { temperature: 1.3, topK: 1, seed: 9 } })).toEqual(greedy);
    const a = await run(prompt, 16, { sampling: { temperature: 1.5, seed: 42 } });
    const b = await run(prompt, 16, { sampling: { temperature: 1.5, seed: 42 } });
    const c = await run(prompt, 16, { sampling: { temperature: 1.5, seed: 43 } });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    // with top-k = 3 the first token is always among the reference's 3 most likely
    const logits = ref.sequential(prompt);
    const last = Array.from(logits[logits.length - 1]);
    const top3 = last.map((v, i) => [v, i]).sort((x, y) => y[0] - x[0]).slice(0, 3).map((x) => x[1]);
    for (let s = 0; s < 6; s++) {
      const [first] = await run(prompt, 1, { sampling: { temperature: 5, topK: 3, seed: s } });
      expect(top3).toContain(first);
    }
  });

  it("a huge repetition penalty never repeats a prompt token greedily", async () => {
    const prompt = ids(8);
    const got = await run(prompt, 6, { sampling: { repetitionPenalty: 1e6 } });
    const seen = new Set(prompt);
    for (const t of got) {
      expect(seen.has(t)).toBe(false);
      seen.add(t);
    }
  });

  it("APE greedy decoding matches the formula at every step", async () => {
    const prefix = ids(3), contexts = [ids(7), ids(4), ids(9)], query = ids(3);
    const T = 0.8, S = 0.9, n = 6;
    const pre = await encodePrefix(engine, Uint32Array.from(prefix));
    const ctx = await encodeContexts(engine, pre, contexts.map((c) => Uint32Array.from(c)));
    const q = Uint32Array.from(query);
    const live = startQuery(engine, { prefix: pre, contexts: ctx, query: q, temperature: T, scale: S, reserve: n });
    const got: number[] = [];
    for await (const c of decode(engine, { prompt: q, block: live.block, group: live.group, temperature: T, scale: S, maxTokens: n, stepsPerReadback: 4 })) got.push(...c);
    for (const b of [live.block, ...ctx, pre.block!]) engine.pool.release(b);
    const seq = [...query];
    const want: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = argmax(ref.ape(prefix, contexts, seq, T, S));
      want.push(t);
      seq.push(t);
    }
    expect(got).toEqual(want);
  });
});

describe(`KV block transfer on ${runtimeName()}`, () => {
  it("a block read back and written elsewhere gives identical APE logits", async () => {
    const { readBlock, writeBlock } = await import("../src/engine/kv_transfer.ts");
    const { queryLogits } = await import("../src/ape/ape.ts");
    const cfg = tinyConfig();
    const { tensors } = randomModel(cfg, 8);
    const model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "x" });
    const engine = new Engine(model, { kvBudgetBytes: 1 << 20 });
    try {
      const pre = await encodePrefix(engine, Uint32Array.from([1, 2, 3]));
      const ctx = await encodeContexts(engine, pre, [Uint32Array.from([4, 5, 6, 7]), Uint32Array.from([8, 9])]);
      const query = Uint32Array.from([10, 11]);
      const before = await queryLogits(engine, { prefix: pre, contexts: ctx, query, temperature: 0.9, scale: 0.9 });
      const copies = [];
      for (const b of ctx) {
        const host = await readBlock(engine.pool, b);
        expect(host.k[0].length).toBe(cfg.kvHeads * b.tokens * cfg.headDim);
        const copy = engine.pool.allocate(b.tokens + 3, b.firstPos); // spare capacity: strided writes
        writeBlock(engine.pool, copy, host);
        copies.push(copy);
        engine.pool.release(b);
      }
      const after = await queryLogits(engine, { prefix: pre, contexts: copies, query, temperature: 0.9, scale: 0.9 });
      expect(Array.from(after)).toEqual(Array.from(before));
    } finally {
      engine.destroy();
      model.destroy();
    }
  });
});

describe(`context independence on ${runtimeName()}`, () => {
  it("a context encoded alone or inside a batch of others gives the same KV", async () => {
    const { readBlock } = await import("../src/engine/kv_transfer.ts");
    const cfg = tinyConfig();
    const { tensors } = randomModel(cfg, 31);
    const model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "i" });
    const engine = new Engine(model, { kvBudgetBytes: 1 << 20 });
    try {
      const pre = await encodePrefix(engine, Uint32Array.from([1, 2, 3, 4]));
      const target = Uint32Array.from([9, 8, 7, 6, 5, 4, 3]);
      const [alone] = await encodeContexts(engine, pre, [target]);
      const batch = await encodeContexts(engine, pre, [Uint32Array.from([11, 12]), target, Uint32Array.from([13, 14, 15, 16, 17, 18, 19, 20, 21])]);
      const a = await readBlock(engine.pool, alone), b = await readBlock(engine.pool, batch[1]);
      for (let l = 0; l < cfg.layers; l++) {
        expect(relError(b.k[l], a.k[l])).toBeLessThan(1e-6);
        expect(relError(b.v[l], a.v[l])).toBeLessThan(1e-6);
      }
      expect(batch[1].firstPos).toBe(4); // every context starts right after the prefix
      expect(batch[2].firstPos).toBe(4);
    } finally {
      engine.destroy();
      model.destroy();
    }
  });
});
