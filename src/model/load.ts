/**
 * One entry point for every model source: `loadEngineModel(path)` takes a Hugging Face folder (config.json +
 * safetensors) or a `.gguf` file, and with no path the default model (SmolLM2-135M-Instruct, fetched by
 * the set-up). It returns the Model and, for GGUF files, the tokenizer held in the file's metadata
 * (tokenizer.ggml.*) and the chat template, for the tokenizer to build from.
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "./load.ts";
 * const { model, tokenizer, chatTemplate } = await loadEngineModel("fixtures/gguf/tiny-llama/model.gguf"); // a tiny fixture
 * console.log(model.config.layers, tokenizer?.tokens.length, chatTemplate?.slice(0, 40));
 * model.destroy();
 * ```
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { type Gpu, getGpu } from "../gpu/device.ts";
import { ModelFormatError } from "../errors.ts";
import { requireDefaultModel } from "./default_model.ts";
import { ggufConfig, type GgufTokenizer, ggufTokenizer, ggufWeights, openGguf, ropeFreqFactors } from "./gguf.ts";
import { buildModel, loadHfFolder, type Model, type ModelCompute } from "./model.ts";
import { resolveModelSource, type SourceOptions } from "./source.ts";

export type { GgufTokenizer } from "./gguf.ts";

export interface LoadedModel {
  model: Model;
  /** "hf" (a folder) or "gguf" (a file). */
  format: "hf" | "gguf";
  /** GGUF: the tokenizer in the file's metadata. HF folders: undefined (tokenizer.json is in `model.source`). */
  tokenizer?: GgufTokenizer;
  /** The chat template (GGUF `tokenizer.chat_template`, or tokenizer_config.json's `chat_template`). */
  chatTemplate?: string;
}

/**
 * Loads a model: a Hugging Face folder, a .gguf file (or a folder holding exactly one), or (no path)
 * the default model. Throws
 * ModelFormatError for anything else, DefaultModelMissingError when the default model is not fetched.
 */
export interface LoadOptions {
  gpu?: Gpu;
  weightDtype?: "auto" | "f32" | "f16";
  /** Arithmetic of the f16 linear layers: "f32" (default) or "f16" (needs shader-f16; see buildModel). */
  compute?: ModelCompute;
  onProgress?: (done: number, total: number) => void;
  /** Hub ids and URLs (see source.ts): download progress, and overrides of HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE... */
  source?: SourceOptions;
}

export async function loadEngineModel(path?: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  // a hub id (org/name[@rev][/file.gguf]) or an https:// URL is downloaded into its cache first
  const p = path === undefined ? requireDefaultModel() : await resolveModelSource(path, opts.source);
  if (!existsSync(p)) throw new ModelFormatError(`${p}: no such file or folder`);
  if (statSync(p).isDirectory()) {
    if (!existsSync(join(p, "config.json"))) {
      // A model-cache folder (models/<name>/model.gguf) or any folder holding exactly one .gguf file.
      const ggufs = readdirSync(p).filter((n) => n.toLowerCase().endsWith(".gguf"));
      if (ggufs.length === 1) return loadGguf(join(p, ggufs[0]), opts);
      throw new ModelFormatError(
        `${p}: a model folder needs config.json (a Hugging Face model) or exactly one .gguf file (found ${ggufs.length})`,
      );
    }
    const model = await loadHfFolder(p, opts.gpu, { weightDtype: opts.weightDtype, compute: opts.compute, onProgress: opts.onProgress });
    const t = model.tokenizerConfig.chat_template;
    return { model, format: "hf", chatTemplate: typeof t === "string" ? t : undefined };
  }
  if (!p.toLowerCase().endsWith(".gguf")) {
    throw new ModelFormatError(`${p}: not a model (expected a Hugging Face folder with config.json, or a .gguf file)`);
  }
  return loadGguf(p, opts);
}

/** Loads a GGUF model file: config from its metadata, weights (quantized ones stay quantized on the GPU). */
export async function loadGguf(path: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const { gpu, weightDtype, compute, onProgress } = opts;
  const f = openGguf(path);
  try {
    const config = ggufConfig(f);
    const factors = ropeFreqFactors(f);
    if (factors && factors.length !== config.headDim / 2) {
      throw new ModelFormatError(`${path}: tensor 'rope_freqs.weight' has ${factors.length} values, expected ${config.headDim / 2}`);
    }
    const tokenizer = ggufTokenizer(f);
    const chatTemplate = tokenizer?.chatTemplate;
    const tok = (id?: number) => (id !== undefined ? tokenizer?.tokens[id] : undefined);
    const model = buildModel(gpu ?? await getGpu(), config, ggufWeights(f, config), {
      source: path,
      weightDtype,
      compute,
      onProgress,
      // Same seed as an HF folder with the same config, so identical weights fingerprint identically.
      fingerprintSeed: JSON.stringify(config) + (factors ? `|rope_freqs:${Array.from(factors).join(",")}` : ""),
      generationConfig: { bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenIds },
      tokenizerConfig: {
        ...(chatTemplate !== undefined ? { chat_template: chatTemplate } : {}),
        ...(tok(tokenizer?.bosId) !== undefined ? { bos_token: tok(tokenizer?.bosId) } : {}),
        ...(tok(tokenizer?.eosId) !== undefined ? { eos_token: tok(tokenizer?.eosId) } : {}),
        ...(tokenizer?.addBos !== undefined ? { add_bos_token: tokenizer.addBos } : {}),
      },
    });
    if (factors) model.invFreq = model.invFreq.map((v, i) => v / factors[i]);
    return { model, format: "gguf", tokenizer, chatTemplate };
  } finally {
    f.close();
  }
}
