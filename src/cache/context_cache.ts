/**
 * The context cache behind `Ape.cache`: content-addressed KV blocks in three tiers.
 * - GPU: blocks in the engine's KV pool under its byte budget, least recently used evicted first
 *   (never a block pinned by a running request);
 * - host: serialized KV files in memory under a byte budget (LRU);
 * - store: the persistent KvStore (file folder, Redis, memory).
 * A store entry that is corrupt or belongs to another model/tokenizer/prefix is never used: it is
 * counted, re-encoded from its tokens and overwritten.
 *
 * @example
 * ```ts
 * import { ContextCache } from "./context_cache.ts";
 * // const cache = new ContextCache(engine, store, codec, { model, tokenizer, prefixHash, prefix });
 * // const blocks = await cache.acquire([{ id, ids }]); ...; cache.release(blocks);
 * ```
 */
import { createHash } from "node:crypto";
import type { Engine } from "../engine/engine.ts";
import type { KvBlock } from "../engine/kv_pool.ts";
import { type HostKv, readBlock, writeBlock } from "../engine/kv_transfer.ts";
import { encodeContexts, type EncodedPrefix } from "../ape/ape.ts";
import { ApeError } from "../errors.ts";
import type { KvStore } from "./store.ts";

export interface KvCodec {
  encode(meta: ContextMeta, kv: HostKv): Uint8Array;
  /** Verifies and decodes; throws CacheCorruptError / CacheMismatchError. */
  decode(bytes: Uint8Array, expect: { modelFingerprint: string; tokenizerFingerprint: string; prefixHash: string }): { meta: ContextMeta; kv: HostKv };
}

export interface ContextMeta {
  modelFingerprint: string;
  tokenizerFingerprint: string;
  prefixHash: string;
  kind: "prefix" | "context";
  tokenIds: Uint32Array;
  firstPos: number;
}

export interface CacheStats {
  hits: { gpu: number; host: number; store: number };
  misses: number;
  /** Store entries that were corrupt or mismatched, re-encoded instead of used. */
  rejected: number;
  evictions: { gpu: number; host: number };
  bytes: { gpu: number; host: number };
  entries: { gpu: number; host: number };
}

export interface ContextRef {
  id: string;
  ids: Uint32Array;
}

/** Content address of a context: the same text gives the same id on every machine. */
export function contextId(modelFingerprint: string, tokenizerFingerprint: string, prefixHash: string, ids: Uint32Array, dtype = "F32"): string {
  const h = createHash("sha256");
  h.update(`apekit-context-v1|${modelFingerprint}|${tokenizerFingerprint}|${prefixHash}|${dtype}|`);
  h.update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
  return h.digest("hex").slice(0, 40);
}

export function prefixHash(modelFingerprint: string, ids: Uint32Array): string {
  const h = createHash("sha256");
  h.update(`apekit-prefix-v1|${modelFingerprint}|`);
  h.update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
  return h.digest("hex").slice(0, 40);
}

interface GpuEntry { block: KvBlock; pins: number; used: number }

export class ContextCache {
  #gpu = new Map<string, GpuEntry>();
  #host = new Map<string, Uint8Array>(); // insertion order = LRU order
  #hostBytes = 0;
  #clock = 0;
  readonly stats: CacheStats = {
    hits: { gpu: 0, host: 0, store: 0 }, misses: 0, rejected: 0, evictions: { gpu: 0, host: 0 },
    bytes: { gpu: 0, host: 0 }, entries: { gpu: 0, host: 0 },
  };
  /** Problems met (rejected entries), for callers that want to report them. */
  readonly problems: string[] = [];

  constructor(
    readonly engine: Engine,
    readonly store: KvStore,
    readonly codec: KvCodec,
    readonly scope: { modelFingerprint: string; tokenizerFingerprint: string; prefixHash: string; prefix: EncodedPrefix },
    readonly hostBudgetBytes = 512 * 1024 * 1024,
  ) {
    engine.pool.onFull = () => this.#evictGpu();
  }

  #evictGpu(): boolean {
    let victim: [string, GpuEntry] | undefined;
    for (const e of this.#gpu) if (e[1].pins === 0 && (!victim || e[1].used < victim[1].used)) victim = e;
    if (!victim) return false;
    this.#gpu.delete(victim[0]);
    this.engine.pool.release(victim[1].block);
    this.stats.evictions.gpu++;
    this.#updateSizes();
    return true;
  }

