/**
 * The SDK's option, request and result types: what `Ape.create` and `Ape.generate` take and return.
 *
 * @example
 * ```ts
 * import type { GenerateRequest } from "./options.ts";
 * const req: GenerateRequest = { query: "What is the capital of Vermont?", maxTokens: 16, stop: ["\n"] };
 * ```
 */
import type { SamplingOptions } from "../src/engine/sampler.ts";
import type { KvStore } from "../src/cache/store.ts";
import type { ChatTurn } from "../src/chat/template.ts";

export type { ChatTurn };

export type Mode = "sequential" | "parallel" | "ape";

export interface ApeOptions {
  /** Instruction text at the start of the user turn, before the documents (part of the shared prefix). */
  prefix?: string;
  /** System message (the template's default when omitted). */
  system?: string;
  /** Skip the chat template: the prefix, documents and query are used verbatim. */
  raw?: boolean;
  /** Wraps each document; `{text}` is replaced by it. Default "{text}\n\n". */
  documentTemplate?: string;
  /** Wraps the question after the documents; `{query}` is replaced by it. Default "Question: {query}" ("{query}" when raw). */
  queryTemplate?: string;
  /** "memory:" (default), "file:///path" or "redis://host:port", or a KvStore. */
  store?: string | KvStore;
  /** GPU memory for KV blocks (default 256 MiB). */
  gpuBudgetBytes?: number;
  /**
   * KV cache storage on the GPU and in cache files: "f16" (half the bytes; the default where the adapter
   * offers shader-f16) or "f32" (the default elsewhere; exact). Attention math is f32 either way.
   */
  kvDtype?: "f32" | "f16";
  /** Host-memory tier for serialized contexts (default 512 MiB). */
  hostBudgetBytes?: number;
  /**
   * APE's temperature T and scale S for requests that name none. Default: the model's tuned pair where it
   * has one (the default model: T 0.5, S 0.9), else the paper's 0.9, 0.9.
   */
  temperature?: number;
  scale?: number;
}

/** A cached context: its content address and token count. */
export interface ContextHandle {
  readonly id: string;
  readonly tokens: number;
  /** Token ids (kept so a damaged store entry can be re-encoded). */
  readonly ids: Uint32Array;
}

export interface GenerateRequest {
  /** The question: one user turn after the documents. Give it or `messages`. */
  query?: string;
  /**
   * A whole conversation instead of `query` (system, user and assistant turns), rendered by the model's
   * chat template after the documents up to the generation prompt: a leading user message shares the
   * documents' turn (wrapped like a question); the rest follow in order. The shared prefix (system,
   * instruction) stays the instance's, so the documents stay cached.
   */
  messages?: ChatTurn[];
  /** Cached handles, raw token ids, or texts (cached on the way). */
  contexts?: (ContextHandle | Uint32Array | string)[];
  /**
   * Retrieval: the `k` (default 3) best contexts for the query, added after `contexts`: by BM25 over the
   * instance's cached documents (`ape.search`), or from `retriever` (the caller's own, e.g. a vector index).
   */
  retrieve?: { k?: number; retriever?: (query: string, k: number) => Promise<(ContextHandle | string)[]> | (ContextHandle | string)[] };
  mode?: Mode;
  maxTokens?: number;
  temperature?: number;
  scale?: number;
  sampling?: SamplingOptions;
  /** Generation stops when the text contains one of these (the stop string is not returned). */
  stop?: string[];
  signal?: AbortSignal;
  /** Tokens per GPU readback after the first (default 16; 4 on CPU adapters). */
  stepsPerReadback?: number;
}

export interface GenerateStats {
  mode: Mode;
  promptTokens: number;
  contextTokens: number;
  generatedTokens: number;
  timeToFirstTokenMs: number;
  totalMs: number;
  /** Encoding contexts that were not cached. */
  encodeMs: number;
  /** Loading cached contexts onto the GPU (store / host tiers). */
  loadMs: number;
  /** Query (or, in sequential mode, whole-prompt) prefill up to the first token. */
  prefillMs: number;
  decodeMs: number;
  /** This request's contexts found in a cache tier (including ones another request was encoding) and encoded by it. */
  cacheHits: number;
  cacheMisses: number;
  /** Tokens of the contexts counted in cacheHits. */
  cachedTokens: number;
  /** Why generation ended: an end-of-sequence id, a stop string, maxTokens, or the model's position
   * limit (max_position_embeddings) reached before maxTokens. */
  stopReason: "eos" | "stop" | "length" | "limit";
}

export type GenerateEvent =
  | { type: "token"; text: string; ids: number[] }
  | { type: "done"; text: string; ids: number[]; stats: GenerateStats };

export interface GenerateResult {
  text: string;
  ids: number[];
  stats: GenerateStats;
}
