/**
 * apekit: Adaptive Parallel Encoding for context-augmented generation, on WebGPU + WebAssembly.
 *
 * @example
 * ```ts
 * import { Ape, loadModel } from "./mod.ts";
 * const model = await loadModel();
 * const ape = await Ape.create(model, { prefix: "Answer the question from the documents.\n\n" });
 * const docs = await ape.cache(["The capital of Vermont is Montpelier."]);
 * for await (const ev of ape.generate({ query: "What is the capital of Vermont?", contexts: docs, maxTokens: 16 })) {
 *   if (ev.type === "token") console.log(ev.text);
 * }
 * await ape.close();
 * model.destroy();
 * ```
 */
export { loadModel, type ApeModel, type ModelOptions } from "./load.ts";
export {
  Ape,
  type ApeOptions,
  type ChatTurn,
  type ContextHandle,
  type GenerateEvent,
  type GenerateRequest,
  type GenerateResult,
  type GenerateStats,
  type Mode,
} from "./ape.ts";
export type { Retriever, SearchHit } from "./search.ts";
export type { SamplingOptions } from "../src/engine/sampler.ts";
export type { CacheStats, EvictResult } from "../src/cache/context_cache.ts";
export { openStore, type KvStore, type StoreEntry } from "../src/cache/store.ts";
export {
  ApeError,
  CacheCorruptError,
  CacheMismatchError,
  CapacityError,
  DownloadError,
  GpuDeviceLostError,
  GpuInternalError,
  GpuOutOfMemoryError,
  GpuUnavailableError,
  GpuValidationError,
  HubAuthError,
  InvalidArgumentError,
  ModelFormatError,
  ModelNotFoundError,
  NonFiniteError,
  TokenizerError,
} from "../src/errors.ts";
export { DefaultModelMissingError } from "../src/model/default_model.ts";
