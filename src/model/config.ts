/**
 * The model configuration apekit runs: parsed from a Hugging Face `config.json` (or built from GGUF
 * metadata), validated, with every unsupported architecture or option rejected by name.
 *
 * @example
 * ```ts
 * import { parseHfConfig } from "./config.ts";
 * const cfg = parseHfConfig({ architectures: ["LlamaForCausalLM"], vocab_size: 8, hidden_size: 8,
 *   intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 });
 * console.log(cfg.headDim); // 4
 * ```
 */
import { ModelFormatError } from "../errors.ts";

export type Architecture = "llama" | "mistral" | "qwen2" | "qwen3";

export type RopeScaling =
  | { type: "none" }
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  rmsEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  maxPositions: number;
  tieEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2; Llama with attention_bias). */
  qkvBias: boolean;
  /** o_proj carries a bias (Llama with attention_bias). */
  oBias: boolean;
  /** Per-head RMSNorm on q and k before RoPE (Qwen3). */
  qkNorm: boolean;
  /** Keys further back than this many positions are not attended (Mistral); 0 = unlimited. */
  slidingWindow: number;
  bosTokenId?: number;
  eosTokenIds: number[];
}

const ARCHITECTURES: Record<string, Architecture> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
};

type Json = Record<string, unknown>;

function int(cfg: Json, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ModelFormatError(`config.json: '${key}' must be a positive integer (got ${JSON.stringify(cfg[key])})`);
  }
  return v;
}

function num(cfg: Json, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ModelFormatError(`config.json: '${key}' must be a number (got ${JSON.stringify(cfg[key])})`);
  }
  return v;
}

/** A finite number > 0 (epsilons, RoPE bases and factors: 0 or less gives NaN or garbage logits). */
function positive(cfg: Json, key: string, fallback?: number): number {
  const v = num(cfg, key, fallback);
  if (!(v > 0)) throw new ModelFormatError(`config.json: '${key}' must be > 0 (got ${JSON.stringify(cfg[key])})`);
  return v;
}

function ids(v: unknown): number[] {
  if (typeof v === "number") return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number");
  return [];
}

/** RoPE settings: transformers 5 writes `rope_parameters`, older versions `rope_theta` + `rope_scaling`. */
function parseRope(cfg: Json): { theta: number; scaling: RopeScaling } {
  const params = (cfg.rope_parameters ?? cfg.rope_scaling ?? null) as Json | null;
  const theta = positive(params && typeof params.rope_theta === "number" ? params : cfg, "rope_theta", 10000);
  if (!params) return { theta, scaling: { type: "none" } };
  const key = cfg.rope_parameters ? "rope_parameters" : "rope_scaling";
  const type = (params.rope_type ?? params.type ?? "default") as string;
  if (type === "default") return { theta, scaling: { type: "none" } };
  if (type === "linear") return { theta, scaling: { type: "linear", factor: positive(params, "factor") } };
  if (type === "llama3") {
    return {
      theta,
      scaling: {
        type: "llama3",
        factor: positive(params, "factor"),
        lowFreqFactor: positive(params, "low_freq_factor"),
        highFreqFactor: llama3High(params),
        originalMaxPositions: int(params, "original_max_position_embeddings"),
      },
    };
  }
  throw new ModelFormatError(`config.json: '${key}.rope_type' = '${type}' is not supported (supported: default, linear, llama3)`);
}

/** llama3 RoPE: high_freq_factor > low_freq_factor (the smoothing divides by their difference). */
function llama3High(params: Json): number {
  const high = positive(params, "high_freq_factor");
  if (!(high > (params.low_freq_factor as number))) {
    throw new ModelFormatError(`config.json: rope 'high_freq_factor' (${high}) must be greater than 'low_freq_factor' (${params.low_freq_factor})`);
  }
  return high;
}

/** Validates a Hugging Face config.json object. Unsupported keys or values throw ModelFormatError naming them. */
export function parseHfConfig(cfg: Json): ModelConfig {
  const archName = Array.isArray(cfg.architectures) ? String(cfg.architectures[0]) : undefined;
  if (!archName) throw new ModelFormatError("config.json: 'architectures' is missing");
  const architecture = ARCHITECTURES[archName];
  if (!architecture) {
    throw new ModelFormatError(
      `config.json: 'architectures' = '${archName}' is not supported (supported: ${Object.keys(ARCHITECTURES).join(", ")})`,
    );
  }
  const act = cfg.hidden_act ?? "silu";
  if (act !== "silu") throw new ModelFormatError(`config.json: 'hidden_act' = '${act}' is not supported (only silu)`);
  if (cfg.mlp_bias === true) throw new ModelFormatError("config.json: 'mlp_bias' = true is not supported");
  const hidden = int(cfg, "hidden_size");
  const heads = int(cfg, "num_attention_heads");
  const kvHeads = int(cfg, "num_key_value_heads", heads);
  if (heads % kvHeads !== 0) {
    throw new ModelFormatError(`config.json: 'num_attention_heads' (${heads}) is not a multiple of 'num_key_value_heads' (${kvHeads})`);
  }
  const headDim = cfg.head_dim == null ? hidden / heads : int(cfg, "head_dim");
  if (!Number.isInteger(headDim) || headDim % 2 !== 0 || headDim > 256) {
    throw new ModelFormatError(`config.json: 'head_dim' = ${headDim} is not supported (even, at most 256)`);
  }
  const rope = parseRope(cfg);
  const attentionBias = cfg.attention_bias === true;
  let slidingWindow = 0;
  if (architecture === "mistral" && cfg.sliding_window != null) slidingWindow = int(cfg, "sliding_window");
  if ((architecture === "qwen2" || architecture === "qwen3") && cfg.use_sliding_window === true) {
    throw new ModelFormatError("config.json: 'use_sliding_window' = true is not supported");
  }
  return {
    architecture,
    vocabSize: int(cfg, "vocab_size"),
    hidden,
    intermediate: int(cfg, "intermediate_size"),
    layers: int(cfg, "num_hidden_layers"),
    heads,
    kvHeads,
    headDim,
    rmsEps: positive(cfg, "rms_norm_eps", 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositions: int(cfg, "max_position_embeddings", 4096),
    tieEmbeddings: cfg.tie_word_embeddings === true || (cfg.tie_word_embeddings == null && architecture === "qwen2"),
    qkvBias: architecture === "qwen2" || attentionBias,
    oBias: attentionBias && architecture !== "qwen2",
    qkNorm: architecture === "qwen3",
    slidingWindow,
    bosTokenId: typeof cfg.bos_token_id === "number" ? cfg.bos_token_id : undefined,
    eosTokenIds: ids(cfg.eos_token_id),
  };
}
