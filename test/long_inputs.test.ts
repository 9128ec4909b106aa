/**
 * Long inputs never give a silent wrong answer: inputs longer than one forward pass (maxBatchRows, or
 * the device's binding limit) run as chunked prefill over the same KV blocks and match the float64
 * reference; what cannot fit even one row per pass is refused with a CapacityError naming the sizes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gpu, getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { Engine } from "../src/engine/engine.ts";
import { decode } from "../src/engine/generate.ts";
import { encodeContexts, encodePrefix, modeLogits, queryLogits, sequentialLogits, startQuery } from "../src/ape/ape.ts";
import { CapacityError } from "../src/errors.ts";
import { runtimeName } from "../src/runtime.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, relError, rng, tinyConfig } from "./reference/random_model.ts";

function build(gpu: Gpu, cfg: ModelConfig, seed: number) {
  const { tensors, ref } = randomModel(cfg, seed);
  const model = buildModel(gpu, cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: `long${seed}` });
  return { model, ref: new CpuReference(cfg, ref) };
}

function argmax(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

/** Every position's logits against the reference (and never an all-zero row). */
function expectRows(got: Float32Array, want: Float64Array[], vocab: number, tol = 1e-4) {
  expect(got.length).toBe(want.length * vocab);
  let worst = 0;
  for (let p = 0; p < want.length; p++) {
    const row = got.subarray(p * vocab, (p + 1) * vocab);
    expect(row.some((v) => v !== 0), `row ${p} is all zeros`).toBe(true);
    worst = Math.max(worst, relError(row, want[p]));
  }
  expect(worst).toBeLessThan(tol);
}

