/**
 * GGUF files: the reader against a file written by llama.cpp's own Python package (with q/k rows
 * permuted exactly as llama.cpp's converter does), the writer's round trip (v2 and v3, every value
 * type), typed errors for broken files, and whole models: tiny random models written as GGUF in every
 * supported tensor type must give the logits of the same weights loaded as f32 (F32: 1e-5), or for
 * quantized types the float64 CPU reference run on the CPU-dequantized weights (1e-4).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getGpu } from "../src/gpu/device.ts";
import { ModelFormatError } from "../src/errors.ts";
import { Engine } from "../src/engine/engine.ts";
import { sequentialLogits } from "../src/ape/ape.ts";
import { type ModelConfig, parseHfConfig } from "../src/model/config.ts";
import { ggufConfig, GgufType, ggufWeights, openGguf, parseGguf } from "../src/model/gguf.ts";
import { configMetadata, type GgufWriteValue, toGgufTensors, writeGguf } from "./reference/gguf_writer.ts";
import { loadEngineModel } from "../src/model/load.ts";
import { defaultModelPath, DefaultModelMissingError } from "../src/model/default_model.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { dequantize, FORMATS, quantize } from "../src/model/quant.ts";
import { readSafetensorsFolder } from "../src/model/safetensors.ts";
import type { HostTensor } from "../src/model/tensor.ts";
import { runtimeName } from "../src/runtime.ts";
import { CpuReference, type RefWeights } from "./reference/cpu_model.ts";
import { randomModel, relError, rng, tinyConfig } from "./reference/random_model.ts";

const FIXTURES = new URL("../fixtures/gguf/", import.meta.url).pathname;
const TINY = join(FIXTURES, "tiny-llama");
const tmp = mkdtempSync(join(tmpdir(), "apekit-gguf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// Tiny shapes: rows a multiple of 32 for the 32-element block formats, of 256 for the K-quants.
const SMALL = { hidden: 32, intermediate: 64, heads: 4, kvHeads: 2, headDim: 8 };
const KQ = { hidden: 256, intermediate: 256, heads: 4, kvHeads: 2, headDim: 64 };

function throwsFormat(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, "expected a ModelFormatError").toBeInstanceOf(ModelFormatError);
  for (const p of parts) expect((err as Error).message).toMatch(p);
}

describe(`GGUF reader on a file written by llama.cpp's gguf-py (${runtimeName()})`, () => {
  it("reads metadata of every kind, tensor infos and the config", () => {
    const f = openGguf(join(TINY, "model.gguf"));
    try {
      expect(f.version).toBe(3);
      expect(f.alignment).toBe(32);
      const m = f.metadata;
      expect(m.get("general.architecture")).toBe("llama");
      expect(m.get("general.name")).toBe("tiny-llama");
      expect(m.get("llama.block_count")).toBe(2);
      expect(m.get("llama.rope.freq_base")).toBe(50000);
      expect(m.get("llama.attention.layer_norm_rms_epsilon")).toBe(1e-5);
      const tokens = m.get("tokenizer.ggml.tokens") as string[];
      expect(tokens.length).toBe(64);
      expect(tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "a"]);
      expect(m.get("tokenizer.ggml.token_type")).toBeInstanceOf(Int32Array);
      expect(Array.from(m.get("tokenizer.ggml.token_type") as Int32Array).slice(0, 4)).toEqual([3, 3, 3, 1]);
      expect(m.get("tokenizer.ggml.merges")).toEqual(["a a", "b b", "aa a"]);
      expect(m.get("tokenizer.ggml.add_bos_token")).toBe(true);
      expect(m.get("test.f64")).toBe(0.125);
      expect(m.get("test.i64")).toBe(-5);
      expect(m.get("test.i8")).toBe(-3);
      const nested = m.get("test.nested") as ArrayLike<number>[];
      expect(nested.map((a) => Array.from(a).map(Number))).toEqual([[1, 2], [3]]);
      const q = f.tensors.get("blk.0.attn_q.weight")!;
      expect(q.type).toBe("F32");
      expect(q.dims).toEqual([32, 32]);
      expect(f.tensors.get("token_embd.weight")!.shape).toEqual([64, 32]);
      // The config read from GGUF metadata is the one read from the HF config.json.
      const hf = parseHfConfig(JSON.parse(readFileSync(join(TINY, "config.json"), "utf8")));
      expect(ggufConfig(f)).toEqual(hf);
    } finally {
      f.close();
    }
  });

  it("gives every tensor under its HF name with llama.cpp's q/k permutation undone (bit-exact)", () => {
    const f = openGguf(join(TINY, "model.gguf"));
    try {
      const src = ggufWeights(f, ggufConfig(f));
      const hf = readSafetensorsFolder(TINY);
      expect(hf.size).toBe(f.tensors.size);
      for (const [name, t] of hf) {
        const g = src.get(name)!;
        expect(g, name).toBeDefined();
        expect(g.shape, name).toEqual(t.shape);
        expect(Buffer.compare(Buffer.from(g.data), Buffer.from(t.data)), name).toBe(0);
      }
    } finally {
      f.close();
    }
  });

  it("loadEngineModel on the .gguf gives the logits of loadEngineModel on the HF folder (1e-5)", async () => {
    const a = await loadEngineModel(join(TINY, "model.gguf"));
    const b = await loadEngineModel(TINY);
    const ea = new Engine(a.model, { kvBudgetBytes: 4 << 20 }), eb = new Engine(b.model, { kvBudgetBytes: 4 << 20 });
    try {
      expect(a.format).toBe("gguf");
      expect(b.format).toBe("hf");
      expect(a.tokenizer?.model).toBe("gpt2");
      expect(a.tokenizer?.bosId).toBe(1);
      expect(a.tokenizer?.tokenType?.length).toBe(64);
      expect(a.chatTemplate).toContain("messages");
      const ids = Uint32Array.from([1, 5, 9, 33, 2, 63, 7, 7, 12]);
      const la = await sequentialLogits(ea, ids, true), lb = await sequentialLogits(eb, ids, true);
      expect(relError(la, lb)).toBeLessThan(1e-5);
      expect(a.model.fingerprint).toBe(b.model.fingerprint); // same config and weights
    } finally {
      ea.destroy();
      eb.destroy();
      a.model.destroy();
      b.model.destroy();
    }
  });
});

describe(`GGUF model extras (${runtimeName()})`, () => {
  it("applies llama.cpp's rope_freqs.weight factors (Llama 3.x rope scaling) and loads a folder holding one .gguf", async () => {
    const cfg = tinyConfig(SMALL);
    const { tensors } = randomModel(cfg, 4);
    const factors = Float32Array.from({ length: cfg.headDim / 2 }, (_, i) => 1 + i);
    const gg = toGgufTensors(cfg, tensors.values()).map(({ name, tensor }) => ({ name, type: "F32", shape: tensor.shape, data: tensor.data }));
    const dir = join(tmp, "ropefreqs");
    mkdirSync(dir);
    writeFileSync(join(dir, "model.gguf"), writeGguf(configMetadata(cfg), [...gg, { name: "rope_freqs.weight", type: "F32", shape: [factors.length], data: new Uint8Array(factors.buffer) }]));
    const plain = join(tmp, "plain.gguf");
    writeFileSync(plain, writeGguf(configMetadata(cfg), gg));
    const a = await loadEngineModel(dir), b = await loadEngineModel(plain);
    try {
      expect(Array.from(a.model.invFreq)).toEqual(Array.from(b.model.invFreq, (v, i) => v / factors[i]));
      expect(a.model.fingerprint).not.toBe(b.model.fingerprint);
    } finally {
      a.model.destroy();
      b.model.destroy();
    }
    writeFileSync(join(dir, "other.gguf"), readFileSync(plain));
    await expect(loadEngineModel(dir)).rejects.toThrow(/exactly one \.gguf file \(found 2\)/);
  });
});

describe(`the default model's location (${runtimeName()})`, () => {
  it("lives in the model cache under XDG_CACHE_HOME; when absent, loadEngineModel() says how to fetch it", async () => {
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = join(tmp, "empty-cache");
    try {
      expect(defaultModelPath()).toBe(join(tmp, "empty-cache", "apekit", "models", "smollm2-135m-instruct-q4_1", "model.gguf"));
      const err = await loadEngineModel().catch((e) => e);
      expect(err).toBeInstanceOf(DefaultModelMissingError);
      expect(err.code).toBe("E_MODEL_MISSING");
      expect(err.message).toMatch(/scripts\/fetch-default-model\.sh/);
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
  });
});

describe(`GGUF writer round trip (${runtimeName()})`, () => {
  const md: [string, GgufWriteValue][] = [
    ["general.architecture", "llama"],
    ["u8", { type: GgufType.UINT8, value: 250 }],
    ["i8", { type: GgufType.INT8, value: -120 }],
    ["u16", { type: GgufType.UINT16, value: 65000 }],
    ["i16", { type: GgufType.INT16, value: -32000 }],
    ["u32", 4000000000],
    ["i32", -7],
    ["f32", 0.1],
    ["bool", true],
    ["str", "héllo ✓"],
    ["u64", { type: GgufType.UINT64, value: 2n ** 60n }],
    ["i64", { type: GgufType.INT64, value: -(2 ** 40) }],
    ["f64", { type: GgufType.FLOAT64, value: Math.PI }],
    ["arr.str", ["a", "", "ü"]],
    ["arr.i32", Int32Array.from([1, -2, 3])],
    ["arr.f32", Float32Array.from([0.5, -1])],
    ["arr.bool", { type: GgufType.ARRAY, elementType: GgufType.BOOL, value: [true, false] }],
    ["arr.nested", [["x"], ["y", "z"]]],
    ["arr.empty", { type: GgufType.ARRAY, elementType: GgufType.STRING, value: [] }],
    ["big", 2 ** 40],
  ];
  const tensors = [
    { name: "a", type: "F32", shape: [3, 4], data: new Uint8Array(Float32Array.from({ length: 12 }, (_, i) => i).buffer) },
    { name: "b", type: "Q4_0", shape: [2, 64], data: quantize("Q4_0", Float32Array.from({ length: 128 }, (_, i) => Math.sin(i))) },
    { name: "c", type: "Q6_K", shape: [256], data: quantize("Q6_K", Float32Array.from({ length: 256 }, (_, i) => Math.cos(i))) },
  ];

  it.each([{ version: 2, alignment: 64 }, { version: 3, alignment: 32 }])("v$version, alignment $alignment", ({ version, alignment }) => {
    const bytes = writeGguf(md, tensors, { version, alignment });
    const path = join(tmp, `rt${version}.gguf`);
    writeFileSync(path, bytes);
    for (const f of [parseGguf(bytes), openGguf(path)]) {
      try {
        expect(f.version).toBe(version);
        expect(f.alignment).toBe(alignment);
        const m = f.metadata;
        expect(m.get("u8")).toBe(250);
        expect(m.get("i8")).toBe(-120);
        expect(m.get("u16")).toBe(65000);
        expect(m.get("i16")).toBe(-32000);
        expect(m.get("u32")).toBe(4000000000);
        expect(m.get("i32")).toBe(-7);
        expect(m.get("f32")).toBe(0.1);
        expect(m.get("bool")).toBe(true);
        expect(m.get("str")).toBe("héllo ✓");
        expect(m.get("u64")).toBe(2n ** 60n); // beyond 2^53: a bigint
        expect(m.get("i64")).toBe(-(2 ** 40));
        expect(m.get("f64")).toBe(Math.PI);
        expect(m.get("arr.str")).toEqual(["a", "", "ü"]);
        expect(Array.from(m.get("arr.i32") as Int32Array)).toEqual([1, -2, 3]);
        expect(Array.from(m.get("arr.f32") as Float32Array)).toEqual([0.5, -1]);
        expect(m.get("arr.bool")).toEqual([true, false]);
        expect(m.get("arr.nested")).toEqual([["x"], ["y", "z"]]);
        expect(m.get("arr.empty")).toEqual([]);
        expect(m.get("big")).toBe(2 ** 40);
        expect(f.metadataTypes.get("big")!.type).toBe(GgufType.UINT64);
        expect(f.metadataTypes.get("arr.i32")).toEqual({ type: GgufType.ARRAY, elementType: GgufType.INT32 });
        for (const t of tensors) {
          const info = f.tensors.get(t.name)!;
          expect(info.offset % alignment).toBe(0);
          const r = f.read(t.name);
          expect(r.dtype).toBe(t.type);
          expect(r.shape).toEqual(t.shape);
          expect(Array.from(r.data)).toEqual(Array.from(t.data));
        }
      } finally {
        f.close();
      }
    }
  });
});

/** Byte offset of a tensor info's type field (u32), followed by its offset (u64). */
function tensorTypeField(bytes: Uint8Array, name: string): number {
  const f = parseGguf(bytes);
  const nDims = f.tensors.get(name)!.dims.length;
  const needle = new TextEncoder().encode(name);
  for (let i = 0; i < bytes.length - needle.length; i++) {
    if (needle.every((b, j) => bytes[i + j] === b) && bytes[i - 8] === needle.length) return i + needle.length + 4 + 8 * nDims;
  }
  throw new Error(`tensor ${name} not found`);
}

