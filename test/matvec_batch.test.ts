// The batched decode matvec (matvec_batch_<format>: shaders/include/matvec_batch_body.wgsl), the GPU path for
// 2..BATCH_MAX_ROWS rows of x (a batched decode step, a short query), against a float64 CPU product through
// recordLinear: every weight format (f32, f16, the GGUF block formats; f16-compute layers keep matmul_f16c),
// with bias, the fused residual add and W split into row chunks whose row counts are not multiples of the
// rows a workgroup covers; x rows in one block and in several (M = 13: four blocks of 4 and fewer; M = 32: eight of 4);
// the shapes batchShape picks and explicit ones (8..128 lanes, 1..4 W rows per lane group, 1..8 x rows, 1 or 2
// weight steps per trip). With RMSNorm on the fly (LinearInput.norm: the NORM variants) against a float64 RMSNorm +
// linear reference: a spread of formats, x read from a row offset (LinearInput.fromRow, the LM head over logit rows)
// past rows of another scale, rows of different scales (a per-row inverse RMS), one block and several, BATCH 2, 3, 4
// and 8, K / 4 below and above the workgroup's 256 threads; where forward.ts fuses the norm (fusesNorm), and
// recordLinear's refusals of transforms its kernel lacks.
import { describe, expect, it } from "vitest";
import { getGpu, type Gpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadF32 } from "../src/gpu/buffers.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { BATCH_MAX_ROWS, BATCH_NORM_MAX_ROWS, type BatchShape, batchConstants, batchesRows, batchShape, fusesNorm, type LinearInput, recordLinear } from "../src/engine/linear.ts";
import { dequantize, f16ToF32, f32ToF16, FORMATS as QFORMATS, quantize, rowBytes } from "../src/model/quant.ts";
import { destroyLinear, type GpuLinear, uploadQuantLinear } from "../src/model/weights.ts";
import { runtimeName } from "../src/runtime.ts";
import { relError, rng } from "./reference/random_model.ts";
import { cpuLinear, cpuRmsNorm } from "./reference/cpu_linear.ts";

const gpu = await getGpu();
const kernels = new Kernels(gpu.device, gpu.hasF16);

/** A random N x K layer stored as `type` (f32, f16 or a GGUF block type), with the float values it holds. */
function makeLayer(type: string, N: number, K: number, seed: number, chunkRows: number): { W: GpuLinear; w: Float32Array; b: Float32Array } {
  const rand = rng(seed);
  let w = Float32Array.from({ length: N * K }, () => (rand() * 2 - 1) * 0.5);
  const b = Float32Array.from({ length: N }, () => rand() - 0.5);
  let bytes: Uint8Array, format: string, rb: number;
  if (type === "f32") [bytes, format, rb] = [new Uint8Array(w.slice().buffer), "f32", K * 4];
  else if (type === "f16") {
    const h = Uint16Array.from(w, (v) => f32ToF16(v));
    w = Float32Array.from(h, (v) => f16ToF32(v));
    [bytes, format, rb] = [new Uint8Array(h.buffer), "f16", K * 2];
  } else {
    const raw = quantize(type, w);
    w = dequantize(type, raw, N * K);
    [bytes, format, rb] = [raw, QFORMATS[type].gpu!, rowBytes(type, K)];
  }
  const g: Gpu = { ...gpu, limits: { ...gpu.limits, maxStorageBufferBindingSize: chunkRows * rb + 4 } };
  const W = uploadQuantLinear(g, "w", format, bytes, N, K, rb, b);
  expect(W.chunks.length).toBe(Math.ceil(N / chunkRows));
  return { W, w, b };
}

/**
 * W over M rows of x (+ y0) through recordLinear in the lanes layout, optionally with a given batch shape; with
 * `norm`, RMSNorm by g on the fly, x's rows read from `norm.fromRow`.
 */
async function run(W: GpuLinear, x: Float32Array, M: number, y0: Float32Array, shape?: BatchShape, norm?: { g: Float32Array; eps: number; fromRow: number }): Promise<Float32Array> {
  const dev = gpu.device;
  const xb = uploadF32(dev, x), yb = uploadF32(dev, y0), gb = norm ? uploadF32(dev, norm.g) : undefined;
  const prog = new Program(dev);
  try {
    const input: LinearInput = gb && norm ? { norm: { weight: gb, eps: norm.eps }, fromRow: norm.fromRow } : {};
    recordLinear(prog, kernels, xb, W, yb, M, "lanes", undefined, true, input, shape);
    prog.submit();
    return new Float32Array(await readBuffer(dev, yb, M * W.rows * 4));
  } finally {
    prog.destroy();
    for (const b of [xb, yb, gb]) b?.destroy();
  }
}

