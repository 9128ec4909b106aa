// The prefill matmul (matmul_f32, matmul_f16, matmul_f16c: shaders/include/matmul_float_body.wgsl) against a
// float64 CPU product, through recordLinear, on shapes that are not multiples of any tile: rows 2..300,
// columns and K odd multiples of 4 (and columns that are not multiples of 4), with bias, the fused residual
// add and W split into row chunks; for the adapter's own tiling and for the tilings GPUs get (8 x 8 register
// blocks, double-buffered), scaled to fit lavapipe's 32 KiB of workgroup memory. Also: a block format through
// dequantize + matmul_f32 slab by slab, the tiling choice for an H200-class adapter, and rejected tilings.
import { describe, expect, it } from "vitest";
import { getGpu, type Gpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadF32 } from "../src/gpu/buffers.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { kernelFormat, type MatmulTile, matmulTile, type MatvecLayout, recordLinear, tileConstants, tileStorageBytes } from "../src/engine/linear.ts";
import { dequantize, f16ToF32, f32ToF16, quantize, rowBytes } from "../src/model/quant.ts";
import { destroyLinear, type GpuLinear, uploadQuantLinear } from "../src/model/weights.ts";
import { runtimeName } from "../src/runtime.ts";
import { relError, rng } from "./reference/random_model.ts";
import { cpuLinear } from "./reference/cpu_linear.ts";

const gpu = await getGpu();
const FORMATS = gpu.hasF16 ? ["f32", "f16", "f16c"] : ["f32", "f16"];
if (!gpu.hasF16) console.warn(`matmul: the adapter (${gpu.description}) lacks shader-f16; matmul_f16c is not tested`);

/** A random N x K layer in `fmt` (f16 weights rounded, so the reference multiplies the same values), in row chunks of `chunkRows`. */
function makeLayer(fmt: string, N: number, K: number, seed: number, bias: boolean, chunkRows?: number): { W: GpuLinear; w: Float32Array; b?: Float32Array } {
  const rand = rng(seed);
  let w = Float32Array.from({ length: N * K }, () => (rand() * 2 - 1) * 0.5);
  const b = bias ? Float32Array.from({ length: N }, () => rand() - 0.5) : undefined;
  const half = fmt !== "f32";
  let bytes: Uint8Array;
  if (half) {
    const h = Uint16Array.from(w, (v) => f32ToF16(v));
    w = Float32Array.from(h, (v) => f16ToF32(v));
    bytes = new Uint8Array(h.buffer);
  } else bytes = new Uint8Array(w.slice().buffer);
  const rb = K * (half ? 2 : 4);
  const g: Gpu = chunkRows ? { ...gpu, limits: { ...gpu.limits, maxStorageBufferBindingSize: chunkRows * rb + 4 } } : gpu;
  const W = uploadQuantLinear(g, "w", half ? "f16" : "f32", bytes, N, K, rb, b);
  if (fmt === "f16c") W.compute = "f16";
  expect(W.chunks.length).toBe(chunkRows ? Math.ceil(N / chunkRows) : 1);
  return { W, w, b };
}

/** W over M rows of x through recordLinear: the GPU kernels ("lanes": matmul_<fmt>, matvec_<fmt>) or the CPU ones ("rows": matvec_rows_<fmt>). */
async function run(k: Kernels, W: GpuLinear, x: Float32Array, M: number, y0?: Float32Array, tile?: MatmulTile, scratchBytes = 0, layout: MatvecLayout = "lanes"): Promise<Float32Array> {
  const dev = gpu.device;
  const xb = uploadF32(dev, x), yb = y0 ? uploadF32(dev, y0) : storageBuffer(dev, M * W.rows * 4);
  const scratch = scratchBytes ? storageBuffer(dev, scratchBytes) : undefined;
  const prog = new Program(dev);
  recordLinear(prog, k, xb, W, yb, M, layout, scratch, !!y0, {}, undefined, tile);
  prog.submit();
  const out = new Float32Array(await readBuffer(dev, yb, M * W.rows * 4));
  prog.destroy();
  for (const b of [xb, yb, scratch]) b?.destroy();
  return out;
}

/** The bound on the error relative to the output's largest magnitude: f32 arithmetic, or f16 products (x rounded to f16). */
const bound = (fmt: string) => (fmt === "f16c" ? 3e-3 : 2e-6);

