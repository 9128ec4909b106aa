// Split-K decode attention (shaders/attention_decode*.wgsl: the "keys" kernel attention_decode_keys*
// and the "lanes" kernel, + attention_combine.wgsl) against float64 references: (1) the kernels alone over hand-made block lists (random keys/values written straight into
// the pools, exactly representable in f16 so both KV dtypes are checked to f32 rounding), covering GQA
// groups of 1, 2, 4, 8 and 12 heads (two workgroups of 6), head_dim 16/32/64, sliding windows, empty lists and rows that see nothing,
// hundreds of blocks, more splits than keys, and a recorded program replayed after its blocks grew;
// (2) whole models through the engine (test/reference/cpu_model.ts): decode steps over a few thousand
// keys and APE decode over hundreds of contexts, in f32 and f16 KV.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import type { ModelConfig } from "../src/model/config.ts";
import type { KvBlock, KvDtype } from "../src/engine/kv_pool.ts";
import { Program } from "../src/engine/program.ts";
import { recordApeAttention, recordAttention } from "../src/engine/attention.ts";
import { CPU_MIN_KEYS, type DecodeKernel, decodeShape, GPU_MIN_KEYS, recordDecodeAttention, usesDecodeAttention } from "../src/engine/attention_decode.ts";
import { Engine } from "../src/engine/engine.ts";
import { type AttendGroup, Forward } from "../src/engine/forward.ts";
import { encodeContexts, encodePrefix, startQuery } from "../src/ape/ape.ts";
import { runtimeName } from "../src/runtime.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { attentionModel, attentionModels, type BlockSpec, expectClose, type GroupSpec, KvCase, NEG } from "./reference/attention_case.ts";
import { readBuffer, storageBuffer, uploadU32 } from "../src/gpu/buffers.ts";
import { CpuReference } from "./reference/cpu_model.ts";
import { randomModel, relError, rng, tinyConfig } from "./reference/random_model.ts";

/** A query row: its position and the blocks (indices into the case's blocks) it attends. */
interface RowSpec { pos: number; list: number[] }

/** How a case records: a split count, a kernel, recordAttention's own choice, the kernel shape chosen for GPUs. */
interface How { splits?: number; kernel?: DecodeKernel; viaChoice?: boolean; gpuShape?: boolean }

/** Decode rows (one query row per list), each with its own block list. */
class AttentionCase extends KvCase {
  constructor(model: Model, dtype: KvDtype, specs: BlockSpec[], readonly rows: RowSpec[]) {
    super(model, dtype, specs, rows.length, 5);
  }

  /** Every row its own group, read from the specs at each call (a test moves a row between runs). */
  rowGroups(): GroupSpec[] {
    return this.rows.map((r) => ({ pos: [r.pos], list: r.list }));
  }

  /** Records attention (the decode kernel, or recordAttention's choice), returning a replayable run. */
  record(temperature: number, how: How = {}) {
    const dev = this.model.gpu.device;
    const bufs = this.buffers();
    const prog = new Program(dev);
    const call = { layer: 0, ...bufs, temperature, rows: this.rows.length, lists: this.lists() };
    // the GPU shape (128-256 threads, 4 keys per step, prefetch) runs on lavapipe too when asked
    const model = how.gpuShape ? { ...this.model, gpu: { ...this.model.gpu, isCpu: false } } : this.model;
    if (how.viaChoice) recordAttention(prog, model, this.pool, call);
    else recordDecodeAttention(prog, model, this.pool, call, { splits: how.splits, kernel: how.kernel });
    const run = async () => {
      const st = this.state();
      dev.queue.writeBuffer(bufs.rowInfo, 0, st.rowInfo);
      dev.queue.writeBuffer(bufs.blocks, 0, st.blocks);
      return await this.submit(prog, bufs);
    };
    const destroy = () => { prog.destroy(); for (const b of Object.values(bufs)) b.destroy(); };
    return { run, destroy, kernels: () => prog.steps.map((st) => st.pipeline.label) };
  }

  /** Runs once and checks out and lse against the float64 reference; returns the kernels it ran. */
  async check(temperature = 1, how: How = {}): Promise<string[]> {
    const r = this.record(temperature, how);
    try {
      expectClose(await r.run(), this.reference(temperature));
      return r.kernels();
    } finally {
      r.destroy();
    }
  }
}

