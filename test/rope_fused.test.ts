// RoPE and the KV write in the one-row qkv projection's epilogue (LinearInput.rope: entry point main_rope of
// shaders/include/matvec_body.wgsl) against a float64 reference: RMSNorm(x) * w through [q | k | v] (+ bias),
// q and k rotated HF-style (element i with i + headDim/2), q written to y, k and v into the KV block's slot,
// for every matvec shape the epilogue takes (2 rows per lane group with 32-128 lanes: a rope quad split over
// two lane groups; 4 rows: one lane group), f32 and f16 KV pools, f32 and f16 weights; and a Forward's one-row
// decode step in the lanes layout (no rope_store dispatch) against the same step through rope_store.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { f16ToF32, f32ToF16 } from "../src/model/quant.ts";
import { cosSinTable, inverseFrequencies } from "../src/model/rope.ts";
import { readBuffer, storageBuffer, uploadF32, uploadU32 } from "../src/gpu/buffers.ts";
import { readdirSync } from "node:fs";
import { Kernels } from "../src/gpu/shaders.ts";
import { type KvDtype, KvPool } from "../src/engine/kv_pool.ts";
import { Program } from "../src/engine/program.ts";
import { type MatvecShape, recordLinear, ropeOutput } from "../src/engine/linear.ts";
import { Engine } from "../src/engine/engine.ts";
import { Forward } from "../src/engine/forward.ts";
import { runtimeName } from "../src/runtime.ts";
import { randomModel, relError, rng, tinyConfig } from "./reference/random_model.ts";
import type { RefWeights } from "./reference/cpu_model.ts";

/** float64: q rotated, k rotated, v, of one row x at position pos through layer 0's attention input. */
function reference(cfg: ModelConfig, ref: RefWeights, x: Float32Array, cs: Float32Array) {
  const { hidden: H, heads, kvHeads, headDim: hd } = cfg;
  const L = ref.layers[0];
  let ss = 0;
  for (const v of x) ss += v * v;
  const scale = 1 / Math.sqrt(ss / H + cfg.rmsEps);
  const xn = Float64Array.from(x, (v, i) => v * scale * L.attnNorm[i]);
  const proj = (W: Float64Array, b: Float64Array | undefined, n: number) =>
    Float64Array.from({ length: n }, (_, r) => { let s = b ? b[r] : 0; for (let c = 0; c < H; c++) s += W[r * H + c] * xn[c]; return s; });
  const rotate = (a: Float64Array, nHeads: number) => {
    const out = new Float64Array(a.length), half = hd / 2;
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < half; i++) {
        const c = cs[2 * i], s = cs[2 * i + 1], x1 = a[h * hd + i], x2 = a[h * hd + i + half];
        out[h * hd + i] = x1 * c - x2 * s;
        out[h * hd + i + half] = x2 * c + x1 * s;
      }
    }
    return out;
  };
  return { q: rotate(proj(L.q, L.qb, heads * hd), heads), k: rotate(proj(L.k, L.kb, kvHeads * hd), kvHeads), v: proj(L.v, L.vb, kvHeads * hd) };
}

