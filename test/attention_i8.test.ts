// compute "int8"'s tiled attention (shaders/quantize_kv_i8.wgsl + attention_tiled_i8_f16kv.wgsl, src/engine/attention_i8.ts;
// split-K partials through attention_combine.wgsl) against float64, on adapters with int8 subgroup matrices (Dawn on
// NVIDIA; elsewhere skipped, saying so): an APE query over many odd-sized blocks (empty ones too) with split-K forced
// and chosen, a causal prefill after a prefix (masked tiles), context encoding in many groups of odd sizes (tiles never
// cross groups), a sliding window, peaked queries (large scores), rows that see nothing; P as one int8 and as two.
// The bound is the quantization's (attention_i8.ts): outputs within OUT_BOUND of the float64 result, log-sum-exps within
// LSE_BOUND; the engine's choice (usesInt8Attention) everywhere.
import { afterAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import type { Model } from "../src/model/model.ts";
import { Program } from "../src/engine/program.ts";
import { I8_ATTENTION_MIN_ROWS, I8_ATTENTION_READY, quantizeItems, recordI8Attention, usesInt8Attention } from "../src/engine/attention_i8.ts";
import { runtimeName } from "../src/runtime.ts";
import { attentionModels, type BlockSpec, type GroupSpec, KvCase, NEG } from "./reference/attention_case.ts";
import { rng } from "./reference/random_model.ts";

const gpu = await getGpu();
if (!gpu.hasInt8Matrix) console.warn(`int8 attention: the adapter (${gpu.description}) has no int8 subgroup matrices; the kernel is not tested`);

/** Largest output error against float64 (values |v| <= 1) and largest log-sum-exp error, measured on the H200. */
const OUT_BOUND = 1e-2, LSE_BOUND = 1e-2;

class I8Case extends KvCase {
  constructor(model: Model, specs: BlockSpec[], readonly groups: GroupSpec[], qScale = 1) {
    super(model, "f16", specs, groups.reduce((n, g) => n + g.pos.length, 0), 17);
    if (qScale !== 1) for (let i = 0; i < this.q.length; i++) this.q[i] *= qScale;
  }

  rowGroups(): GroupSpec[] {
    return this.groups;
  }

  async run(temperature: number, opts: { splits?: number; pSplit?: number }) {
    const bufs = this.buffers();
    const prog = new Program(this.model.gpu.device);
    try {
      const splits = recordI8Attention(prog, this.model, this.pool, { layer: 0, ...bufs, temperature, rows: this.rowCount, lists: this.lists() }, opts);
      return { splits, ...(await this.submit(prog, bufs)) };
    } finally {
      prog.destroy();
      for (const b of Object.values(bufs)) b.destroy();
    }
  }

  /** Runs and checks against float64 within the bounds; returns the split count and the errors. */
  async check(label: string, temperature: number, opts: { splits?: number; pSplit?: number } = {}) {
    const got = await this.run(temperature, opts);
    const want = this.reference(temperature);
    let outErr = 0, lseErr = 0;
    for (let i = 0; i < want.out.length; i++) outErr = Math.max(outErr, Math.abs(got.out[i] - want.out[i]) || Infinity);
    for (let i = 0; i < want.lse.length; i++) {
      if (want.lse[i] <= NEG) {
        expect(got.lse[i], `${label}: lse ${i} (nothing visible)`).toBeLessThanOrEqual(-1e29);
        continue;
      }
      lseErr = Math.max(lseErr, Math.abs(got.lse[i] - want.lse[i]) || Infinity);
    }
    console.log(`int8 attention, ${label} (splits ${got.splits}, P in ${opts.pSplit ?? 2} int8): out error ${outErr.toExponential(2)}, lse error ${lseErr.toExponential(2)}`);
    expect(outErr, `${label}: out`).toBeLessThan(OUT_BOUND);
    expect(lseErr, `${label}: lse`).toBeLessThan(LSE_BOUND);
    return { splits: got.splits, outErr, lseErr };
  }
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const SHAPE = { heads: 8, kvHeads: 2, headDim: 64 }; // the 1B shape's GQA group (4) and head_dim

describe(`int8 tiled attention vs float64 on ${runtimeName()}`, () => {
  const models = attentionModels("i8");
  afterAll(() => models.destroy());

  it("quantizeItems lists every listed block once, 64 keys per item (no GPU)", () => {
    const b = (id: number, base: number, capacity: number, tokens: number) => ({ id, base, capacity, tokens, firstPos: 0 });
    const prefix = b(1, 0, 16, 16), a = b(2, 16, 200, 130), e = b(3, 216, 4, 0);
    const items = quantizeItems([{ rows: 3, blocks: [prefix, a] }, { rows: 2, blocks: [prefix, e] }], 8);
    expect(Array.from(items)).toEqual([0, 16, 0, 16, 128, 200, 0, 64, 128, 200, 64, 64, 128, 200, 128, 2]);
  });

  it("the engine takes it only under compute int8, f16 KV, head_dim 64 and enough rows, on int8 adapters (once ready)", async () => {
    const model = await models.get(SHAPE);
    const t = new I8Case(model, [{ capacity: 8, tokens: 8, firstPos: 0 }], [{ pos: [8], list: [0] }]);
    try {
      const rows = { rows: I8_ATTENTION_MIN_ROWS };
      expect(usesInt8Attention(model, t.pool, rows)).toBe(false); // compute "f32"
      const int8 = { ...model, compute: "int8" } as Model;
      expect(usesInt8Attention(int8, t.pool, rows)).toBe(gpu.hasInt8Matrix && I8_ATTENTION_READY);
      expect(usesInt8Attention(int8, t.pool, { rows: I8_ATTENTION_MIN_ROWS - 1 })).toBe(false);
    } finally {
      t.destroy();
    }
  });

  it.skipIf(!gpu.hasInt8Matrix)("one key tile: 64 rows over one block of 64 keys, all visible", async () => {
    const model = await models.get(SHAPE);
    const t = new I8Case(model, [{ capacity: 64, tokens: 64, firstPos: 0 }], [{ pos: range(100, 64), list: [0] }]);
    try {
      await t.check("one tile", 1, { splits: 1 });
      await t.check("one tile, P in one int8", 1, { splits: 1, pSplit: 1 });
    } finally {
      t.destroy();
    }
  });

  it.skipIf(!gpu.hasInt8Matrix)("an APE query of 64 rows over 120 odd-sized blocks (some empty): split-K chosen, 1, 300; P in one int8 and two", async () => {
    const model = await models.get(SHAPE);
    const rand = rng(5);
    const specs: BlockSpec[] = Array.from({ length: 120 }, (_, i) => {
      const n = i % 17 === 0 ? 0 : 1 + Math.floor(rand() * 200);
      return { capacity: Math.max(1, n + (i % 3)), tokens: n, firstPos: 9 };
    });
    const t = new I8Case(model, specs, [{ pos: range(300, 64), list: specs.map((_, i) => i) }]);
    try {
      expect((await t.check("APE query, splits chosen", 0.9)).splits).toBeGreaterThan(1);
      await t.check("APE query, 1 split", 0.9, { splits: 1 });
      await t.check("APE query, 300 splits", 0.9, { splits: 300 }); // more splits than key tiles: some see nothing
      await t.check("APE query, P in one int8", 0.9, { pSplit: 1 });
    } finally {
      t.destroy();
    }
  });

  it.skipIf(!gpu.hasInt8Matrix)("causal prefill of 300 rows after a 37-token prefix, and peaked queries (scores x 12)", async () => {
    const model = await models.get(SHAPE);
    const specs: BlockSpec[] = [{ capacity: 37, tokens: 37, firstPos: 0 }, { capacity: 320, tokens: 300, firstPos: 37 }];
    for (const qScale of [1, 12]) {
      const t = new I8Case(model, specs, [{ pos: range(37, 300), list: [0, 1] }], qScale);
      try {
        await t.check(`causal prefill, q x ${qScale}, 1 split`, 1, { splits: 1 });
        await t.check(`causal prefill, q x ${qScale}, 3 splits`, 1, { splits: 3 });
        if (qScale > 1) await t.check(`causal prefill, q x ${qScale}, P in one int8`, 1, { splits: 1, pSplit: 1 });
      } finally {
        t.destroy();
      }
    }
  });

  it.skipIf(!gpu.hasInt8Matrix)("context encoding: 23 groups of odd sizes (tiles never cross groups), and rows that see nothing", async () => {
    const model = await models.get(SHAPE);
    const sizes = [1, 3, 17, 40, 5, 2, 33, 1, 9, 64, 65, 7, 1, 30, 11, 4, 19, 2, 1, 50, 6, 13, 3];
    const P = 5;
    const specs: BlockSpec[] = [{ capacity: P, tokens: P, firstPos: 0 }, ...sizes.map((n) => ({ capacity: n + 2, tokens: n, firstPos: P }))];
    const groups: GroupSpec[] = sizes.map((n, i) => ({ pos: range(P, n), list: [0, i + 1] }));
    groups.push({ pos: [0, 1, 2], list: [5] }); // positions before the block's first: nothing visible
    const t = new I8Case(model, specs, groups);
    try {
      await t.check("context encoding, 1 split", 1, { splits: 1 });
      await t.check("context encoding, 2 splits", 1, { splits: 2 });
    } finally {
      t.destroy();
    }
  });

  it.skipIf(!gpu.hasInt8Matrix)("a sliding window of 50 over a causal prefill of 200 rows", async () => {
    const model = await models.get({ ...SHAPE, slidingWindow: 50 });
    const t = new I8Case(model, [{ capacity: 210, tokens: 200, firstPos: 0 }], [{ pos: range(0, 200), list: [0] }]);
    try {
      await t.check("sliding window 50", 1, { splits: 1 });
      await t.check("sliding window 50, 4 splits", 1, { splits: 4 });
    } finally {
      t.destroy();
    }
  });
});
