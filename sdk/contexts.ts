/**
 * The cache facade: documents (texts, token ids or handles) to content-addressed handles, and the
 * handles' KV blocks through the tiered ContextCache (GPU, host, store), with hit/miss accounting.
 *
 * @example
 * ```ts
 * import { loadModel } from "./load.ts";
 * import { Engine } from "../src/engine/engine.ts";
 * import { encodePrefix } from "../src/ape/ape.ts";
 * import { ContextCache } from "../src/cache/context_cache.ts";
 * import { kvCodec } from "../src/cache/kv_codec.ts";
 * import { openStore } from "../src/cache/store.ts";
 * import { promptLayout } from "./prompt.ts";
 * import { cacheScope } from "./context_id.ts";
 * import { Contexts } from "./contexts.ts";
 * const model = await loadModel("fixtures/models/qwen2");
 * const engine = new Engine(model.model, { kvBudgetBytes: 4 << 20 });
 * const layout = promptLayout(model, { prefix: "Answer from the documents.\n\n" });
 * const scope = cacheScope(model, layout.prefixIds, await encodePrefix(engine, layout.prefixIds));
 * const store = await openStore("memory:");
 * const contexts = new Contexts(new ContextCache(engine, store, kvCodec(model.model), scope), layout.documentIds, "f32");
 * const handles = await contexts.cacheTexts(["The capital of Vermont is Montpelier."]); // encoded: a miss
 * const lease = await contexts.lease([contexts.resolve("The capital of Vermont is Montpelier.")]); // a GPU hit
 * console.log(lease.blocks[0].tokens === handles[0].tokens, lease.stats.hits.gpu, contexts.stats().misses); // true 1 1
 * lease.release();
 * await store.close();
 * engine.destroy();
 * model.destroy();
 * ```
 */
import type { CacheStats, ContextCache, ContextLease, EvictResult } from "../src/cache/context_cache.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { contextHandle } from "./context_id.ts";
import type { ContextHandle } from "./options.ts";

export class Contexts {
  constructor(
    readonly cache: ContextCache,
    readonly documentIds: (text: string) => Uint32Array,
    readonly dtype: "f32" | "f16",
  ) {}

  /** The handle of a document text (wrapped by the document template). */
  handle(text: string): ContextHandle {
    if (typeof text !== "string") throw new InvalidArgumentError(`a document must be a string (got ${text === null ? "null" : typeof text})`);
    // an empty (or blank) document is refused here, before the template gives it tokens of its own
    if (text.trim() === "") throw new InvalidArgumentError("a document is empty");
    const ids = this.documentIds(text);
    if (ids.length === 0) throw new InvalidArgumentError("a document is empty");
    return contextHandle(this.cache.scope, this.dtype, ids);
  }

  /** A text, raw token ids or a handle, as a handle. */
  resolve(c: ContextHandle | Uint32Array | string): ContextHandle {
    if (typeof c === "string") return this.handle(c);
    if (c instanceof Uint32Array) return contextHandle(this.cache.scope, this.dtype, c);
    return c;
  }

  /**
   * Encodes the documents that are not cached yet (in batched passes), stores them, returns handles. A corpus
   * larger than the GPU's KV pool is leased in groups of at most half the pool's token slots, each released
   * before the next (released contexts stay cached on the host and in the store, and on the GPU until evicted):
   * caching never needs the whole corpus resident at once.
   */
  async cacheTexts(texts: string[], onProgress?: (done: number, total: number) => void): Promise<ContextHandle[]> {
    const handles = texts.map((t) => this.handle(t));
    const room = Math.max(1, Math.floor(this.cache.engine.pool.capacity / 2));
    let from = 0;
    while (from < handles.length) {
      let to = from + 1, tokens = handles[from].tokens;
      while (to < handles.length && tokens + handles[to].tokens <= room) tokens += handles[to++].tokens;
      const done = from;
      (await this.cache.lease(handles.slice(from, to), onProgress && ((d) => onProgress(done + d, handles.length)))).release();
      from = to;
    }
    return handles;
  }

  /** Parallel-encodes documents on the GPU without storing them; release() frees them. */
  async encode(texts: string[]): Promise<{ handles: ContextHandle[]; release(): void }> {
    const handles = texts.map((t) => this.handle(t));
    const lease = await this.cache.lease(handles);
    return { handles, release: () => lease.release() };
  }

  /**
   * The handles' KV blocks, pinned until the lease's `release()` (exactly once, however often it is
   * called), with this call's own hits, misses and timings (overlapping requests do not see each other's).
   */
  lease(handles: ContextHandle[]): Promise<ContextLease> {
    return this.cache.lease(handles);
  }

  /** Drops a context from every tier (a block running requests attend is freed when they end). */
  evict(id: string): Promise<EvictResult> {
    if (typeof id !== "string" || id === "") throw new InvalidArgumentError("evict: a context handle (or {id}) is required");
    return this.cache.evict(id);
  }

  stats(): CacheStats & { problems: string[] } {
    return { ...structuredClone(this.cache.stats), problems: [...this.cache.problems] };
  }
}
