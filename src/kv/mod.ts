/**
 * KV-cache files: a safetensors file (tensors `k.<layer>` / `v.<layer>`, shape
 * [kv_heads, tokens, head_dim], the engine's per-block GPU layout) with metadata and xxh3
 * checksums, written and verified by the wasm module in streaming fashion. The format is specified
 * in the module comment of wasm/src/kvfile.rs.
 *
 * Saving a block as the engine streams it (one layer's K/V read back at a time, no full copy):
 * ```ts
 * // const w = await KvFileWriter.create(path, meta);
 * // for (let l = 0; l < layers; l++) await w.writeLayer(l, await readBack(k[l]), await readBack(v[l]));
 * // const saved = await w.close(); // checksum patched in, file renamed into place
 * ```
 * Loading one: `openKvFile(bytes, { expect })` (in memory; `queue.writeBuffer(pool, offset,
 * f.k(l))` per tensor), `readKvFile(path | stream)`, or `KvReader` piece by piece.
 *
 * @example
 * ```ts
 * import { openKvFile, serializeKv } from "./mod.ts";
 * const meta = { modelFingerprint: "m", tokenizerFingerprint: "t", kind: "prefix" as const, tokenIds: [1],
 *   firstPos: 0, dtype: "F32" as const, layers: 1, kvHeads: 1, headDim: 4 };
 * const s = serializeKv(meta, { k: [new Float32Array(4)], v: [new Float32Array(4)] });
 * console.log(openKvFile(s.toBytes()).meta.checksum === s.meta.checksum); // true
 * ```
 */
export * from "./meta.ts";
export { KvFileWriter, KvWriter, serializeKv, writeKvFile } from "./write.ts";
export type { KvLayerSource, KvSerialized, KvTensors } from "./write.ts";
export { inspectKv, KvReader, openKvFile, readKvFile, verifyKv } from "./read.ts";
export type { KvFile, KvInspection, KvOpenOptions, KvPiece, KvReaderOptions, KvSource } from "./read.ts";
export { xxh3Hex } from "./wasm.ts";
