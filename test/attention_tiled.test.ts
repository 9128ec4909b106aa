// Tiled attention (shaders/attention_tiled*.wgsl, src/engine/attention_tiled.ts; split-K partials merged
// by attention_combine.wgsl) against float64 references: (1) the kernel alone over hand-made row groups
// and block lists (keys/values exactly representable in f16, so f32 and f16 pools are checked to f32
// rounding): causal prefill across many key tiles, batched context encoding with many groups of odd
// sizes (tiles must not cross groups), an APE-like query over hundreds of blocks with split-K, sliding
// windows, rows that see nothing; GQA groups of 1, 2, 4, 7, 8 and head_dim 16/32/64. (2) Whole models
// through the engine against test/reference/cpu_model.ts: a sequential prefill of a few thousand tokens,
// APE with many odd-sized contexts and a many-row query, APE over hundreds of contexts with split-K.
import { afterAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import type { ModelConfig } from "../src/model/config.ts";
import type { KvDtype } from "../src/engine/kv_pool.ts";
import { Program } from "../src/engine/program.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { recordAttention } from "../src/engine/attention.ts";
import { chooseSplits, recordTiledAttention, rowsShape, rowsWorkgroupBytes, type TiledKernel, tiledKernel, tiledPipelineName, tiledShape, tiledWorkgroupBytes, tileTable } from "../src/engine/attention_tiled.ts";
import { Engine } from "../src/engine/engine.ts";
import { modeLogits, sequentialLogits } from "../src/ape/ape.ts";
import { runtimeName } from "../src/runtime.ts";
import { attentionModel, type BlockSpec, expectClose, type GroupSpec, KvCase } from "./reference/attention_case.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, relError, rng, tinyConfig } from "./reference/random_model.ts";

/** Query rows in groups (each group's rows attend the same block list), as the tiled kernel takes them. */
class TiledCase extends KvCase {
  constructor(model: Model, dtype: KvDtype, specs: BlockSpec[], readonly groups: GroupSpec[]) {
    super(model, dtype, specs, groups.reduce((n, g) => n + g.pos.length, 0), 11);
  }

  rowGroups(): GroupSpec[] {
    return this.groups;
  }

  /** Runs the tiled kernel (forced split count, or its own choice; or recordAttention's kernel choice). */
  async run(temperature: number, how: { splits?: number; viaChoice?: boolean; kernel?: TiledKernel } = {}) {
    const bufs = this.buffers();
    const prog = new Program(this.model.gpu.device);
    try {
      const call = { layer: 0, ...bufs, temperature, rows: this.rowCount, lists: this.lists() };
      let splits = 0;
      if (how.viaChoice) recordAttention(prog, this.model, this.pool, call);
      else splits = recordTiledAttention(prog, this.model, this.pool, call, { splits: how.splits, kernel: how.kernel });
      return { splits, ...(await this.submit(prog, bufs)) };
    } finally {
      prog.destroy();
      for (const b of Object.values(bufs)) b.destroy();
    }
  }

  /** Runs and checks against the float64 reference; returns the split count used. */
  async check(temperature = 1, how: { splits?: number; viaChoice?: boolean; kernel?: TiledKernel } = {}): Promise<number> {
    const got = await this.run(temperature, how);
    expectClose(got, this.reference(temperature));
    return got.splits;
  }
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

// One KV dtype per head_dim except 64 (each (head_dim, dtype) pair is a pipeline to compile: seconds on lavapipe)
const BASE_SHAPES = [
  { heads: 4, kvHeads: 4, headDim: 16, dtype: "f16" }, // GQA group 1
  { heads: 4, kvHeads: 2, headDim: 32, dtype: "f32" }, // 2
  { heads: 8, kvHeads: 2, headDim: 64, dtype: "f32" }, // 4 (the 1B shape's group and head_dim)
  { heads: 8, kvHeads: 2, headDim: 64, dtype: "f16" },
  { heads: 14, kvHeads: 2, headDim: 16, dtype: "f16" }, // 7: tiles cut rows between their heads
  { heads: 8, kvHeads: 1, headDim: 32, dtype: "f32" }, // 8
] as const;
// both kernels: rows (the engine's choice for head_dim <= 64) on every shape; blocks (the engine's for
// larger head dims) on a few, and on head_dim 128, which only it takes
const KERNELS: TiledKernel[] = ["rows", "blocks"];
const SHAPES = [
  ...BASE_SHAPES.map((s) => ({ ...s, kernel: "rows" as TiledKernel })),
  ...[BASE_SHAPES[1], BASE_SHAPES[3], BASE_SHAPES[4], { heads: 4, kvHeads: 2, headDim: 128, dtype: "f32" } as const]
    .map((s) => ({ ...s, kernel: "blocks" as TiledKernel })),
];

describe(`tiled attention kernel vs float64 on ${runtimeName()}`, () => {
  const models = new Map<string, Model>();
  const modelFor = async (over: Partial<ModelConfig>) => {
    const key = JSON.stringify(over);
    if (!models.has(key)) models.set(key, await attentionModel(over, "t"));
    return models.get(key)!;
  };
  afterAll(() => { for (const m of models.values()) m.destroy(); });

  it.each(SHAPES)("causal prefill of 300 rows after a 37-token prefix: $heads heads / $kvHeads kv heads, head_dim $headDim, $dtype KV, $kernel kernel", async ({ dtype, kernel, ...shape }) => {
    const model = await modelFor(shape);
    // the prefix block, then the sequence's own block (capacity past its tokens)
    const t = new TiledCase(model, dtype, [{ capacity: 37, tokens: 37, firstPos: 0 }, { capacity: 320, tokens: 300, firstPos: 37 }], [
      { pos: range(37, 300), list: [0, 1] },
    ]);
    try {
      expect(await t.check(0.9, { splits: 1, kernel })).toBe(1);
      expect(await t.check(1, { splits: 3, kernel })).toBe(3);
    } finally {
      t.destroy();
    }
  }, 400_000); // kernel variants compiled per shape: minutes on a fresh machine's cold lavapipe cache

  it.each(SHAPES)("context encoding, 23 groups of odd sizes: $heads heads / $kvHeads kv heads, head_dim $headDim, $dtype KV, $kernel kernel", async ({ dtype, kernel, ...shape }) => {
    const model = await modelFor(shape);
    const sizes = [1, 3, 17, 40, 5, 2, 33, 1, 9, 64, 65, 7, 1, 30, 11, 4, 19, 2, 1, 50, 6, 13, 3];
    const P = 5;
    const specs: BlockSpec[] = [{ capacity: P, tokens: P, firstPos: 0 }, ...sizes.map((n) => ({ capacity: n + 2, tokens: n, firstPos: P }))];
    // each context's rows attend [prefix, itself] at positions P.. (every context starts at P)
    const groups: GroupSpec[] = sizes.map((n, i) => ({ pos: range(P, n), list: [0, i + 1] }));
    const t = new TiledCase(model, dtype, specs, groups);
    try {
      await t.check(1, { splits: 1, kernel });
      await t.check(1, { splits: 2, kernel });
    } finally {
      t.destroy();
    }
  });

  it.each(SHAPES)("an APE query of 12 rows over 260 context blocks, split-K chosen: $heads heads / $kvHeads kv heads, head_dim $headDim, $dtype KV, $kernel kernel", async ({ dtype, kernel, ...shape }) => {
    const model = await modelFor(shape);
    const rand = rng(3);
    const specs: BlockSpec[] = Array.from({ length: 260 }, (_, i) => {
      const n = i % 23 === 0 ? 0 : 1 + Math.floor(rand() * 40); // some empty blocks
      return { capacity: Math.max(1, n), tokens: n, firstPos: 9 };
    });
    const t = new TiledCase(model, dtype, specs, [{ pos: range(60, 12), list: specs.map((_, i) => i) }]);
    try {
      expect(await t.check(0.6, { kernel })).toBeGreaterThan(1); // few tiles, many keys: the key range is split
      await t.check(0.6, { splits: 1, kernel });
      await t.check(0.6, { splits: 300, kernel }); // more splits than key tiles: some see nothing
    } finally {
      t.destroy();
    }
  });

  // GPUs compile the kernels with their //#unroll loops unrolled in the source (src/gpu/unroll.ts: Deno's wgpu would
  // leave the rows kernel's register arrays in local memory); CPU adapters do not, so this compiles the unrolled text here
  // (head_dim 16: 4 quads per vector, so 4 copies per unrolled quad loop; at 64 the unrolled kernel takes lavapipe minutes
  // to compile; `bench attention --check` compares the 1B shape's unrolled kernel with float64 on the H200)
  // (f32 KV only: the half-float kernel's body is the same text, and its unrolled compile costs lavapipe another 90 s)
  it.each(["f32"] as const)("the rows kernel with its loops unrolled, as GPUs compile it: causal prefill, 4 heads / 2 kv heads, head_dim 16, %s KV", async (dtype) => {
    const base = await modelFor({ heads: 4, kvHeads: 2, headDim: 16 });
    const model = { ...base, kernels: new Kernels(base.gpu.device, base.gpu.hasF16, true) };
    const t = new TiledCase(model, dtype, [{ capacity: 37, tokens: 37, firstPos: 0 }, { capacity: 320, tokens: 300, firstPos: 37 }], [
      { pos: range(37, 300), list: [0, 1] },
    ]);
    try {
      expect(await t.check(0.9, { splits: 1, kernel: "rows" })).toBe(1);
      expect(await t.check(1, { splits: 3, kernel: "rows" })).toBe(3);
      expect(model.kernels.has(tiledPipelineName("rows", dtype))).toBe(true);
    } finally {
      t.destroy();
    }
  }, 400_000);

  it("sliding windows: causal prefill and a query whose window cuts through blocks", async () => {
    const cases = [
      { window: 50, over: { heads: 8, kvHeads: 2, headDim: 64 }, dtypes: ["f32", "f16"] },
      { window: 7, over: { heads: 4, kvHeads: 2, headDim: 16 }, dtypes: ["f16"] },
      { window: 129, over: { heads: 6, kvHeads: 2, headDim: 32 }, dtypes: ["f32"] },
    ] as const;
    for (const { window, over, dtypes } of cases) {
      const model = await modelFor({ ...over, slidingWindow: window });
      for (const dtype of dtypes) {
        const t = new TiledCase(model, dtype, [
          { capacity: 200, tokens: 200, firstPos: 0 }, { capacity: 100, tokens: 90, firstPos: 200 }, { capacity: 64, tokens: 64, firstPos: 290 },
        ], [
          { pos: range(0, 200), list: [0] },
          { pos: range(300, 20), list: [0, 1, 2] },
        ]);
        try {
          for (const kernel of KERNELS) {
            await t.check(1, { splits: 1, kernel });
            await t.check(1, { splits: 4, kernel });
          }
        } finally {
          t.destroy();
        }
      }
    }
  });

  it("rows that see nothing: an empty list, keys all after the query, empty blocks", async () => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 64 });
    const specs: BlockSpec[] = [{ capacity: 40, tokens: 40, firstPos: 100 }, { capacity: 16, tokens: 0, firstPos: 0 }, { capacity: 30, tokens: 30, firstPos: 0 }];
    const groups: GroupSpec[] = [
      { pos: range(0, 12), list: [] }, // no blocks
      { pos: range(50, 20), list: [0, 1] }, // every key after the rows
      { pos: range(90, 15), list: [1, 0, 2] }, // rows 90..99 see block 2 only, 100.. also part of block 0
    ];
    for (const dtype of ["f32", "f16"] as const) {
      const t = new TiledCase(model, dtype, specs, groups);
      try {
        for (const kernel of KERNELS) for (const splits of [1, 2, 7]) await t.check(0.7, { splits, kernel });
      } finally {
        t.destroy();
      }
    }
  });

  it("recordAttention takes the tiled kernel for many rows; tiles never cross groups; shapes fit the device", async () => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 64 });
    const t = new TiledCase(model, "f16", [{ capacity: 100, tokens: 100, firstPos: 0 }], [{ pos: range(0, 100), list: [0] }]);
    try {
      await t.check(1, { viaChoice: true });
      expect(model.kernels.has(tiledPipelineName(tiledKernel(model.gpu, 64)!, "f16"))).toBe(true);
    } finally {
      t.destroy();
    }
    // groups of 3, 20 and 1 rows, group size 4, 16 vectors per tile (listed last tile first)
    expect(Array.from(tileTable([{ rows: 3, blocks: [] }, { rows: 20, blocks: [] }, { rows: 1, blocks: [] }], 4, 16))).toEqual([
      92, 4, 76, 16, 60, 16, 44, 16, 28, 16, 12, 16, 0, 12,
    ]);
    const gpu = model.gpu;
    for (const hd of [16, 32, 64, 128, 256]) {
      const s = tiledShape(gpu, hd); // head_dim 256 may fit no tile: recordAttention keeps the per-row kernel
      if (hd <= 128) expect(s).toBeDefined();
      if (s) expect(tiledWorkgroupBytes(hd, s)).toBeLessThanOrEqual(gpu.limits.maxComputeWorkgroupStorageSize);
    }
    // the H200 (48 KiB) gets 64 query vectors x 32 keys at head_dim 64; a 256-row APE query over 128K keys
    // (1B shape: 16 tiles x 8 kv heads) is split to fill 132 SMs
    const h200 = { ...gpu, isCpu: false, limits: { ...gpu.limits, maxComputeWorkgroupStorageSize: 49152 } };
    expect(tiledShape(h200, 64)).toEqual({ tq: 16, tk: 8 });
    expect(tiledShape(h200, 128)).toEqual({ tq: 8, tk: 8 }); // 16 output quads per thread, not 32
    // the rows kernel: head_dim <= 64 only; 128 query vectors x 16 keys (the H200's fastest, measured)
    expect(rowsShape(h200, 64)).toEqual({ nt: 128, bc: 16 });
    expect(rowsShape(h200, 128)).toBeUndefined();
    expect(tiledKernel(h200, 64)).toBe("rows"); // GPUs: rows where it applies; CPU adapters: blocks
    expect(tiledKernel({ ...h200, isCpu: true }, 64)).toBe("blocks");
    expect(tiledKernel(h200, 128)).toBe("blocks");
    for (const hd of [8, 16, 32, 64]) {
      const s = rowsShape(gpu, hd);
      expect(s).toBeDefined();
      expect(rowsWorkgroupBytes(hd, s!)).toBeLessThanOrEqual(gpu.limits.maxComputeWorkgroupStorageSize);
    }
    const splits = chooseSplits({ workgroups: 16 * 8, keyTiles: 131072 / 32, isCpu: false, maxSplitsByMemory: 64 });
    expect(splits * 16 * 8).toBeGreaterThanOrEqual(2048);
    expect(chooseSplits({ workgroups: 2048, keyTiles: 4096, isCpu: false, maxSplitsByMemory: 64 })).toBe(1); // a prefill chunk
  });
});

