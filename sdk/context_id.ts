/**
 * Hashing: the cache scope an `Ape` instance's contexts live in (model, tokenizer, prefix) and the
 * content address of a context's token ids within it (also bound to the KV dtype).
 *
 * @example
 * ```ts
 * import { loadModel } from "./load.ts";
 * import { promptLayout } from "./prompt.ts";
 * import { cacheScope, contextHandle } from "./context_id.ts";
 * const model = await loadModel("fixtures/models/qwen2");
 * const layout = promptLayout(model, { raw: true }); // no template, and this model has no BOS: no prefix ids
 * const scope = cacheScope(model, layout.prefixIds, { length: 0 }); // the EncodedPrefix of no ids (encodePrefix's)
 * const ids = layout.documentIds("The capital of Vermont is Montpelier.");
 * const h = contextHandle(scope, "f16", ids); // { id, tokens, ids }
 * console.log(h.id.length, h.tokens === ids.length); // 40 true
 * // the same ids give the same id on every machine; their KV stored as f32 is another context
 * console.log(contextHandle(scope, "f16", ids.slice()).id === h.id, contextHandle(scope, "f32", ids).id === h.id); // true false
 * model.destroy();
 * ```
 */
import { contextId, prefixHash } from "../src/cache/context_cache.ts";
import type { EncodedPrefix } from "../src/ape/ape.ts";
import type { ApeModel } from "./load.ts";
import type { ContextHandle } from "./options.ts";

export interface CacheScope {
  modelFingerprint: string;
  tokenizerFingerprint: string;
  prefixHash: string;
  prefix: EncodedPrefix;
}

export function cacheScope(model: ApeModel, prefixIds: Uint32Array, prefix: EncodedPrefix): CacheScope {
  const fp = model.model.fingerprint;
  return { modelFingerprint: fp, tokenizerFingerprint: model.tokenizerFingerprint, prefixHash: prefixHash(fp, prefixIds), prefix };
}

/** The handle of `ids` in `scope`, for KV stored as `dtype`. */
export function contextHandle(scope: CacheScope, dtype: "f32" | "f16", ids: Uint32Array): ContextHandle {
  return { id: contextId(scope.modelFingerprint, scope.tokenizerFingerprint, scope.prefixHash, ids, dtype.toUpperCase()), tokens: ids.length, ids };
}