describe(`GGUF errors are typed and name what is wrong (${runtimeName()})`, () => {
  const cfg = tinyConfig();
  const { tensors } = randomModel(cfg, 2);
  const good = writeGguf(configMetadata(cfg), toGgufTensors(cfg, tensors.values()).map(({ name, tensor }) => ({ name, type: "F32", shape: tensor.shape, data: tensor.data })));
  const save = (name: string, b: Uint8Array) => {
    const p = join(tmp, name);
    writeFileSync(p, b);
    return p;
  };

  it("an unknown tensor type fails naming the tensor and the type", async () => {
    const b = good.slice();
    new DataView(b.buffer).setUint32(tensorTypeField(b, "blk.1.attn_v.weight"), 13, true); // Q5_K
    const f = parseGguf(b, "x.gguf");
    expect(f.tensors.get("blk.1.attn_v.weight")!.type).toBe("Q5_K");
    throwsFormat(() => f.read("blk.1.attn_v.weight"), /blk\.1\.attn_v\.weight/, /Q5_K/);
    await expect(loadEngineModel(save("q5k.gguf", b))).rejects.toThrow(/'blk\.1\.attn_v\.weight' has type Q5_K/);
    new DataView(b.buffer).setUint32(tensorTypeField(b, "blk.1.attn_v.weight"), 99, true);
    throwsFormat(() => parseGguf(b).read("blk.1.attn_v.weight"), /unknown type 99/);
  });

  it("misaligned or out-of-file offsets fail naming the tensor", () => {
    const b = good.slice();
    const at = tensorTypeField(b, "blk.0.ffn_up.weight") + 4;
    const dv = new DataView(b.buffer);
    dv.setBigUint64(at, dv.getBigUint64(at, true) + 4n, true);
    throwsFormat(() => parseGguf(b), /blk\.0\.ffn_up\.weight/, /not a multiple of the alignment 32/);
    dv.setBigUint64(at, 1n << 40n, true);
    throwsFormat(() => parseGguf(b), /blk\.0\.ffn_up\.weight/, /past the end of the file/);
  });

  it("truncated files fail naming what was being read", () => {
    const last = [...parseGguf(good).tensors.values()].sort((x, y) => y.offset - x.offset)[0];
    throwsFormat(() => openGguf(save("cut.gguf", good.subarray(0, good.length - 10))), /truncated/, new RegExp(`'${last.name.replace(/\./g, "\\.")}'`));
    throwsFormat(() => parseGguf(good.subarray(0, 100)), /truncated/, /metadata/);
    throwsFormat(() => parseGguf(good.subarray(0, 12)), /truncated/);
    throwsFormat(() => openGguf(save("cut2.gguf", good.subarray(0, 1500))), /truncated/);
  });

  it("bad magic, version 1, big-endian files and unsupported architectures fail clearly", () => {
    const b = good.slice();
    b[0] = 0x58;
    throwsFormat(() => parseGguf(b), /not a GGUF file/);
    const v = good.slice();
    new DataView(v.buffer).setUint32(4, 1, true);
    throwsFormat(() => parseGguf(v), /version 1 is not supported/);
    new DataView(v.buffer).setUint32(4, 3, false);
    throwsFormat(() => parseGguf(v), /big-endian/);
    const gemma = writeGguf([["general.architecture", "gemma3"]], []);
    throwsFormat(() => ggufConfig(parseGguf(gemma)), /architecture 'gemma3' is not supported/);
    const yarn = writeGguf([...configMetadata(cfg), ["llama.rope.scaling.type", "yarn"]], []);
    throwsFormat(() => ggufConfig(parseGguf(yarn)), /rope\.scaling\.type' = 'yarn'/);
  });

  it("tensor ranges that overlap fail naming both tensors (a type edited to a wider one)", () => {
    // blk.0.attn_q.weight written as F16, then its type edited to F32: twice the bytes, into the next tensor
    const list = toGgufTensors(cfg, tensors.values()).map(({ name, tensor }) => ({ name, type: "F32", shape: tensor.shape, data: tensor.data }));
    const i = list.findIndex((t) => t.name === "blk.0.attn_q.weight");
    expect(i).toBeLessThan(list.length - 1);
    list[i] = { ...list[i], type: "F16", data: new Uint8Array(list[i].data.byteLength / 2) as unknown as Float32Array };
    const b = writeGguf(configMetadata(cfg), list);
    expect(parseGguf(b).tensors.get("blk.0.attn_q.weight")!.type).toBe("F16");
    new DataView(b.buffer).setUint32(tensorTypeField(b, "blk.0.attn_q.weight"), 0, true); // F32
    throwsFormat(() => parseGguf(b), /tensor 'blk\.0\.attn_q\.weight' \(F32, \d+ bytes at \d+\) overlaps tensor '/);
    // two tensors at the same offset
    const c = good.slice();
    const dv = new DataView(c.buffer);
    const first = parseGguf(c).tensors.get("blk.0.ffn_up.weight")!.offset - parseGguf(c).dataOffset;
    dv.setBigUint64(tensorTypeField(c, "blk.1.ffn_up.weight") + 4, BigInt(first), true);
    throwsFormat(() => parseGguf(c), /overlaps tensor/, /ffn_up/);
  });

  it("numeric config values are validated at load: rms epsilon, RoPE base and factors, sliding window", async () => {
    const meta = configMetadata(cfg);
    const edit = (k: string, v: GgufWriteValue) => writeGguf([...meta.filter(([n]) => n !== k), [k, v]], []);
    throwsFormat(() => ggufConfig(parseGguf(edit("llama.attention.layer_norm_rms_epsilon", -1))), /'llama\.attention\.layer_norm_rms_epsilon' must be > 0 \(got -1\)/);
    throwsFormat(() => ggufConfig(parseGguf(edit("llama.rope.freq_base", 0))), /'llama\.rope\.freq_base' must be > 0/);
    throwsFormat(() => ggufConfig(parseGguf(edit("llama.rope.scaling.factor", -2))), /'llama\.rope\.scaling\.factor' must be > 0/);
    throwsFormat(() => ggufConfig(parseGguf(edit("llama.vocab_size", 10.5))), /'llama\.vocab_size' must be a positive integer/);
    // the whole load refuses it too (before any weight reaches the GPU)
    const b = writeGguf([...meta.filter(([n]) => n !== "llama.attention.layer_norm_rms_epsilon"), ["llama.attention.layer_norm_rms_epsilon", -1]],
      toGgufTensors(cfg, tensors.values()).map(({ name, tensor }) => ({ name, type: "F32", shape: tensor.shape, data: tensor.data })));
    await expect(loadEngineModel(save("eps.gguf", b))).rejects.toThrow(ModelFormatError);
    // and so does a Hugging Face config.json
    const hf = { architectures: ["LlamaForCausalLM"], vocab_size: 8, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2 };
    expect(parseHfConfig(hf).rmsEps).toBe(1e-6);
    throwsFormat(() => parseHfConfig({ ...hf, rms_norm_eps: -1 }), /'rms_norm_eps' must be > 0 \(got -1\)/);
    throwsFormat(() => parseHfConfig({ ...hf, rope_theta: 0 }), /'rope_theta' must be > 0/);
    throwsFormat(() => parseHfConfig({ ...hf, rope_scaling: { rope_type: "linear", factor: 0 } }), /'factor' must be > 0/);
    throwsFormat(() => parseHfConfig({
      ...hf, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 64 },
    }), /'high_freq_factor' \(1\) must be greater than 'low_freq_factor' \(4\)/);
    throwsFormat(() => parseHfConfig({ ...hf, architectures: ["MistralForCausalLM"], sliding_window: -4 }), /'sliding_window' must be a positive integer/);
  });
});

// ---------------------------------------------------------------------------------------------
// Whole models in every tensor type

/** Linear weights and the embedding take the variant's type; norms and biases stay F32 (as llama.cpp). */
function typeFor(name: string, v: Variant): string {
  if (name.endsWith("norm.weight") || name.endsWith(".bias")) return "F32";
  return v.override?.(name) ?? v.type;
}

interface Variant {
  name: string;
  cfg: ModelConfig;
  type: string;
  override?: (name: string) => string | undefined;
  /** Expected GPU format of the fused qkv (e.g. "f32" when q, k, v have different types). */
  qkvFormat?: string;
}

const VARIANTS: Variant[] = [
  { name: "llama F32", cfg: tinyConfig(SMALL), type: "F32" },
  ...["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"].map((type) => ({ name: `llama ${type}`, cfg: tinyConfig(SMALL), type })),
  { name: "llama Q4_K", cfg: tinyConfig(KQ), type: "Q4_K" },
  { name: "llama Q6_K", cfg: tinyConfig(KQ), type: "Q6_K" },
  { name: "mistral Q8_0", cfg: tinyConfig({ ...SMALL, architecture: "mistral" }), type: "Q8_0" },
  { name: "qwen2 Q5_1 (qkv bias)", cfg: tinyConfig({ ...SMALL, architecture: "qwen2", qkvBias: true }), type: "Q5_1" },
  {
    name: "qwen3 Q4_1 (qk norm, tied quantized embedding = quantized LM head)",
    cfg: tinyConfig({ ...SMALL, architecture: "qwen3", qkNorm: true, headDim: 16, tieEmbeddings: true }), type: "Q4_1",
  },
  {
    name: "llama Q4_K_M-like mix (attn_v, ffn_down, embedding Q6_K)", cfg: tinyConfig(KQ), type: "Q4_K", qkvFormat: "f32",
    override: (n) => (/v_proj|down_proj|embed_tokens/.test(n) ? "Q6_K" : undefined),
  },
];

describe.each(VARIANTS)(`GGUF model vs reference on ${runtimeName()}: $name`, (v) => {
  const { cfg } = v;
  let model: Model, engine: Engine, ref: CpuReference;
  let f32Engine: Engine | undefined, f32Model: Model | undefined;
  const rand = rng(17);
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));

  beforeAll(async () => {
    const { tensors } = randomModel(cfg, 9);
    // Quantize (in HF order), keep what the CPU reference sees: the dequantized weights.
    const stored: HostTensor[] = [];
    const deq = new Map<string, Float64Array>();
    for (const [name, t] of tensors) {
      const type = typeFor(name, v);
      const x = new Float32Array(t.data.slice().buffer);
      const data = type === "F32" ? t.data : quantize(type, x);
      stored.push({ name, dtype: type, shape: t.shape, data });
      deq.set(name, Float64Array.from(dequantize(type, data, x.length)));
    }
    const md: [string, GgufWriteValue][] = [...configMetadata(cfg), ["general.name", v.name]];
    const bytes = writeGguf(md, toGgufTensors(cfg, stored).map(({ name, tensor }) => ({ name, type: tensor.dtype, shape: tensor.shape, data: tensor.data })));
    const path = join(tmp, `${v.name.split(" ").slice(0, 2).join("_")}.gguf`);
    writeFileSync(path, bytes);
    ({ model } = await loadEngineModel(path));
    engine = new Engine(model, { kvBudgetBytes: 8 << 20 });
    const d = (n: string) => deq.get(n)!;
    const w: RefWeights = {
      embed: d("model.embed_tokens.weight"),
      layers: Array.from({ length: cfg.layers }, (_, l) => {
        const p = `model.layers.${l}.`;
        return {
          attnNorm: d(p + "input_layernorm.weight"), mlpNorm: d(p + "post_attention_layernorm.weight"),
          q: d(p + "self_attn.q_proj.weight"), k: d(p + "self_attn.k_proj.weight"), v: d(p + "self_attn.v_proj.weight"),
          o: d(p + "self_attn.o_proj.weight"),
          qb: deq.get(p + "self_attn.q_proj.bias"), kb: deq.get(p + "self_attn.k_proj.bias"), vb: deq.get(p + "self_attn.v_proj.bias"),
          qNorm: deq.get(p + "self_attn.q_norm.weight"), kNorm: deq.get(p + "self_attn.k_norm.weight"),
          gate: d(p + "mlp.gate_proj.weight"), up: d(p + "mlp.up_proj.weight"), down: d(p + "mlp.down_proj.weight"),
        };
      }),
      norm: d("model.norm.weight"),
      lmHead: cfg.tieEmbeddings ? d("model.embed_tokens.weight") : d("lm_head.weight"),
    };
    ref = new CpuReference(cfg, w);
    if (v.type === "F32") {
      f32Model = buildModel(await getGpu(), cfg, { get: (n) => tensors.get(n) }, { source: "f32", fingerprintSeed: "t" });
      f32Engine = new Engine(f32Model, { kvBudgetBytes: 8 << 20 });
    }
  });
  afterAll(() => {
    engine?.destroy();
    model?.destroy();
    f32Engine?.destroy();
    f32Model?.destroy();
  });

  it("keeps quantized weights quantized on the GPU", () => {
    // F16 linears stay f16 (exact); F32/BF16 run as f32; block formats keep their blocks
    const gpuFormat = (type: string) => FORMATS[type].gpu ?? (type === "F16" ? "f16" : "f32");
    const fmt = gpuFormat(v.type);
    expect(model.config).toEqual(cfg);
    expect(model.layers[0].qkv.format).toBe(v.qkvFormat ?? fmt);
    expect(model.layers[0].gateUp.format).toBe(fmt);
    expect(model.layers[1].down.format).toBe(gpuFormat(typeFor("model.layers.1.mlp.down_proj.weight", v)));
    expect(model.embed.format).toBe("f32"); // the gather reads f32 rows
    const head = typeFor(cfg.tieEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight", v);
    // a tied F16 embedding is gathered and multiplied from the one f32 copy
    expect(model.lmHead.format).toBe(cfg.tieEmbeddings && head === "F16" ? "f32" : gpuFormat(head));
  });

  it("prefill logits at every position (matmul kernels) match", async () => {
    const seq = ids(20);
    const got = await sequentialLogits(engine, Uint32Array.from(seq), true);
    const want = ref.sequential(seq);
    for (let p = 0; p < seq.length; p++) {
      expect(relError(got.subarray(p * cfg.vocabSize, (p + 1) * cfg.vocabSize), want[p]), `position ${p}`).toBeLessThan(1e-4);
    }
    if (f32Engine) {
      const f32 = await sequentialLogits(f32Engine, Uint32Array.from(seq), true);
      expect(relError(got, f32)).toBeLessThan(1e-5);
    }
  });

  it("single-row logits (matvec kernels) match", async () => {
    for (const seq of [ids(1), ids(5)]) {
      const got = await sequentialLogits(engine, Uint32Array.from(seq));
      const want = ref.sequential(seq);
      expect(relError(got, want[seq.length - 1])).toBeLessThan(1e-4);
      if (f32Engine) expect(relError(got, await sequentialLogits(f32Engine, Uint32Array.from(seq)))).toBeLessThan(1e-5);
    }
  });
});
