/**
 * The key -> bytes store interface every backend implements (memory_store.ts, file_store.ts,
 * redis_store.ts) and the key rule they all enforce. It sits below store.ts (which picks a backend
 * by URL), so the backends import it and not store.ts: the modules depend one way.
 *
 * @example
 * ```ts
 * import { checkKey } from "./kv_store.ts";
 * checkKey("3f2a9c"); // ok; checkKey("../etc/passwd") throws InvalidArgumentError
 * ```
 */
import { InvalidArgumentError } from "../errors.ts";

export interface StoreEntry {
  key: string;
  bytes: number;
}

export interface KvStore {
  /** The URL it was opened from. */
  readonly url: string;
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  list(): Promise<StoreEntry[]>;
  close(): Promise<void>;
}

const KEY = /^[A-Za-z0-9_.-]{1,128}$/;

/** Keys are content hashes; anything else (paths, separators) is refused before it reaches a backend. */
export function checkKey(key: string): void {
  if (!KEY.test(key)) throw new InvalidArgumentError(`cache key '${key}' is not a valid key ([A-Za-z0-9_.-]{1,128})`);
}
