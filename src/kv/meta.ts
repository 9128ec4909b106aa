/**
 * Types of KV-cache files (specified in wasm/src/kvfile.rs): the metadata a file carries, its tensor table and
 * layout, and the `expect` check a loader runs against the model that loads it.
 *
 * @example
 * ```ts
 * import { checkExpect } from "./meta.ts";
 * import { CacheMismatchError } from "../errors.ts";
 * checkExpect({ modelFingerprint: "a" } as never, { modelFingerprint: "a" }); // matches: returns
 * try {
 *   checkExpect({ modelFingerprint: "a" } as never, { modelFingerprint: "b" });
 * } catch (e) {
 *   console.log(e instanceof CacheMismatchError, (e as Error).message); // true modelFingerprint: the file was made for "a", ...
 * }
 * ```
 */
import { CacheMismatchError } from "../errors.ts";

export const KV_FORMAT = "apekit.kv";
export const KV_FORMAT_VERSION = 1;

export type KvDtype = "F16" | "BF16" | "F32";
export type KvKind = "prefix" | "context";

/** Bytes per element of each dtype. */
export const KV_DTYPE_SIZE: Record<KvDtype, number> = { F16: 2, BF16: 2, F32: 4 };

/** What a writer is given: everything but the checksums and the derived token count. */
export interface KvMetaInput {
  /** Changes when weights, architecture or RoPE settings change. */
  modelFingerprint: string;
  tokenizerFingerprint: string;
  /** "prefix": the shared prefix; "context": one context encoded after a prefix. */
  kind: KvKind;
  tokenIds: Uint32Array | readonly number[];
  /** Position of the first token (keys are stored after RoPE at these positions). */
  firstPos: number;
  /** Hash of the prefix this block was encoded after ("" when none). */
  prefixHash?: string;
  dtype: KvDtype;
  layers: number;
  kvHeads: number;
  headDim: number;
  /** Caller-defined `__metadata__` entries (keys must not be the format's own). */
  extra?: Record<string, string>;
}

/** What a file says about itself. */
export interface KvMeta {
  format: typeof KV_FORMAT;
  formatVersion: number;
  modelFingerprint: string;
  tokenizerFingerprint: string;
  kind: KvKind;
  tokenIds: Uint32Array;
  firstPos: number;
  prefixHash: string;
  dtype: KvDtype;
  layers: number;
  kvHeads: number;
  headDim: number;
  tokens: number;
  /** xxh3-64 of the payload bytes, 16 lowercase hex digits. */
  checksum: string;
  /** xxh3-64 of the canonical metadata (everything but the two checksums). */
  metaChecksum: string;
  extra: Record<string, string>;
}

/** One tensor: `k.<layer>` or `v.<layer>`, shape [kvHeads, tokens, headDim], at an absolute offset. */
export interface KvTensorInfo {
  name: string;
  layer: number;
  kv: "k" | "v";
  dtype: KvDtype;
  shape: [number, number, number];
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
}

export interface KvLayout {
  /** 8 + N: where the payload starts (a multiple of 8). */
  headerLength: number;
  payloadLength: number;
  /** The whole file. */
  byteLength: number;
  /** Bytes of each tensor (they all have the same shape). */
  tensorByteLength: number;
}

/** What the loader requires of a file; each field given must match or CacheMismatchError names it. */
export interface KvExpect {
  modelFingerprint?: string;
  tokenizerFingerprint?: string;
  kind?: KvKind;
  prefixHash?: string;
  firstPos?: number;
  dtype?: KvDtype;
  layers?: number;
  kvHeads?: number;
  headDim?: number;
  tokenIds?: Uint32Array | readonly number[];
}

/** The description the wasm module returns (token ids travel separately). */
export interface KvDescription {
  meta: Omit<KvMeta, "tokenIds" | "checksum"> & { checksum: string | null };
  layout: KvLayout;
  tensors: KvTensorInfo[];
}

const SCALARS = ["modelFingerprint", "tokenizerFingerprint", "kind", "prefixHash", "firstPos", "dtype", "layers", "kvHeads", "headDim"] as const;

/** Throws CacheMismatchError naming the first field of `expect` that `meta` does not match. */
export function checkExpect(meta: KvMeta, expect: KvExpect | undefined): void {
  if (!expect) return;
  for (const key of SCALARS) {
    const want = expect[key];
    if (want !== undefined && meta[key] !== want) {
      throw new CacheMismatchError(`${key}: the file was made for ${JSON.stringify(meta[key])}, the loader expects ${JSON.stringify(want)}`);
    }
  }
  if (expect.tokenIds !== undefined) {
    const want = expect.tokenIds;
    const got = meta.tokenIds;
    let i = 0;
    while (i < want.length && i < got.length && want[i] === got[i]) i++;
    if (i < want.length || i < got.length) {
      throw new CacheMismatchError(
        want.length !== got.length && i === Math.min(want.length, got.length)
          ? `tokenIds: the file holds ${got.length} tokens, the loader expects ${want.length}`
          : `tokenIds: token ${i} is ${got[i]} in the file, the loader expects ${want[i]}`,
      );
    }
  }
}

/** A KvMeta from the wasm module's description, its fields in a reading order. */
export function metaFromDescription(d: KvDescription["meta"], tokenIds: Uint32Array): KvMeta {
  return {
    format: d.format,
    formatVersion: d.formatVersion,
    kind: d.kind,
    modelFingerprint: d.modelFingerprint,
    tokenizerFingerprint: d.tokenizerFingerprint,
    prefixHash: d.prefixHash,
    firstPos: d.firstPos,
    tokens: d.tokens,
    tokenIds,
    dtype: d.dtype,
    layers: d.layers,
    kvHeads: d.kvHeads,
    headDim: d.headDim,
    checksum: d.checksum ?? "",
    metaChecksum: d.metaChecksum,
    extra: d.extra,
  };
}

/** The wasm module's JSON description, with every object's fields in a reading order. */
export function parseDescription(json: string, tokenIds: Uint32Array): { meta: KvMeta; layout: KvLayout; tensors: KvTensorInfo[] } {
  const d = JSON.parse(json) as KvDescription;
  const l = d.layout;
  return {
    meta: metaFromDescription(d.meta, tokenIds),
    layout: { byteLength: l.byteLength, headerLength: l.headerLength, payloadLength: l.payloadLength, tensorByteLength: l.tensorByteLength },
    tensors: d.tensors.map((t) => ({ name: t.name, layer: t.layer, kv: t.kv, dtype: t.dtype, shape: t.shape, offset: t.offset, byteLength: t.byteLength })),
  };
}

/** `meta` as plain JSON (token ids as an array), for printing. */
export function metaToJson(meta: KvMeta): Record<string, unknown> {
  return { ...meta, tokenIds: Array.from(meta.tokenIds) };
}