describe(`RoPE in the qkv projection's epilogue vs float64 on ${runtimeName()}`, () => {
  const cfgs: Partial<ModelConfig>[] = [
    { hidden: 64, heads: 4, kvHeads: 2, headDim: 16, qkvBias: true },
    { hidden: 128, heads: 8, kvHeads: 2, headDim: 32, ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 32 } },
  ];
  const shapes: MatvecShape[] = [{ lanes: 128, rows: 2 }, { lanes: 64, rows: 2 }, { lanes: 32, rows: 2 }, { lanes: 32, rows: 4 }, { lanes: 128, rows: 4 }];

  it.each(cfgs.flatMap((over) => (["f32", "f16"] as const).map((weightDtype) => ({ over, weightDtype }))))("heads $over.heads / kv $over.kvHeads, head_dim $over.headDim, $weightDtype weights, every shape, f32 and f16 KV", async ({ over, weightDtype }) => {
    const gpu = await getGpu();
    const dev = gpu.device;
    const cfg = tinyConfig({ intermediate: 16, layers: 1, vocabSize: 8, ...over });
    const { tensors, ref } = randomModel(cfg, 3);
    const model = await buildModel(gpu, cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "rope", weightDtype });
    const { heads, kvHeads, headDim: hd } = cfg;
    const rand = rng(9);
    const x = Float32Array.from({ length: cfg.hidden }, () => rand() * 2 - 1);
    const pos = 37;
    const cs = cosSinTable(inverseFrequencies(hd, cfg.ropeTheta, cfg.ropeScaling), [pos]);
    const want = reference(cfg, ref, x, cs);
    const xb = uploadF32(dev, x), csb = uploadF32(dev, cs);
    const y = storageBuffer(dev, (heads + 2 * kvHeads) * hd * 4);
    try {
      for (const dtype of ["f32", "f16"] as KvDtype[]) {
        const pool = new KvPool(gpu, cfg, 64 * kvHeads * hd * 2 * 4, dtype);
        pool.allocate(5, 0); // the block under test does not start at slot 0
        const block = pool.allocate(20, pos - 11);
        const dest = uploadU32(dev, Uint32Array.of(block.base, block.capacity, 11, 0));
        try {
          for (const shape of shapes) {
            const prog = new Program(dev);
            const rope = { cosSin: csb, dest, k: pool.k[0], v: pool.v[0], f16kv: dtype === "f16", heads, kvHeads, headDim: hd };
            recordLinear(prog, model.kernels, xb, model.layers[0].qkv, y, 1, "lanes", undefined, false, { norm: { weight: model.layers[0].attnNorm, eps: cfg.rmsEps }, rope }, shape);
            dev.pushErrorScope("validation");
            prog.submit();
            expect(await dev.popErrorScope()).toBeNull();
            prog.destroy();
            const q = new Float32Array(await readBuffer(dev, y, heads * hd * 4));
            const { offset } = pool.blockBytes(block);
            const el = dtype === "f16" ? 2 : 4, bytes = kvHeads * block.capacity * hd * el;
            const read = async (b: GPUBuffer) => {
              const raw = await readBuffer(dev, b, bytes, offset);
              const all = dtype === "f16" ? Float32Array.from(new Uint16Array(raw), f16ToF32) : new Float32Array(raw);
              // token 11 of each kv head
              return Float32Array.from({ length: kvHeads * hd }, (_, i) => all[(Math.floor(i / hd) * block.capacity + 11) * hd + (i % hd)]);
            };
            const k = await read(pool.k[0]), v = await read(pool.v[0]);
            const round = (a: Float64Array) => (dtype === "f16" ? Float64Array.from(a, (e) => f16ToF32(f32ToF16(e))) : a);
            const tol = weightDtype === "f16" ? 5e-3 : 1e-5, kvTol = dtype === "f16" ? Math.max(tol, 2e-3) : tol;
            const label = `${JSON.stringify(shape)} ${dtype} KV`;
            // f16 weights: the reference's weights are the f32 ones, so the tolerance covers their rounding
            expect(relError(q, want.q), `q ${label}`).toBeLessThan(tol);
            expect(relError(k, round(want.k)), `k ${label}`).toBeLessThan(kvTol);
            expect(relError(v, round(want.v)), `v ${label}`).toBeLessThan(kvTol);
            // nothing else of the block was written
            const raw = new Uint8Array(await readBuffer(dev, pool.k[0], bytes, offset));
            let stray = 0;
            for (let h = 0; h < kvHeads; h++) {
              for (let t = 0; t < block.capacity; t++) {
                if (t === 11) continue;
                for (let e = 0; e < hd * el; e++) stray += raw[((h * block.capacity + t) * hd) * el + e];
              }
            }
            expect(stray, `other slots ${label}`).toBe(0);
          }
        } finally {
          dest.destroy();
          pool.destroy();
        }
      }
    } finally {
      xb.destroy();
      csb.destroy();
      y.destroy();
      model.destroy();
    }
  }, 300_000);
});

