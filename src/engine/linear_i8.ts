/**
 * Linear layers on integer tensor cores, for prefill (`compute: "int8"`): W8A8 with one scale per row. Each f16 /
 * f32 linear weight gets an int8 copy at load (attachInt8: quantize_i8.wgsl, q = round(w / s), s = max|w| / 127
 * per output row), kept beside the float weights the decode kernels read. A prefill of I8_MIN_ROWS rows or more
 * quantizes its x rows the same way (one scale per row) and multiplies on Dawn's int8 subgroup matrices
 * (matmul_i8.wgsl: i8 x i8 products summed exactly in i32 over the whole of K, rescaled by both scales once).
 * The error is the quantization's: each product is off by at most (|w| s_x + |x| s_w) / 2, so a layer's output is
 * within about (max|x| sum|w| / 127 + max|w| sum|x| / 127) / 2 of the float result; test/matmul_i8.test.ts and
 * `ape bench matmul --formats i8` measure it against float64 (bench/results-h200-engine.txt).
 * Only on adapters with `chromium-experimental-subgroup-matrix` offering i8 x i8 -> i32 at 16 x 16 x 32 (Dawn
 * on NVIDIA, created with allow_unsafe_apis: Gpu.hasInt8Matrix); block-quantized layers keep their kernels.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { Kernels } from "../gpu/shaders.ts";
 * import { I8_K_STEP, i8Padded } from "./linear_i8.ts";
 * const gpu = await getGpu();
 * console.log(i8Padded(2050, I8_K_STEP)); // 2080: K rounded up to the matmul's k step
 * if (gpu.hasInt8Matrix) new Kernels(gpu.device).pipeline("matmul_i8"); // compiles only where int8 matrices exist
 * ```
 */
import type { Gpu } from "../gpu/device.ts";
import { storageBuffer } from "../gpu/buffers.ts";
import type { Kernels } from "../gpu/shaders.ts";
import type { GpuLinear, LinearChunk } from "../model/weights.ts";
export type { LinearI8 } from "../model/weights.ts";
import { Params, Program } from "./program.ts";

/** Scratch of a forward's int8 prefill: x's rows quantized (q: Mp x Kp bytes) and their scales (s). */
export interface I8Scratch {
  q: GPUBuffer;
  s: GPUBuffer;
}

/**
 * matmul_i8's tiling (its pipeline constants): FM x FN accumulators of 16 x 16 per subgroup, SGM x SGN subgroups of
 * 32 per workgroup (a tile of BM = 16 FM SGM rows of x by BN = 16 FN SGN rows of W), BK bytes of k per step.
 */
export interface I8Tile {
  FM: number;
  FN: number;
  SGM: number;
  SGN: number;
  BK: number;
  /** Benchmarks only: 1 times the multiplies alone (matmul_i8's PROBE; the results are wrong). */
  probe?: number;
  /** The accumulators in named variables instead of an array (matmul_i8's NAMED; FM = 2, FN = 4 only). */
  named?: boolean;
}

/** The tiling recordLinearI8 uses unless told otherwise. */
// named accumulators: measured on the H200 (bench matmul, 4096 rows) 121-132 TOP/s against 61-62 with the array (the
// subgroup-matrix multiply itself: 1,248 TOP/s with named accumulators, 70 in an array: bench/mma_probe.ts)
export const I8_TILE: I8Tile = { FM: 2, FN: 4, SGM: 4, SGN: 2, BK: 64, named: true };

/** x's rows (the scratch) and W's int8 rows are padded to a multiple of this: any tile's BM and BN divide it. */
export const I8_TILE_M = 256;
export const I8_TILE_N = 256;

/** A tiling's pipeline constants and tile size, after checking it against the kernel's limits and the device's. */
export function i8TileConstants(device: GPUDevice, t: I8Tile): { constants: Record<string, number>; BM: number; BN: number } {
  const wg = 32 * t.SGM * t.SGN, BM = 16 * t.FM * t.SGM, BN = 16 * t.FN * t.SGN, ST = t.BK + 16;
  const rv = t.BK / 16, stage = 2 * Math.max(BM, BN) * ST; // bytes of one operand's staging (24 KiB each in the kernel)
  const bad = ![1, 2, 4].includes(t.FM) || ![1, 2, 4].includes(t.FN) || ![32, 64].includes(t.BK) || !Number.isInteger(t.SGM) || !Number.isInteger(t.SGN) ||
    t.SGM < 1 || t.SGN < 1 || wg > device.limits.maxComputeInvocationsPerWorkgroup || (BM * rv) % wg !== 0 || (BN * rv) % wg !== 0 ||
    (BM * rv) / wg > 8 || (BN * rv) / wg > 8 || BM > I8_TILE_M || BN > I8_TILE_N || t.SGM * t.SGN * 256 > 6144 ||
    stage > 24576 || 2 * 24576 > device.limits.maxComputeWorkgroupStorageSize || (!!t.named && (t.FM !== 2 || t.FN !== 4));
  if (bad) throw new Error(`matmul_i8: unsupported tiling ${JSON.stringify(t)} (${wg} invocations, ${stage} bytes of workgroup memory)`);
  return { constants: { FM: t.FM, FN: t.FN, SGM: t.SGM, SGN: t.SGN, BK: t.BK, ...(t.probe ? { PROBE: t.probe } : {}), ...(t.named ? { NAMED: 1 } : {}) }, BM, BN };
}
/** The k step of one i8 subgroup-matrix multiply (16 x 16 x 32). */
export const I8_K_STEP = 32;
/** Prefills of at least this many rows take the int8 kernels (fewer: the batched matvec / float matmul). */
export const I8_MIN_ROWS = 64;

