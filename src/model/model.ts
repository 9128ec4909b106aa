/**
 * A model ready to run: its config, its weights on the GPU (fused q|k|v and gate|up projections so a
 * layer needs few dispatches), RoPE frequencies and a fingerprint that cache files are bound to.
 * Weight sources (HF safetensors folders today, GGUF files next) hand over HostTensors under HF names.
 *
 * @example
 * ```ts
 * import { loadHfFolder } from "./model.ts";
 * const model = await loadHfFolder("fixtures/models/llama3");
 * console.log(model.config.architecture, model.fingerprint);
 * ```
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Gpu, getGpu } from "../gpu/device.ts";
import { uploadF32 } from "../gpu/buffers.ts";
import { Kernels, unrollsLoops } from "../gpu/shaders.ts";
import { GpuUnavailableError, InvalidArgumentError, ModelFormatError } from "../errors.ts";
import { type ModelConfig, parseHfConfig } from "./config.ts";
import { inverseFrequencies } from "./rope.ts";
import { readSafetensorsFolder } from "./safetensors.ts";
import { type HostTensor, toF32 } from "./tensor.ts";
import { dequantizeTensor, f32ToF16, quantFormat, rowBytes } from "./quant.ts";

function f16Bytes(f: Float32Array): Uint8Array {
  const h = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) h[i] = f32ToF16(f[i]);
  return new Uint8Array(h.buffer);
}
import { concatBytes, concatRows, destroyLinear, type GpuLinear, uploadLinear, uploadQuantLinear } from "./weights.ts";
import { attachInt8 } from "../engine/linear_i8.ts"; // the int8 prefill copies (compute "int8"), made on the GPU at load

export interface LayerWeights {
  attnNorm: GPUBuffer;
  /** q | k | v stacked by rows: [(heads + 2 kvHeads) * headDim, hidden]. */
  qkv: GpuLinear;
  qNorm?: GPUBuffer;
  kNorm?: GPUBuffer;
  o: GpuLinear;
  mlpNorm: GPUBuffer;
  /** gate | up stacked by rows: [2 * intermediate, hidden]. */
  gateUp: GpuLinear;
  down: GpuLinear;
}

export interface Model {
  config: ModelConfig;
  gpu: Gpu;
  kernels: Kernels;
  /** Linear kernels: "rows" (matvec_rows_<fmt> for any number of rows: CPU adapters, the default there) or "lanes" (the GPU kernels). */
  matvecLayout?: "lanes" | "rows";
  /** Arithmetic of the f16 linear layers: "f32" (default) or "f16" (shader-f16; see buildModel). */
  compute: ModelCompute;
  embed: GpuLinear;
  layers: LayerWeights[];
  norm: GPUBuffer;
  lmHead: GpuLinear;
  invFreq: Float64Array;
  /** Hash of config + weights: changes whenever the architecture, RoPE settings or any weight does. */
  fingerprint: string;
  /** Where the model came from (folder or file). */
  source: string;
  /** generation_config.json / tokenizer_config.json contents when present. */
  generationConfig: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  destroy(): void;
}

/** Arithmetic of the linear layers stored in f16: "f32" (default), or "f16" (f16 products, f32 sums). */
/**
 * Arithmetic of the float linear layers: "f32"; "f16" (shader-f16); "int8": prefill rows through integer tensor
 * cores (W8A8, one scale per row: src/engine/linear_i8.ts), decode and short inputs in f32 as with "f32".
 */
export type ModelCompute = "f32" | "f16" | "int8";

/** Tensors under Hugging Face names, from any source. */
export interface WeightSource {
  get(name: string): HostTensor | undefined;
}

function need(src: WeightSource, name: string): HostTensor {
  const t = src.get(name);
  if (!t) throw new ModelFormatError(`weights: tensor '${name}' is missing`);
  return t;
}

function expectShape(t: HostTensor, shape: number[]): HostTensor {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ModelFormatError(`weights: tensor '${t.name}' has shape [${t.shape}], expected [${shape}]`);
  }
  return t;
}

