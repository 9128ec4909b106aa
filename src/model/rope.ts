/**
 * RoPE on the CPU, in float64: the inverse frequencies (with Llama-3 or linear scaling, exactly as
 * transformers computes them) and per-row cos/sin tables that the rope kernel consumes, so no
 * trigonometry runs on the GPU (GPU sin/cos lose accuracy on large angles).
 *
 * @example
 * ```ts
 * import { inverseFrequencies, cosSinTable } from "./rope.ts";
 * const inv = inverseFrequencies(64, 10000, { type: "none" });
 * const cs = cosSinTable(inv, new Uint32Array([0, 1, 2])); // [3, 32, 2]
 * ```
 */
import type { RopeScaling } from "./config.ts";

export function inverseFrequencies(headDim: number, theta: number, scaling: RopeScaling): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  if (scaling.type === "linear") {
    for (let i = 0; i < half; i++) inv[i] /= scaling.factor;
  } else if (scaling.type === "llama3") {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
    const lowWavelen = originalMaxPositions / lowFreqFactor;
    const highWavelen = originalMaxPositions / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) {
        inv[i] = inv[i] / factor;
      } else if (wavelen >= highWavelen) {
        // medium band: smooth interpolation between scaled and unscaled
        const smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/** Interleaved (cos, sin) per row and frequency: [positions.length, headDim/2, 2], as float32. */
export function cosSinTable(inv: Float64Array, positions: ArrayLike<number>): Float32Array {
  const half = inv.length;
  const out = new Float32Array(positions.length * half * 2);
  for (let r = 0; r < positions.length; r++) {
    for (let i = 0; i < half; i++) {
      const a = positions[r] * inv[i];
      out[(r * half + i) * 2] = Math.cos(a);
      out[(r * half + i) * 2 + 1] = Math.sin(a);
    }
  }
  return out;
}
