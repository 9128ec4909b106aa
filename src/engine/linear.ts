/**
 * Records one linear layer, y = x W^T (+ bias) or, accumulating, y += x W^T (+ bias), choosing the kernel by W's storage format and the
 * number of rows: matmul_<format> for many rows (prefill; for the float formats a register-blocked kernel
 * whose tiling, MatmulTile, is chosen per adapter and layer shape by matmulTile), and for one row (decode)
 * matvec_<format> (32-256 lanes per row, 1-4 rows per lane group, matvecShape: coalesced reads, what GPUs want);
 * between them, 2..BATCH_MAX_ROWS rows (a batched decode step, a short query) run matvec_batch_<format>: the
 * matvec's lane groups with up to 8 rows of x per workgroup, each weight read once for all of them (batchShape).
 * The one-row kernels can transform their input on the fly (`input`: RMSNorm or SwiGLU), the batched ones RMSNorm
 * only (the pipeline constant NORM), from any row of x (`input.fromRow`); other paths take x as it is (fusesInput;
 * fusesNorm says where forward.ts fuses the norm).
 * CPU adapters (the "rows" layout) run matvec_rows_<format> for any number of rows instead: 4 x 8 output blocks
 * per invocation from global memory, blocks decoded in place (rowsShape; lavapipe turns every load into a
 * per-lane gather, so FMAs per loaded value are what count there).
 * On GPUs, block-quantized weights (GGUF) in a prefill of DEQUANT_MIN_ROWS rows or more are first expanded to f32
 * into a scratch buffer, slab by slab (shaders/dequant_<format>.wgsl), and multiplied by matmul_f32:
 * one pass over the weights instead of decoding each block in every output tile (decoding tile by tile
 * inside the tiled kernel is not done yet); fewer rows run the block formats' own matmul_<format> (64 x 64 tiles).
 * Matrices split into row chunks get one dispatch per chunk. f16 weights of a model that computes in f16
 * (`W.compute === "f16"`) run the `*_f16c` kernels instead: f16 products, f32 accumulation.
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { Kernels } from "../gpu/shaders.ts";
 * import { readBuffer, storageBuffer, uploadF32 } from "../gpu/buffers.ts";
 * import { uploadLinear } from "../model/weights.ts";
 * import { Program } from "./program.ts";
 * import { recordLinear } from "./linear.ts";
 * const gpu = await getGpu();
 * const kernels = new Kernels(gpu.device, gpu.hasF16);
 * // W: 2 outputs x 4 inputs, y = x W^T for one row x = [1, 2, 3, 4]
 * const W = uploadLinear(gpu, "w", Float32Array.from([1, 0, 0, 0, 0, 1, 1, 1]), 2, 4);
 * const x = uploadF32(gpu.device, Float32Array.from([1, 2, 3, 4])), y = storageBuffer(gpu.device, 2 * 4);
 * const prog = new Program(gpu.device);
 * recordLinear(prog, kernels, x, W, y, 1, gpu.isCpu ? "rows" : "lanes");
 * prog.submit();
 * console.log(Array.from(new Float32Array(await readBuffer(gpu.device, y, 8)))); // [1, 9]
 * prog.destroy();
 * ```
 */
import type { Kernels } from "../gpu/shaders.ts";
import type { GpuLinear } from "../model/weights.ts";
import { ModelFormatError } from "../errors.ts";
import { Params, type Program } from "./program.ts";
import { type I8Scratch, type I8Tile, recordLinearI8, usesInt8 } from "./linear_i8.ts";

export type MatvecLayout = "lanes" | "rows";

const ceil = (a: number, b: number) => Math.ceil(a / b);

/** Prefills of at least this many rows dequantize block formats first (those past BATCH_MAX_ROWS on GPUs). */
export const DEQUANT_MIN_ROWS = 16;

/**
 * At most this many rows take the batched matvec (matvec_batch_<format>) in the lanes layout; more go through
 * the tiled matmul. Each 8 rows of x re-read the weights (through L2 when their workgroups run together).
 */
export const BATCH_MAX_ROWS = 32;

/**
 * Whether `rows` rows of x through W take the batched matvec kernels (lanes layout, 2..BATCH_MAX_ROWS rows, K % 8 == 0;
 * not f16-compute layers, whose f16 arithmetic the batched kernels do not have: they keep matmul_f16c).
 */
