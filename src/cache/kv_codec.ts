/**
 * The context cache's codec: KV blocks to and from KV-cache files (src/kv, safetensors-compatible,
 * checksummed), bound to one model's shape so a file for another model is refused, never loaded.
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { Engine } from "../engine/engine.ts";
 * import { readBlock } from "../engine/kv_transfer.ts";
 * import { kvCodec } from "./kv_codec.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
 * const ids = Uint32Array.from([3, 4, 5]);
 * const block = engine.pool.allocate(ids.length, 0);
 * await engine.run(ids, { groups: [{ rows: ids.length, write: block, writeAt: 0, plain: [block] }], logits: { from: 0, count: 0 } });
 * const meta = { modelFingerprint: model.fingerprint, tokenizerFingerprint: "tok", prefixHash: "", kind: "context" as const, tokenIds: ids, firstPos: 0 };
 * const bytes = kvCodec(model).encode(meta, await readBlock(engine.pool, block)); // a checksummed KV-cache file
 * const back = kvCodec(model).decode(bytes, meta); // verified against the expected model, tokenizer and prefix
 * console.log(bytes.length, back.meta.tokenIds, back.kv.tokens);
 * engine.destroy();
 * model.destroy();
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