/** Uploads weights named as in HF checkpoints; shared by every source format. */
export function buildModel(
  gpu: Gpu,
  config: ModelConfig,
  src: WeightSource,
  meta: {
    source: string;
    fingerprintSeed: string;
    generationConfig?: Record<string, unknown>;
    tokenizerConfig?: Record<string, unknown>;
    /** Storage of float linear weights: "auto" keeps F16 checkpoints in f16 and the rest in f32;
     * "f16" stores every float linear weight in f16 (half the bytes). */
    weightDtype?: "auto" | "f32" | "f16";
    /** Arithmetic of the f16-stored linear layers: "f32" (default) or "f16" (needs the adapter's
     * shader-f16; implies weightDtype "f16" when weightDtype is "auto"; block-quantized layers, the
     * embedding gather and everything outside the linear layers stay f32). */
    compute?: ModelCompute;
    /** Called after each layer is on the GPU (done, total). */
    onProgress?: (done: number, total: number) => void;
  },
): Model {
  const { hidden, heads, kvHeads, headDim, intermediate, vocabSize } = config;
  // Block-quantized tensors (GGUF) become f32 only where the engine needs f32 (norms, embedding gather).
  const asF32 = (t: HostTensor) => (quantFormat(t.dtype) ? dequantizeTensor(t) : toF32(t));
  const f32 = (name: string, shape: number[]) => asF32(expectShape(need(src, name), shape));
  const hash = createHash("sha256");
  hash.update(meta.fingerprintSeed);
  const kernels = new Kernels(gpu.device, gpu.hasF16, unrollsLoops(gpu));
  const compute = meta.compute ?? "f32";
  if (compute !== "f32" && compute !== "f16" && compute !== "int8") {
    throw new InvalidArgumentError(`compute must be "f32", "f16" or "int8" (got '${compute}')`);
  }
  if (compute === "int8" && !gpu.hasInt8Matrix) {
    throw new GpuUnavailableError(
      `compute "int8" needs int8 subgroup matrices (Dawn's chromium-experimental-subgroup-matrix with i8 x i8 -> i32 at 16 x 16 x 32, ` +
        `subgroups of 32), which the adapter (${gpu.description}) does not offer; use compute "f32"`,
    );
  }
  if (compute === "f16" && meta.weightDtype === "f32") {
    throw new InvalidArgumentError(`compute "f16" needs f16 weight storage, but weightDtype is "f32" (use weightDtype "f16" or "auto")`);
  }
  if (compute === "f16" && !gpu.hasF16) {
    throw new GpuUnavailableError(`compute "f16" needs the WebGPU feature "shader-f16", which the adapter (${gpu.description}) does not offer; use compute "f32"`);
  }
  const weightDtype = compute === "f16" && (meta.weightDtype ?? "auto") === "auto" ? "f16" : meta.weightDtype ?? "auto";
  hash.update(`|weights:${weightDtype}|`);
  const hashed = (a: Float32Array) => (hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)), a);
  // A linear weight from row blocks (fused q|k|v, gate|up): kept as raw blocks when every part has the
  // same block-quantized format (its kernels dequantize on the fly), otherwise converted to f32.
  type HostLinear = { format: string; f32?: Float32Array; raw?: Uint8Array; rowBytes?: number };
  const linearOf = (ts: HostTensor[]): HostLinear => {
    const q = quantFormat(ts[0].dtype);
    if (q && ts.every((t) => t.dtype === ts[0].dtype)) {
      const raw = concatBytes(ts.map((t) => t.data));
      hash.update(raw);
      return { format: q.gpu!, raw, rowBytes: rowBytes(q.name, ts[0].shape[1]) };
    }
    const cols = ts[0].shape[1];
    if ((ts.every((t) => t.dtype === "F16") && weightDtype !== "f32") || weightDtype === "f16") {
      // f16 storage: exact for F16 checkpoints; a rounding of F32/BF16 ones when asked for
      const raw = ts.every((t) => t.dtype === "F16") ? concatBytes(ts.map((t) => t.data)) : f16Bytes(concatRows(ts.map(asF32)));
      hash.update(raw);
      return { format: "f16", raw, rowBytes: cols * 2 };
    }
    return { format: "f32", f32: concatRows(ts.map((t) => hashed(asF32(t)))) };
  };
  const upload = (name: string, w: HostLinear, rows: number, cols: number, bias?: Float32Array): GpuLinear => {
    const lin = w.format === "f32" ? uploadLinear(gpu, name, w.f32!, rows, cols, bias) : uploadQuantLinear(gpu, name, w.format, w.raw!, rows, cols, w.rowBytes!, bias);
    if (w.format === "f16" && compute === "f16") lin.compute = "f16";
    // int8: the prefill copy of the float layers (block formats keep their own kernels)
    if (compute === "int8" && (lin.format === "f16" || lin.format === "f32") && cols % 4 === 0) attachInt8(gpu, kernels, lin);
    return lin;
  };

  const embedT = expectShape(need(src, "model.embed_tokens.weight"), [vocabSize, hidden]);
  const embedF32 = hashed(asF32(embedT));
  const embed = uploadLinear(gpu, "embed", embedF32, vocabSize, hidden);
  const layers: LayerWeights[] = [];
  const qRows = heads * headDim, kvRows = kvHeads * headDim;
  for (let l = 0; l < config.layers; l++) {
    const p = `model.layers.${l}.`;
    const w = (n: string, shape: number[]) => hashed(f32(p + n, shape));
    const t = (n: string, shape: number[]) => expectShape(need(src, p + n), shape);
    const qkv = linearOf([
      t("self_attn.q_proj.weight", [qRows, hidden]),
      t("self_attn.k_proj.weight", [kvRows, hidden]),
      t("self_attn.v_proj.weight", [kvRows, hidden]),
    ]);
    const qkvBias = config.qkvBias
      ? concatRows([w("self_attn.q_proj.bias", [qRows]), w("self_attn.k_proj.bias", [kvRows]), w("self_attn.v_proj.bias", [kvRows])])
      : undefined;
    const gateUp = linearOf([t("mlp.gate_proj.weight", [intermediate, hidden]), t("mlp.up_proj.weight", [intermediate, hidden])]);
    layers.push({
      attnNorm: uploadF32(gpu.device, w("input_layernorm.weight", [hidden])),
      qkv: upload(`${p}qkv`, qkv, qRows + 2 * kvRows, hidden, qkvBias),
      qNorm: config.qkNorm ? uploadF32(gpu.device, w("self_attn.q_norm.weight", [headDim])) : undefined,
      kNorm: config.qkNorm ? uploadF32(gpu.device, w("self_attn.k_norm.weight", [headDim])) : undefined,
      o: upload(`${p}o`, linearOf([t("self_attn.o_proj.weight", [hidden, qRows])]), hidden, qRows,
        config.oBias ? w("self_attn.o_proj.bias", [hidden]) : undefined),
      mlpNorm: uploadF32(gpu.device, w("post_attention_layernorm.weight", [hidden])),
      gateUp: upload(`${p}gate_up`, gateUp, 2 * intermediate, hidden),
      down: upload(`${p}down`, linearOf([t("mlp.down_proj.weight", [hidden, intermediate])]), hidden, intermediate),
    });
    meta.onProgress?.(l + 1, config.layers);
  }
  const norm = uploadF32(gpu.device, hashed(f32("model.norm.weight", [hidden])));
  const lmT = config.tieEmbeddings ? undefined : src.get("lm_head.weight");
  // A tied, quantized embedding: the gather reads the f32 copy, the LM head the raw blocks.
  const lmHead = lmT
    ? upload("lm_head", linearOf([expectShape(lmT, [vocabSize, hidden])]), vocabSize, hidden)
    : quantFormat(embedT.dtype)
      ? upload("lm_head", { format: quantFormat(embedT.dtype)!.gpu!, raw: embedT.data, rowBytes: rowBytes(embedT.dtype, hidden) }, vocabSize, hidden)
      : embed;
  if (!config.tieEmbeddings && !lmT) throw new ModelFormatError("weights: tensor 'lm_head.weight' is missing (tie_word_embeddings is false)");
  const fingerprint = hash.digest("hex").slice(0, 32);
  return {
    config,
    gpu,
    kernels,
    compute,
    embed,
    layers,
    norm,
    lmHead,
    invFreq: inverseFrequencies(headDim, config.ropeTheta, config.ropeScaling),
    fingerprint,
    source: meta.source,
    generationConfig: meta.generationConfig ?? {},
    tokenizerConfig: meta.tokenizerConfig ?? {},
    destroy() {
      destroyLinear(embed);
      if (lmHead !== embed) destroyLinear(lmHead);
      norm.destroy();
      for (const L of layers) {
        for (const b of [L.attnNorm, L.mlpNorm, L.qNorm, L.kNorm]) b?.destroy();
        for (const lin of [L.qkv, L.o, L.gateUp, L.down]) destroyLinear(lin);
      }
    },
  };
}

function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ModelFormatError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Loads a Hugging Face model folder (config.json + safetensors, single or sharded). */
export async function loadHfFolder(
  dir: string,
  gpu?: Gpu,
  opts: { weightDtype?: "auto" | "f32" | "f16"; compute?: ModelCompute; onProgress?: (done: number, total: number) => void } = {},
): Promise<Model> {
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) throw new ModelFormatError(`${dir}: config.json is missing`);
  const raw = readJson(configPath);
  const config = parseHfConfig(raw);
  const tensors = readSafetensorsFolder(dir);
  const canonical = JSON.stringify(config);
  return buildModel(gpu ?? await getGpu(), config, { get: (n) => tensors.get(n) }, {
    source: dir,
    fingerprintSeed: canonical,
    generationConfig: readJson(join(dir, "generation_config.json")),
    tokenizerConfig: readJson(join(dir, "tokenizer_config.json")),
    weightDtype: opts.weightDtype,
    compute: opts.compute,
    onProgress: opts.onProgress,
  });
}
