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
import { I8_ATTENTION_MIN_ROWS, I8_ATTENTION_READY, I8_P_SPLIT, quantizeItems, recordI8Attention, usesInt8Attention } from "../src/engine/attention_i8.ts";
import { runtimeName } from "../src/runtime.ts";
import { attentionModels, type BlockSpec, type GroupSpec, KvCase, NEG } from "./reference/attention_case.ts";
import { randomModel, relError, rng, tinyConfig } from "./reference/random_model.ts";
import { roundEven } from "./reference/round_even.ts";
import { buildModel } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { sequentialLogits } from "../src/ape/ape.ts";
import { mkdirSync, writeFileSync } from "node:fs";
import process from "node:process";

const gpu = await getGpu();
if (!gpu.hasInt8Matrix) console.warn(`int8 attention: the adapter (${gpu.description}) has no int8 subgroup matrices; the kernel is not tested`);

/** Largest output error against float64 (values |v| <= 1) and largest log-sum-exp error, measured on the H200. */
const OUT_BOUND = 1e-2, LSE_BOUND = 1e-2;
/** The engine case's weights' scale and its bound on the logits' relative error against compute f32. */
const AMP = 0.1, ENGINE_BOUND = 5e-2;

class I8Case extends KvCase {
  constructor(model: Model, specs: BlockSpec[], readonly groups: GroupSpec[], readonly qScale = 1) {
    super(model, "f16", specs, groups.reduce((n, g) => n + g.pos.length, 0), 17);
    if (qScale !== 1) for (let i = 0; i < this.q.length; i++) this.q[i] *= qScale;
  }

  rowGroups(): GroupSpec[] {
    return this.groups;
  }

