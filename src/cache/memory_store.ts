/**
 * An in-process store (`memory:`). Values are copied in and out so callers cannot alias them.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "./memory_store.ts";
 * const s = new MemoryStore("memory:");
 * await s.put("k", new Uint8Array([1]));
 * ```
 */
import { checkKey, type KvStore, type StoreEntry } from "./kv_store.ts";

export class MemoryStore implements KvStore {
  #map = new Map<string, Uint8Array>();
  constructor(readonly url: string) {}
  get(key: string): Promise<Uint8Array | undefined> {
    // a bad key rejects (never throws synchronously), like every other store
    return new Promise((resolve) => {
      checkKey(key);
      resolve(this.#map.get(key)?.slice());
    });
  }
  put(key: string, value: Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      checkKey(key);
      this.#map.set(key, value.slice());
      resolve();
    });
  }
  delete(key: string): Promise<void> {
    this.#map.delete(key);
    return Promise.resolve();
  }
  list(): Promise<StoreEntry[]> {
    return Promise.resolve([...this.#map].map(([key, v]) => ({ key, bytes: v.byteLength })));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