describe(`main_rope in every one-row matvec kernel on ${runtimeName()}`, () => {
  it("builds a pipeline (with the 2- and 4-row shapes) in every matvec_<format>", async () => {
    const gpu = await getGpu();
    const k = new Kernels(gpu.device, gpu.hasF16);
    const names = readdirSync(new URL("../shaders/", import.meta.url)).map((f) => f.replace(/\.wgsl$/, "")).filter((n) => /^matvec_(?!batch_|rows_)/.test(n));
    expect(names.length).toBeGreaterThanOrEqual(10);
    for (const name of names) {
      if (name.endsWith("f16c") && !gpu.hasF16) continue;
      for (const c of [{ LANES: 128, ROWS: 2 }, { LANES: 32, ROWS: 4 }]) {
        gpu.device.pushErrorScope("validation");
        k.pipeline(name, c, "main_rope");
        expect(await gpu.device.popErrorScope(), `${name} ${JSON.stringify(c)}`).toBeNull();
      }
    }
  }, 600_000);
});

describe(`a one-row decode step in the lanes layout: RoPE fused into qkv, no rope_store, on ${runtimeName()}`, () => {
  let model: Model;
  const cfg = tinyConfig({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, headDim: 16, qkvBias: true });
  beforeAll(async () => {
    const { tensors } = randomModel(cfg, 5);
    model = await buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "random", fingerprintSeed: "rope-step" });
  });
  afterAll(() => model?.destroy());

  it.each(["f32", "f16"] as const)("%s KV: logits and KV slots equal the rope_store path's; 1 dispatch fewer per layer", async (kvDtype) => {
    const engine = new Engine(model, { kvBudgetBytes: 1 << 20, kvDtype });
    const prompt = Uint32Array.from([3, 1, 4, 1, 5, 9, 2, 6]);
    const results: { logits: Float32Array; k: Uint8Array; dispatches: number; kernels: string[] }[] = [];
    try {
      for (const fuse of [false, true]) {
        const block = engine.pool.allocate(prompt.length + 1, 0);
        try {
          await engine.run(prompt, { groups: [{ rows: prompt.length, write: block, writeAt: 0, plain: [block] }], logits: { from: 0, count: 0 } });
          // the step: lanes layout (fused) or with ropeOutput refused through a model whose device offers 8 storage buffers
          model.matvecLayout = "lanes";
          const m = fuse ? model : { ...model, gpu: { ...model.gpu, limits: { ...model.gpu.limits, maxStorageBuffersPerShaderStage: 8 } } };
          expect(ropeOutput(m.layers[0].qkv, 1, "lanes", m.gpu.limits.maxStorageBuffersPerShaderStage)).toBe(fuse);
          const step = new Forward(m, engine.pool, 1, { groups: [{ rows: 1, write: block, writeAt: prompt.length, plain: [block] }], logits: { from: 0, count: 1 } });
          try {
            step.setIds(Uint32Array.of(7));
            step.program.submit();
            const logits = await step.readLogits();
            const { offset, size } = engine.pool.blockBytes(block);
            const k = new Uint8Array(await readBuffer(model.gpu.device, engine.pool.k[1], size, offset));
            const kernels = step.program.steps.map((s) => s.pipeline.label);
            results.push({ logits, k, dispatches: kernels.length, kernels });
          } finally {
            step.destroy();
            model.matvecLayout = undefined;
          }
        } finally {
          engine.pool.release(block);
        }
      }
      const [plain, fused] = results;
      expect(plain.kernels.filter((k) => k.startsWith("rope_store")).length).toBe(cfg.layers);
      expect(fused.kernels.filter((k) => k.startsWith("rope_store")).length).toBe(0);
      expect(fused.dispatches).toBe(plain.dispatches - cfg.layers);
      expect(relError(fused.logits, plain.logits)).toBeLessThan(1e-5);
      // the layer's keys: the prompt's (written by the prefill) and the step's (by the epilogue / rope_store)
      const el = kvDtype === "f16" ? 2 : 4;
      const asF = (b: Uint8Array) => (kvDtype === "f16" ? Float32Array.from(new Uint16Array(b.buffer, b.byteOffset, b.length / 2), f16ToF32) : new Float32Array(b.buffer, b.byteOffset, b.length / 4));
      expect(plain.k.length % el).toBe(0);
      expect(relError(asF(fused.k), asF(plain.k))).toBeLessThan(kvDtype === "f16" ? 1e-3 : 1e-5);
    } finally {
      engine.destroy();
    }
  }, 300_000);
});