async function expectMatches(type: string, M: number, N: number, K: number, chunkRows: number, seed: number, shape?: BatchShape) {
  const { W, w, b } = makeLayer(type, N, K, seed, chunkRows);
  try {
    expect(batchesRows(W, M, "lanes")).toBe(true);
    const rand = rng(seed + 1);
    const x = Float32Array.from({ length: M * K }, () => rand() * 2 - 1);
    const y0 = Float32Array.from({ length: M * N }, () => rand() * 2 - 1);
    const e = relError(await run(W, x, M, y0, shape), cpuLinear(x, w, M, N, K, b, y0));
    expect(e, `${type} M=${M} N=${N} K=${K} ${JSON.stringify(shape ?? batchShape(chunkRows, K, M))}`).toBeLessThan(2e-6);
  } finally {
    destroyLinear(W);
  }
}

/**
 * As expectMatches, with RMSNorm on the fly over x's rows fromRow .. fromRow + M - 1: x holds `fromRow` rows of
 * another scale first (read or normalised with the wrong rows, they would show), row m is scaled by 0.2 + m (each
 * row needs its own inverse RMS), g is random around 1 with some negative weights.
 */
async function expectNormMatches(type: string, M: number, N: number, K: number, chunkRows: number, seed: number, fromRow: number, shape?: BatchShape) {
  const { W, w, b } = makeLayer(type, N, K, seed, chunkRows);
  try {
    expect(fusesNorm(W, M, "lanes", fromRow)).toBe(true);
    const rand = rng(seed + 2);
    const x = Float32Array.from({ length: (fromRow + M) * K }, (_, i) => {
      const row = Math.floor(i / K);
      return (rand() * 2 - 1) * (row < fromRow ? 50 : 0.2 + row - fromRow);
    });
    const g = Float32Array.from({ length: K }, () => rand() * 1.5 - 0.25);
    const y0 = Float32Array.from({ length: M * N }, () => rand() * 2 - 1);
    const eps = 1e-5;
    const normed = cpuRmsNorm(x.subarray(fromRow * K), g, M, K, eps);
    const e = relError(await run(W, x, M, y0, shape, { g, eps, fromRow }), cpuLinear(normed, w, M, N, K, b, y0));
    expect(e, `${type} norm M=${M} from ${fromRow} N=${N} K=${K} ${JSON.stringify(shape ?? batchShape(chunkRows, K, M))}`).toBeLessThan(2e-6);
  } finally {
    destroyLinear(W);
  }
}

const TYPES = ["f32", "f16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q6_K"];

