/**
 * Host-side tensors as read from model files, before upload: raw bytes plus dtype and shape. Float
 * formats convert to f32 here; quantized formats (GGUF) stay as raw blocks for their own kernels.
 *
 * @example
 * ```ts
 * import { toF32 } from "./tensor.ts";
 * const t = { name: "w", dtype: "F32", shape: [2], data: new Uint8Array(new Float32Array([1, 2]).buffer) };
 * console.log(toF32(t)); // Float32Array [1, 2]
 * ```
 */
import { ModelFormatError } from "../errors.ts";

export type FloatDType = "F32" | "F16" | "BF16";
export type DType = FloatDType | "F64" | string;

export interface HostTensor {
  name: string;
  dtype: DType;
  /** Outermost first, as in safetensors / PyTorch: a linear weight is [out, in]. */
  shape: number[];
  data: Uint8Array;
}

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = f16ToF32(i);
  return t;
})();

/** The tensor's values as float32 (exact for F32, F16 and BF16). */
export function toF32(t: HostTensor): Float32Array {
  const n = numel(t.shape);
  const { data } = t;
  const aligned = (bytes: number) => {
    if (data.byteLength !== n * bytes) {
      throw new ModelFormatError(`tensor '${t.name}': ${data.byteLength} bytes for shape [${t.shape}] of ${t.dtype}`);
    }
    return data.byteOffset % bytes === 0 ? data : data.slice();
  };
  switch (t.dtype) {
    case "F32": {
      const d = aligned(4);
      return new Float32Array(d.buffer, d.byteOffset, n).slice();
    }
    case "F16": {
      const d = aligned(2);
      const h = new Uint16Array(d.buffer, d.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = F16_TABLE[h[i]];
      return out;
    }
    case "BF16": {
      const d = aligned(2);
      const h = new Uint16Array(d.buffer, d.byteOffset, n);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = h[i] << 16;
      return new Float32Array(out.buffer);
    }
    default:
      throw new ModelFormatError(`tensor '${t.name}': dtype ${t.dtype} cannot be converted to f32`);
  }
}