export function batchesRows(W: GpuLinear, rows: number, layout: MatvecLayout): boolean {
  return layout === "lanes" && rows >= 2 && rows <= BATCH_MAX_ROWS && W.cols % 8 === 0 && kernelFormat(W) !== "f16c";
}

export function isBlockFormat(format: string): boolean {
  return format !== "f32" && format !== "f16";
}

/** Bytes of f32 scratch a forward of `rows` rows needs for `linears` (0 when none is needed). */
export function dequantScratchBytes(linears: GpuLinear[], rows: number, maxBinding: number): number {
  if (rows < DEQUANT_MIN_ROWS) return 0;
  const dequantized = linears.filter((l) => isBlockFormat(l.format) && !batchesRows(l, rows, "lanes"));
  const widest = Math.max(0, ...dequantized.map((l) => Math.max(...l.chunks.map((c) => c.rows)) * l.cols * 4));
  return Math.min(widest, maxBinding, 256 * 1024 * 1024);
}

/** The kernel suffix for W: its storage format, or "f16c" for f16 weights computed in f16. */
export function kernelFormat(W: GpuLinear): string {
  return W.format === "f16" && W.compute === "f16" ? "f16c" : W.format;
}

/**
 * How a decode kernel may transform its input on the fly, sparing the step the dispatch that would produce it:
 * the one-row "lanes" matvec kernels (shaders/include/matvec_input.wgsl) take either transform, the batched
 * matvec kernels (shaders/include/matvec_batch_body.wgsl) RMSNorm only (fusesNorm); recordLinear refuses a
 * transform its kernel does not have.
 */
export interface LinearInput {
  /** x holds [gate | up] (2 * cols floats); the layer multiplies silu(gate) * up (one row only: fusesInput). */
  swiglu?: boolean;
  /**
   * The layer multiplies RMSNorm(x) * weight: x * rsqrt(mean(x^2) + eps) * weight per row of x, `weight` holding
   * cols floats (one row, or the rows batchesRows takes; fusesNorm says where it pays).
   */
  norm?: { weight: GPUBuffer; eps: number };
  /**
   * The first row of x the layer reads (default 0: rows fromRow .. fromRow + rows - 1 of x; y's rows start at 0),
   * for the LM head over a forward's logit rows. The batched matvec kernels only (batchesRows).
   */
  fromRow?: number;
  /**
   * SwiGLU on the output (one row in the lanes layout, W in one chunk as [gate | up], 2I rows): y receives I values
   * silu(gate_c) * up_c, finished in the kernel's epilogue, so the next layer reads them as stored (swigluOutput).
   */
  swigluOut?: boolean;
  /**
   * RoPE and the KV write on the output (the one-row qkv projection in the lanes layout: ropeOutput): q heads are
   * written to y rotated, k heads rotated and v heads as they are into the KV pools, as rope_store.wgsl would (the
   * entry point main_rope of shaders/include/matvec_body.wgsl).
   */
  rope?: RopeOutput;
}

/** What the qkv projection's RoPE epilogue reads and writes (LinearInput.rope). */
export interface RopeOutput {
  /** The row's (cos, sin) per frequency ([headDim / 2, 2] f32) and its KV slot (base, capacity, t, _ u32). */
  cosSin: GPUBuffer;
  dest: GPUBuffer;
  /** The layer's K and V pools and their element type. */
  k: GPUBuffer;
  v: GPUBuffer;
  f16kv: boolean;
  heads: number;
  kvHeads: number;
  headDim: number;
}

/**
 * Whether the qkv projection W can take RoPE and the KV write in its one-row kernel's epilogue (LinearInput.rope):
 * one row in the lanes layout, W in one chunk, a matvec shape of 4 rows per lane group or of 2 with two or more lane
 * groups per workgroup (a rope quad's two halves in one workgroup), and 9 storage buffers per stage on the device.
 */
export function ropeOutput(W: GpuLinear, rows: number, layout: MatvecLayout, maxStorageBuffers: number): boolean {
  const mv = matvecShape(W.rows, W.cols);
  return fusesInput(rows, layout) && W.chunks.length === 1 && (mv.rows === 4 || (mv.rows === 2 && mv.lanes <= 128)) && maxStorageBuffers >= 9;
}

