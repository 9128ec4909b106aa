/**
 * The context cache behind `Ape.cache`: content-addressed KV blocks in three tiers.
 * - GPU: blocks in the engine's KV pool under its byte budget, least recently used evicted first
 *   (never a block pinned by a running request);
 * - host: serialized KV files in memory under a byte budget (LRU);
 * - store: the persistent KvStore (file folder, Redis, memory).
 * A store entry that is corrupt or belongs to another model/tokenizer/prefix is never used: it is
 * counted, re-encoded from its tokens and overwritten.
 * `evict(id)` drops one context from every tier at once; a GPU block that running requests attend is
 * taken out of the cache at once (later requests load or encode a fresh copy) and freed when the last
 * of them lets go, never before.
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { Engine } from "../engine/engine.ts";
 * import { encodePrefix } from "../ape/ape.ts";
 * import { ContextCache, contextId, prefixHash } from "./context_cache.ts";
 * import { kvCodec } from "./kv_codec.ts";
 * import { openStore } from "./store.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
 * const prefixIds = Uint32Array.from([1, 2]);
 * const scope = { modelFingerprint: model.fingerprint, tokenizerFingerprint: "tok", prefixHash: prefixHash(model.fingerprint, prefixIds), prefix: await encodePrefix(engine, prefixIds) };
 * const store = await openStore("memory:");
 * const cache = new ContextCache(engine, store, kvCodec(model), scope);
 * const ids = Uint32Array.from([3, 4, 5]);
 * const ref = { id: contextId(scope.modelFingerprint, scope.tokenizerFingerprint, scope.prefixHash, ids), ids };
 * const [block] = await cache.acquire([ref]); // encoded once (a miss), stored, pinned on the GPU
 * cache.release([ref]);
 * await cache.acquire([ref]); // a GPU hit
 * cache.release([ref]);
 * console.log(block.tokens, cache.stats.misses, cache.stats.hits.gpu, (await store.list()).length); // 3 1 1 1
 * engine.destroy();
 * model.destroy();
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

/** What `evict(id)` did: the GPU copy freed now, or deferred until the requests attending it end; a host copy dropped. */
export interface EvictResult {
  gpu: "freed" | "deferred" | "absent";
  host: boolean;
}

/** What one `lease` call found and did (per request, unlike the cache's shared counters). */
export interface AcquireStats {
  /** Contexts found in each tier; `gpu` includes those another caller's in-flight load or encode produced. */
  hits: { gpu: number; host: number; store: number };
  /** Contexts this call encoded. */
  misses: number;
  /** Store entries this call found corrupt or mismatched (and re-encoded). */
  rejected: number;
  /** Of the hits, contexts shared from another caller's in-flight load or encode. */
  shared: number;
  /** Token count of the contexts found in a tier (not encoded by this call). */
  cachedTokens: number;
  /** Time spent encoding (this call's misses, or waiting on another caller's encode) and loading (host / store tiers). */
  encodeMs: number;
  loadMs: number;
}

/** Pinned KV blocks of contexts: `release()` unpins them exactly once (later calls do nothing). */
export interface ContextLease {
  readonly blocks: KvBlock[];
  readonly stats: AcquireStats;
  release(): void;
}

export class ContextCache {
  #gpu = new Map<string, GpuEntry>();
  /** Evicted blocks still pinned by running requests: out of the cache, freed when their last pin goes. */
  #doomed = new Map<KvBlock, GpuEntry & { id: string }>();
  /** Blocks pinned through `acquire()`, per id in pin order, so `release(refs)` unpins exactly those. */
  #acquired = new Map<string, KvBlock[]>();
  #host = new Map<string, Uint8Array>(); // insertion order = LRU order
  #hostBytes = 0;
  #clock = 0;
  /** Contexts being loaded or encoded right now, by id: later callers wait for them instead of encoding again. */
  #inflight = new Map<string, { job: Promise<unknown>; encoding: boolean }>();
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
    // evicted blocks still attended by running requests count as resident bytes until freed (not as entries)
    for (const e of [...this.#gpu.values(), ...this.#doomed.values()]) gpu += e.block.capacity * this.engine.pool.bytesPerToken;
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

  /** Pins a GPU-resident context for `pinned`'s owner (at most once per owner); false when not resident. */
  #pin(id: string, pinned: Map<string, KvBlock>): boolean {
    const e = this.#gpu.get(id);
    if (!e) return false;
    if (!pinned.has(id)) {
      e.pins++;
      pinned.set(id, e.block);
    }
    e.used = ++this.#clock;
    return true;
  }

  /** Makes a freshly loaded or encoded block the GPU tier's entry for `id` (it is unregistered until now). */
  #register(id: string, block: KvBlock): void {
    const had = this.#gpu.get(id);
    if (had) this.engine.pool.release(block); // cannot happen while #inflight guards the id; never leak either way
    else this.#gpu.set(id, { block, pins: 0, used: ++this.#clock });
  }

