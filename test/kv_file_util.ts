/** Shared helpers of the KV-cache file tests (test/kv_file*.test.ts). */
import type { KvDtype, KvMetaInput } from "../src/kv/meta.ts";

/** Deterministic pseudo-random numbers (xorshift32). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function meta(over: Partial<KvMetaInput> = {}): KvMetaInput {
  const tokens = 5;
  return {
    modelFingerprint: "model-0123abcd",
    tokenizerFingerprint: "tok-4567",
    kind: "context",
    tokenIds: Uint32Array.from({ length: tokens }, (_, i) => 1000 + i * 37),
    firstPos: 7,
    prefixHash: "prefix-89ab",
    dtype: "F16",
    layers: 3,
    kvHeads: 2,
    headDim: 4,
    extra: { note: "héllo" },
    ...over,
  };
}

export const ELEMENT: Record<KvDtype, number> = { F16: 2, BF16: 2, F32: 4 };

/** A finite float value for element i of tensor t (exactly representable in F16, BF16 and F32). */
export function value(t: number, i: number): number {
  return ((t * 31 + i * 7) % 61) / 8 - 3.5;
}

function toHalfBits(v: number): number {
  // Exact for the small dyadic values produced by value().
  if (v === 0) return 0;
  const sign = v < 0 ? 0x8000 : 0;
  let a = Math.abs(v);
  let e = 0;
  while (a >= 2) {
    a /= 2;
    e++;
  }
  while (a < 1) {
    a *= 2;
    e--;
  }
  return sign | ((e + 15) << 10) | Math.round((a - 1) * 1024);
}

/** Layer tensors [kvHeads, tokens, headDim] of `m` filled with value(tensorIndex, i). */
export function tensors(m: KvMetaInput): { k: Uint8Array[]; v: Uint8Array[] } {
  const tokens = m.tokenIds.length;
  const n = m.kvHeads * tokens * m.headDim;
  const make = (t: number): Uint8Array => {
    if (m.dtype === "F32") return new Uint8Array(Float32Array.from({ length: n }, (_, i) => value(t, i)).buffer);
    if (m.dtype === "F16") return new Uint8Array(Uint16Array.from({ length: n }, (_, i) => toHalfBits(value(t, i))).buffer);
    const f = Float32Array.from({ length: n }, (_, i) => value(t, i));
    const u = new Uint32Array(f.buffer);
    return new Uint8Array(Uint16Array.from(u, (x) => x >>> 16).buffer);
  };
  const k: Uint8Array[] = [];
  const v: Uint8Array[] = [];
  for (let l = 0; l < m.layers; l++) {
    k.push(make(2 * l));
    v.push(make(2 * l + 1));
  }
  return { k, v };
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The header JSON of a file as a string, and a way to rebuild a file around an edited one. */
export function headerOf(file: Uint8Array): { json: string; payload: Uint8Array } {
  const n = Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
  return { json: new TextDecoder().decode(file.subarray(8, 8 + n)), payload: file.subarray(8 + n) };
}

export function withHeader(json: string, payload: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + payload.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(payload, 8 + h.length);
  return out;
}