describe(`tiled attention in whole models vs the float64 reference on ${runtimeName()}`, () => {
  it("sequential prefill of 2500 tokens: logits at every 50th position and the last (f32 KV)", async () => {
    const cfg = tinyConfig();
    const { tensors, ref: w } = randomModel(cfg, 5);
    const model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "p" });
    const engine = new Engine(model, { kvBudgetBytes: 8 << 20 });
    try {
      const rand = rng(17);
      const ids = Array.from({ length: 2500 }, () => Math.floor(rand() * cfg.vocabSize));
      const got = await sequentialLogits(engine, Uint32Array.from(ids), true);
      expect(model.kernels.has(tiledPipelineName(tiledKernel(model.gpu, cfg.headDim)!, "f32"))).toBe(true);
      const want = new CpuReference(cfg, w).sequential(ids);
      for (let p = 0; p < ids.length; p += p === 2450 ? 49 : 50) {
        expect(relError(got.subarray(p * cfg.vocabSize, (p + 1) * cfg.vocabSize), want[p]), `position ${p}`).toBeLessThan(1e-4);
      }
    } finally {
      engine.destroy();
      model.destroy();
    }
  });

  const variants = [
    { name: "GQA 2, head_dim 8, f32 KV", cfg: tinyConfig(), kv: "f32", tol: 1e-4 },
    { name: "GQA 1, head_dim 32, f32 KV", cfg: tinyConfig({ heads: 2, kvHeads: 2, headDim: 32 }), kv: "f32", tol: 1e-4 },
    { name: "GQA 4, head_dim 64, f16 KV", cfg: tinyConfig({ heads: 4, kvHeads: 1, headDim: 64 }), kv: "f16", tol: 3e-3 }, // KV rounded to f16
  ] as const;
  it.each(variants)("APE: 31 odd-sized contexts encoded in one batch, a 25-token query: $name", async ({ cfg, kv, tol }) => {
    const { tensors, ref: w } = randomModel(cfg, 8);
    const model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "c" });
    const engine = new Engine(model, { kvBudgetBytes: 8 << 20, kvDtype: kv });
    try {
      const rand = rng(23);
      const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
      const prefix = ids(11), contexts = Array.from({ length: 31 }, (_, i) => ids(1 + (i * 13) % 47)), query = ids(25);
      const got = await modeLogits(engine, "ape", {
        prefix: Uint32Array.from(prefix), contexts: contexts.map((c) => Uint32Array.from(c)), query: Uint32Array.from(query), temperature: 0.8, scale: 0.9,
      });
      expect(model.kernels.has(tiledPipelineName(tiledKernel(model.gpu, cfg.headDim)!, kv))).toBe(true);
      expect(relError(got, new CpuReference(cfg, w).ape(prefix, contexts, query, 0.8, 0.9))).toBeLessThan(tol);
    } finally {
      engine.destroy();
      model.destroy();
    }
  });

  it("APE over 300 contexts with a 12-token query: the query's context attention is split over the keys", async () => {
    const cfg = tinyConfig();
    const { tensors, ref: w } = randomModel(cfg, 9);
    const model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "s" });
    const engine = new Engine(model, { kvBudgetBytes: 8 << 20 });
    try {
      const rand = rng(29);
      const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
      // every batch has more rows than the decode kernel takes: only the tiled kernel's splits need the combine
      const prefix = ids(10), contexts = Array.from({ length: 300 }, (_, i) => ids(9 + (i * 7) % 23)), query = ids(12);
      const got = await modeLogits(engine, "ape", {
        prefix: Uint32Array.from(prefix), contexts: contexts.map((c) => Uint32Array.from(c)), query: Uint32Array.from(query), temperature: 0.9, scale: 0.9,
      });
      expect(model.kernels.has(tiledPipelineName(tiledKernel(model.gpu, cfg.headDim)!, "f32")) && model.kernels.has("attention_combine")).toBe(true);
      expect(relError(got, new CpuReference(cfg, w).ape(prefix, contexts, query, 0.9, 0.9))).toBeLessThan(1e-4);
    } finally {
      engine.destroy();
      model.destroy();
    }
  });
});