describe(`split-K decode attention kernel vs float64 on ${runtimeName()}`, () => {
  const models = attentionModels("a");
  const modelFor = (over: Partial<ModelConfig>) => models.get(over);
  afterAll(() => models.destroy());

  // a decode step of a sequence: prefix, two contexts and a live block that is only partly filled
  const longList: BlockSpec[] = [
    { capacity: 700, tokens: 700, firstPos: 0 },
    { capacity: 900, tokens: 900, firstPos: 700 },
    { capacity: 650, tokens: 650, firstPos: 1600 },
    { capacity: 1200, tokens: 1003, firstPos: 2250 },
  ];
  const longRow: RowSpec = { pos: 2250 + 1002, list: [0, 1, 2, 3] };

  it.each([
    { heads: 8, kvHeads: 2, headDim: 64, dtype: "f32" },
    { heads: 8, kvHeads: 2, headDim: 64, dtype: "f16" },
    { heads: 4, kvHeads: 4, headDim: 16, dtype: "f32" },
    { heads: 4, kvHeads: 2, headDim: 32, dtype: "f16" },
    { heads: 16, kvHeads: 2, headDim: 32, dtype: "f32" },
    { heads: 12, kvHeads: 1, headDim: 16, dtype: "f16" },
  ] as { heads: number; kvHeads: number; headDim: number; dtype: KvDtype }[])("one row over 3253 keys in 4 blocks: $heads heads / $kvHeads kv heads, head_dim $headDim, $dtype KV", async ({ dtype, ...shape }) => {
    const model = await modelFor(shape);
    const t = new AttentionCase(model, dtype, longList, [longRow]);
    try {
      await t.check(0.8);
      // one workgroup per kv head walks everything (keys kernel: writes out and lse itself, no combine)
      expect(await t.check(1, { splits: 1 })).toEqual([model.config.headDim % 8 ? (dtype === "f16" ? "attention_decode_f16kv" : "attention_decode") : (dtype === "f16" ? "attention_decode_keys_f16kv" : "attention_decode_keys")]);
      await t.check(1, { splits: 37 }); // splits that start and end inside blocks
    } finally {
      t.destroy();
    }
  }, 400_000); // several kernel variants compiled per shape: minutes on a fresh machine's cold lavapipe cache

  // the same, in the shapes an H200 runs (a test of their own: each compiles large kernels, minutes on a cold lavapipe)
  it.each([
    { heads: 8, kvHeads: 2, headDim: 64, dtype: "f32" },
    { heads: 8, kvHeads: 2, headDim: 64, dtype: "f16" },
    { heads: 16, kvHeads: 2, headDim: 32, dtype: "f32" },
  ] as { heads: number; kvHeads: number; headDim: number; dtype: KvDtype }[])("one row over 3253 keys in 4 blocks, GPU shapes: $heads heads / $kvHeads kv heads, head_dim $headDim, $dtype KV", async ({ dtype, ...shape }) => {
    const model = await modelFor(shape);
    const t = new AttentionCase(model, dtype, longList, [longRow]);
    try {
      await t.check(1, { gpuShape: true }); // as an H200 would run it (lanes: 128+ threads, 4 keys per step, prefetch)
      await t.check(1, { kernel: "lanes", splits: 37 }); // the lanes kernel, also chosen for head_dim % 8 != 0
      if (shape.headDim === 64) await t.check(1, { gpuShape: true, kernel: "keys" }); // keys in its GPU shape (256 threads, chunks of 1024 keys)
    } finally {
      t.destroy();
    }
  }, 600_000);

  // GPUs compile the kernels with their //#unroll loops unrolled (src/gpu/unroll.ts); CPU adapters do not, so this
  // compiles the unrolled split kernel and combine here, in GPU shapes (head_dim 16: small unrolled bodies for lavapipe)
  it("the split kernel and its combine with their loops unrolled, as GPUs compile them", async () => {
    const base = await modelFor({ heads: 4, kvHeads: 2, headDim: 16 });
    const model = { ...base, kernels: new Kernels(base.gpu.device, base.gpu.hasF16, true) };
    const t = new AttentionCase(model, "f16", longList, [longRow]);
    try {
      await t.check(0.9, { gpuShape: true, kernel: "lanes", splits: 13 });
      expect(model.kernels.has("attention_decode_f16kv")).toBe(true);
    } finally {
      t.destroy();
    }
  }, 400_000);

  it("a sliding window: keys more than `window` positions back are invisible", async () => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 16, slidingWindow: 1500 });
    for (const dtype of ["f32", "f16"] as const) {
      const t = new AttentionCase(model, dtype, longList, [longRow, { pos: 900, list: [0, 1] }]);
      try {
        await t.check();
        await t.check(1, { splits: 64 });
        await t.check(1, { splits: 64, kernel: "lanes" });
      } finally {
        t.destroy();
      }
    }
  }, 400_000);

  it("several rows with their own lists: an empty list, a row that sees nothing, a causal row", async () => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 16 });
    const blocks: BlockSpec[] = [
      { capacity: 40, tokens: 40, firstPos: 0 },
      { capacity: 300, tokens: 260, firstPos: 40 },
      { capacity: 16, tokens: 0, firstPos: 300 }, // an empty block
    ];
    const rows: RowSpec[] = [
      { pos: 299, list: [0, 2, 1] },
      { pos: 100, list: [1] }, // causal: keys at 40..100 of block 1
      { pos: 10, list: [] }, // no blocks
      { pos: 39, list: [1, 2] }, // all keys after the query
      { pos: 5, list: [0] },
    ];
    for (const dtype of ["f32", "f16"] as const) {
      const t = new AttentionCase(model, dtype, blocks, rows);
      try {
        for (const splits of [undefined, 1, 3, 500]) await t.check(0.7, { splits });
        await t.check(0.7, { splits: 3, kernel: "lanes" });
      } finally {
        t.destroy();
      }
    }
  });

  it("hundreds of blocks (an APE context set): splits cross many blocks, empty ones included", async () => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 16 });
    const rand = rng(3);
    const blocks: BlockSpec[] = Array.from({ length: 300 }, (_, i) => {
      const n = i % 17 === 0 ? 0 : 1 + Math.floor(rand() * 30);
      return { capacity: Math.max(1, n), tokens: n, firstPos: 9 };
    });
    const t = new AttentionCase(model, "f16", blocks, [{ pos: 60, list: blocks.map((_, i) => i) }, { pos: 12, list: blocks.map((_, i) => 299 - i) }]);
    try {
      for (const splits of [undefined, 7, 256]) await t.check(0.6, { splits });
      await t.check(0.6, { splits: 7, kernel: "lanes" });
    } finally {
      t.destroy();
    }
  });

  it("a recorded step replays right after its live block grew (slices come from the current list)", async () => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 64 });
    const rowsSpec: RowSpec[] = [{ pos: 0, list: [0, 1] }];
    const t = new AttentionCase(model, "f32", [{ capacity: 1000, tokens: 1000, firstPos: 0 }, { capacity: 600, tokens: 1, firstPos: 1000 }], rowsSpec);
    const r = t.record(1, { splits: 9, gpuShape: true });
    try {
      for (const tokens of [1, 2, 57, 300, 600]) {
        t.blocks[1].tokens = tokens;
        rowsSpec[0].pos = 1000 + tokens - 1;
        expectClose(await r.run(), t.reference(1));
      }
    } finally {
      r.destroy();
      t.destroy();
    }
  });

  it.each([
    { gpuShape: false, shared: false },
    { gpuShape: true, shared: false },
    { gpuShape: true, shared: true },
  ])("APE decode: both parts split-K and one ape_combine pass vs the float64 merge (GPU shape: $gpuShape, one rows buffer: $shared)", async ({ gpuShape, shared }) => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 64 });
    const T = 0.7, S = 0.8;
    // a prefix, three contexts after it (their own positions from 16), a live block after the longest
    const specs: BlockSpec[] = [
      { capacity: 16, tokens: 16, firstPos: 0 },
      { capacity: 300, tokens: 300, firstPos: 16 },
      { capacity: 520, tokens: 500, firstPos: 16 },
      { capacity: 90, tokens: 90, firstPos: 16 },
      { capacity: 64, tokens: 21, firstPos: 516 },
    ];
    const rows = [{ pos: 536, plain: [0, 4], ctx: [1, 2, 3] }, { pos: 530, plain: [0, 4], ctx: [3] }, { pos: 520, plain: [0, 4], ctx: [] }];
    class ApeCase extends KvCase {
      part: "plain" | "ctx" = "plain";
      rowGroups(): GroupSpec[] { return rows.map((r) => ({ pos: [r.pos], list: r[this.part] })); }
    }
    const t = new ApeCase(model, "f16", specs, rows.length, 11);
    const m = gpuShape ? { ...model, gpu: { ...model.gpu, isCpu: false } } : model;
    const dev = model.gpu.device, c = model.config;
    const prog = new Program(dev);
    const made: GPUBuffer[] = [];
    try {
      const call = (part: "plain" | "ctx", temperature: number) => {
        t.part = part;
        const b = t.buffers();
        made.push(...Object.values(b));
        return { call: { layer: 0, ...b, temperature, rows: rows.length, lists: t.lists() }, ref: t.reference(temperature), bufs: b };
      };
      const O = call("plain", 1), C = call("ctx", T);
      if (shared) {
        // Forward's layout: plain rows at 0, context rows from row 16 (a 256-byte binding offset), one blocks
        // array (the plain part's descriptors, then the context part's) and one q: one split dispatch for both
        t.part = "plain";
        const so = t.state();
        t.part = "ctx";
        const sc = t.state();
        const ctxRow = dev.limits.minStorageBufferOffsetAlignment / 16, nb = so.blocks.length / 4;
        const info = new Uint32Array((ctxRow + rows.length) * 4);
        info.set(so.rowInfo);
        for (let r = 0; r < rows.length; r++) info.set([sc.rowInfo[4 * r], sc.rowInfo[4 * r + 1] + nb, sc.rowInfo[4 * r + 2], 0], (ctxRow + r) * 4);
        const rowBuf = uploadU32(dev, info), blockBuf = uploadU32(dev, Uint32Array.from([...so.blocks, ...sc.blocks]));
        made.push(rowBuf, blockBuf);
        const n16 = rows.length * 16;
        Object.assign(O.call, { q: O.bufs.q, rowInfo: { buffer: rowBuf, offset: 0, size: n16 }, blocks: blockBuf });
        Object.assign(C.call, { q: O.bufs.q, rowInfo: { buffer: rowBuf, offset: ctxRow * 16, size: n16 }, blocks: blockBuf });
      }
      const out = storageBuffer(dev, rows.length * c.heads * c.headDim * 4);
      made.push(out);
      // the plain lists hold 80 slots: the fused path must run because the context part is split-K
      const ctxCall = { ...C.call, lists: C.call.lists.map((l) => ({ ...l, blocks: l.blocks.map((b) => ({ ...b, capacity: Math.max(b.capacity, CPU_MIN_KEYS) })) })) };
      expect(usesDecodeAttention(m, ctxCall)).toBe(true);
      recordApeAttention(prog, m, t.pool, O.call, ctxCall, out, S * T);
      const labels = prog.steps.map((x) => x.pipeline.label);
      expect(labels.filter((l) => l !== "ape_combine").every((l) => l.startsWith("attention_decode"))).toBe(true);
      // one rows buffer on a GPU shape (the lanes kernel): both parts in one dispatch, else one each
      expect(labels.length).toBe(shared && gpuShape ? 2 : 3);
      expect(prog.steps.at(-1)!.pipeline.label).toBe("ape_combine");
      dev.pushErrorScope("validation");
      prog.submit();
      expect(await dev.popErrorScope()).toBeNull();
      const got = new Float32Array(await readBuffer(dev, out, out.size));
      // float64: w_C = sigmoid(S*T*LSE_C - LSE_O) (0 without a visible context key), out = w_C out_C + (1 - w_C) out_O
      let worst = 0;
      for (let r = 0; r < rows.length; r++) {
        for (let h = 0; h < c.heads; h++) {
          const lc = C.ref.lse[r * c.heads + h], lo = O.ref.lse[r * c.heads + h];
          const w = lc <= NEG ? 0 : 1 / (1 + Math.exp(-(S * T * lc - lo)));
          if (r === 2) expect(w).toBe(0);
          for (let d = 0; d < c.headDim; d++) {
            const i = (r * c.heads + h) * c.headDim + d;
            worst = Math.max(worst, Math.abs(got[i] - (w * C.ref.out[i] + (1 - w) * O.ref.out[i])));
          }
        }
      }
      expect(worst).toBeLessThan(2e-5);
    } finally {
      prog.destroy();
      for (const b of made) b.destroy();
      t.destroy();
    }
  });

  it("recordAttention takes the split-K kernel for decode steps over long lists (the row kernel below), splits sized from capacities", async () => {
    const model = await modelFor({ heads: 8, kvHeads: 2, headDim: 64 });
    const t = new AttentionCase(model, "f16", longList, [longRow]);
    const short = new AttentionCase(model, "f16", [{ capacity: 100, tokens: 64, firstPos: 0 }], [{ pos: 70, list: [0] }]);
    try {
      expect(await t.check(1, { viaChoice: true })).toEqual(["attention_decode_keys_f16kv", "attention_combine"]);
      expect(await t.check(1, { viaChoice: true, gpuShape: true })).toEqual(["attention_decode_f16kv", "attention_combine"]); // GPUs: lanes (measured faster on the H200)
      expect(await short.check(1, { viaChoice: true, gpuShape: true })).toEqual(["attention_f16kv"]);
      const onGpu = { ...model, gpu: { ...model.gpu, isCpu: false } }, onCpu = { ...model, gpu: { ...model.gpu, isCpu: true } };
      const call = (rows: number, capacity: number) => ({ rows, lists: [{ rows, blocks: [{ capacity } as KvBlock] }] }) as Parameters<typeof usesDecodeAttention>[1];
      expect(usesDecodeAttention(onGpu, call(1, GPU_MIN_KEYS - 1))).toBe(false);
      expect(usesDecodeAttention(onGpu, call(1, GPU_MIN_KEYS))).toBe(true);
      expect(usesDecodeAttention(onGpu, call(9, 5000))).toBe(false); // prefill-sized batches take the other kernels
      // a batched decode step: every row its own group, any row count
      const step = (rows: number, capacity: number) => ({ rows, lists: Array.from({ length: rows }, () => ({ rows: 1, blocks: [{ capacity } as KvBlock] })) }) as Parameters<typeof usesDecodeAttention>[1];
      expect(usesDecodeAttention(onGpu, step(32, GPU_MIN_KEYS))).toBe(true);
      expect(usesDecodeAttention(onGpu, step(32, GPU_MIN_KEYS - 1))).toBe(false);
      expect(usesDecodeAttention(onCpu, call(1, CPU_MIN_KEYS - 1))).toBe(false);
      expect(usesDecodeAttention(onCpu, call(8, CPU_MIN_KEYS))).toBe(true);
      // enough workgroups to fill an H200 (132 SMs) at 128K keys; splits of 128 keys at 8K, of 32 for short lists
      expect(decodeShape(onGpu, 1, 131072).splits * model.config.kvHeads).toBeGreaterThanOrEqual(264);
      expect(decodeShape(onGpu, 1, 8192).splits).toBe(64);
      expect(decodeShape(onGpu, 1, 320).splits).toBe(10);
      expect(decodeShape(onGpu, 1, 20).splits).toBe(1);
    } finally {
      t.destroy();
      short.destroy();
    }
  });
});