// Tilings GPUs get (linear.ts matmulTile: 128 x 128 / 128 x 64 / 64 x 64, BK 16 or 32, double-buffered) with BK
// scaled to fit 32 KiB, single-buffered variants, a CPU-shaped one (32 rows, 8 loads per invocation per step),
// and BK = 12 (pieces that do not divide evenly among the invocations).
const TILES: MatmulTile[] = [
  { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8, NB: 2 },
  { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, NB: 1 },
  { BM: 128, BN: 64, BK: 16, TM: 8, TN: 4, NB: 2 },
  { BM: 64, BN: 128, BK: 8, TM: 4, TN: 8, NB: 2 },
  { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4, NB: 2 },
  { BM: 32, BN: 128, BK: 16, TM: 8, TN: 8, NB: 1 },
  { BM: 128, BN: 64, BK: 12, TM: 8, TN: 4, NB: 2 },
];
const tileName = (t: MatmulTile) => `${t.BM}x${t.BN}x${t.BK} ${t.TM}x${t.TN} nb${t.NB}`;

describe(`prefill matmul (matmul_f32 / matmul_f16 / matmul_f16c) on ${runtimeName()}`, () => {
  it.each(FORMATS)("%s with the adapter's own tiling: awkward shapes, bias, accumulate, row chunks", async (fmt) => {
    const k = new Kernels(gpu.device, gpu.hasF16);
    const cases = [
      { M: 300, N: 140, K: 132, bias: true, accumulate: false, chunk: 0 },
      { M: 67, N: 70, K: 36, bias: true, accumulate: true, chunk: 16 },
      { M: 2, N: 36, K: 20, bias: false, accumulate: false, chunk: 0 },
      { M: 129, N: 44, K: 4, bias: false, accumulate: true, chunk: 0 },
      { M: 17, N: 260, K: 100, bias: true, accumulate: false, chunk: 100 },
    ];
    for (const [i, c] of cases.entries()) {
      const { W, w, b } = makeLayer(fmt, c.N, c.K, 100 + i, c.bias, c.chunk || undefined);
      expect(kernelFormat(W)).toBe(fmt);
      const rand = rng(7 + i);
      const x = Float32Array.from({ length: c.M * c.K }, () => rand() * 2 - 1);
      const y0 = c.accumulate ? Float32Array.from({ length: c.M * c.N }, () => rand() * 2 - 1) : undefined;
      const want = cpuLinear(x, w, c.M, c.N, c.K, b, y0);
      // the GPU kernels (tiled matmul) and the CPU-shaped one (matvec_rows: TM x 8 blocks, K % 8 = 4 for some)
      for (const layout of ["lanes", "rows"] as const) {
        const e = relError(await run(k, W, x, c.M, y0, undefined, 0, layout), want);
        expect(e, `${fmt} ${layout} ${JSON.stringify(c)}`).toBeLessThan(bound(fmt));
        if (fmt === "f16c") expect(e, "f16 arithmetic really ran").toBeGreaterThan(1e-6);
      }
      destroyLinear(W);
    }
    expect(k.has(`matmul_${fmt}`) && k.has(`matvec_rows_${fmt}`)).toBe(true);
  });

  it.each(FORMATS.flatMap((fmt) => TILES.map((t) => ({ fmt, t, name: tileName(t) }))))("$fmt, tiling $name", async ({ fmt, t }) => {
    const k = new Kernels(gpu.device, gpu.hasF16);
    // every row and column tile partial; K = 132 leaves a partial last step for BK 8, 12 and 16
    const A = makeLayer(fmt, 140, 132, 11, true);
    const B = makeLayer(fmt, 70, 36, 12, true, 24);
    try {
      const rand = rng(t.BM + t.BN + t.BK);
      const x = Float32Array.from({ length: 300 * 132 }, () => rand() * 2 - 1);
      expect(relError(await run(k, A.W, x, 300, undefined, t), cpuLinear(x, A.w, 300, 140, 132, A.b)), "300 x 140 x 132").toBeLessThan(bound(fmt));
      const x2 = Float32Array.from({ length: 45 * 36 }, () => rand() * 2 - 1);
      const y0 = Float32Array.from({ length: 45 * 70 }, () => rand() * 2 - 1);
      expect(relError(await run(k, B.W, x2, 45, y0, t), cpuLinear(x2, B.w, 45, 70, 36, B.b, y0)), "45 x 70 x 36, 3 chunks, accumulate").toBeLessThan(bound(fmt));
    } finally {
      destroyLinear(A.W);
      destroyLinear(B.W);
    }
  });

  // GPUs compile the kernels with their //#unroll loops unrolled in the source (src/gpu/unroll.ts); CPU adapters do not,
  // so this case compiles the unrolled text here (the smallest GPU tiling: the unrolled tile is slow to compile on lavapipe)
  it.each(FORMATS)("%s with the loops unrolled in the source, as GPUs compile it", async (fmt) => {
    const k = new Kernels(gpu.device, gpu.hasF16, true);
    const A = makeLayer(fmt, 140, 132, 13, true);
    try {
      const rand = rng(17);
      const x = Float32Array.from({ length: 300 * 132 }, () => rand() * 2 - 1);
      expect(relError(await run(k, A.W, x, 300, undefined, TILES[4]), cpuLinear(x, A.w, 300, 140, 132, A.b)), "300 x 140 x 132").toBeLessThan(bound(fmt));
    } finally {
      destroyLinear(A.W);
    }
  }, 300_000);

  it("a block format (q4_1) runs through dequantize + matmul_f32 slab by slab, with a GPU tiling", async () => {
    const k = new Kernels(gpu.device);
    const rand = rng(3);
    const N = 90, K = 160;
    const raw = quantize("Q4_1", Float32Array.from({ length: N * K }, () => (rand() * 2 - 1) * 0.5));
    const w = dequantize("Q4_1", raw, N * K);
    const bias = Float32Array.from({ length: N }, () => rand() - 0.5);
    const W = uploadQuantLinear(gpu, "w", "q4_1", raw, N, K, rowBytes("Q4_1", K), bias);
    const M = 70;
    const x = Float32Array.from({ length: M * K }, () => rand() * 2 - 1);
    // a 32-row scratch slab: three dequantize + matmul passes (32, 32, 26 rows of W)
    for (const t of [undefined, TILES[0]]) {
      expect(relError(await run(k, W, x, M, undefined, t, 32 * K * 4), cpuLinear(x, w, M, N, K, bias)), t ? tileName(t) : "own tiling").toBeLessThan(2e-6);
    }
    expect(k.has("dequant_q4_1") && k.has("matmul_f32")).toBe(true);
    destroyLinear(W);
  });

  it("an H200-class adapter gets large double-buffered tiles that pass the kernels' checks; a CPU adapter its own", () => {
    const h200 = {
      limits: { maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024 },
      adapterInfo: { vendor: "nvidia", architecture: "hopper", device: "", description: "NVIDIA H200" },
    } as unknown as GPUDevice;
    for (const fmt of ["f32", "f16", "f16c"]) {
      for (const M of [2, 17, 512, 2048, 8192]) {
        for (const [N, K] of [[3072, 2048], [2048, 2048], [16384, 2048], [2048, 8192], [128256, 2048], [70, 36]]) {
          for (const unrolled of [false, true]) {
            const t = matmulTile(h200, M, N, K, fmt, unrolled);
            expect(() => tileConstants(h200, t, fmt), `${fmt} ${M}x${N}x${K}`).not.toThrow();
            expect(tileStorageBytes(t, fmt)).toBeLessThanOrEqual(49152);
          }
        }
      }
      expect(matmulTile(h200, 2048, 16384, 2048, fmt)).toMatchObject({ BM: 128, BN: 128, TM: 8, TN: 8, NB: 2 });
      // 2048 x 2048 outputs: 128 x 64 tiles as Dawn compiles the loops, 128 x 128 with them unrolled (GPUs)
      expect(matmulTile(h200, 2048, 2048, 8192, fmt)).toMatchObject({ BM: 128, BN: 64 });
      expect(matmulTile(h200, 2048, 2048, 8192, fmt, true)).toMatchObject({ BM: 128, BN: 128 });
    }
    const own = matmulTile(gpu.device, 300, 140, 132, "f32");
    expect(() => tileConstants(gpu.device, own, "f32")).not.toThrow();
    if (gpu.isCpu) expect(matmulTile(gpu.device, 20, 3072, 576, "f32").BM).toBeLessThanOrEqual(32); // a short prefill wastes few rows
  });

  it("rejects tilings the kernels or the device cannot run", () => {
    const bad: MatmulTile[] = [
      { BM: 64, BN: 64, BK: 16, TM: 2, TN: 4, NB: 1 }, // TM not 4 or 8
      { BM: 64, BN: 64, BK: 10, TM: 4, TN: 4, NB: 1 }, // BK not a multiple of 4
      { BM: 60, BN: 64, BK: 16, TM: 8, TN: 4, NB: 1 }, // BM not a multiple of TM
      { BM: 32, BN: 128, BK: 16, TM: 8, TN: 8, NB: 2 }, // 8 loads of W per invocation: double-buffering holds 4
      { BM: 256, BN: 256, BK: 32, TM: 8, TN: 8, NB: 2 }, // 1024 invocations, 135 KB of workgroup memory
    ];
    for (const t of bad) expect(() => tileConstants(gpu.device, t, "f32"), tileName(t)).toThrow(/unsupported matmul tiling/);
  });
});