describe(`batched decode matvec (matvec_batch_<format>) on ${runtimeName()}`, () => {
  it.each(TYPES)("%s: 5 rows, bias, accumulate, 3 row chunks, batchShape's pick", async (type) => {
    const K = type.endsWith("_K") ? 512 : 160;
    await expectMatches(type, 5, 70, K, 30, 11 + type.length);
  });

  it("f16: one, two and four blocks of x rows; explicit shapes", async () => {
    for (const M of [2, 13, BATCH_MAX_ROWS]) await expectMatches("f16", M, 70, 256, 40, M);
    await expectMatches("f16", 13, 70, 256, 40, 5, { lanes: 128, rows: 1, batch: 3 });
    await expectMatches("f16", 13, 70, 256, 40, 6, { lanes: 32, rows: 4, batch: 8, unroll: 1 });
  });

  it("Q4_1: x rows in two blocks, 4 W rows per lane group", async () => {
    await expectMatches("Q4_1", 9, 45, 1312, 45, 9, { lanes: 64, rows: 4, batch: 5 });
  });

  // the norm is the pipeline constant NORM, its own variant of each kernel (compiled for seconds each on lavapipe):
  // the formats' decoders are checked above, the norm comes after them (the body's step_fma), so a spread of formats
  // (float, the default model's Q4_1, Q5_0's fifth bits, Q4_K's super-blocks; f16 below)
  it.each(["f32", "Q4_1", "Q5_0", "Q4_K"])("%s: RMSNorm on the fly, 5 rows from row 3, bias, accumulate, 3 row chunks, batchShape's pick", async (type) => {
    const K = type.endsWith("_K") ? 512 : 160;
    await expectNormMatches(type, 5, 70, K, 30, 31 + type.length, 3);
  });

  it("f16 with RMSNorm: one block and several, BATCH 2, 4 and 8, from row 0 and past it", async () => {
    await expectNormMatches("f16", 2, 70, 256, 40, 41, 0); // one block of 2
    await expectNormMatches("f16", BATCH_MAX_ROWS, 70, 256, 40, 43, 5); // four blocks of 8
    // blocks of 4, the last of 1; K / 4 = 328 vec4 per row: the sums of squares take 2 from some threads, 1 from others
    await expectNormMatches("f16", 13, 70, 1312, 40, 45, 7, { lanes: 16, rows: 4, batch: 4, unroll: 2 });
  });

  it("input transforms: fusesNorm says who takes RMSNorm on the fly; recordLinear refuses the others", () => {
    const W = { format: "f16", rows: 4, cols: 96, chunks: [] } as unknown as GpuLinear;
    expect([1, 2, BATCH_MAX_ROWS, BATCH_MAX_ROWS + 1].map((M) => fusesNorm(W, M, "lanes"))).toEqual([true, true, true, false]);
    expect([fusesNorm(W, 1, "lanes", 3), fusesNorm(W, 8, "lanes", 3), fusesNorm(W, 1, "rows"), fusesNorm(W, 8, "rows")]).toEqual([false, true, false, false]);
    expect(fusesNorm({ ...W, compute: "f16" } as GpuLinear, 8, "lanes")).toBe(false); // matmul_f16c: rmsnorm_copy first
    expect(fusesNorm({ ...W, cols: 100 }, 8, "lanes")).toBe(false); // K % 8 = 4: the tiled matmul
    // wide layers keep rmsnorm_copy in a forward pass (where the fused norm costs more than the dispatch), one row fuses
    expect([BATCH_NORM_MAX_ROWS, BATCH_NORM_MAX_ROWS + 1].map((N) => fusesNorm({ ...W, rows: N }, 8, "lanes"))).toEqual([true, false]);
    expect(fusesNorm({ ...W, rows: 128256 }, 1, "lanes")).toBe(true);
    const prog = new Program(gpu.device);
    const buf = storageBuffer(gpu.device, 64);
    try {
      const record = (rows: number, layout: "lanes" | "rows", input: LinearInput, lin = W) => () => recordLinear(prog, kernels, buf, lin, buf, rows, layout, undefined, false, input);
      const norm = { weight: buf, eps: 1e-5 };
      expect(record(BATCH_MAX_ROWS + 1, "lanes", { norm })).toThrow(/RMSNorm in the input stage needs/);
      expect(record(8, "rows", { norm })).toThrow(/RMSNorm in the input stage needs/);
      expect(record(8, "lanes", { norm }, { ...W, compute: "f16" } as GpuLinear)).toThrow(/RMSNorm in the input stage needs/);
      expect(record(8, "lanes", { swiglu: true })).toThrow(/SwiGLU in the input stage needs one row/);
      expect(record(1, "lanes", { norm, fromRow: 2 })).toThrow(/x from row 2 needs/);
      expect(record(40, "lanes", { fromRow: 2 })).toThrow(/x from row 2 needs/);
      expect(record(8, "lanes", { fromRow: -1 })).toThrow(/x from row -1 needs/);
      expect(record(8, "lanes", { norm, fromRow: 3 }, { ...W, rows: BATCH_NORM_MAX_ROWS + 1 })).not.toThrow(); // the kernels have it for any layer
      expect(prog.steps.length).toBe(0); // (W has no chunks: nothing recorded)
    } finally {
      prog.destroy();
      buf.destroy();
    }
  });

  it("shapes: batchShape balances x rows in blocks; who takes the batched path; rejected shapes", () => {
    expect([2, 8, 9, 13, 32].map((M) => batchShape(2048, 2048, M).batch)).toEqual([2, 4, 5, 7, 8]);
    expect([2, 8, 9, 13, 32].map((M) => batchShape(3072, 2048, M).batch)).toEqual([2, 4, 3, 4, 4]);
    expect(batchShape(128256, 2048, 8)).toEqual({ lanes: 16, rows: 4, batch: 8, unroll: 1 });
    expect([batchShape(2048, 2048, 8).lanes, batchShape(16384, 2048, 8).lanes, batchShape(16384, 2048, 32).lanes, batchShape(2048, 8192, 32).lanes]).toEqual([64, 32, 16, 32]);
    expect(batchShape(70, 96, 4).lanes).toBe(8); // 12 steps of 8 weights: lanes halved to 8
    const W = { format: "f16", rows: 4, cols: 96, chunks: [] } as unknown as GpuLinear;
    expect([1, 2, BATCH_MAX_ROWS, BATCH_MAX_ROWS + 1].map((M) => batchesRows(W, M, "lanes"))).toEqual([false, true, true, false]);
    expect(batchesRows(W, 8, "rows")).toBe(false); // CPU adapters keep their own kernel
    expect(batchesRows({ ...W, cols: 100 }, 8, "lanes")).toBe(false); // K % 8 = 4: the tiled matmul
    expect(batchesRows({ ...W, compute: "f16" } as GpuLinear, 8, "lanes")).toBe(false); // f16 arithmetic: matmul_f16c
    expect(() => batchConstants({ lanes: 24, rows: 2, batch: 4 })).toThrow(/unsupported batch shape/);
    expect(() => batchConstants({ lanes: 32, rows: 3, batch: 4 })).toThrow(/unsupported batch shape/);
    expect(() => batchConstants({ lanes: 32, rows: 2, batch: 9 })).toThrow(/unsupported batch shape/);
    expect(() => batchConstants({ lanes: 32, rows: 2, batch: 4, unroll: 3 })).toThrow(/unsupported batch shape/);
  });
});