/**
 * Whether W ([gate | up]) can finish SwiGLU in its one-row kernel's epilogue (LinearInput.swigluOut): one row in the
 * lanes layout, W in one chunk with an even row count, a matvec shape of 2 or 4 rows per lane group.
 */
export function swigluOutput(W: GpuLinear, rows: number, layout: MatvecLayout): boolean {
  return fusesInput(rows, layout) && W.chunks.length === 1 && W.rows % 2 === 0 && matvecShape(W.rows, W.cols).rows >= 2;
}

/** Whether a linear layer over `rows` rows in this layout can take any LinearInput transform (SwiGLU included): one row on a GPU. */
export function fusesInput(rows: number, layout: MatvecLayout): boolean {
  return rows === 1 && layout === "lanes";
}

/**
 * Batched rows (batchesRows) through layers of at most this many W rows take RMSNorm in the batched matvec's
 * input stage (fusesNorm); wider ones keep rmsnorm_copy's dispatch. From `ape bench matvec --batch 8|32 --norm`
 * on the H200 (Bun + Dawn, f16, 1B layers; rmsnorm_copy + the batched kernel -> the kernel with the norm, us per
 * call): the fused norm costs the kernel 10-20% more (g's step loaded and multiplied into the weights beside the
 * x loads that bound it, and each workgroup's pass over its x rows) and saves a dispatch of ~7 us, so it pays for
 * short layers only: qkv 23.1 -> 17.0 us (8 rows), 38.1 -> 34.4 (32 rows); gate_up 57.6 -> 54.5 (8 rows) but
 * 140.1 -> 154.5 (32 rows); the LM head 256.1 -> 473-920 (8 rows), 949.3 -> 1113.7 (32 rows). In `bench batch
 * --breakdown` (linears and norms of a step, kernels replayed alone): 8 rows 2135 us with every norm copied,
 * 2060-2096 with qkv fused (this threshold), 2119 with every batched norm fused; 32 rows 5455, 5396-5457, 5909.
 */
export const BATCH_NORM_MAX_ROWS = 8192;

/**
 * Whether `rows` rows of x from row `fromRow` through W take RMSNorm in the kernel's input stage (LinearInput.norm)
 * in a forward pass (forward.ts normedLinear): the one-row kernels (fusesInput, x's row 0 only) and the batched
 * ones (batchesRows, any first row) for layers of at most BATCH_NORM_MAX_ROWS rows. The others (wider batched
 * layers, the prefill matmul, the CPU "rows" layout, f16-compute layers) read the normalised rows from a buffer of
 * their own (rmsnorm_copy). recordLinear takes the norm on any batched rows (their kernels have it for all shapes).
 */
export function fusesNorm(W: GpuLinear, rows: number, layout: MatvecLayout, fromRow = 0): boolean {
  return (fusesInput(rows, layout) && fromRow === 0) || (batchesRows(W, rows, layout) && W.rows <= BATCH_NORM_MAX_ROWS);
}

/**
 * The shape of a one-row "lanes" matvec dispatch (shaders/include/matvec_body.wgsl's override constants):
 * `lanes` lanes share each output row (32, 64, 128 or 256) and each lane group computes `rows` rows
 * (1, 2 or 4), reading every input value once for all of them; a workgroup of 256 threads covers
 * rows * 256 / lanes output rows.
 */
export interface MatvecShape {
  lanes: number;
  rows: number;
  /** Rows 2 and 4: steps of every row per trip of the loop (2 or 4; 2 when left out). */
  unroll?: number;
}

/**
 * The matvec shape for an N x K layer, from `ape bench matvec` on the H200 (Bun + Dawn, f16 weights,
 * 1B layers, each dispatch reading its own copy of the weights from memory; us per call). Reading each input
 * once for several rows is what pays (the input stage, RMSNorm / SwiGLU on the fly, and the loads of x cost as
 * much as a row's weights at 1 row per lane group), and then enough loads in flight per lane; measured
 * 2026-12-04 (12 shapes per layer, the best kept):
 * - the LM head (65536 rows on): 4 rows per lane group of 64 lanes (133.5 us, 3.9 TB/s; 32 lanes 139.6);
 * - wide layers (16K rows on: gate_up): 4 rows of 32 lanes (25.7 us, 2.6 TB/s; every other shape slower);
 * - long rows (K 4096 on: down_proj): 2 rows of 128 lanes (15.6 us; unrolled 4 steps 16.0);
 * - the others, 2 rows of 128 lanes with 4 steps of each row per trip, and 4 rows where N > K (qkv: 8.8 us
 *   vs 10.5 as 2 rows, 2 steps; o_proj 7.3 vs 8.1).
 * Lanes are halved while a lane would get fewer than 2 steps of 8 weights.
 */
