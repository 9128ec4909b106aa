/**
 * Random weights made straight in their storage format, fast enough for a 1B-parameter model: raw
 * random bits, with f16 exponents and block scales fixed to small values so every product stays
 * finite. Shared by `ape bench engine` and `ape bench matvec`.
 *
 * @example
 * ```ts
 * import { randomWeightBytes } from "./random_weights.ts";
 * const q = randomWeightBytes("Q4_1", 32 * 64); // 64 blocks of 20 bytes
 * ```
 */
import { FORMATS } from "../src/model/quant.ts";

/** Block layouts the benchmarks generate: bytes per 32 weights, and the f16 scale words (offset, value) set in each block. */
const BLOCKS: Record<string, { bytes: number; scales: [number, number][] }> = {
  Q8_0: { bytes: 34, scales: [[0, 0x1800]] },
  Q4_1: { bytes: 20, scales: [[0, 0x1400], [2, 0x9c00]] },
  Q4_0: { bytes: 18, scales: [[0, 0x1c00]] },
};

/** The GGML types `randomWeightBytes` makes. */
export const RANDOM_TYPES = ["F32", "F16", ...Object.keys(BLOCKS)];

/** A xorshift32 stream of random words (one generator per call site; seeded for repeatable runs). */
export function randomWords(seed = 0x9e3779b9): (words: number) => Uint32Array {
  let s = seed;
  return (words) => {
    const u = new Uint32Array(words);
    for (let i = 0; i < words; i++) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      u[i] = s >>> 0;
    }
    return u;
  };
}

/**
 * `n` random weights of GGML type `type` (F32, F16, Q8_0, Q4_1, Q4_0) as stored bytes: F32 uniform in
 * ±0.02 (or all 1 with `ones`, for norm weights), F16 in ±[2^-7, 2^-6), blocks with small scales.
 */
export function randomWeightBytes(type: string, n: number, bits = randomWords(), ones = false): Uint8Array {
  if (type === "F32") {
    const u = bits(n), f = new Float32Array(u.buffer);
    for (let i = 0; i < n; i++) f[i] = ones ? 1 : (u[i] / 4294967296 - 0.5) * 0.04;
    return new Uint8Array(f.buffer);
  }
  if (type === "F16") {
    const u = bits(Math.ceil(n / 2));
    for (let i = 0; i < u.length; i++) u[i] = (u[i] & 0x83ff83ff) | 0x20002000; // ±[2^-7, 2^-6)
    return new Uint8Array(u.buffer, 0, n * 2);
  }
  const b = BLOCKS[type];
  if (!b || FORMATS[type].blockBytes !== b.bytes) throw new Error(`randomWeightBytes: no generator for ${type}`);
  const blocks = n / 32;
  const data = new Uint8Array(bits(Math.ceil((blocks * b.bytes) / 4)).buffer, 0, blocks * b.bytes);
  for (let k = 0; k < blocks; k++) {
    for (const [o, v] of b.scales) {
      data[k * b.bytes + o] = v & 0xff;
      data[k * b.bytes + o + 1] = v >> 8;
    }
  }
  return data;
}