  #unpin(pinned: Map<string, KvBlock>): void {
    for (const [id, block] of pinned) this.#unpinBlock(id, block);
    pinned.clear();
  }

  /** Drops one pin of `block` (the cache's entry for `id`, or an evicted block, freed at its last pin). */
  #unpinBlock(id: string, block: KvBlock): void {
    const e = this.#gpu.get(id);
    if (e && e.block === block) {
      if (e.pins > 0) e.pins--;
      return;
    }
    const d = this.#doomed.get(block);
    if (!d) return;
    if (--d.pins <= 0) {
      this.#doomed.delete(block);
      this.engine.pool.release(block);
      this.#updateSizes();
    }
  }

  /**
   * Makes every context GPU-resident (loading or encoding what is missing; misses are encoded in
   * batched passes) and pins it until `release`. Returns the blocks in the order given.
   */
  async acquire(refs: ContextRef[], onProgress?: (done: number, total: number) => void): Promise<KvBlock[]> {
    const { blocks } = await this.lease(refs, onProgress);
    const seen = new Set<string>();
    refs.forEach((r, i) => {
      if (seen.has(r.id)) return;
      seen.add(r.id);
      const list = this.#acquired.get(r.id) ?? [];
      list.push(blocks[i]);
      this.#acquired.set(r.id, list);
    });
    return blocks;
  }

  /**
   * Like `acquire`, with the pins owned by the returned lease (its `release()` unpins once, however
   * often it is called) and this call's own hit/miss figures. Overlapping calls are safe: a context
   * being loaded or encoded for one caller is waited for by the others (one encode, one block); a
   * failed call (an encode, a store write, a load) leaves nothing pinned and no block unaccounted for.
   */
  async lease(refs: ContextRef[], onProgress?: (done: number, total: number) => void): Promise<ContextLease> {
    const pinned = new Map<string, KvBlock>(); // id -> block, one pin each
    const stats: AcquireStats = { hits: { gpu: 0, host: 0, store: 0 }, misses: 0, rejected: 0, shared: 0, cachedTokens: 0, encodeMs: 0, loadMs: 0 };
    try {
      await this.#acquire(refs, pinned, stats, onProgress);
    } catch (e) {
      this.#unpin(pinned); // a failed call leaves nothing pinned
      throw e;
    }
    this.#updateSizes();
    const blocks = refs.map((r) => pinned.get(r.id)!);
    let released = false;
    return {
      blocks, stats,
      release: () => {
        if (released) return;
        released = true;
        this.#unpin(pinned);
      },
    };
  }

  async #acquire(refs: ContextRef[], pinned: Map<string, KvBlock>, stats: AcquireStats, onProgress?: (done: number, total: number) => void): Promise<void> {
    const unique = [...new Map(refs.map((r) => [r.id, r])).values()];
    let done = 0;
    const progress = () => onProgress?.(++done, unique.length);
    let todo = unique;
    while (todo.length > 0) {
      const mine: ContextRef[] = [];
      const waits: { ref: ContextRef; entry: { job: Promise<unknown>; encoding: boolean } }[] = [];
      for (const ref of todo) {
        if (this.#pin(ref.id, pinned)) {
          this.stats.hits.gpu++;
          stats.hits.gpu++;
          stats.cachedTokens += ref.ids.length;
          progress();
          continue;
        }
        const f = this.#inflight.get(ref.id);
        if (f) waits.push({ ref, entry: f });
        else mine.push(ref);
      }
      // claim this call's contexts synchronously, before any await: later callers wait on the job
      let job: Promise<void> | undefined;
      if (mine.length > 0) {
        let encoding = false;
        job = this.#fill(mine, pinned, stats, progress, () => (encoding = true));
        const entry = { job, get encoding() { return encoding; } };
        for (const r of mine) this.#inflight.set(r.id, entry);
        job.catch(() => {}).finally(() => {
          for (const r of mine) if (this.#inflight.get(r.id) === entry) this.#inflight.delete(r.id);
        });
      }
      const tw = performance.now();
      const [own] = await Promise.allSettled([job, ...waits.map((w) => w.entry.job)]);
      if (waits.length > 0) {
        const ms = performance.now() - tw;
        if (waits.some((w) => w.entry.encoding)) stats.encodeMs += ms;
        else stats.loadMs += ms;
      }
      if (own.status === "rejected") throw own.reason;
      // another caller's job finished (or failed): pin what it made resident, else load / encode it here
      todo = [];
      for (const { ref } of waits) {
        if (this.#pin(ref.id, pinned)) {
          this.stats.hits.gpu++;
          stats.hits.gpu++;
          stats.shared++;
          stats.cachedTokens += ref.ids.length;
          progress();
        } else todo.push(ref);
      }
    }
  }

  /** Loads (host / store tier) or encodes `refs`, none GPU-resident, registers and pins them. */
  async #fill(refs: ContextRef[], pinned: Map<string, KvBlock>, stats: AcquireStats, progress: () => void, onEncode: () => void): Promise<void> {
    const missing: ContextRef[] = [];
    const tl = performance.now();
    for (const ref of refs) {
      const host = this.#host.get(ref.id);
      const stored = host ?? await this.store.get(ref.id);
      if (stored) {
        try {
          const block = this.#load(ref.id, stored, ref.ids);
          this.#register(ref.id, block);
          this.#pin(ref.id, pinned);
          if (host) (this.stats.hits.host++, stats.hits.host++);
          else {
            this.stats.hits.store++;
            stats.hits.store++;
            this.#hostPut(ref.id, stored);
          }
          stats.cachedTokens += ref.ids.length;
          progress();
          continue;
        } catch (e) {
          if (!(e instanceof ApeError) || e.code === "E_CAPACITY") throw e;
          this.stats.rejected++;
          stats.rejected++;
          this.problems.push(`${ref.id}: ${e.message} (re-encoded)`);
          this.#host.delete(ref.id);
        }
      }
      missing.push(ref);
    }
    stats.loadMs += performance.now() - tl;
    if (missing.length === 0) return;
    onEncode();
    const te = performance.now();
    this.stats.misses += missing.length;
    stats.misses += missing.length;
    const encoded = await encodeContexts(this.engine, this.scope.prefix, missing.map((m) => m.ids));
    // each block is registered once it is stored: until then it is only this job's, freed on failure
    let i = 0;
    try {
      for (; i < missing.length; i++) {
        const kv = await readBlock(this.engine.pool, encoded[i]);
        const bytes = this.codec.encode({ ...this.scope, kind: "context", tokenIds: missing[i].ids, firstPos: this.scope.prefix.length }, kv);
        await this.store.put(missing[i].id, bytes);
        this.#hostPut(missing[i].id, bytes);
        this.#register(missing[i].id, encoded[i]);
        this.#pin(missing[i].id, pinned);
        progress();
      }
    } finally {
      for (; i < missing.length; i++) this.engine.pool.release(encoded[i]);
      stats.encodeMs += performance.now() - te;
    }
  }

  /**
   * Unpins blocks returned by `acquire` (they stay cached until evicted): one pin per distinct id, as
   * `acquire` took them (a list naming a context twice was pinned once).
   */
  release(refs: ContextRef[]): void {
    for (const id of new Set(refs.map((r) => r.id))) {
      const list = this.#acquired.get(id);
      const block = list?.shift();
      if (list?.length === 0) this.#acquired.delete(id);
      if (block) this.#unpinBlock(id, block);
      else {
        const e = this.#gpu.get(id);
        if (e && e.pins > 0) e.pins--;
      }
    }
  }

  /**
   * Removes one context from every tier: its store entry, its host copy and its GPU block. A block
   * pinned by running requests is never freed under them: it leaves the cache at once (a later
   * request loads or encodes a fresh copy, since every tier has dropped it) and is freed when its last
   * pin goes. A load or encode of `id` in flight is waited for first, so it cannot bring the context
   * back after the eviction; a request that caches the same content later stores it anew.
   */
  async evict(id: string): Promise<EvictResult> {
    do {
      await this.#inflight.get(id)?.job.catch(() => {});
      await this.store.delete(id);
    } while (this.#inflight.has(id)); // one began (from the store) while the entry was being deleted
    // from here on nothing awaits: no other call can see the context half-evicted
    const hostBytes = this.#host.get(id);
    if (hostBytes) {
      this.#host.delete(id);
      this.#hostBytes -= hostBytes.byteLength;
    }
    const e = this.#gpu.get(id);
    let gpu: EvictResult["gpu"] = "absent";
    if (e) {
      this.#gpu.delete(id);
      if (e.pins > 0) {
        this.#doomed.set(e.block, { ...e, id });
        gpu = "deferred";
      } else {
        this.engine.pool.release(e.block);
        gpu = "freed";
      }
    }
    this.#updateSizes();
    return { gpu, host: hostBytes !== undefined };
  }

  /** Contexts pinned by running requests (for leak checks and metrics). */
  get pinnedCount(): number {
    let n = 0;
    for (const e of this.#gpu.values()) n += e.pins > 0 ? 1 : 0;
    return n + this.#doomed.size;
  }

  /** Settles once no load or encode is in flight (close() drains them before freeing the pool). */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...new Set([...this.#inflight.values()].map((f) => f.job))]);
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
