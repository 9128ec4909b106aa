/** Tiny random-weight models in HF tensor naming, for engine-vs-reference tests. */
import type { ModelConfig } from "../../src/model/config.ts";
import type { HostTensor } from "../../src/model/tensor.ts";
import type { RefWeights } from "./cpu_model.ts";

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    architecture: "llama", vocabSize: 97, hidden: 32, intermediate: 48, layers: 2, heads: 4, kvHeads: 2, headDim: 8,
    rmsEps: 1e-5, ropeTheta: 10000, ropeScaling: { type: "none" }, maxPositions: 4096, tieEmbeddings: false,
    qkvBias: false, oBias: false, qkNorm: false, slidingWindow: 0, eosTokenIds: [], ...over,
  };
}

/** Random weights (scale `amp`) as HostTensors (F32) and as the reference's float64 arrays. */
export function randomModel(cfg: ModelConfig, seed = 1, amp = 0.3): { tensors: Map<string, HostTensor>; ref: RefWeights } {
  const rand = rng(seed);
  const tensors = new Map<string, HostTensor>();
  const make = (name: string, shape: number[], around = 0): Float64Array => {
    const n = shape.reduce((a, b) => a * b, 1);
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = around + (rand() * 2 - 1) * amp;
    tensors.set(name, { name, dtype: "F32", shape, data: new Uint8Array(f.buffer) });
    return Float64Array.from(f);
  };
  const { hidden: H, heads, kvHeads, headDim: hd, intermediate: I, vocabSize: V } = cfg;
  const embed = make("model.embed_tokens.weight", [V, H], 0);
  const layers: RefWeights["layers"] = [];
  for (let l = 0; l < cfg.layers; l++) {
    const p = `model.layers.${l}.`;
    layers.push({
      attnNorm: make(p + "input_layernorm.weight", [H], 1),
      q: make(p + "self_attn.q_proj.weight", [heads * hd, H]),
      k: make(p + "self_attn.k_proj.weight", [kvHeads * hd, H]),
      v: make(p + "self_attn.v_proj.weight", [kvHeads * hd, H]),
      qb: cfg.qkvBias ? make(p + "self_attn.q_proj.bias", [heads * hd]) : undefined,
      kb: cfg.qkvBias ? make(p + "self_attn.k_proj.bias", [kvHeads * hd]) : undefined,
      vb: cfg.qkvBias ? make(p + "self_attn.v_proj.bias", [kvHeads * hd]) : undefined,
      qNorm: cfg.qkNorm ? make(p + "self_attn.q_norm.weight", [hd], 1) : undefined,
      kNorm: cfg.qkNorm ? make(p + "self_attn.k_norm.weight", [hd], 1) : undefined,
      o: make(p + "self_attn.o_proj.weight", [H, heads * hd]),
      mlpNorm: make(p + "post_attention_layernorm.weight", [H], 1),
      gate: make(p + "mlp.gate_proj.weight", [I, H]),
      up: make(p + "mlp.up_proj.weight", [I, H]),
      down: make(p + "mlp.down_proj.weight", [H, I]),
    });
  }
  const norm = make("model.norm.weight", [H], 1);
  const lmHead = cfg.tieEmbeddings ? embed : make("lm_head.weight", [V, H]);
  return { tensors, ref: { embed, layers, norm, lmHead } };
}

/** Largest |a-b| / max|b| over the vector (relative to the reference's scale). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < b.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  return maxDiff / maxRef;
}
