// The row attention kernel (shaders/attention*.wgsl + include/attention_body.wgsl, recordRowAttention) alone
// against float64 references over hand-made block lists (random keys/values exactly representable in f16,
// so both KV dtypes are checked to f32 rounding): a workgroup per (row, kv head) serving several query heads
// of its GQA group (groups of 1, 4, 7 and 12: two workgroups of 6), head_dim 16/64/80/256, in the GPU shape
// (256 threads, chunks of up to 256 keys, 4 score lanes per key) and the CPU shape (64 threads, one lane per
// key); lists of several partly filled blocks, keys in several chunks, sliding windows, empty lists, rows
// that see nothing, more blocks than threads, several rows, and a recorded program replayed after growth.
import { afterAll, describe, expect, it } from "vitest";
import type { Model } from "../src/model/model.ts";
import type { ModelConfig } from "../src/model/config.ts";
import type { KvDtype } from "../src/engine/kv_pool.ts";
import { Program } from "../src/engine/program.ts";
import { recordAttention, recordRowAttention, rowAttentionBytes, rowAttentionShape } from "../src/engine/attention.ts";
import { runtimeName } from "../src/runtime.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { attentionModels, type BlockSpec, expectClose, type GroupSpec, KvCase } from "./reference/attention_case.ts";

/** Row groups, each with its own rows' positions and block list. */
class RowCase extends KvCase {
  constructor(model: Model, dtype: KvDtype, specs: BlockSpec[], readonly groups: GroupSpec[]) {
    super(model, dtype, specs, groups.reduce((n, g) => n + g.pos.length, 0), 11);
  }

  rowGroups(): GroupSpec[] {
    return this.groups;
  }

  record(temperature: number, gpuShape: boolean, viaChoice = false) {
    const dev = this.model.gpu.device;
    const bufs = this.buffers();
    const prog = new Program(dev);
    const model = { ...this.model, gpu: { ...this.model.gpu, isCpu: !gpuShape } };
    const call = { layer: 0, ...bufs, temperature, rows: this.rowCount, lists: this.lists() };
    if (viaChoice) recordAttention(prog, model, this.pool, call);
    else recordRowAttention(prog, model, this.pool, call);
    const run = async () => {
      const st = this.state();
      dev.queue.writeBuffer(bufs.rowInfo, 0, st.rowInfo);
      dev.queue.writeBuffer(bufs.blocks, 0, st.blocks);
      return await this.submit(prog, bufs);
    };
    const destroy = () => { prog.destroy(); for (const b of Object.values(bufs)) b.destroy(); };
    return { run, destroy, kernels: () => prog.steps.map((s) => s.pipeline.label) };
  }

  async check(temperature: number, gpuShape: boolean): Promise<void> {
    const r = this.record(temperature, gpuShape);
    try {
      expectClose(await r.run(), this.reference(temperature));
    } finally {
      r.destroy();
    }
  }
}