export function matvecShape(N: number, K: number): MatvecShape {
  const shape: MatvecShape = N >= 65536 ? { lanes: 64, rows: 4 } : N >= 16384 ? { lanes: 32, rows: 4 } : K >= 4096 ? { lanes: 128, rows: 2 } : { lanes: 128, rows: N > K ? 4 : 2, unroll: 4 };
  while (shape.lanes > 32 && K / 8 / shape.lanes < 2) shape.lanes /= 2;
  return shape;
}

/** A matvec shape's override constants, after checking it against the kernels' limits. */
export function matvecConstants(m: MatvecShape): Record<string, number> {
  const unroll = m.unroll ?? 2;
  if (![32, 64, 128, 256].includes(m.lanes) || ![1, 2, 4].includes(m.rows) || ![2, 4].includes(unroll)) {
    throw new Error(`recordLinear: unsupported matvec shape ${JSON.stringify(m)} (lanes 32, 64, 128 or 256; rows 1, 2 or 4; unroll 2 or 4)`);
  }
  return { LANES: m.lanes, ROWS: m.rows, UNROLL: unroll };
}

/**
 * The shape of a batched matvec dispatch (shaders/include/matvec_batch_body.wgsl's override constants): `lanes`
 * lanes share each W row (8..256), each lane group computes `rows` W rows (1, 2 or 4) against `batch` rows of x
 * (1..8); a workgroup of 256 threads covers rows * 256 / lanes W rows of `batch` x rows.
 */
export interface BatchShape {
  lanes: number;
  rows: number;
  batch: number;
  /** Weight steps per trip of a lane's loop, 1 or 2 (default 2). */
  unroll?: number;
}

/**
 * The batched matvec shape for M rows of x through an N x K layer, 4 W rows per lane group, from `ape bench matvec
 * --batch 8|16|32` on the H200 (Bun + Dawn, f16, 1B layers; us per call in bench/results-h200-batch.txt):
 * - up to 8 rows: the LM head (N >= 65536) one block of x rows, 16 lanes, one step per trip (8 rows: 253 us against
 *   318 as the others); the others blocks of <= 4 x rows re-reading W through L2, 64 lanes for layers of <= 2048 rows
 *   (more workgroups) else 32, two steps per trip (qkv 14.4, o_proj 11.1, gate_up 45.7, down_proj 22.8 us; blocks of
 *   8 hold too many registers for the weights' loads to overlap: 22.1 / 21.5 / 54.1 / 63.5 us);
 * - more rows: blocks of <= 8 x rows, one step per trip; 16 lanes for wide layers (N >= 16384; 32 rows: gate_up 129,
 *   LM head 937 us) and 32 for the 2048-row ones (o_proj 24.7, down_proj 64.9); qkv 16 lanes and blocks of <= 4 (29.6).
 * Lanes are halved while a lane would get fewer than 2 steps of 8 weights.
 */
export function batchShape(N: number, K: number, M: number): BatchShape {
  const blocks = (most: number) => Math.ceil(M / Math.ceil(M / most)); // balanced blocks of at most `most` x rows
  const shape = M <= 8
    ? N >= 65536 ? { lanes: 16, rows: 4, batch: M, unroll: 1 } : { lanes: N <= 2048 ? 64 : 32, rows: 4, batch: blocks(4), unroll: 2 }
    : N >= 16384 ? { lanes: 16, rows: 4, batch: blocks(8), unroll: 1 }
    : N <= 2048 ? { lanes: 32, rows: 4, batch: blocks(8), unroll: 1 }
    : { lanes: 16, rows: 4, batch: blocks(4), unroll: 1 };
  while (shape.lanes > 8 && K / 8 / shape.lanes < 2) shape.lanes /= 2;
  return shape;
}

