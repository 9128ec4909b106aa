/**
 * `loadModel`: a model ready for `Ape.create`: the engine model (weights on the GPU) with its
 * tokenizer and chat template, from a Hugging Face folder, a .gguf file, a hub id (`org/name[@revision]`,
 * `org/name/file.gguf`, downloaded into the Hugging Face cache), an https:// URL, or (no argument) the
 * embedded default model, SmolLM2-135M-Instruct. (The engine-level loader it builds on, without the
 * tokenizer, is src/model/load.ts's `loadEngineModel`.)
 *
 * @example
 * ```ts
 * import { loadModel } from "./load.ts";
 * const model = await loadModel(undefined, { onProgress: (d, t) => console.log(`layer ${d}/${t}`) });
 * console.log(model.model.config.layers, model.tokenizer.encode("hello").length);
 * model.destroy();
 * ```
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { type GgufTokenizer, loadEngineModel, type LoadOptions } from "../src/model/load.ts";
import type { Model } from "../src/model/model.ts";
import type { SourceOptions } from "../src/model/source.ts";
import { ModelFormatError, TokenizerError } from "../src/errors.ts";
import { DEFAULT_MODEL_APE, defaultModelPath } from "../src/model/default_model.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { readTuned } from "../src/eval/tuned.ts";

export interface ApeModel {
  model: Model;
  tokenizer: Tokenizer;
  /** Hash of the tokenizer's definition (cache files are bound to it). */
  tokenizerFingerprint: string;
  chatTemplate?: string;
  bosToken?: string;
  eosToken?: string;
  /** Whether prompts start with BOS when no template adds it: tokenizer_config.json's (or the GGUF's)
   * add_bos_token where set, else whether the tokenizer itself adds BOS (its post-processor). */
  addBos: boolean;
  /** APE's T and S tuned for this model, where known (`ape tune`'s file, else the default model's pair); else Ape uses the paper's 0.9, 0.9. */
  apeDefaults?: { temperature: number; scale: number };
  destroy(): void;
}

export interface ModelOptions {
  /** Weight storage: "auto" (default), "f32", or "f16" (half the bytes). */
  dtype?: "auto" | "f32" | "f16";
  /** Arithmetic of the f16 linear layers: "f32" (default) or "f16" (f16 products, f32 sums; needs the
   * adapter's shader-f16, else GpuUnavailableError; implies dtype "f16" when dtype is "auto"); "int8": prefill
   * on integer tensor cores (W8A8, one scale per row; Dawn's int8 subgroup matrices, else GpuUnavailableError),
   * decode in f32. */
  compute?: "f32" | "f16" | "int8";
  /** Progress of the upload, one call per layer. */
  onProgress?: (done: number, total: number) => void;
  /** Hub ids (`org/name[@revision]`, `org/name/file.gguf`) and https:// URLs: download progress (bytes per
   * file) and overrides of the environment (HF_ENDPOINT, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE). */
  download?: SourceOptions;
}

function tokenString(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return undefined;
}

/** The tokenizer a GGUF file's metadata describes (`ggufTokenizer(file)`); also used by `ape tokenize`. */
export function tokenizerFromGguf(t: GgufTokenizer): Tokenizer {
  return Tokenizer.fromGgufMetadata({
    model: t.model, pre: t.pre, tokens: t.tokens, merges: t.merges,
    tokenTypes: t.tokenType ? Array.from(t.tokenType) : undefined, scores: t.scores ? Array.from(t.scores) : undefined,
    bosId: t.bosId, eosId: t.eosId, unkId: t.unkId,
    addBosToken: t.addBos, addEosToken: t.addEos, addSpacePrefix: t.addSpacePrefix,
  });
}

/** Whether the tokenizer puts BOS in front of a text when it adds its special tokens. */
function addsBos(tokenizer: Tokenizer): boolean {
  const b = tokenizer.bosId;
  return b !== undefined && tokenizer.encode("a", { addSpecialTokens: true })[0] === b;
}

/**
 * The tokenizer must fit the model: ids past the model's vocabulary (a tokenizer from another model)
 * would otherwise fail later as "id outside the vocabulary" or produce garbage. The model's vocabulary
 * may be larger (padded embeddings), never smaller.
 */
function checkVocabulary(tokenizer: Tokenizer, model: Model): void {
  const V = model.config.vocabSize, n = tokenizer.vocabSize;
  if (n > V) {
    throw new TokenizerError(`${model.source}: the tokenizer has ${n} tokens but the model's vocabulary has ${V}: the tokenizer belongs to another model`);
  }
  for (const [what, id] of [["BOS", tokenizer.bosId], ["EOS", tokenizer.eosId]] as const) {
    if (id !== undefined && id >= V) throw new TokenizerError(`${model.source}: the tokenizer's ${what} id ${id} is outside the model's vocabulary (${V})`);
  }
}

export async function loadModel(path?: string, opts: ModelOptions = {}): Promise<ApeModel> {
  const load: LoadOptions = { weightDtype: opts.dtype, compute: opts.compute, onProgress: opts.onProgress, source: opts.download };
  const loaded = await loadEngineModel(path, load);
  const { model } = loaded;
  try {
    let tokenizer: Tokenizer;
    const fp = createHash("sha256");
    if (loaded.format === "gguf") {
      if (!loaded.tokenizer) throw new ModelFormatError(`${model.source}: the GGUF file carries no tokenizer (tokenizer.ggml.*)`);
      const t = loaded.tokenizer;
      tokenizer = tokenizerFromGguf(t);
      fp.update(JSON.stringify({ model: t.model, pre: t.pre, tokens: t.tokens, merges: t.merges, types: t.tokenType ? Array.from(t.tokenType) : null, bos: t.bosId, eos: t.eosId }));
    } else {
      const dir = model.source;
      const file = join(dir, "tokenizer.json");
      if (!existsSync(file) || !statSync(file).isFile()) throw new ModelFormatError(`${dir}: tokenizer.json is missing`);
      tokenizer = Tokenizer.fromFile(dir);
      fp.update(readFileSync(file));
      const cfg = join(dir, "tokenizer_config.json");
      if (existsSync(cfg)) fp.update(readFileSync(cfg));
    }
    checkVocabulary(tokenizer, model);
    const tc = model.tokenizerConfig;
    return {
      model,
      tokenizer,
      tokenizerFingerprint: fp.digest("hex").slice(0, 32),
      chatTemplate: loaded.chatTemplate,
      bosToken: tokenString(tc.bos_token),
      eosToken: tokenString(tc.eos_token),
      addBos: typeof tc.add_bos_token === "boolean" ? tc.add_bos_token : addsBos(tokenizer),
      // `ape tune`'s pair for this model where it ran (src/eval/tuned.ts), else the default model's own
      // (no path, or its path in the model cache)
      apeDefaults: readTuned(model.source, model.fingerprint) ??
        (resolve(model.source) === resolve(defaultModelPath()) ? { ...DEFAULT_MODEL_APE } : undefined),
      destroy() {
        tokenizer.free?.();
        model.destroy();
      },
    };
  } catch (e) {
    model.destroy();
    throw e;
  }
}
