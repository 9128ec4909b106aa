/**
 * Quantized formats: the CPU dequantizers against llama.cpp's own Python package (fixtures written by
 * scripts/make_gguf_fixtures.py with gguf==0.17.1), the quantizers' round trip, and every format's GPU
 * kernels (matvec for one row, matmul for many, row-chunked, with bias) against CPU
 * dequantize-then-multiply in float64.
 */
import { describe, expect, it } from "vitest";
import { getGpu, type Gpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadF32 } from "../src/gpu/buffers.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { Program } from "../src/engine/program.ts";
import { type MatvecLayout, type MatvecShape, recordLinear } from "../src/engine/linear.ts";
import { openGguf } from "../src/model/gguf.ts";
import { dequantize, f16ToF32, f32ToF16, FORMATS, quantize, rowBytes } from "../src/model/quant.ts";
import { destroyLinear, type GpuLinear, uploadQuantLinear } from "../src/model/weights.ts";
import { runtimeName } from "../src/runtime.ts";
import { relError, rng } from "./reference/random_model.ts";
import { cpuLinear } from "./reference/cpu_linear.ts";

const FIXTURES = new URL("../fixtures/gguf/", import.meta.url);
const QUANT = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q6_K"];

describe(`quant formats on the CPU (${runtimeName()})`, () => {
  it.each([...QUANT, "F32", "F16", "BF16"])("%s dequantizes exactly as gguf-py does", (type) => {
    const f = openGguf(new URL(`quant_${type}.gguf`, FIXTURES).pathname);
    try {
      const q = f.read("q"), ref = f.read("ref");
      expect(q.dtype).toBe(type);
      expect(q.shape).toEqual([4, 512]);
      expect(q.data.byteLength).toBe(4 * rowBytes(type, 512));
      const got = dequantize(type, q.data, 4 * 512);
      const want = new Float32Array(ref.data.slice().buffer);
      let worst = 0, scale = 0;
      for (let i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(got[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      expect(scale).toBeGreaterThan(0);
      expect(worst / scale).toBeLessThan(1e-6); // same values up to f32 rounding order
    } finally {
      f.close();
    }
  });

  it.each(QUANT)("%s: quantize then dequantize stays within the format's error", (type) => {
    const rand = rng(5);
    const n = 2048;
    const x = Float32Array.from({ length: n }, () => (rand() * 2 - 1) * 0.7);
    const y = dequantize(type, quantize(type, x), n);
    const bound = type === "Q8_0" ? 0.01 : type.startsWith("Q6") ? 0.03 : type.startsWith("Q5") ? 0.07 : 0.13;
    expect(relError(y, x)).toBeLessThan(bound);
    // an all-zero block decodes to zeros
    expect(Array.from(dequantize(type, quantize(type, new Float32Array(FORMATS[type].blockSize)), FORMATS[type].blockSize)).every((v) => v === 0)).toBe(true);
  });

  it("f32 -> f16 rounds to nearest even, with subnormals, infinities and NaN", () => {
    for (const [v, h] of [[1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [1e-7, 0x0002], [5.960464477539063e-8, 0x0001], [0, 0], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02]]) {
      expect(f32ToF16(v)).toBe(h);
    }
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(Number.isNaN(f16ToF32(f32ToF16(NaN)))).toBe(true);
    for (let h = 0; h < 0x7c00; h += 97) expect(f32ToF16(f16ToF32(h))).toBe(h);
  });
});

/** Runs W on M rows through the engine's own kernel choice (recordLinear), in the given matvec layout. */
async function gpuLinear(
  gpu: Gpu, kernels: Kernels, W: GpuLinear, x: Float32Array, M: number, layout: MatvecLayout = "lanes", scratchBytes = 0,
  transform?: { swiglu?: boolean; swigluOut?: boolean; norm?: { weight: Float32Array; eps: number } }, matvec?: MatvecShape,
): Promise<Float32Array> {
  const dev = gpu.device;
  const xb = uploadF32(dev, x), yb = storageBuffer(dev, M * W.rows * 4);
  const prog = new Program(dev);
  const scratch = scratchBytes > 0 ? storageBuffer(dev, scratchBytes) : undefined;
  if (scratch) prog.owned.push(scratch);
  const normW = transform?.norm ? uploadF32(dev, transform.norm.weight) : undefined;
  if (normW) prog.owned.push(normW);
  recordLinear(prog, kernels, xb, W, yb, M, layout, scratch, false, {
    swiglu: transform?.swiglu, swigluOut: transform?.swigluOut, norm: normW && transform?.norm ? { weight: normW, eps: transform.norm.eps } : undefined,
  }, matvec);
  prog.submit();
  const out = new Float32Array(await readBuffer(dev, yb, M * W.rows * 4));
  prog.destroy();
  xb.destroy();
  yb.destroy();
  return out;
}

/** The decode kernels' shapes (lanes per row, rows per lane group) that matvecShape picks among. */
const MATVEC_SHAPES = [[32, 1], [64, 2], [128, 4], [256, 1], [128, 2]] as const;
/**
 * The shapes a format's kernel is checked in besides the engine's own pick. Every shape is a pipeline that a
 * cold lavapipe compiles in 10-30 s, and the shape code (matvec_body.wgsl) is one for all formats: by default
 * each format takes two shapes in turn (every shape still checked with two or more formats, at least one with
 * two rows or more per lane group); APEKIT_FULL_KERNEL_TESTS=1 checks every format in every shape.
 */
function matvecShapes(type: string): (readonly [number, number])[] {
  if (process.env.APEKIT_FULL_KERNEL_TESTS === "1") return [...MATVEC_SHAPES];
  const i = QUANT.indexOf(type);
  return [MATVEC_SHAPES[i % MATVEC_SHAPES.length], MATVEC_SHAPES[(i + 1) % MATVEC_SHAPES.length]];
}

describe(`quantized matvec / matmul kernels on ${runtimeName()}`, () => {
  const cases = QUANT.flatMap((type) => [
    { type, N: 70, K: FORMATS[type].blockSize === 256 ? 512 : 96, chunked: false },
    { type, N: 37, K: FORMATS[type].blockSize === 256 ? 256 : 160, chunked: true },
    // long rows: more than 32 blocks per row (several staged steps in matvec_q4_1, a partial last one)
    { type, N: 19, K: FORMATS[type].blockSize === 256 ? 2560 : 1312, chunked: false },
  ]);
  it.each(cases)("$type: N=$N K=$K chunked=$chunked matches dequantize-then-multiply", async ({ type, N, K, chunked }) => {
    const gpu0 = await getGpu();
    const kernels = new Kernels(gpu0.device);
    const rand = rng(N * 31 + K);
    const w = Float32Array.from({ length: N * K }, () => (rand() * 2 - 1) * 0.5);
    const raw = quantize(type, w);
    const wq = dequantize(type, raw, N * K);
    const bias = Float32Array.from({ length: N }, () => rand() - 0.5);
    const rb = rowBytes(type, K);
    // A small binding limit splits W into row chunks of 16 rows (the last one shorter).
    const gpu: Gpu = chunked ? { ...gpu0, limits: { ...gpu0.limits, maxStorageBufferBindingSize: 16 * rb + 4 } } : gpu0;
    const W = uploadQuantLinear(gpu, "w", FORMATS[type].gpu!, raw, N, K, rb, chunked ? bias : undefined);
    expect(W.chunks.length).toBe(chunked ? Math.ceil(N / 16) : 1);
    try {
      // M = 67 runs twice: the fused matmul, and dequantize-to-f32 + matmul_f32 through a scratch buffer
      // small enough (7 rows) that the slabs do not line up with the chunks
      // the decode kernels also with 64, 128 and 256 lanes per row and 2 or 4 rows per lane group (matvecShape
      // picks among them by layer shape; N is not a multiple of the rows a workgroup covers)
      const shapes = matvecShapes(type);
      const runs = [...shapes.map(([lanes, rows]) => [1, "lanes", 0, lanes, rows] as const), [1, "rows", 0, 0, 0], [67, "lanes", 0, 0, 0], [67, "lanes", 7 * K * 4, 0, 0]] as const;
      for (const [M, layout, scratch, lanes, rows] of runs) {
        const x = Float32Array.from({ length: M * K }, () => rand() * 2 - 1);
        const got = await gpuLinear(gpu0, kernels, W, x, M, layout, scratch, undefined, lanes ? { lanes, rows } : undefined);
        const want = cpuLinear(x, wq, M, N, K, chunked ? bias : undefined);
        expect(relError(got, want), `M=${M} ${layout} scratch=${scratch} lanes=${lanes} rows=${rows}`).toBeLessThan(1e-5);
      }
      // the decode kernels' fused input stage: RMSNorm(x) * g, and silu(gate) * up
      const x = Float32Array.from({ length: 2 * K }, () => rand() * 4 - 2);
      const g = Float32Array.from({ length: K }, () => rand() + 0.5);
      const eps = 1e-5;
      const rms = 1 / Math.sqrt(x.subarray(0, K).reduce((a, v) => a + v * v, 0) / K + eps);
      const normed = Float32Array.from({ length: K }, (_, i) => x[i] * rms * g[i]);
      const gated = Float32Array.from({ length: K }, (_, i) => (x[i] / (1 + Math.exp(-x[i]))) * x[K + i]);
      const bias1 = chunked ? bias : undefined;
      expect(relError(await gpuLinear(gpu0, kernels, W, x.subarray(0, K), 1, "lanes", 0, { norm: { weight: g, eps } }), cpuLinear(normed, wq, 1, N, K, bias1)), "norm").toBeLessThan(1e-5);
      expect(relError(await gpuLinear(gpu0, kernels, W, x, 1, "lanes", 0, { swiglu: true }), cpuLinear(gated, wq, 1, N, K, bias1)), "swiglu").toBeLessThan(1e-5);
      for (const [lanes, rows] of shapes) {
        expect(relError(await gpuLinear(gpu0, kernels, W, x, 1, "lanes", 0, { swiglu: true }, { lanes, rows }), cpuLinear(gated, wq, 1, N, K, bias1)), `swiglu, ${lanes} lanes, ${rows} rows`).toBeLessThan(1e-5);
      }
      // SwiGLU on the output (W as [gate | up], one chunk): y[c] = silu(gate_c) * up_c, c < N / 2, with and without
      // RMSNorm on the input, in both row pairings (2 rows: gate c and up c; 4 rows: gate c, c + 1 and their ups);
      if (!chunked && N % 2 === 0) {
        const I = N / 2;
        // (the shapes the runs above compiled, with and without RMSNorm: SwiGLU out is a flags bit, not a variant to compile)
        const paired = shapes.filter(([, rows]) => rows >= 2);
        for (const [norm, lanes, rows] of paired.flatMap(([lanes, rows]) => [[false, lanes, rows], [true, lanes, rows]] as const)) {
          const lin = cpuLinear(norm ? normed : x.subarray(0, K), wq, 1, N, K);
          const want = Float64Array.from({ length: I }, (_, c) => (lin[c] / (1 + Math.exp(-lin[c]))) * lin[I + c]);
          const got = await gpuLinear(gpu0, kernels, W, x.subarray(0, K), 1, "lanes", 0, { swigluOut: true, norm: norm ? { weight: g, eps } : undefined }, { lanes, rows });
          expect(relError(got.subarray(0, I), want), `swiglu out, norm ${norm}, ${lanes} lanes, ${rows} rows`).toBeLessThan(1e-5);
        }
      }
    } finally {
      destroyLinear(W);
    }
  }, 300_000); // each format compiles its kernel variants first: minutes on a cold lavapipe cache under Deno
});

describe(`float matvec / matmul kernels in both matvec layouts on ${runtimeName()}`, () => {
  it.each(["f32", "f16"])("%s matches the CPU product", async (format) => {
    const gpu = await getGpu();
    const kernels = new Kernels(gpu.device);
    const rand = rng(format.length * 7);
    const N = 53, K = 96;
    let w = Float32Array.from({ length: N * K }, () => (rand() * 2 - 1) * 0.5);
    const bias = Float32Array.from({ length: N }, () => rand() - 0.5);
    let W: GpuLinear;
    if (format === "f16") {
      const h = Uint16Array.from(w, (v) => f32ToF16(v));
      w = Float32Array.from(h, (v) => f16ToF32(v));
      W = uploadQuantLinear(gpu, "w", "f16", new Uint8Array(h.buffer), N, K, K * 2, bias);
    } else {
      const { uploadLinear } = await import("../src/model/weights.ts");
      W = uploadLinear(gpu, "w", w, N, K, bias);
    }
    try {
      const shapes = [undefined, { lanes: 64, rows: 4 }, { lanes: 32, rows: 2 }];
      for (const [M, layout, shape] of [[1, "lanes", 0], [1, "lanes", 1], [1, "lanes", 2], [1, "rows", 0], [9, "lanes", 0]] as const) {
        const x = Float32Array.from({ length: M * K }, () => rand() * 2 - 1);
        const mv = shapes[shape];
        expect(relError(await gpuLinear(gpu, kernels, W, x, M, layout, 0, undefined, mv), cpuLinear(x, w, M, N, K, bias)), `M=${M} ${layout} ${JSON.stringify(mv)}`).toBeLessThan(1e-5);
      }
      const x = Float32Array.from({ length: 2 * K }, () => rand() * 4 - 2);
      const g = Float32Array.from({ length: K }, () => rand() + 0.5);
      const rms = 1 / Math.sqrt(x.subarray(0, K).reduce((a, v) => a + v * v, 0) / K + 1e-6);
      const normed = Float32Array.from({ length: K }, (_, i) => x[i] * rms * g[i]);
      const gated = Float32Array.from({ length: K }, (_, i) => (x[i] / (1 + Math.exp(-x[i]))) * x[K + i]);
      expect(relError(await gpuLinear(gpu, kernels, W, x.subarray(0, K), 1, "lanes", 0, { norm: { weight: g, eps: 1e-6 } }), cpuLinear(normed, w, 1, N, K, bias)), "norm").toBeLessThan(1e-5);
      expect(relError(await gpuLinear(gpu, kernels, W, x, 1, "lanes", 0, { swiglu: true }), cpuLinear(gated, w, 1, N, K, bias)), "swiglu").toBeLessThan(1e-5);
    } finally {
      destroyLinear(W);
    }
  });
});

describe(`fused residual add (accumulate) on ${runtimeName()}`, () => {
  it.each([["f32", 1, "lanes"], ["f32", 1, "rows"], ["f32", 20, "lanes"], ["q4_1", 1, "lanes"], ["q4_1", 1, "rows"], ["q4_1", 20, "lanes"]] as const)(
    "%s, %i rows, %s: y += x W^T + b",
    async (format, M, layout) => {
      const gpu = await getGpu();
      const kernels = new Kernels(gpu.device);
      const rand = rng(M * 13 + format.length);
      const N = 40, K = 64;
      const w0 = Float32Array.from({ length: N * K }, () => rand() - 0.5);
      const bias = Float32Array.from({ length: N }, () => rand() - 0.5);
      const { uploadLinear } = await import("../src/model/weights.ts");
      const raw = format === "q4_1" ? quantize("Q4_1", w0) : undefined;
      const w = raw ? dequantize("Q4_1", raw, N * K) : w0;
      const W = raw ? uploadQuantLinear(gpu, "w", "q4_1", raw, N, K, rowBytes("Q4_1", K), bias) : uploadLinear(gpu, "w", w0, N, K, bias);
      const x = Float32Array.from({ length: M * K }, () => rand() * 2 - 1);
      const y0 = Float32Array.from({ length: M * N }, () => rand() * 2 - 1);
      const xb = uploadF32(gpu.device, x), yb = uploadF32(gpu.device, y0);
      const prog = new Program(gpu.device);
      recordLinear(prog, kernels, xb, W, yb, M, layout, undefined, true);
      prog.submit();
      const got = new Float32Array(await readBuffer(gpu.device, yb, M * N * 4));
      const want = cpuLinear(x, w, M, N, K, bias).map((v, i) => v + y0[i]);
      expect(relError(got, want)).toBeLessThan(1e-5);
      for (const b of [xb, yb]) b.destroy();
      prog.destroy();
      destroyLinear(W);
    },
  );
});