/** A batch shape's override constants (NORM: RMSNorm in the input stage), after checking it against the kernels' limits. */
export function batchConstants(s: BatchShape, norm = false): Record<string, number> {
  const unroll = s.unroll ?? 2;
  if (![8, 16, 32, 64, 128, 256].includes(s.lanes) || ![1, 2, 4].includes(s.rows) || !Number.isInteger(s.batch) || s.batch < 1 || s.batch > 8 || ![1, 2].includes(unroll)) {
    throw new Error(`recordLinear: unsupported batch shape ${JSON.stringify(s)} (lanes 8..256, a power of two; rows 1, 2 or 4; batch 1..8; unroll 1 or 2)`);
  }
  return { LANES: s.lanes, ROWS: s.rows, BATCH: s.batch, UNROLL: unroll, NORM: norm ? 1 : 0 };
}

/**
 * The shape of a "rows" layout dispatch (CPU adapters; shaders/include/matvec_rows_body.wgsl's override
 * constants): each invocation computes `tm` rows of x (1..8) times `tn` rows of W (4, 8 or 16), `wg` invocations
 * per workgroup.
 */
export interface RowsShape {
  tm: number;
  tn: number;
  wg: number;
}

/**
 * The rows-layout shape for `rows` rows of x: 8 W rows per invocation, and up to 4 x rows. Measured on
 * lavapipe (2 cores, Deno, the default model's 30 q4_1 layers, whole forward passes): 4 x 8 blocks took a
 * 64-row prefill from 3.0 s (dequantize + the tiled matmul_f32) to 2.0-2.2 s, a 12-row one from 1.8 s
 * (matmul_q4_1's 64 x 64 tiles) to 0.45 s, one row from 170 to 125 ms. 8 x 16 blocks ran 1.2-1.6x faster still
 * but take 14-30 s to compile per variant on a cold shader cache (LLVM on the unrolled block); 4 x 4 were
 * 10-20% slower than 4 x 8.
 */
export function rowsShape(rows: number): RowsShape {
  // at most three variants of each kernel to compile: lavapipe compiles a variant at its first dispatch,
  // in 0.6-2 s (1 x 8) and 1.7-4.5 s (4 x 8) on 2 cores, but 14-30 s for 8 x 16 blocks
  return { tm: rows >= 4 ? 4 : rows >= 2 ? 2 : 1, tn: 8, wg: 8 };
}

/** A rows shape's override constants, after checking it against the kernels' limits. */
export function rowsConstants(s: RowsShape): Record<string, number> {
  const ok = (v: number) => Number.isInteger(v) && v >= 1 && v <= 8;
  if (!ok(s.tm) || ![4, 8, 16].includes(s.tn) || ![8, 16, 32, 64].includes(s.wg)) {
    throw new Error(`recordLinear: unsupported rows shape ${JSON.stringify(s)} (tm 1..8; tn 4, 8 or 16; wg 8, 16, 32 or 64)`);
  }
  return { TM: s.tm, TN: s.tn, WG: s.wg };
}

/**
 * The tiling of a float format's prefill matmul (matmul_f32, matmul_f16, matmul_f16c): its pipeline override
 * constants. A workgroup computes a BM x BN tile of y with (BM / TM) * (BN / TN) invocations, each a TM x TN
 * block of outputs in registers; K advances BK at a time through workgroup memory, double-buffered when
 * NB = 2 (shaders/include/matmul_float_body.wgsl describes the layout).
 */
export interface MatmulTile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
  NB: number;
}

/** Whether `device` is a software adapter on the CPU (lavapipe / llvmpipe / SwiftShader), as Gpu.isCpu says. */
export function isCpuDevice(device: GPUDevice): boolean {
  const info = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return !!info && /llvmpipe|lavapipe|swiftshader/i.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
}

/** Workgroup memory bytes of a tiling: NB buffers of BK k-rows of both tiles, each row padded by 4 elements. */
export function tileStorageBytes(t: MatmulTile, fmt: string): number {
  return t.NB * t.BK * (t.BM + 4 + t.BN + 4) * (fmt === "f16c" ? 2 : 4);
}

