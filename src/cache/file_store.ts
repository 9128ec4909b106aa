/**
 * A folder of cache files (`file:///path`): one `<key>.kv` file per entry. Writes go to a unique temp
 * file in the same folder and are renamed into place, so readers in any process see either the whole
 * old entry or the whole new one, never a torn file; concurrent writers of the same key are harmless
 * (same content by construction: keys are content hashes).
 *
 * @example
 * ```ts
 * import { FileStore } from "./file_store.ts";
 * const s = await FileStore.open("file:///tmp/apekit-cache");
 * await s.put("k", new Uint8Array([1]));
 * ```
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { InvalidArgumentError } from "../errors.ts";
import { checkKey, type KvStore, type StoreEntry } from "./kv_store.ts";

export class FileStore implements KvStore {
  private constructor(readonly url: string, readonly dir: string) {}

  static async open(url: string): Promise<FileStore> {
    let dir: string;
    try {
      dir = fileURLToPath(url);
    } catch {
      throw new InvalidArgumentError(`store URL '${url}' is not a valid file:// URL`);
    }
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      const code = (e as { code?: string }).code;
      const why = code === "EEXIST" || code === "ENOTDIR" ? "names a file, not a folder" : `cannot be created (${code ?? (e as Error).message})`;
      throw new InvalidArgumentError(`store URL '${url}': ${dir} (or a folder above it) ${why}`);
    }
    const s = await stat(dir);
    if (!s.isDirectory()) throw new InvalidArgumentError(`store URL '${url}': ${dir} names a file, not a folder`);
    return new FileStore(url, dir);
  }

  #path(key: string): string {
    checkKey(key);
    return join(this.dir, `${key}.kv`);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.#path(key)));
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const final = this.#path(key);
    const tmp = join(this.dir, `.${key}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    try {
      await writeFile(tmp, value);
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  async list(): Promise<StoreEntry[]> {
    const out: StoreEntry[] = [];
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith(".kv") || name.startsWith(".")) continue;
      try {
        out.push({ key: name.slice(0, -3), bytes: (await stat(join(this.dir, name))).size });
      } catch { /* removed meanwhile */ }
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