describe(`long inputs on ${runtimeName()}`, () => {
  it("a sequential prefill whose scratch would overflow a binding runs in chunks: every position's logits match", async () => {
    const gpu = await getGpu();
    // a wide MLP: the gu scratch (rows * 2 * intermediate * 4 bytes) of the whole input outgrows one binding
    const cfg = tinyConfig({ hidden: 8, heads: 1, kvHeads: 1, headDim: 8, intermediate: 16384, layers: 1 });
    const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    const guRow = 2 * cfg.intermediate * 4;
    const n = Math.floor(limit / guRow) + 77;
    if (n > 4096) return; // a GPU with multi-GiB bindings: the CPU reference would take too long (CI runs lavapipe, 128 MiB)
    const { model, ref } = build(gpu, cfg, 31);
    const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
    try {
      expect(n * guRow).toBeGreaterThan(gpu.limits.maxStorageBufferBindingSize); // unchunked, WebGPU would reject the binding
      expect(engine.batchRows).toBeLessThan(n);
      expect(engine.batchRows).toBe(Math.floor(limit / guRow));
      const rand = rng(5);
      const ids = Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
      const got = await sequentialLogits(engine, Uint32Array.from(ids), true);
      expectRows(got, ref.sequential(ids), cfg.vocabSize);
      // forced into one pass, the oversized binding is refused before WebGPU sees it (naming buffer, size, limit)
      Object.defineProperty(engine, "batchRows", { value: n });
      const err = await sequentialLogits(engine, Uint32Array.from(ids)).catch((e) => e);
      expect(err).toBeInstanceOf(CapacityError);
      expect(err.message).toContain(`buffer 'gu' binds ${n * guRow} bytes`);
      expect(err.message).toContain(`maxStorageBufferBindingSize (${gpu.limits.maxStorageBufferBindingSize} bytes)`);
      expect(engine.pool.freeTokens()).toBe(engine.pool.capacity);
    } finally {
      engine.destroy();
      model.destroy();
    }
  });

  describe("chunked prefill with maxBatchRows 64", () => {
    const cfg = tinyConfig();
    let model: Model, ref: CpuReference, chunked: Engine, whole: Engine;
    const rand = rng(17);
    const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
    const u32 = (a: number[]) => Uint32Array.from(a);

    beforeAll(async () => {
      ({ model, ref } = build(await getGpu(), cfg, 13));
      chunked = new Engine(model, { kvBudgetBytes: 4 << 20, maxBatchRows: 64 });
      whole = new Engine(model, { kvBudgetBytes: 4 << 20 });
    });
    afterAll(() => {
      chunked?.destroy();
      whole?.destroy();
      model?.destroy();
    });

    it("a 2000-token sequential prompt: all positions match the reference and the unchunked run; the last-token call too", async () => {
      const seq = ids(2000);
      expect(chunked.batchRows).toBe(64);
      const got = await sequentialLogits(chunked, u32(seq), true);
      expectRows(got, ref.sequential(seq), cfg.vocabSize);
      const unchunked = await sequentialLogits(whole, u32(seq), true);
      expect(relError(got, unchunked)).toBeLessThan(1e-5);
      const last = await sequentialLogits(chunked, u32(seq));
      expect(relError(last, got.subarray(1999 * cfg.vocabSize))).toBeLessThan(1e-6);
      expect(chunked.pool.freeTokens()).toBe(chunked.pool.capacity);
    });

    it("contexts longer than maxBatchRows (mixed with short ones) encode in chunks and APE matches the formula", async () => {
      const prefix = ids(5), contexts = [ids(150), ids(20), ids(70), ids(3), ids(64)], query = ids(3);
      const got = await modeLogits(chunked, "ape", {
        prefix: u32(prefix), contexts: contexts.map(u32), query: u32(query), temperature: 0.8, scale: 0.9,
      });
      expect(relError(got, ref.ape(prefix, contexts, query, 0.8, 0.9))).toBeLessThan(1e-4);
    });

    it("a query longer than maxBatchRows runs in chunks over the cached contexts", async () => {
      const prefix = ids(4), contexts = [ids(30), ids(50)], query = ids(200);
      const pre = await encodePrefix(chunked, u32(prefix));
      const ctx = await encodeContexts(chunked, pre, contexts.map(u32));
      try {
        const got = await queryLogits(chunked, { prefix: pre, contexts: ctx, query: u32(query), temperature: 0.7, scale: 0.8 });
        expect(relError(got, ref.ape(prefix, contexts, query, 0.7, 0.8))).toBeLessThan(1e-4);
      } finally {
        for (const b of ctx) chunked.pool.release(b);
        chunked.pool.release(pre.block!);
      }
    });

    it("decode over a long prompt prefills in chunks, the last one sampling: tokens match the reference", async () => {
      const prompt = ids(300), n = 6;
      const block = chunked.pool.allocate(prompt.length + n, 0);
      const got: number[] = [];
      try {
        for await (const c of decode(chunked, {
          prompt: u32(prompt), block, maxTokens: n, stepsPerReadback: 3,
          group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }),
        })) got.push(...c);
      } finally {
        chunked.pool.release(block);
      }
      const seq = [...prompt], want: number[] = [];
      for (let i = 0; i < n; i++) {
        const logits = ref.sequential(seq);
        want.push(argmax(logits[logits.length - 1]));
        seq.push(want[i]);
      }
      expect(got).toEqual(want);
    });

    it("APE decode with a query longer than maxBatchRows: tokens match the reference", async () => {
      const prefix = ids(3), contexts = [ids(40), ids(90)], query = ids(130), n = 4;
      const pre = await encodePrefix(chunked, u32(prefix));
      const ctx = await encodeContexts(chunked, pre, contexts.map(u32));
      const live = startQuery(chunked, { prefix: pre, contexts: ctx, query: u32(query), temperature: 0.9, scale: 0.9, reserve: n });
      const got: number[] = [];
      try {
        for await (const c of decode(chunked, { prompt: u32(query), block: live.block, group: live.group, temperature: 0.9, scale: 0.9, maxTokens: n, stepsPerReadback: 2 })) {
          got.push(...c);
        }
      } finally {
        chunked.pool.release(live.block);
        for (const b of ctx) chunked.pool.release(b);
        chunked.pool.release(pre.block!);
      }
      const q = [...query], want: number[] = [];
      for (let i = 0; i < n; i++) {
        want.push(argmax(ref.ape(prefix, contexts, q, 0.9, 0.9)));
        q.push(want[i]);
      }
      expect(got).toEqual(want);
    });
  });

  describe("a device with a 64 KiB binding limit (the real device's limits shrunk for the engine)", () => {
    let small: Gpu;
    const LIMIT = 64 << 10;
    beforeAll(async () => {
      const gpu = await getGpu();
      small = { ...gpu, limits: { ...gpu.limits, maxStorageBufferBindingSize: LIMIT } };
    });

    it("logits of every position with a 4000-token vocabulary: 4 logit rows per pass, all rows match", async () => {
      const cfg = tinyConfig({ vocabSize: 4000 });
      const { model, ref } = build(small, cfg, 41);
      const engine = new Engine(model, { kvBudgetBytes: 1 << 20 });
      try {
        expect(engine.logitRowsPerPass).toBe(Math.floor(LIMIT / (4000 * 4)));
        const rand = rng(3);
        const seq = Array.from({ length: 37 }, () => Math.floor(rand() * cfg.vocabSize));
        expectRows(await sequentialLogits(engine, Uint32Array.from(seq), true), ref.sequential(seq), cfg.vocabSize);
        const last = await sequentialLogits(engine, Uint32Array.from(seq)); // one logit row: passes of batchRows
        expect(relError(last, ref.sequential(seq)[36])).toBeLessThan(1e-4);
      } finally {
        engine.destroy();
        model.destroy();
      }
    });

    it("refuses with CapacityError naming the sizes: a logits row over the limit, a batch row over the limit", async () => {
      const wideVocab = build(small, tinyConfig({ vocabSize: 16500 }), 43);
      const e1 = new Engine(wideVocab.model, { kvBudgetBytes: 1 << 20 });
      try {
        const err = await sequentialLogits(e1, Uint32Array.from([1, 2, 3])).catch((e) => e);
        expect(err).toBeInstanceOf(CapacityError);
        expect(err.message).toContain("66000 bytes");
        expect(err.message).toContain(`${LIMIT} bytes`);
        // without logits the same model still encodes (a prefix, a context)
        const pre = await encodePrefix(e1, Uint32Array.from([1, 2, 3]));
        expect(pre.block!.tokens).toBe(3);
        e1.pool.release(pre.block!);
      } finally {
        e1.destroy();
        wideVocab.model.destroy();
      }
      const wideMlp = build(small, tinyConfig({ intermediate: 8200 }), 47);
      const e2 = new Engine(wideMlp.model, { kvBudgetBytes: 1 << 20 });
      try {
        expect(e2.batchRows).toBe(0);
        const err = await sequentialLogits(e2, Uint32Array.from([1, 2])).catch((e) => e);
        expect(err).toBeInstanceOf(CapacityError);
        expect(err.message).toMatch(/'gu' buffer needs 65600 bytes/);
        expect(err.message).toContain(`${LIMIT} bytes`);
        expect(e2.pool.freeTokens()).toBe(e2.pool.capacity);
      } finally {
        e2.destroy();
        wideMlp.model.destroy();
      }
    });
  });
});