/**
 * The tiling for a prefill of M rows through an N x K float matrix on `device` (K does not change it yet).
 * GPUs: 128 x 128 tiles of 8 x 8 blocks (256 invocations) where the layer has enough of them to fill a large
 * GPU (~2 workgroups on each of an H200's 132 SMs), else 128 x 64 (8 x 4 blocks, for the short prefills of
 * narrow layers), else 64 x 64 (4 x 4); BK = 16 (32 in f16), double-buffered within the adapter's workgroup
 * memory (48 KiB on the H200).
 * CPU adapters (lavapipe runs a workgroup's invocations as 8-wide SIMD lanes on one thread, and every load
 * from memory is a per-lane gather there, so what counts is FMAs per loaded value): 8 x 8 blocks, 128 columns,
 * single-buffered, and only as many rows per tile (32, 64 or 128) as the prefill has, since the demo's
 * prefills are 16-64 rows.
 */
export function matmulTile(device: GPUDevice, M: number, N: number, _K: number, fmt: string, unrolled = false): MatmulTile {
  if (isCpuDevice(device)) return { BM: M <= 32 ? 32 : M <= 64 ? 64 : 128, BN: 128, BK: 16, TM: 8, TN: 8, NB: 1 };
  // workgroups that fill an H200-class GPU twice over; with the kernels' loops unrolled (GPUs: Kernels.unroll) the
  // 128 x 128 tile wins from 256 of them: 2048 x 2048 outputs (o_proj, down_proj at 2048 rows) 581 / 3758 us per call
  // against 731 / 4390 in 128 x 64 tiles (`bench matmul --formats f16c --tile`, Deno on the H200; Bun + Dawn, f16:
  // 564 / 2249 unrolled in 128 x 128 against 756 / 3033 as written in 128 x 64; bench/results-h200-engine.txt run 17)
  const fill = unrolled ? 256 : 264;
  const tiles = (bm: number, bn: number) => ceil(M, bm) * ceil(N, bn);
  const bk = fmt === "f16c" ? 32 : 16;
  const pick = (t: MatmulTile) => (tileStorageBytes(t, fmt) <= device.limits.maxComputeWorkgroupStorageSize ? t : { ...t, NB: 1 });
  if (tiles(128, 128) >= fill) return pick({ BM: 128, BN: 128, BK: bk, TM: 8, TN: 8, NB: 2 });
  if (tiles(128, 64) >= fill) return pick({ BM: 128, BN: 64, BK: bk, TM: 8, TN: 4, NB: 2 });
  return pick({ BM: 64, BN: 64, BK: bk, TM: 4, TN: 4, NB: 2 });
}

/** A tiling's override constants, after checking it against the kernels' limits and the device's. */
export function tileConstants(device: GPUDevice, t: MatmulTile, fmt: string): Record<string, number> {
  const wg = (t.BM / t.TM) * (t.BN / t.TN);
  const bad =
    ![4, 8].includes(t.TM) || ![4, 8].includes(t.TN) || ![1, 2].includes(t.NB) || t.BK % 4 !== 0 || t.BK <= 0 ||
    t.BM % t.TM !== 0 || t.BN % t.TN !== 0 || t.BM <= 0 || t.BN <= 0 ||
    (t.NB === 2 && ((t.BM * t.BK) / 4 > 4 * wg || (t.BN * t.BK) / 4 > 4 * wg)) || wg > device.limits.maxComputeInvocationsPerWorkgroup ||
    tileStorageBytes(t, fmt) > device.limits.maxComputeWorkgroupStorageSize;
  if (bad) throw new Error(`recordLinear: unsupported matmul tiling ${JSON.stringify(t)} for ${fmt} (${wg} invocations, ${tileStorageBytes(t, fmt)} bytes of workgroup memory)`);
  return { BM: t.BM, BN: t.BN, BK: t.BK, TM: t.TM, TN: t.TN, NB: t.NB };
}