  async run(temperature: number, opts: { splits?: number; pSplit?: number; debug?: number; xchg?: number }) {
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

  /**
   * Runs and checks against float64 within the bounds, scaled by the queries' scale where it is above 1 (the scores'
   * quantization error grows linearly with their size); returns the split count and the errors.
   */
  async check(label: string, temperature: number, opts: { splits?: number; pSplit?: number; xchg?: number } = {}) {
    const got = await this.run(temperature, opts);
    const want = this.reference(temperature);
    let outErr = 0, lseErr = 0;
    const err = (a: number, b: number) => Number.isNaN(a - b) ? Infinity : Math.abs(a - b);
    for (let i = 0; i < want.out.length; i++) outErr = Math.max(outErr, err(got.out[i], want.out[i]));
    for (let i = 0; i < want.lse.length; i++) {
      if (want.lse[i] <= NEG) {
        expect(got.lse[i], `${label}: lse ${i} (nothing visible)`).toBeLessThanOrEqual(-1e29);
        continue;
      }
      lseErr = Math.max(lseErr, err(got.lse[i], want.lse[i]));
    }
    console.log(`int8 attention, ${label} (splits ${got.splits}, P in ${opts.pSplit ?? I8_P_SPLIT} int8): out error ${outErr.toExponential(2)}, lse error ${lseErr.toExponential(2)}`);
    const grow = Math.max(1, this.qScale);
    expect(outErr, `${label}: out`).toBeLessThan(OUT_BOUND * grow);
    expect(lseErr, `${label}: lse`).toBeLessThan(LSE_BOUND * grow);
    return { splits: got.splits, outErr, lseErr };
  }
}

/**
 * The CPU's int8 of one vector as the kernels quantize it (f32 arithmetic): q = clamp(round(x * (127 / max|x|))), and
 * per value 1 where x * (127 / max|x|) lies within 1e-3 of a half (the GPU may round it the other way), else 0.
 */
function q8(x: ArrayLike<number>): { q: Int8Array; nearHalf: Uint8Array } {
  let amax = 0;
  for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]));
  const inv = amax > 0 ? Math.fround(127 / amax) : 0;
  const y = Array.from(x, (v) => Math.fround(v * inv));
  return {
    q: Int8Array.from(y, (v) => Math.max(-127, Math.min(127, roundEven(v)))),
    nearHalf: Uint8Array.from(y, (v) => Math.abs(Math.abs(v - Math.trunc(v)) - 0.5) < 1e-3 ? 1 : 0),
  };
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
      await t.check("one tile, P in two int8", 1, { splits: 1, pSplit: 2 });
    } finally {
      t.destroy();
    }
  }, 60_000);

  it.skipIf(!gpu.hasInt8Matrix)("the kernel's stages against the CPU (one key tile): Q bytes (DEBUG 6), staged K bytes (5), i32 products (2)", async () => {
    const model = await models.get(SHAPE);
    const { heads, kvHeads, headDim: HD } = SHAPE, G = heads / kvHeads, rows = 64, keys = 64;
    const t = new I8Case(model, [{ capacity: keys, tokens: keys, firstPos: 0 }], [{ pos: range(100, rows), list: [0] }]);
    try {
      const qs = Array.from({ length: rows * heads }, (_, i) => q8(t.q.subarray(Math.floor(i / heads) * t.qkvDim + (i % heads) * HD, Math.floor(i / heads) * t.qkvDim + (i % heads + 1) * HD)));
      const ks = Array.from({ length: kvHeads * keys }, (_, i) => q8(t.k[0].subarray(i * HD, (i + 1) * HD)));
      // want: the CPU's value; slack: how far the GPU may be from it (its 127 / max|x| is not correctly rounded, so a
      // value within 1e-3 of a half may round either way: 1 for such a byte, |the other operand| for a product's term)
      const n = rows * heads * HD;
      const want = { 6: new Float64Array(n), 5: new Float64Array(n), 2: new Float64Array(n) };
      const slack = { 6: new Float64Array(n), 5: new Float64Array(n), 2: new Float64Array(n) };
      for (let row = 0; row < rows; row++) {
        for (let head = 0; head < heads; head++) {
          const kvh = Math.floor(head / G), o = (row * heads + head) * HD, qv = qs[row * heads + head];
          const lane = ((row * G + head % G) % 64) % 16; // DEBUG 5: lane r holds key r of the tile
          for (let d = 0; d < HD; d++) {
            want[6][o + d] = qv.q[d];
            slack[6][o + d] = qv.nearHalf[d];
            want[5][o + d] = ks[kvh * keys + lane].q[d];
            slack[5][o + d] = ks[kvh * keys + lane].nearHalf[d];
            const kv = ks[kvh * keys + d];
            let sum = 0, sl = 0;
            for (let e = 0; e < HD; e++) {
              sum += qv.q[e] * kv.q[e];
              sl += qv.nearHalf[e] * Math.abs(kv.q[e]) + kv.nearHalf[e] * Math.abs(qv.q[e]) + qv.nearHalf[e] * kv.nearHalf[e];
            }
            want[2][o + d] = sum;
            slack[2][o + d] = sl;
          }
        }
      }
      const dump = process.env.APEKIT_DUMP;
      if (dump) {
        mkdirSync(dump, { recursive: true });
        writeFileSync(`${dump}/i8_q.bin`, new Uint8Array(t.q.buffer.slice(0)));
        writeFileSync(`${dump}/i8_k.bin`, new Uint8Array(t.k[0].buffer.slice(0)));
        writeFileSync(`${dump}/i8_meta.json`, JSON.stringify({ rows, heads, kvHeads, HD, keys, qkvDim: t.qkvDim }));
      }
      const bad: string[] = [];
      for (const mode of [6, 5, 2] as const) {
        const got = (await t.run(1, { splits: 1, debug: mode })).out;
        if (dump) writeFileSync(`${dump}/i8_debug${mode}.bin`, new Uint8Array(got.buffer.slice(0)));
        let wrong = 0, slacked = 0, first = "";
        for (let i = 0; i < n; i++) {
          const d = Math.abs(got[i] - want[mode][i]);
          if (d > 0 && d <= slack[mode][i]) slacked++;
          else if (!(d <= slack[mode][i])) {
            wrong++;
            if (!first) first = `[row ${Math.floor(i / (heads * HD))}, head ${Math.floor(i / HD) % heads}, ${i % HD}]: ${got[i]} vs ${want[mode][i]}`;
          }
        }
        console.log(`int8 attention stages, DEBUG ${mode}: ${wrong} of ${n} wrong, ${slacked} off by a near-half's rounding${first ? `; first wrong ${first}` : ""}`);
        if (wrong > 0) bad.push(`DEBUG ${mode}: ${wrong} wrong, first ${first}`);
      }
      expect(bad).toEqual([]);
    } finally {
      t.destroy();
    }
  }, 60_000);

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
      await t.check("APE query, P in two int8", 0.9, { pSplit: 2 });
      await t.check("APE query, lanes exchange through workgroup memory", 0.9, { xchg: 0 });
    } finally {
      t.destroy();
    }
  }, 60_000);

  it.skipIf(!gpu.hasInt8Matrix)("causal prefill of 300 rows after a 37-token prefix, and peaked queries (scores x 12)", async () => {
    const model = await models.get(SHAPE);
    const specs: BlockSpec[] = [{ capacity: 37, tokens: 37, firstPos: 0 }, { capacity: 320, tokens: 300, firstPos: 37 }];
    for (const qScale of [1, 12]) {
      const t = new I8Case(model, specs, [{ pos: range(37, 300), list: [0, 1] }], qScale);
      try {
        await t.check(`causal prefill, q x ${qScale}, 1 split`, 1, { splits: 1 });
        await t.check(`causal prefill, q x ${qScale}, 3 splits`, 1, { splits: 3 });
        if (qScale > 1) await t.check(`causal prefill, q x ${qScale}, P in two int8`, 1, { splits: 1, pSplit: 2 });
        await t.check(`causal prefill, q x ${qScale}, lanes exchange through workgroup memory`, 1, { splits: 1, xchg: 0 });
      } finally {
        t.destroy();
      }
    }
  }, 60_000);

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
  }, 60_000);

  it.skipIf(!gpu.hasInt8Matrix)("a sliding window of 50 over a causal prefill of 200 rows", async () => {
    const model = await models.get({ ...SHAPE, slidingWindow: 50 });
    const t = new I8Case(model, [{ capacity: 210, tokens: 200, firstPos: 0 }], [{ pos: range(0, 200), list: [0] }]);
    try {
      await t.check("sliding window 50", 1, { splits: 1 });
      await t.check("sliding window 50, 4 splits", 1, { splits: 4 });
    } finally {
      t.destroy();
    }
  }, 60_000);

  it.skipIf(!gpu.hasInt8Matrix)("an engine prefill (head_dim 64, f16 KV) under compute int8 takes the int8 attention; what it adds to the logits' error", async () => {
    const cfg = tinyConfig({ vocabSize: 97, hidden: 256, intermediate: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64 });
    const { tensors } = randomModel(cfg, 3, AMP);
    const ids = Uint32Array.from({ length: 300 }, (_, i) => (i * 37 + 5) % cfg.vocabSize);
    const logitsOf = async (compute: "f32" | "int8", int8Attention: boolean) => {
      if (!int8Attention) process.env.APEKIT_INT8_ATTENTION = "0";
      const model = await buildModel(gpu, cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "i8-engine", compute, weightDtype: "f16" });
      const engine = new Engine(model, { kvDtype: "f16" });
      try {
        return { taken: usesInt8Attention(model, engine.pool, { rows: ids.length }), logits: await sequentialLogits(engine, ids, true) };
      } finally {
        delete process.env.APEKIT_INT8_ATTENTION;
        engine.destroy();
        model.destroy();
      }
    };
    const f32 = await logitsOf("f32", true), linears = await logitsOf("int8", false), both = await logitsOf("int8", true);
    expect([f32.taken, linears.taken, both.taken]).toEqual([false, false, I8_ATTENTION_READY]);
    const errLinears = relError(linears.logits, f32.logits), errBoth = relError(both.logits, f32.logits);
    console.log(`logits' relative error vs compute f32 over ${ids.length} rows: int8 linears ${errLinears.toExponential(2)}, int8 linears + int8 attention ${errBoth.toExponential(2)} (its own: ${relError(both.logits, linears.logits).toExponential(2)})`);
    expect(errBoth).toBeGreaterThan(0);
    expect(errBoth).toBeLessThan(ENGINE_BOUND);
  }, 60_000);
});