describe(`a batched decode step's attention (every row its own list) on ${runtimeName()}`, () => {
  let model: Model;
  beforeAll(async () => { model = await attentionModel({ heads: 8, kvHeads: 2, headDim: 64 }, "b"); });
  afterAll(() => model?.destroy());

  // 12 rows (more than DECODE_MAX_ROWS), each its own group: the Batcher's step for 12 streams
  it.each(["f32", "f16"] as const)("12 one-row groups: split-K over long lists, the row kernel (not the tiled one) over short ones, %s KV", async (dtype) => {
    const specs: BlockSpec[] = Array.from({ length: 12 }, (_, i) => ({ capacity: 300 + 97 * i, tokens: 250 + 97 * i, firstPos: 0 }));
    const rows: RowSpec[] = specs.map((b, i) => ({ pos: b.tokens - 1 - (i % 3), list: [i] }));
    const long = new AttentionCase(model, dtype, specs, rows);
    const short = new AttentionCase(model, dtype, specs.map((_, i) => ({ capacity: 40 + 5 * i, tokens: 33 + 5 * i, firstPos: 0 })), rows.map((r, i) => ({ pos: 32 + 5 * i, list: r.list })));
    const kv = dtype === "f16" ? "_f16kv" : "";
    try {
      expect(await long.check(0.9, { viaChoice: true, gpuShape: true })).toEqual([`attention_decode${kv}`, "attention_combine"]);
      expect(await short.check(1, { viaChoice: true, gpuShape: true })).toEqual([`attention${kv}`]);
    } finally {
      long.destroy();
      short.destroy();
    }
  }, 200_000);
});

