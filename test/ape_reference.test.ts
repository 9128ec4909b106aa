import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { modeLogits, sequentialLogits } from "../src/ape/ape.ts";
import { runtimeName } from "../src/runtime.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, relError, rng, tinyConfig } from "./reference/random_model.ts";

const VARIANTS = [
  { name: "llama (GQA)", cfg: tinyConfig() },
  { name: "qwen2 (qkv bias, llama3 rope)", cfg: tinyConfig({ architecture: "qwen2", qkvBias: true, ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16 } }) },
  { name: "qwen3 (qk norm, linear rope, tied)", cfg: tinyConfig({ architecture: "qwen3", qkNorm: true, headDim: 16, ropeScaling: { type: "linear", factor: 2 }, tieEmbeddings: true }) },
  // head_dim 64 (as in 1B-class models): attention's unrolled key and value loops run in full
  { name: "llama, head_dim 64", cfg: tinyConfig({ headDim: 64 }) },
];

describe.each(VARIANTS)(`engine vs float64 reference on ${runtimeName()}: $name`, ({ cfg }) => {
  let model: Model, engine: Engine, ref: CpuReference;
  const rand = rng(7);
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));

  beforeAll(async () => {
    const { tensors, ref: w } = randomModel(cfg, 3);
    model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "t" });
    engine = new Engine(model, { kvBudgetBytes: 8 << 20 });
    ref = new CpuReference(cfg, w);
  });
  afterAll(() => {
    engine?.destroy();
    model?.destroy();
  });

  it("sequential logits match at every position", async () => {
    const seq = ids(70); // > 64 keys: crosses an attention tile
    const got = await sequentialLogits(engine, Uint32Array.from(seq), true);
    const want = ref.sequential(seq);
    for (let p = 0; p < seq.length; p++) {
      expect(relError(got.subarray(p * cfg.vocabSize, (p + 1) * cfg.vocabSize), want[p])).toBeLessThan(1e-4);
    }
  });

  const cases = [
    { prefix: 0, ctx: [5], query: 3, T: 0.9, S: 0.9 },
    { prefix: 1, ctx: [4, 9, 2], query: 1, T: 1, S: 1 },
    { prefix: 5, ctx: [1, 20, 7, 3, 11], query: 4, T: 0.5, S: 0.8 },
    { prefix: 6, ctx: Array.from({ length: 50 }, (_, i) => 1 + (i * 7) % 13), query: 2, T: 0.8, S: 1.0 },
    { prefix: 3, ctx: [70, 2], query: 5, T: 0.9, S: 0.9 },
  ];
  it.each(cases)("APE logits match the formula: P=$prefix, contexts=$ctx.length, T=$T, S=$S", async (c) => {
    const prefix = ids(c.prefix), contexts = c.ctx.map(ids), query = ids(c.query);
    const got = await modeLogits(engine, "ape", {
      prefix: Uint32Array.from(prefix), contexts: contexts.map((x) => Uint32Array.from(x)), query: Uint32Array.from(query),
      temperature: c.T, scale: c.S,
    });
    expect(relError(got, ref.ape(prefix, contexts, query, c.T, c.S))).toBeLessThan(1e-4);
  });

  it("APE with T = S = 1, one context and the query right after it equals sequential encoding", async () => {
    const prefix = ids(4), ctx = ids(9), query = ids(3);
    const ape = await modeLogits(engine, "ape", { prefix: Uint32Array.from(prefix), contexts: [Uint32Array.from(ctx)], query: Uint32Array.from(query), temperature: 1, scale: 1 });
    const seq = await modeLogits(engine, "sequential", { prefix: Uint32Array.from(prefix), contexts: [Uint32Array.from(ctx)], query: Uint32Array.from(query) });
    expect(relError(ape, seq)).toBeLessThan(1e-5);
  });

  it("parallel mode is APE with T = S = 1", async () => {
    const prefix = ids(2), contexts = [ids(5), ids(8)], query = ids(2);
    const parts = { prefix: Uint32Array.from(prefix), contexts: contexts.map((x) => Uint32Array.from(x)), query: Uint32Array.from(query) };
    const got = await modeLogits(engine, "parallel", parts);
    expect(relError(got, ref.ape(prefix, contexts, query, 1, 1))).toBeLessThan(1e-4);
    // and it differs from APE with T, S != 1 (the test would catch a merge that ignores T and S)
    const ape = await modeLogits(engine, "ape", { ...parts, temperature: 0.5, scale: 0.7 });
    expect(relError(ape, got)).toBeGreaterThan(1e-3);
  });
});

describe(`APE at many-shot scale on ${runtimeName()}`, () => {
  it("500 contexts of 64 tokens: batched encoding, one query walking all blocks, matches the formula", async () => {
    const cfg = tinyConfig();
    const { tensors, ref: w } = randomModel(cfg, 21);
    const model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "s" });
    const engine = new Engine(model, { kvBudgetBytes: 16 << 20 });
    try {
      const rand = rng(99);
      const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
      const prefix = ids(4), contexts = Array.from({ length: 500 }, () => ids(64)), query = ids(3);
      const got = await modeLogits(engine, "ape", {
        prefix: Uint32Array.from(prefix), contexts: contexts.map((c) => Uint32Array.from(c)), query: Uint32Array.from(query),
        temperature: 0.9, scale: 0.9,
      });
      expect(relError(got, new CpuReference(cfg, w).ape(prefix, contexts, query, 0.9, 0.9))).toBeLessThan(1e-4);
      expect(engine.pool.freeTokens()).toBe(engine.pool.capacity); // every block was released
    } finally {
      engine.destroy();
      model.destroy();
    }
  });
});
