/**
 * Retrieval over an `Ape` instance's cached contexts: a BM25 index (MiniSearch's BM25+, plain
 * JavaScript, the same under Deno, Bun and Node) of every document passed to `ape.cache`, ranked by a
 * query and returned as handles ready for `generate`. The index lives beside the contexts: one small
 * JSON entry (document id -> text) under its own key in the same KvStore, so it persists with a file
 * store and is shared through Redis like the contexts themselves; an instance re-reads the entry when
 * it changed (another process added documents) before it searches.
 *
 * A `Retriever` is any function from a query to contexts (handles or texts): `ape.search`'s BM25, or the
 * caller's own (e.g. a vector index), passed as `generate({ query, retrieve: { k, retriever } })`.
 *
 * @example
 * ```ts
 * import { SearchIndex } from "./search.ts";
 * import { openStore } from "../src/cache/store.ts";
 * const store = await openStore("memory:");
 * const index = new SearchIndex(store, "search-example");
 * await index.add([{ id: "a", text: "The capital of Vermont is Montpelier." }, { id: "b", text: "Zorblax Ltd was founded in 1911." }]);
 * console.log((await index.search("When was Zorblax founded?", 1)).map((h) => h.id)); // [ "b" ]
 * ```
 */
import MiniSearch from "minisearch";
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../src/errors.ts";
import type { KvStore } from "../src/cache/store.ts";
import type { ContextHandle } from "./options.ts";

/** A retriever: the query and how many contexts to return -> contexts (best first). */
export type Retriever = (query: string, k: number) => Promise<(ContextHandle | string)[]> | (ContextHandle | string)[];

/** A search hit: the document's id (its context handle's id), its text and BM25 score. */
export interface SearchHit {
  id: string;
  text: string;
  score: number;
}

interface Entry {
  version: 1;
  /** [context id, text], in the order they were added. */
  docs: [string, string][];
}

/** The index's store key for a cache scope (model, tokenizer, prefix, KV dtype): its contexts' ids are bound to it. */
export function searchKey(scope: { modelFingerprint: string; tokenizerFingerprint: string; prefixHash: string }, dtype: string): string {
  const h = createHash("sha256").update(`apekit-search-v1|${scope.modelFingerprint}|${scope.tokenizerFingerprint}|${scope.prefixHash}|${dtype}`);
  return `search-${h.digest("hex").slice(0, 40)}`;
}

/** Whether a store key is a search index's (from `searchKey`) rather than a context's. */
export function isSearchKey(key: string): boolean {
  return /^search-[0-9a-f]{40}$/.test(key);
}

/** Checks a `k` (how many contexts to retrieve): an integer >= 1. */
export function checkK(k: unknown): number {
  if (typeof k !== "number" || !Number.isInteger(k) || k < 1) throw new InvalidArgumentError(`k must be a positive integer (got ${String(k)})`);
  return k;
}

export class SearchIndex {
  #docs = new Map<string, string>();
  #mini = SearchIndex.#newIndex();
  /** Byte length of the store entry this index last merged (-1: never read). */
  #seen = -1;
  /** Writes are serialized: read-merge-write never loses this process's own additions. */
  #writing: Promise<void> = Promise.resolve();

  constructor(readonly store: KvStore, readonly key: string) {}

  static #newIndex(): MiniSearch<{ id: string; text: string }> {
    return new MiniSearch<{ id: string; text: string }>({ fields: ["text"], storeFields: [], idField: "id" });
  }

  /** Documents indexed (after the last refresh). */
  get size(): number {
    return this.#docs.size;
  }

  #merge(docs: Iterable<[string, string]>): boolean {
    let added = false;
    for (const [id, text] of docs) {
      if (this.#docs.has(id)) continue;
      this.#docs.set(id, text);
      this.#mini.add({ id, text });
      added = true;
    }
    return added;
  }

  /** Merges the store's entry when it changed since the last read (documents other processes added). */
  async refresh(): Promise<void> {
    const bytes = await this.store.get(this.key);
    if (!bytes || bytes.byteLength === this.#seen) return;
    let entry: Entry;
    try {
      entry = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return; // a damaged entry: ignored here, overwritten by the next add
    }
    if (entry?.version !== 1 || !Array.isArray(entry.docs)) return;
    this.#merge(entry.docs.filter((d) => Array.isArray(d) && typeof d[0] === "string" && typeof d[1] === "string"));
    this.#seen = bytes.byteLength;
  }

  /** Indexes documents (id = their context handle's id) and writes the merged entry to the store. */
  add(docs: { id: string; text: string }[]): Promise<void> {
    const run = this.#writing.then(async () => {
      await this.refresh();
      const before = this.#seen;
      if (!this.#merge(docs.map((d) => [d.id, d.text])) && before >= 0) return;
      const entry: Entry = { version: 1, docs: [...this.#docs] };
      const bytes = new TextEncoder().encode(JSON.stringify(entry));
      await this.store.put(this.key, bytes);
      this.#seen = bytes.byteLength;
    });
    this.#writing = run.catch(() => {});
    return run;
  }

  /** The `k` best documents for `query` by BM25 (fewer when fewer match; none for a query without terms). */
  async search(query: string, k: number): Promise<SearchHit[]> {
    if (typeof query !== "string") throw new InvalidArgumentError(`query must be a string (got ${typeof query})`);
    checkK(k);
    await this.#writing;
    await this.refresh();
    return this.#mini.search(query).slice(0, k).map((r) => ({ id: String(r.id), text: this.#docs.get(String(r.id))!, score: r.score }));
  }
}