describe(`row attention kernel vs float64 on ${runtimeName()}`, () => {
  const models = attentionModels("r");
  const modelFor = (over: Partial<ModelConfig>) => models.get(over);
  afterAll(() => models.destroy());

  // a decode step: prefix, a context, the live block partly filled (163 visible keys: one GPU chunk, three CPU ones)
  const decodeList: BlockSpec[] = [
    { capacity: 40, tokens: 40, firstPos: 0 },
    { capacity: 57, tokens: 57, firstPos: 40 },
    { capacity: 100, tokens: 66, firstPos: 97 },
  ];

  it.each([
    { heads: 32, kvHeads: 8, headDim: 64, dtype: "f32" }, // Llama-3.2-1B's attention shape
    { heads: 32, kvHeads: 8, headDim: 64, dtype: "f16" },
    { heads: 12, kvHeads: 1, headDim: 16, dtype: "f16" }, // a group of 12: two workgroups of 6 heads
    { heads: 7, kvHeads: 7, headDim: 80, dtype: "f32" },  // no GQA; head_dim 80 (20 quads)
    { heads: 14, kvHeads: 2, headDim: 64, dtype: "f32" }, // a group of 7
    { heads: 4, kvHeads: 2, headDim: 256, dtype: "f16" }, // head_dim 256: 64-key GPU chunks
  ] as { heads: number; kvHeads: number; headDim: number; dtype: KvDtype }[])("$heads heads / $kvHeads kv heads, head_dim $headDim, $dtype KV: a decode row, a causal group, a row over 700 keys", async ({ dtype, ...shape }) => {
    const model = await modelFor(shape);
    const specs = [...decodeList, { capacity: 700, tokens: 700, firstPos: 0 }];
    const t = new RowCase(model, dtype, specs, [
      { pos: [97 + 65], list: [0, 1, 2] },          // the decode row (sees everything)
      { pos: [100, 101, 130], list: [0, 1, 2] },   // rows of the live block: causal
      { pos: [699], list: [3] },                    // several chunks in both shapes
    ]);
    try {
      await t.check(0.8, true);
      await t.check(1, false);
    } finally {
      t.destroy();
    }
  }, 400_000);

  // GPUs compile the kernel with its //#unroll loops unrolled (src/gpu/unroll.ts); CPU adapters do not, so this compiles
  // the unrolled text here, in the GPU shape (head_dim 16, a group of 4: a small unrolled body for lavapipe)
  it("the kernel with its loops unrolled, as GPUs compile it (GPU shape, f16 KV)", async () => {
    const base = await modelFor({ heads: 8, kvHeads: 2, headDim: 16 });
    const model = { ...base, kernels: new Kernels(base.gpu.device, base.gpu.hasF16, true) };
    const t = new RowCase(model, "f16", [...decodeList, { capacity: 700, tokens: 700, firstPos: 0 }], [
      { pos: [97 + 65], list: [0, 1, 2] },
      { pos: [699], list: [3] },
    ]);
    try {
      await t.check(0.8, true);
      expect(model.kernels.has("attention_f16kv")).toBe(true);
    } finally {
      t.destroy();
    }
  }, 400_000);

  it.each(["f32", "f16"] as const)("sliding windows cutting through blocks, empty lists, rows that see nothing, empty blocks (%s KV)", async (dtype) => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 64, slidingWindow: 70 });
    const specs: BlockSpec[] = [
      { capacity: 50, tokens: 50, firstPos: 0 },
      { capacity: 30, tokens: 0, firstPos: 50 },
      { capacity: 80, tokens: 77, firstPos: 50 },
      { capacity: 300, tokens: 290, firstPos: 1000 },
    ];
    const t = new RowCase(model, dtype, specs, [
      { pos: [126, 60, 10], list: [0, 1, 2] }, // window 70: the first row sees positions 57..126
      { pos: [5], list: [] },                  // an empty list
      { pos: [20], list: [3] },                // keys all after the query
      { pos: [1289, 1100], list: [3, 1] },     // a window inside one block; an empty block last
    ]);
    try {
      await t.check(1, true);
      await t.check(1.3, false);
    } finally {
      t.destroy();
    }
  }, 400_000);

  it("more blocks than threads (200 contexts of 2-5 tokens), in batches; a program replayed after the blocks grew", async () => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 16 });
    const specs: BlockSpec[] = [];
    let pos = 0;
    for (let i = 0; i < 200; i++) {
      const n = 2 + (i % 4);
      specs.push({ capacity: n + 1, tokens: n, firstPos: pos });
      pos += n + 1;
    }
    const all = specs.map((_, i) => i);
    for (const dtype of ["f32", "f16"] as const) {
      const t = new RowCase(model, dtype, specs, [{ pos: [pos], list: all }, { pos: [pos / 2], list: all.slice(0, 150) }]);
      try {
        await t.check(1, true);
        await t.check(1, false);
        // replay: every block gets one more token (its last slot)
        const r = t.record(1, true);
        try {
          expectClose(await r.run(), t.reference(1));
          for (const b of t.blocks) b.tokens++;
          expectClose(await r.run(), t.reference(1));
        } finally {
          r.destroy();
          for (const b of t.blocks) b.tokens--;
        }
      } finally {
        t.destroy();
      }
    }
  }, 400_000);

  it("shapes: a decode step over < 256 keys is one chunk on GPUs; every shape fits its device's workgroup memory", async () => {
    const model = await modelFor({ heads: 32, kvHeads: 8, headDim: 64 });
    const gpu = { isCpu: false, limits: { maxComputeWorkgroupStorageSize: 49152 } };
    expect(rowAttentionShape(gpu, 64, 32, 8)).toEqual({ NH: 4, chunks: 1, WG: 256, CH: 256, KP: 4 });
    expect(rowAttentionShape(gpu, 128, 32, 8)).toMatchObject({ NH: 4, WG: 256, CH: 128 });
    expect(rowAttentionShape(gpu, 64, 24, 2)).toMatchObject({ NH: 6, chunks: 2 });
    expect(rowAttentionShape({ ...gpu, isCpu: true }, 64, 32, 8)).toEqual({ NH: 4, chunks: 1, WG: 64, CH: 64, KP: 1 });
    for (const limit of [16384, 32768, 49152]) {
      for (const [hd, heads, kv] of [[64, 32, 8], [128, 32, 8], [256, 16, 2], [64, 64, 8], [80, 7, 7]]) {
        const s = rowAttentionShape({ ...gpu, limits: { maxComputeWorkgroupStorageSize: limit } }, hd, heads, kv);
        expect(rowAttentionBytes(hd, s), `${hd} ${heads}/${kv} at ${limit}`).toBeLessThanOrEqual(limit);
      }
    }
    // recordAttention's choice for a one-row decode step over a short list: the row kernel, one dispatch
    const t = new RowCase(model, "f32", decodeList, [{ pos: [162], list: [0, 1, 2] }]);
    try {
      const r = t.record(1, true, true);
      try {
        expectClose(await r.run(), t.reference(1));
        expect(r.kernels()).toEqual(["attention"]);
      } finally {
        r.destroy();
      }
    } finally {
      t.destroy();
    }
  }, 200_000);
});
