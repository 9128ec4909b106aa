/**
 * The persistent tier of the context cache: a key -> bytes store. Keys are content addresses (see
 * context_id.ts), values are KV-cache files. Stores are chosen by URL:
 * - `memory:`                 in-process (tests, single-process apps)
 * - `file:///var/cache/x`     a folder; atomic writes (temp file + rename), safe for several processes
 * - `redis://host:6379`       Redis, shared by several servers; large entries are chunked
 *
 * @example
 * ```ts
 * import { openStore } from "./store.ts";
 * const store = await openStore("memory:");
 * await store.put("abc", new Uint8Array([1, 2, 3]));
 * console.log(await store.get("abc"));
 * await store.close();
 * ```
 */
import { InvalidArgumentError } from "../errors.ts";

export { checkKey, type KvStore, type StoreEntry } from "./kv_store.ts";
import type { KvStore } from "./kv_store.ts";

export async function openStore(url: string): Promise<KvStore> {
  if (url === "memory:" || url.startsWith("memory:")) {
    const { MemoryStore } = await import("./memory_store.ts");
    return new MemoryStore(url);
  }
  if (url.startsWith("file://")) {
    const { FileStore } = await import("./file_store.ts");
    return FileStore.open(url);
  }
  if (url.startsWith("redis://") || url.startsWith("rediss://")) {
    const { RedisStore } = await import("./redis_store.ts");
    return RedisStore.open(url);
  }
  throw new InvalidArgumentError(`store URL '${url}' is not supported (use memory:, file:///path or redis://host:port)`);
}
