/**
 * The contexts `ape serve` knows: handles of contexts cached through it, and a small sidecar entry
 * per context in the shared store (`<id>.text`: the text and its token count), so that any server on
 * the same store can serve a context id that another one cached: it re-derives the handle from the
 * text through `Ape.cache` (a store hit, no re-encode) and checks the id it gets is the one asked for.
 * Ids are checked as content hashes (schemas.ts) before they reach a store.
 *
 * @example
 * ```ts
 * import { ContextRegistry } from "./contexts.ts";
 * // const reg = new ContextRegistry(ape, store, { maxContexts: 16, maxContextTokens: 2048 });
 * // const [h] = await reg.add(["The capital of Vermont is Montpelier."]);
 * // const refs = await reg.resolve([{ id: h.id }]);   // handles for ape.generate
 * ```
 */
import type { Ape, ContextHandle, KvStore } from "../mod.ts";
import { badRequest, HttpError } from "./errors.ts";
import { CONTEXT_ID, type ContextRef } from "./schemas.ts";

export interface ContextLimits {
  /** Contexts per request (and texts per POST /v1/contexts). */
  maxContexts: number;
  /** Tokens per context. */
  maxContextTokens: number;
}

interface Sidecar {
  text: string;
  tokens: number;
}

const KNOWN_MAX = 100_000;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export class ContextRegistry {
  /** id -> handle, insertion order = least recently used first. */
  #known = new Map<string, ContextHandle>();

  constructor(readonly ape: Ape, readonly store: KvStore, readonly limits: ContextLimits) {}

  #remember(h: ContextHandle): void {
    this.#known.delete(h.id);
    this.#known.set(h.id, h);
    if (this.#known.size > KNOWN_MAX) this.#known.delete(this.#known.keys().next().value!);
  }

  /** Refuses a text longer than maxContextTokens before anything is encoded. */
  checkText(text: string, param: string): void {
    const max = this.limits.maxContextTokens;
    // a token is at least one byte of text: a text far over the limit is refused before tokenizing it
    if (text.length > max * 64) throw badRequest(`${param}: the context is longer than ${max} tokens`, param, "context_too_long");
    const n = this.ape.model.tokenizer.encode(text, { addSpecialTokens: false, allowSpecial: false }).length;
    if (n > max) throw badRequest(`${param}: the context has ${n} tokens, more than this server's limit of ${max}`, param, "context_too_long");
  }

  checkCount(n: number, param: string): void {
    if (n > this.limits.maxContexts) throw badRequest(`${param}: ${n} contexts, more than this server's limit of ${this.limits.maxContexts} per request`, param, "too_many_contexts");
  }

  /** Caches texts (encoding those not cached yet), records them and their sidecars; call inside a queue slot. */
  async add(texts: string[]): Promise<ContextHandle[]> {
    this.checkCount(texts.length, "texts");
    texts.forEach((t, i) => this.checkText(t, `texts[${i}]`));
    const handles = await this.ape.cache(texts);
    await Promise.all(handles.map(async (h, i) => {
      if (!this.#known.has(h.id)) await this.store.put(`${h.id}.text`, enc.encode(JSON.stringify({ text: texts[i], tokens: h.tokens } satisfies Sidecar)));
      this.#remember(h);
    }));
    return handles;
  }

  async #sidecar(id: string): Promise<Sidecar | undefined> {
    if (!CONTEXT_ID.test(id)) throw badRequest(`context id '${id.slice(0, 64)}' is not a content hash`, "id", "invalid_context_id");
    const bytes = await this.store.get(`${id}.text`);
    if (!bytes) return undefined;
    try {
      const s = JSON.parse(dec.decode(bytes)) as Sidecar;
      if (typeof s.text === "string" && Number.isInteger(s.tokens)) return s;
    } catch { /* a damaged sidecar is treated as absent */ }
    return undefined;
  }

  /** {id, tokens} of a context this server (or one sharing its store) cached, else undefined. */
  async get(id: string): Promise<{ id: string; tokens: number } | undefined> {
    if (!CONTEXT_ID.test(id)) throw badRequest(`context id '${id.slice(0, 64)}' is not a content hash`, "id", "invalid_context_id");
    const h = this.#known.get(id);
    if (h) return { id, tokens: h.tokens };
    const s = await this.#sidecar(id);
    return s ? { id, tokens: s.tokens } : undefined;
  }

  /**
   * Forgets a context: its sidecar goes (so later requests naming the id get 404), and the SDK evicts
   * it from every tier (store entry, host copy, GPU block; a block that running requests attend is
   * freed when they end). False if unknown. Other servers on the store keep ids they have already
   * served (their own registry, GPU and host tiers) until their LRU drops them.
   */
  async delete(id: string): Promise<boolean> {
    const known = (await this.get(id)) !== undefined;
    this.#known.delete(id);
    await this.store.delete(`${id}.text`);
    await this.ape.evict({ id });
    return known;
  }

  /**
   * A request's contexts as `ape.generate` takes them: handles for ids (an id cached by another server
   * is re-derived from its sidecar text, a store hit, and must give the same id), texts as they are.
   * Call inside a queue slot (it may load contexts onto the GPU).
   */
  async resolve(refs: ContextRef[]): Promise<(ContextHandle | string)[]> {
    this.checkCount(refs.length, "contexts");
    const out: (ContextHandle | string)[] = [];
    for (const [i, r] of refs.entries()) {
      if ("text" in r) {
        this.checkText(r.text, `contexts[${i}].text`);
        out.push(r.text);
        continue;
      }
      const known = this.#known.get(r.id);
      if (known) {
        this.#remember(known);
        out.push(known);
        continue;
      }
      const s = await this.#sidecar(r.id);
      if (!s) throw new HttpError(404, "not_found", `unknown context id ${r.id}: POST its text to /v1/contexts first`, { param: `contexts[${i}].id`, code: "context_not_found" });
      const [h] = await this.ape.cache([s.text]);
      if (h.id !== r.id) {
        throw new HttpError(409, "invalid_request_error", `context ${r.id} was cached under another model, tokenizer or prefix (this server derives ${h.id})`, { param: `contexts[${i}].id`, code: "context_mismatch" });
      }
      this.#remember(h);
      out.push(h);
    }
    return out;
  }
}