  #hostPut(id: string, bytes: Uint8Array): void {
    if (bytes.byteLength > this.hostBudgetBytes) return;
    if (this.#host.has(id)) this.#hostBytes -= this.#host.get(id)!.byteLength;
    this.#host.delete(id);
    this.#host.set(id, bytes);
    this.#hostBytes += bytes.byteLength;
    for (const [k, v] of this.#host) {
      if (this.#hostBytes <= this.hostBudgetBytes) break;
      this.#host.delete(k);
      this.#hostBytes -= v.byteLength;
      this.stats.evictions.host++;
    }
    this.#updateSizes();
  }

  #updateSizes(): void {
    let gpu = 0;
    for (const e of this.#gpu.values()) gpu += e.block.capacity * this.engine.pool.bytesPerToken;
    this.stats.bytes = { gpu, host: this.#hostBytes };
    this.stats.entries = { gpu: this.#gpu.size, host: this.#host.size };
  }

  #load(id: string, bytes: Uint8Array, ids: Uint32Array): KvBlock {
    const { meta, kv } = this.codec.decode(bytes, this.scope);
    if (meta.tokenIds.length !== ids.length || meta.tokenIds.some((t, i) => t !== ids[i])) {
      throw new ApeError("E_CACHE_MISMATCH", `entry ${id}: token ids differ from the context's`);
    }
    const block = this.engine.pool.allocate(kv.tokens, this.scope.prefix.length);
    writeBlock(this.engine.pool, block, kv);
    return block;
  }

  /**
   * Makes every context GPU-resident (loading or encoding what is missing; misses are encoded in
   * batched passes) and pins it until `release`. Returns the blocks in the order given.
   */
  async acquire(refs: ContextRef[], onProgress?: (done: number, total: number) => void): Promise<KvBlock[]> {
    const pinned: ContextRef[] = [];
    try {
      return await this.#acquire(refs, pinned, onProgress);
    } catch (e) {
      this.release(pinned); // a failed call leaves nothing pinned
      throw e;
    }
  }

  async #acquire(refs: ContextRef[], pinned: ContextRef[], onProgress?: (done: number, total: number) => void): Promise<KvBlock[]> {
    const blocks = new Map<string, KvBlock>();
    const missing: ContextRef[] = [];
    let done = 0;
    const pin = (id: string, block: KvBlock) => {
      const e = this.#gpu.get(id) ?? { block, pins: 0, used: 0 };
      e.pins++;
      e.used = ++this.#clock;
      this.#gpu.set(id, e);
      blocks.set(id, block);
      pinned.push({ id, ids: new Uint32Array(0) });
      onProgress?.(++done, refs.length);
    };
    for (const ref of refs) {
      if (blocks.has(ref.id)) continue;
      const g = this.#gpu.get(ref.id);
      if (g) {
        this.stats.hits.gpu++;
        pin(ref.id, g.block);
        continue;
      }
      const host = this.#host.get(ref.id);
      const stored = host ?? await this.store.get(ref.id);
      if (stored) {
        try {
          const block = this.#load(ref.id, stored, ref.ids);
          if (host) this.stats.hits.host++;
          else {
            this.stats.hits.store++;
            this.#hostPut(ref.id, stored);
          }
          pin(ref.id, block);
          continue;
        } catch (e) {
          if (!(e instanceof ApeError) || e.code === "E_CAPACITY") throw e;
          this.stats.rejected++;
          this.problems.push(`${ref.id}: ${e.message} (re-encoded)`);
          this.#host.delete(ref.id);
        }
      }
      this.stats.misses++;
      missing.push(ref);
    }
    if (missing.length > 0) {
      const unique = [...new Map(missing.map((m) => [m.id, m])).values()];
      const encoded = await encodeContexts(this.engine, this.scope.prefix, unique.map((m) => m.ids));
      for (let i = 0; i < unique.length; i++) {
        pin(unique[i].id, encoded[i]);
        const kv = await readBlock(this.engine.pool, encoded[i]);
        const bytes = this.codec.encode({ ...this.scope, kind: "context", tokenIds: unique[i].ids, firstPos: this.scope.prefix.length }, kv);
        await this.store.put(unique[i].id, bytes);
        this.#hostPut(unique[i].id, bytes);
      }
    }
    this.#updateSizes();
    return refs.map((r) => blocks.get(r.id)!);
  }

  /** Unpins blocks returned by `acquire` (they stay cached until evicted). */
  release(refs: ContextRef[]): void {
    for (const r of refs) {
      const e = this.#gpu.get(r.id);
      if (e && e.pins > 0) e.pins--;
    }
  }

  /** Drops every GPU-resident context (the host tier and the store keep theirs). */
  clearGpu(): void {
    for (const [id, e] of this.#gpu) {
      if (e.pins > 0) continue;
      this.engine.pool.release(e.block);
      this.#gpu.delete(id);
    }
    this.#updateSizes();
  }

  clearHost(): void {
    this.#host.clear();
    this.#hostBytes = 0;
    this.#updateSizes();
  }
}