function argmax(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

type RefKV = ReturnType<CpuReference["encode"]>["kv"];

/**
 * Decode steps replayed from ONE recorded Forward (its state rewritten between steps, as generate.ts
 * does), fed the reference's greedy tokens; each step's logits against the float64 reference's.
 */
async function expectDecodeSteps(
  engine: Engine, ref: CpuReference, group: AttendGroup, start: { token: number; pos: number; kv: RefKV[] },
  ctx: RefKV[] | null, steps: number, tol: number, T = 1, S = 1,
): Promise<void> {
  const step = new Forward(engine.model, engine.pool, 1, { groups: [group], temperature: T, scale: S, logits: { from: 0, count: 1 } });
  try {
    const plain = [...start.kv];
    let token = start.token;
    for (let i = 0; i < steps; i++) {
      step.refreshState();
      step.setIds(Uint32Array.of(token));
      step.program.submit();
      const got = await step.readLogits();
      const want = ref.encode([token], start.pos + i, plain, ctx, T, S);
      expect(relError(got, want.logits[0]), `step ${i}`).toBeLessThan(tol);
      plain.push(want.kv);
      token = argmax(want.logits[0]);
      group.writeAt++;
    }
  } finally {
    step.destroy();
  }
}

describe(`split-K decode attention in whole models vs the float64 reference on ${runtimeName()}`, () => {
  // GQA group of 4 (8 query heads over 2 kv heads), head_dim 16
  const cfg = tinyConfig({ heads: 8, kvHeads: 2, headDim: 16, maxPositions: 8192 });
  let model: Model, ref: CpuReference;
  const rand = rng(17);
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
  beforeAll(async () => {
    const { tensors, ref: w } = randomModel(cfg, 8);
    model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "d" });
    ref = new CpuReference(cfg, w);
  });
  afterAll(() => model?.destroy());

  it.each(["f32", "f16"] as const)("decode steps over 2400 keys in 12 blocks (each encoded on its own), %s KV", async (kvDtype) => {
    const engine = new Engine(model, { kvBudgetBytes: 4 << 20, kvDtype });
    try {
      // blocks at consecutive positions, each encoded attending only itself (cheap for both sides); the
      // decode steps attend all of them plainly, then their own live block
      const chunks = Array.from({ length: 12 }, () => ids(200)), steps = 4, n = 200 * chunks.length;
      const blocks = chunks.map((_, i) => engine.pool.allocate(200, 200 * i));
      const all = Uint32Array.from(chunks.flat());
      await engine.run(all, { groups: blocks.map((b) => ({ rows: 200, write: b, writeAt: 0, plain: [b] })), logits: { from: 0, count: 0 } });
      const kv = chunks.map((c, i) => ref.encode(c, 200 * i, [], null));
      const live = engine.pool.allocate(steps, n);
      const group: AttendGroup = { rows: 1, write: live, writeAt: 0, plain: [...blocks, live] };
      const first = argmax(kv[kv.length - 1].logits[199]);
      await expectDecodeSteps(engine, ref, group, { token: first, pos: n, kv: kv.map((x) => x.kv) }, null, steps, kvDtype === "f32" ? 1e-4 : 2e-2);
      expect(model.kernels.has(kvDtype === "f16" ? "attention_decode_keys_f16kv" : "attention_decode_keys")).toBe(true);
    } finally {
      engine.destroy();
    }
  });

  it.each(["f32", "f16"] as const)("APE: a 3-token query and decode steps over a prefix and 150 contexts, %s KV", async (kvDtype) => {
    const engine = new Engine(model, { kvBudgetBytes: 4 << 20, kvDtype });
    try {
      const T = 0.7, S = 0.85, steps = 3;
      const prefix = ids(5), contexts = Array.from({ length: 150 }, () => ids(4 + Math.floor(rand() * 20))), query = ids(3);
      const pre = await encodePrefix(engine, Uint32Array.from(prefix));
      const blocks = await encodeContexts(engine, pre, contexts.map((c) => Uint32Array.from(c)));
      const live = startQuery(engine, { prefix: pre, contexts: blocks, query: Uint32Array.from(query), temperature: T, scale: S, reserve: steps });
      const got = await engine.run(Uint32Array.from(query), { groups: [live.group(query.length, 0)], temperature: T, scale: S, logits: { from: query.length - 1, count: 1 } });
      const rPre = ref.encode(prefix, 0, [], null).kv;
      const rCtx = contexts.map((c) => ref.encode(c, prefix.length, [rPre], null).kv);
      const qPos = prefix.length + Math.max(...contexts.map((c) => c.length));
      const rQ = ref.encode(query, qPos, [rPre], rCtx, T, S);
      const tol = kvDtype === "f32" ? 1e-4 : 2e-2;
      expect(relError(got, rQ.logits[query.length - 1])).toBeLessThan(tol);
      const group = live.group(1, query.length);
      await expectDecodeSteps(engine, ref, group, { token: argmax(rQ.logits[query.length - 1]), pos: qPos + query.length, kv: [rPre, rQ.kv] }, rCtx, steps, tol, T, S);
    } finally {
      engine.destroy();
    }
  });
});
