/**
 * A Redis store (`redis://host:port[/db]`), for several servers sharing one cache. Entries larger than
 * 4 MiB are split into chunks (`apekit:kv:<key>:<i>`) under a manifest (`apekit:kv:<key>`) written
 * last, so a reader never sees a partial entry as complete; a missing chunk reads as a miss.
 *
 * @example
 * ```ts
 * import { RedisStore } from "./redis_store.ts";
 * const s = await RedisStore.open("redis://127.0.0.1:6379"); // ./dev.sh test starts a redis-server for this
 * await s.put("apekit-doc-example", new Uint8Array([1]));
 * console.log(await s.get("apekit-doc-example")); // Uint8Array(1) [ 1 ]
 * await s.delete("apekit-doc-example");
 * await s.close();
 * ```
 */
import { createClient, RESP_TYPES } from "redis";
import { ApeError } from "../errors.ts";
import { checkKey, type KvStore, type StoreEntry } from "./kv_store.ts";

const CHUNK = 4 * 1024 * 1024;
const NS = "apekit:kv:";

const newClient = (url: string) => createClient({ url, socket: { connectTimeout: 5000, reconnectStrategy: false } });
type Client = ReturnType<typeof newClient>; // (createClient's own return type is generic: not this client's)

export class RedisStore implements KvStore {
  private constructor(readonly url: string, readonly client: Client) {}

  static async open(url: string): Promise<RedisStore> {
    const client = newClient(url);
    client.on("error", () => { /* surfaced by the failing command */ });
    try {
      await client.connect();
    } catch (e) {
      throw new ApeError("E_STORE_UNAVAILABLE", `cannot connect to Redis at ${url}: ${(e as Error).message}`, { cause: e });
    }
    return new RedisStore(url, client);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    const manifest = await this.client.get(NS + key);
    if (manifest === null) return undefined;
    const { bytes, chunks } = JSON.parse(manifest) as { bytes: number; chunks: number };
    const out = new Uint8Array(bytes);
    let o = 0;
    for (let i = 0; i < chunks; i++) {
      const part = await this.client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).get(`${NS}${key}:${i}`);
      if (!part) return undefined;
      out.set(part, o);
      o += part.byteLength;
    }
    return o === bytes ? out : undefined;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    checkKey(key);
    const chunks = Math.max(1, Math.ceil(value.byteLength / CHUNK));
    for (let i = 0; i < chunks; i++) {
      const part = Buffer.from(value.buffer, value.byteOffset + i * CHUNK, Math.min(CHUNK, value.byteLength - i * CHUNK));
      await this.client.set(`${NS}${key}:${i}`, part);
    }
    await this.client.set(NS + key, JSON.stringify({ bytes: value.byteLength, chunks }));
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    const manifest = await this.client.get(NS + key);
    await this.client.del(NS + key);
    if (manifest) {
      const { chunks } = JSON.parse(manifest) as { chunks: number };
      for (let i = 0; i < chunks; i++) await this.client.del(`${NS}${key}:${i}`);
    }
  }

  async list(): Promise<StoreEntry[]> {
    const out: StoreEntry[] = [];
    for await (const keys of this.client.scanIterator({ MATCH: `${NS}*`, COUNT: 500 })) {
      for (const k of ([] as string[]).concat(keys)) {
        const name = k.slice(NS.length);
        if (name.includes(":")) continue;
        const m = await this.client.get(k);
        if (m) out.push({ key: name, bytes: (JSON.parse(m) as { bytes: number }).bytes });
      }
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.quit();
  }
}