const ceil = (a: number, b: number) => Math.ceil(a / b);
export const i8Padded = (n: number, to: number) => ceil(n, to) * to;

/** Whether the int8 path takes `rows` rows through W (W has its int8 copy and there are enough rows). */
export function usesInt8(W: GpuLinear, rows: number): boolean {
  return !!W.i8 && rows >= I8_MIN_ROWS;
}

/** Bytes of the x-side scratch (q, s) a forward of `rows` rows through layers of at most `maxK` inputs needs. */
export function i8ScratchBytes(rows: number, maxK: number): { q: number; s: number } {
  return { q: i8Padded(rows, I8_TILE_M) * i8Padded(maxK, I8_K_STEP), s: i8Padded(rows, I8_TILE_M) * 4 };
}

/**
 * Records quantize_i8 over R rows of `src` (f32 words, or f16 pairs with `f16`), rows of `rowStride` values from
 * row `fromRow`, into q ([R, Kp] int8) and s ([R] f32); with `swiglu`, of silu(gate) * up from [gate | up] rows.
 */
export function recordQuantize(
  prog: Program, k: Kernels, src: GPUBuffer, q: GPUBuffer, s: GPUBuffer,
  o: { rows: number; K: number; Kp: number; fromRow?: number; rowStride?: number; f16?: boolean; swiglu?: boolean },
): void {
  if (o.K % (o.f16 ? 8 : 4) !== 0 || o.Kp % 4 !== 0 || o.Kp < o.K || (o.swiglu && o.f16)) throw new Error(`quantize_i8: K ${o.K} / Kp ${o.Kp}${o.swiglu && o.f16 ? ", SwiGLU of f16" : ""} unsupported`);
  const pipe = k.pipeline("quantize_i8", { SRC_F16: o.f16 ? 1 : 0, SWIGLU: o.swiglu ? 1 : 0 });
  const params = prog.uniform(new Params().u(o.rows, o.K, o.Kp, o.fromRow ?? 0, o.rowStride ?? (o.swiglu ? 2 * o.K : o.K)).bytes());
  prog.dispatch(pipe, k.bind(pipe, [src, q, s, params]), Math.min(o.rows, 65535), ceil(o.rows, 65535));
}

/**
 * Gives W (f16 or f32 storage) its int8 copy, quantized on the GPU from its own chunks (submitted at once; W's float
 * chunks stay for the decode kernels).
 */
export function attachInt8(gpu: Gpu, k: Kernels, W: GpuLinear): void {
  if (W.format !== "f16" && W.format !== "f32") throw new Error(`attachInt8: ${W.format} weights have no int8 path`);
  if (!gpu.hasInt8Matrix) throw new Error("attachInt8: the adapter has no int8 subgroup matrices");
  const dev = gpu.device;
  const Kp = i8Padded(W.cols, I8_K_STEP);
  const scales = storageBuffer(dev, W.rows * 4, "i8.scales");
  const prog = new Program(dev);
  const chunks: LinearChunk[] = [], parts: GPUBuffer[] = [];
  for (const ch of W.chunks) { // int8 rows take half an f16 row's bytes: each float chunk's copy fits a binding
    const q = storageBuffer(dev, i8Padded(ch.rows, I8_TILE_N) * Kp, "i8.w");
    const s = storageBuffer(dev, ch.rows * 4, "i8.chunkScales"); // copied to the chunk's rows of `scales` below
    recordQuantize(prog, k, ch.buffer, q, s, { rows: ch.rows, K: W.cols, Kp, f16: W.format === "f16" });
    chunks.push({ buffer: q, rowStart: ch.rowStart, rows: ch.rows });
    parts.push(s);
  }
  prog.submit();
  const enc = dev.createCommandEncoder();
  W.chunks.forEach((ch, i) => enc.copyBufferToBuffer(parts[i], 0, scales, ch.rowStart * 4, ch.rows * 4));
  dev.queue.submit([enc.finish()]);
  for (const s of parts) s.destroy();
  prog.destroy();
  W.i8 = { chunks, scales, Kp };
}

/**
 * y = x W^T (+ bias; + y with `accumulate`) for `rows` rows of x (f32 [rows, W.cols]; with `swiglu`, x = silu(gate) *
 * up of gate_up's [rows, 2 W.cols]) on the int8 kernels: quantize_i8 of x into the scratch, then matmul_i8 per chunk of
 * W's int8 copy.
 */
export function recordLinearI8(
  prog: Program, k: Kernels, x: GPUBuffer, W: GpuLinear, y: GPUBuffer, rows: number, scratch: I8Scratch, accumulate = false, tile = I8_TILE,
  swiglu = false,
): void {
  const i8 = W.i8!;
  const need = i8ScratchBytes(rows, W.cols);
  if (scratch.q.size < need.q || scratch.s.size < need.s) {
    throw new Error(`recordLinearI8: scratch of ${scratch.q.size} / ${scratch.s.size} bytes for ${rows} rows x ${W.cols} (needs ${need.q} / ${need.s})`);
  }
  recordQuantize(prog, k, x, scratch.q, scratch.s, { rows, K: W.cols, Kp: i8.Kp, swiglu });
  const flags = (W.bias ? 1 : 0) | (accumulate ? 2 : 0);
  const t = i8TileConstants(k.device, tile);
  const pipe = k.pipeline("matmul_i8", t.constants);
  for (const ch of i8.chunks) {
    const params = prog.uniform(new Params().u(rows, ch.rows, W.cols, W.rows, ch.rowStart, flags, i8.Kp).bytes());
    const bind = k.bind(pipe, [scratch.q, ch.buffer, y, params, W.bias ?? i8.scales, scratch.s, i8.scales]);
    prog.dispatch(pipe, bind, ceil(rows, t.BM), ceil(ch.rows, t.BN));
  }
}
