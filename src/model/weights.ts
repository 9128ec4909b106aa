/**
 * Model weights on the GPU. A linear layer is a GpuLinear: its storage format names the matmul
 * kernels that read it (shaders/matmul_<format>.wgsl for many rows, matvec_<format>.wgsl for one),
 * and matrices larger than the adapter's binding limit are split into row chunks, each its own
 * buffer, so any size loads (e.g. a 151,936 x 896 embedding on lavapipe's 128 MiB limit).
 *
 * @example
 * ```ts
 * import { getGpu } from "../gpu/device.ts";
 * import { uploadLinear } from "./weights.ts";
 * const gpu = await getGpu();
 * const w = uploadLinear(gpu, "w", new Float32Array(6), 2, 3); // 2 x 3, f32
 * ```
 */
import type { Gpu } from "../gpu/device.ts";
import { uploadBytes, uploadF32 } from "../gpu/buffers.ts";

export interface LinearChunk {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

export interface GpuLinear {
  /** Storage format: "f32", "f16", or a GGUF block format ("q8_0", "q4_1", "q4_k", ...: see quant.ts). */
  format: string;
  /** Output features (rows of W, as in HF's [out, in]). */
  rows: number;
  /** Input features. */
  cols: number;
  chunks: LinearChunk[];
  bias?: GPUBuffer;
  /** Arithmetic of its kernels for f16 storage: "f16" runs the f16-compute `*_f16c` kernels (needs
   * shader-f16); absent or "f32", every format computes in f32. */
  compute?: "f32" | "f16";
  /** An int8 copy for prefill on integer tensor cores (compute "int8": src/engine/linear_i8.ts attachInt8). */
  i8?: LinearI8;
}

/** The int8 copy of a linear weight: rows padded to matmul_i8's tile, K to Kp (zeros), one f32 scale per row. */
export interface LinearI8 {
  chunks: LinearChunk[];
  /** f32 [rows]: row n's scale (its int8 values times it approximate W's row n). */
  scales: GPUBuffer;
  /** K rounded up to the int8 matmul's k step: an int8 row's length in bytes. */
  Kp: number;
}

/** Rows per chunk so that one chunk fits a binding. */
export function rowsPerChunk(gpu: Gpu, bytesPerRow: number): number {
  return Math.max(1, Math.floor(gpu.limits.maxStorageBufferBindingSize / bytesPerRow));
}

/** Uploads an f32 [rows, cols] matrix, split into binding-sized row chunks. */
export function uploadLinear(gpu: Gpu, name: string, w: Float32Array, rows: number, cols: number, bias?: Float32Array): GpuLinear {
  const per = rowsPerChunk(gpu, cols * 4);
  const chunks: LinearChunk[] = [];
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    chunks.push({ buffer: uploadF32(gpu.device, w.subarray(r * cols, (r + n) * cols), `${name}[${r}]`), rowStart: r, rows: n });
  }
  return { format: "f32", rows, cols, chunks, bias: bias ? uploadF32(gpu.device, bias, `${name}.bias`) : undefined };
}

/**
 * Uploads a block-quantized [rows, cols] matrix as its raw blocks (`rowBytes` bytes per row, rows
 * contiguous), split into binding-sized row chunks. Each chunk gets 4 bytes of zero padding so a
 * kernel may read one u32 word past a block that ends unaligned.
 */
export function uploadQuantLinear(
  gpu: Gpu, name: string, format: string, data: Uint8Array, rows: number, cols: number, rowBytes: number, bias?: Float32Array,
): GpuLinear {
  const per = Math.max(1, Math.floor((gpu.limits.maxStorageBufferBindingSize - 4) / rowBytes));
  const chunks: LinearChunk[] = [];
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    const padded = new Uint8Array(n * rowBytes + 4);
    padded.set(data.subarray(r * rowBytes, (r + n) * rowBytes));
    chunks.push({ buffer: uploadBytes(gpu.device, padded, `${name}[${r}]`), rowStart: r, rows: n });
  }
  return { format, rows, cols, chunks, bias: bias ? uploadF32(gpu.device, bias, `${name}.bias`) : undefined };
}

/** Concatenates row-major [rows_i, cols] float matrices along rows (fused qkv, fused gate+up). */
export function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Concatenates byte arrays (raw quantized rows of fused projections). */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

export function destroyLinear(l: GpuLinear): void {
  for (const c of l.chunks) c.buffer.destroy();
  l.bias?.destroy();
  for (const c of l.i8?.chunks ?? []) c.buffer.destroy();
  l.i8?.scales.destroy();
}
