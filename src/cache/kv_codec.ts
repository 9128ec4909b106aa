/**
 * The context cache's codec: KV blocks to and from KV-cache files (src/kv, safetensors-compatible,
 * checksummed), bound to one model's shape so a file for another model is refused, never loaded.
 *
 * @example
 * ```ts
 * import { kvCodec } from "./kv_codec.ts";
 * // const bytes = kvCodec(model).encode(meta, hostKv);
 * // const { kv } = kvCodec(model).decode(bytes, { modelFingerprint, tokenizerFingerprint, prefixHash });
 * ```
 */
import type { Model } from "../model/model.ts";
import { openKvFile, serializeKv } from "../kv/mod.ts";
import type { KvCodec } from "./context_cache.ts";

export function kvCodec(model: Model, kvDtype: "f32" | "f16" = "f32"): KvCodec {
  const { layers, kvHeads, headDim } = model.config;
  const dtype = kvDtype === "f16" ? "F16" : "F32";
  return {
    encode(meta, kv) {
      return serializeKv(
        { ...meta, prefixHash: meta.prefixHash, dtype, layers, kvHeads, headDim },
        { k: kv.k, v: kv.v },
      ).toBytes();
    },
    decode(bytes, expect) {
      const f = openKvFile(bytes, { expect: { ...expect, dtype, layers, kvHeads, headDim } });
      const m = f.meta;
      const arr = (name: string) => f.array(name);
      return {
        meta: { modelFingerprint: m.modelFingerprint, tokenizerFingerprint: m.tokenizerFingerprint, prefixHash: m.prefixHash, kind: m.kind, tokenIds: m.tokenIds, firstPos: m.firstPos },
        kv: {
          k: Array.from({ length: layers }, (_, l) => arr(`k.${l}`)),
          v: Array.from({ length: layers }, (_, l) => arr(`v.${l}`)),
          tokens: m.tokens,
        },
      };
    },
  };
}
