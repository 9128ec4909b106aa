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
import { uploadF32 } from "../gpu/buffers.ts";

export interface LinearChunk {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

export interface GpuLinear {
  /** Storage format: "f32" today; quantized formats (GGUF) add their own kernels. */
  format: string;
  /** Output features (rows of W, as in HF's [out, in]). */
  rows: number;
  /** Input features. */
  cols: number;
  chunks: LinearChunk[];
  bias?: GPUBuffer;
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

export function destroyLinear(l: GpuLinear): void {
  for (const c of l.chunks) c.buffer.destroy();
  l.bias?.destroy();
}