export function recordLinear(
  prog: Program, k: Kernels, x: GPUBuffer, W: GpuLinear, y: GPUBuffer, rows: number, layout: MatvecLayout, scratch?: GPUBuffer,
  accumulate = false, input: LinearInput = {}, matvec?: MatvecShape | RowsShape | BatchShape, tile?: MatmulTile, i8?: I8Scratch, i8Tile?: I8Tile,
): void {
  // kernel flags: bit 0 adds the bias, bit 1 adds the result to y (the residual add, fused), bits 2 and 3
  // transform the input (SwiGLU, RMSNorm)
  const flags = (W.bias ? 1 : 0) | (accumulate ? 2 : 0) | (input.swiglu ? 4 : 0) | (input.norm ? 8 : 0) | (input.swigluOut ? 16 : 0);
  const lanes = fusesInput(rows, layout); // the matvec_<fmt> kernels: input stage, norm weight at binding 5
  const batched = batchesRows(W, rows, layout); // the matvec_batch_<fmt> kernels: RMSNorm, x row offset, norm weight at binding 5
  const fromRow = input.fromRow ?? 0;
  if (W.cols % 4 !== 0) throw new ModelFormatError(`a linear layer has ${W.cols} input features; apekit needs a multiple of 4`);
  if (input.swigluOut && (!lanes || W.chunks.length !== 1 || W.rows % 2 !== 0 || accumulate || input.swiglu)) {
    throw new Error(`recordLinear: SwiGLU on the output needs one row in the lanes layout, W in one chunk with an even row count, no accumulate and no SwiGLU input (${rows} rows, ${layout}, ${W.chunks.length} chunks, ${W.rows} rows of W)`);
  }
  // compute "int8": a prefill's rows through W's int8 copy on integer tensor cores (linear_i8.ts; SwiGLU in its quantize)
  if (layout === "lanes" && !input.norm && !input.swigluOut && !input.rope && fromRow === 0 && i8 && usesInt8(W, rows)) {
    return recordLinearI8(prog, k, x, W, y, rows, i8, accumulate, i8Tile, !!input.swiglu);
  }
  if (input.swiglu && !lanes) throw new Error(`recordLinear: SwiGLU in the input stage needs one row in the lanes layout, or the int8 kernels (${rows} rows, ${layout})`);
  const rope = input.rope;
  if (rope && (!lanes || W.chunks.length !== 1 || accumulate || input.swiglu || input.swigluOut || W.rows !== (rope.heads + 2 * rope.kvHeads) * rope.headDim || rope.headDim % 4 !== 0)) {
    throw new Error(`recordLinear: RoPE on the output needs the qkv projection ((heads + 2 kvHeads) * headDim rows, one chunk) of one row in the lanes layout, no accumulate, no SwiGLU (${rows} rows, ${layout}, ${W.chunks.length} chunks, ${W.rows} rows of W)`);
  }
  if (input.norm && !lanes && !batched) {
    throw new Error(`recordLinear: RMSNorm in the input stage needs one row or 2..${BATCH_MAX_ROWS} rows through the batched matvec in the lanes layout (${rows} rows, ${layout}, ${kernelFormat(W)})`);
  }
  if (!Number.isInteger(fromRow) || fromRow < 0 || (fromRow > 0 && !batched)) {
    throw new Error(`recordLinear: x from row ${fromRow} needs 2..${BATCH_MAX_ROWS} rows through the batched matvec in the lanes layout (${rows} rows, ${layout})`);
  }
  if (lanes && W.format === "f16" && W.cols % 8 !== 0) {
    throw new ModelFormatError(`an f16 linear layer has ${W.cols} input features; apekit's f16 kernels need a multiple of 8`);
  }
  if (rows > 1 && ceil(rows, 32) > 65535) throw new Error(`recordLinear: ${rows} rows exceed one dispatch of the matmul kernels`);
  if (batched) { // a few rows on a GPU: each weight read once for all of them
    for (const ch of W.chunks) {
      const shape = matvec && "batch" in matvec ? matvec : batchShape(ch.rows, W.cols, rows);
      const pipe = k.pipeline(`matvec_batch_${W.format}`, batchConstants(shape, !!input.norm));
      const params = prog.uniform(new Params().u(rows, ch.rows, W.cols, W.rows, ch.rowStart, flags).f(input.norm?.eps ?? 0).u(fromRow).bytes());
      const groups = ceil(ch.rows, (shape.rows * 256) / shape.lanes) * ceil(rows, shape.batch);
      const bind = k.bind(pipe, [x, ch.buffer, y, params, W.bias ?? ch.buffer, input.norm?.weight ?? x]);
      prog.dispatch(pipe, bind, Math.min(groups, 65535), ceil(groups, 65535));
    }
    return;
  }
  if (scratch && layout === "lanes" && rows >= DEQUANT_MIN_ROWS && isBlockFormat(W.format)) {
    const dq = k.pipeline(`dequant_${W.format}`);
    const slab = Math.max(1, Math.floor(scratch.size / (W.cols * 4)));
    for (const ch of W.chunks) {
      for (let s = 0; s < ch.rows; s += slab) {
        const n = Math.min(slab, ch.rows - s);
        const groups = ceil((n * W.cols) / 8, 64);
        prog.dispatch(dq, k.bind(dq, [ch.buffer, scratch, prog.uniform(new Params().u(n, W.cols, s).bytes())]), Math.min(groups, 65535), ceil(groups, 65535));
        const params = prog.uniform(new Params().u(rows, n, W.cols, W.rows, ch.rowStart + s, flags).bytes());
        const t = tile ?? matmulTile(k.device, rows, n, W.cols, "f32", k.unroll);
        const mm = k.pipeline("matmul_f32", tileConstants(k.device, t, "f32"));
        prog.dispatch(mm, k.bind(mm, [x, scratch, y, params, W.bias ?? scratch]), ceil(n, t.BN), ceil(rows, t.BM));
      }
    }
    return;
  }
  const fmt = kernelFormat(W);
  if (layout === "rows") { // CPU adapters: one kernel for any number of rows, blocks decoded in place
    const shape = matvec && "tm" in matvec ? matvec : rowsShape(rows);
    const pipe = k.pipeline(`matvec_rows_${fmt}`, rowsConstants(shape));
    for (const ch of W.chunks) {
      const params = prog.uniform(new Params().u(rows, ch.rows, W.cols, W.rows, ch.rowStart, flags).bytes());
      prog.dispatch(pipe, k.bind(pipe, [x, ch.buffer, y, params, W.bias ?? ch.buffer]), ceil(ceil(ch.rows, shape.tn), shape.wg), ceil(rows, shape.tm));
    }
    return;
  }
  const name = rows > 1 ? `matmul_${fmt}` : `matvec_${fmt}`;
  for (const ch of W.chunks) {
    const mv = lanes ? (matvec && "lanes" in matvec && !("batch" in matvec) ? matvec : matvecShape(ch.rows, W.cols)) : undefined;
    if (input.swigluOut && mv!.rows < 2) throw new Error(`recordLinear: SwiGLU on the output needs 2 or 4 rows per lane group (got ${mv!.rows})`);
    if (rope && !(mv!.rows === 4 || (mv!.rows === 2 && mv!.lanes <= 128))) throw new Error(`recordLinear: RoPE on the output needs 4 rows per lane group, or 2 with <= 128 lanes (got ${JSON.stringify(mv)})`);
    // the float formats' prefill kernels take their tiling as override constants; the block formats' tiles are fixed (64 x 64)
    const t = rows > 1 && !isBlockFormat(W.format) ? tile ?? matmulTile(k.device, rows, ch.rows, W.cols, fmt, k.unroll) : undefined;
    // (f16 arithmetic: RMSNorm's mean before the weights, so that the input reaches f16 normalised; matvec_input.wgsl)
    const mvConstants = mv && { ...matvecConstants(mv), ...(fmt === "f16c" ? { NORM_FIRST: 1 } : {}) };
    const pipe = mvConstants ? k.pipeline(name, mvConstants, rope ? "main_rope" : "main") : t ? k.pipeline(name, tileConstants(k.device, t, fmt)) : k.pipeline(name);
    const params = prog.uniform(new Params().u(rows, ch.rows, W.cols, W.rows, ch.rowStart, flags).f(input.norm?.eps ?? 0).bytes());
    const buffers = [x, ch.buffer, y, params, W.bias ?? ch.buffer];
    // main_rope's own bindings 6..10: cos/sin, the KV slot, the K and V pools, (heads, kvHeads, headDim, f16kv)
    const ropeBind = rope ? [rope.cosSin, rope.dest, rope.k, rope.v, prog.uniform(new Params().u(rope.heads, rope.kvHeads, rope.headDim, rope.f16kv ? 1 : 0).bytes())] : [];
    const bind = k.bind(pipe, lanes ? [...buffers, input.norm?.weight ?? x, ...ropeBind] : buffers);
    if (rows > 1) prog.dispatch(pipe, bind, ceil(ch.rows, t?.BN ?? 64), ceil(rows, t?.BM ?? 64));
    else {
      const groups = ceil(ch.rows, (mv!.rows * 256) / mv!.lanes);
      prog.dispatch(pipe, bind, Math.min(groups, 65535), ceil(groups, 65535));
    }
  }
}
