/**
 * GGUF (llama.cpp's model file format, versions 2 and 3, little-endian): the header, every metadata
 * value type (incl. nested arrays), the tensor table, alignment; the model config read from the
 * metadata (llama, mistral, qwen2, qwen3); the tensors under Hugging Face names with llama.cpp's Q/K
 * row permutation undone for llama-family models. (The writer the tests build GGUF files with lives
 * in test/reference/gguf_writer.ts.)
 *
 * Tensor data is read lazily, one tensor at a time, from the open file: nothing but the header is
 * held in memory, so files larger than a JavaScript buffer load too.
 *
 * File layout: magic "GGUF", u32 version, u64 tensor count, u64 kv count, kv pairs (string key, u32
 * value type, value), tensor infos (string name, u32 n_dims, u64 dims[n_dims] innermost first, u32
 * type, u64 offset relative to the data section), padding to `general.alignment` (default 32), data.
 *
 * @example
 * ```ts
 * import { openGguf, ggufConfig } from "./gguf.ts";
 * const f = openGguf("fixtures/gguf/tiny-llama/model.gguf"); // a tiny fixture (paths from the repository root)
 * console.log(ggufConfig(f).layers, f.metadata.get("general.name"));
 * f.close();
 * ```
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { ModelFormatError } from "../errors.ts";
import type { Architecture, ModelConfig, RopeScaling } from "./config.ts";
import { FORMATS, formatById, typeName } from "./quant.ts";
import type { HostTensor } from "./tensor.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian

/** GGUF metadata value types. */
export const GgufType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9,
  UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;

/**
 * A metadata value as JavaScript: numbers (64-bit integers beyond 2^53 as bigint), booleans, strings,
 * and arrays (numeric arrays as typed arrays, e.g. tokenizer.ggml.token_type as Int32Array; others as
 * plain arrays).
 */
export type GgufValue =
  | number | bigint | boolean | string
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | BigUint64Array | BigInt64Array | GgufValue[];

export interface GgufTensorInfo {
  name: string;
  /** GGUF type id and its name ("Q4_1", or e.g. "Q5_K" for types apekit cannot read). */
  typeId: number;
  type: string;
  /** ggml order: innermost (columns) first. */
  dims: number[];
  /** Outermost first, as Hugging Face: a linear weight is [out, in]. */
  shape: number[];
  /** Absolute byte offset in the file and byte length (undefined length: unsupported type). */
  offset: number;
  byteLength?: number;
}

export interface GgufFile {
  source: string;
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  /** Each key's value type (ARRAY keys also give their element type). */
  metadataTypes: Map<string, { type: number; elementType?: number }>;
  tensors: Map<string, GgufTensorInfo>;
  dataOffset: number;
  fileSize: number;
  /** The tensor's raw bytes (read from the file now). */
  read(name: string): HostTensor;
  close(): void;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Random access to the bytes of a file or of an in-memory buffer. */
interface ByteSource {
  size: number;
  readAt(offset: number, length: number): Uint8Array;
  close(): void;
}

function fileSource(path: string): ByteSource {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new ModelFormatError(`${path}: cannot open (${(e as Error).message})`);
  }
  const size = fstatSync(fd).size;
  return {
    size,
    readAt(offset, length) {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, out, done, length - done, offset + done);
        if (n <= 0) throw new ModelFormatError(`${path}: truncated (wanted ${length} bytes at ${offset}, file has ${size})`);
        done += n;
      }
      return out;
    },
    close: () => closeSync(fd),
  };
}

function memorySource(bytes: Uint8Array): ByteSource {
  return { size: bytes.byteLength, readAt: (o, n) => bytes.subarray(o, o + n), close() {} };
}

const WINDOW = 1 << 20;
const td = new TextDecoder("utf-8");

/** Sequential reader over a ByteSource through a refilled window; every overrun names what was being read. */
class Cursor {
  pos = 0;
  #buf: Uint8Array = new Uint8Array(0);
  #view = new DataView(this.#buf.buffer);
  #base = 0;
  what = "header";
  constructor(readonly src: ByteSource, readonly file: string) {}

  #ensure(n: number): number {
    if (this.pos + n > this.src.size) {
      throw new ModelFormatError(`${this.file}: truncated: the file ends (${this.src.size} bytes) while reading ${this.what} at byte ${this.pos}`);
    }
    let rel = this.pos - this.#base;
    if (rel < 0 || rel + n > this.#buf.byteLength) {
      const len = Math.min(Math.max(n, WINDOW), this.src.size - this.pos);
      this.#buf = this.src.readAt(this.pos, len);
      this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
      this.#base = this.pos;
      rel = 0;
    }
    this.pos += n;
    return rel;
  }
  // (ensure() may replace the window: call it before touching #view)
  #at<T>(n: number, get: (v: DataView, o: number) => T): T {
    const o = this.#ensure(n);
    return get(this.#view, o);
  }
  u8() { return this.#at(1, (v, o) => v.getUint8(o)); }
  i8() { return this.#at(1, (v, o) => v.getInt8(o)); }
  u16() { return this.#at(2, (v, o) => v.getUint16(o, true)); }
  i16() { return this.#at(2, (v, o) => v.getInt16(o, true)); }
  u32() { return this.#at(4, (v, o) => v.getUint32(o, true)); }
  i32() { return this.#at(4, (v, o) => v.getInt32(o, true)); }
  f32() { return this.#at(4, (v, o) => v.getFloat32(o, true)); }
  f64() { return this.#at(8, (v, o) => v.getFloat64(o, true)); }
  u64big() { return this.#at(8, (v, o) => v.getBigUint64(o, true)); }
  i64big() { return this.#at(8, (v, o) => v.getBigInt64(o, true)); }
  /** A u64 that must fit a JS number (counts, sizes, offsets). */
  u64(): number {
    const v = this.u64big();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ModelFormatError(`${this.file}: ${this.what}: value ${v} is too large`);
    return Number(v);
  }
  bytes(n: number): Uint8Array {
    const rel = this.#ensure(n);
    return this.#buf.subarray(rel, rel + n);
  }
  string(): string {
    const n = this.u64();
    if (n > this.src.size - this.pos) {
      throw new ModelFormatError(`${this.file}: truncated: a string of ${n} bytes runs past the end of the file while reading ${this.what}`);
    }
    return td.decode(this.bytes(n));
  }
}

/** The shortest decimal that is the same f32 (an f32 1e-5 reads back as 1e-5, not 9.99999974e-6). */
function shortestF32(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const x = Number(v.toPrecision(p));
    if (Math.fround(x) === v) return x;
  }
  return v;
}

const big = (v: bigint) => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

function readValue(c: Cursor, type: number, types?: { type: number; elementType?: number }): GgufValue {
  switch (type) {
    case GgufType.UINT8: return c.u8();
    case GgufType.INT8: return c.i8();
    case GgufType.UINT16: return c.u16();
    case GgufType.INT16: return c.i16();
    case GgufType.UINT32: return c.u32();
    case GgufType.INT32: return c.i32();
    case GgufType.FLOAT32: return shortestF32(c.f32());
    case GgufType.BOOL: {
      const b = c.u8();
      if (b > 1) throw new ModelFormatError(`${c.file}: ${c.what}: bool value ${b} is neither 0 nor 1`);
      return b === 1;
    }
    case GgufType.STRING: return c.string();
    case GgufType.UINT64: return big(c.u64big());
    case GgufType.INT64: return big(c.i64big());
    case GgufType.FLOAT64: return c.f64();
    case GgufType.ARRAY: {
      const et = c.u32();
      const n = c.u64();
      if (types) types.elementType = et;
      const typed = TYPED[et];
      if (typed) {
        const [Ctor, size] = typed;
        if (n * size > c.src.size - c.pos) throw new ModelFormatError(`${c.file}: truncated: an array of ${n} elements runs past the end of the file while reading ${c.what}`);
        const raw = c.bytes(n * size).slice();
        return new Ctor(raw.buffer, 0, n) as GgufValue;
      }
      if (et === GgufType.BOOL) {
        const raw = c.bytes(n);
        return Array.from(raw, (b) => b === 1);
      }
      if (et !== GgufType.STRING && et !== GgufType.ARRAY) throw new ModelFormatError(`${c.file}: ${c.what}: unknown array element type ${et}`);
      if (n > c.src.size - c.pos) throw new ModelFormatError(`${c.file}: truncated: an array of ${n} elements runs past the end of the file while reading ${c.what}`);
      const out: GgufValue[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readValue(c, et);
      return out;
    }
    default:
      throw new ModelFormatError(`${c.file}: ${c.what}: unknown metadata value type ${type}`);
  }
}

/** Array metadata read as typed arrays: element type -> [constructor, bytes]. */
// deno-lint-ignore no-explicit-any
export const TYPED: Record<number, [any, number]> = {
  [GgufType.UINT8]: [Uint8Array, 1], [GgufType.INT8]: [Int8Array, 1], [GgufType.UINT16]: [Uint16Array, 2],
  [GgufType.INT16]: [Int16Array, 2], [GgufType.UINT32]: [Uint32Array, 4], [GgufType.INT32]: [Int32Array, 4],
  [GgufType.FLOAT32]: [Float32Array, 4], [GgufType.UINT64]: [BigUint64Array, 8], [GgufType.INT64]: [BigInt64Array, 8],
  [GgufType.FLOAT64]: [Float64Array, 8],
};

function parse(src: ByteSource, file: string): GgufFile {
  const c = new Cursor(src, file);
  if (src.size < 24) throw new ModelFormatError(`${file}: truncated: ${src.size} bytes is too short for a GGUF header`);
  const magic = c.u32();
  if (magic !== GGUF_MAGIC) throw new ModelFormatError(`${file}: not a GGUF file (magic ${magic.toString(16)})`);
  const version = c.u32();
  if (version === 1) throw new ModelFormatError(`${file}: GGUF version 1 is not supported (only 2 and 3); re-convert the model with a current llama.cpp`);
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24 | (version & 0xff00) << 8 | (version >>> 8) & 0xff00 | version >>> 24) >>> 0;
    if (swapped === 2 || swapped === 3) throw new ModelFormatError(`${file}: big-endian GGUF files are not supported`);
    throw new ModelFormatError(`${file}: unknown GGUF version ${version}`);
  }
  c.what = "the tensor count";
  const nTensors = c.u64();
  c.what = "the metadata count";
  const nKv = c.u64();
  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, { type: number; elementType?: number }>();
  for (let i = 0; i < nKv; i++) {
    c.what = `metadata key #${i}`;
    const key = c.string();
    c.what = `metadata '${key}'`;
    const type = c.u32();
    const t: { type: number; elementType?: number } = { type };
    metadata.set(key, readValue(c, type, t));
    metadataTypes.set(key, t);
  }
  let alignment = 32;
  const al = metadata.get("general.alignment");
  if (al !== undefined) {
    if (typeof al !== "number" || !Number.isInteger(al) || al <= 0 || al % 8 !== 0) {
      throw new ModelFormatError(`${file}: general.alignment = ${String(al)} is not a positive multiple of 8`);
    }
    alignment = al;
  }
  const infos: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    c.what = `tensor info #${i}`;
    const name = c.string();
    c.what = `tensor '${name}' info`;
    const nDims = c.u32();
    if (nDims < 1 || nDims > 4) throw new ModelFormatError(`${file}: tensor '${name}' has ${nDims} dimensions (1 to 4 allowed)`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64());
    const typeId = c.u32();
    const offset = c.u64();
    infos.push({ name, typeId, type: typeName(typeId), dims, shape: dims.slice().reverse(), offset });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const t of infos) {
    if (tensors.has(t.name)) throw new ModelFormatError(`${file}: tensor '${t.name}' appears twice`);
    if (t.offset % alignment !== 0) {
      throw new ModelFormatError(`${file}: tensor '${t.name}' (${t.type}) has offset ${t.offset}, not a multiple of the alignment ${alignment}`);
    }
    const f = formatById(t.typeId);
    const abs = dataOffset + t.offset;
    if (f) {
      const n = t.dims.reduce((a, b) => a * b, 1);
      if (t.dims[0] % f.blockSize !== 0) {
        throw new ModelFormatError(`${file}: tensor '${t.name}' (${t.type}) has rows of ${t.dims[0]} elements, not a multiple of its block size ${f.blockSize}`);
      }
      t.byteLength = (n / f.blockSize) * f.blockBytes;
      if (abs + t.byteLength > src.size) {
        throw new ModelFormatError(
          `${file}: truncated: tensor '${t.name}' (${t.type}, ${t.byteLength} bytes at ${abs}) runs past the end of the file (${src.size} bytes)`,
        );
      }
    } else if (abs > src.size) {
      throw new ModelFormatError(`${file}: tensor '${t.name}' (${t.type}) has offset ${abs} past the end of the file (${src.size} bytes)`);
    }
    t.offset = abs;
    tensors.set(t.name, t);
  }
  // tensor ranges must not overlap (a tensor whose type was edited can run into the next one's data)
  const placed = [...tensors.values()].filter((t) => t.byteLength !== undefined).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < placed.length; i++) {
    const a = placed[i - 1], b = placed[i];
    if (a.offset + a.byteLength! > b.offset) {
      throw new ModelFormatError(
        `${file}: tensor '${a.name}' (${a.type}, ${a.byteLength} bytes at ${a.offset}) overlaps tensor '${b.name}' (${b.type}) at ${b.offset}`,
      );
    }
  }
  return {
    source: file,
    version,
    alignment,
    metadata,
    metadataTypes,
    tensors,
    dataOffset,
    fileSize: src.size,
    read(name: string): HostTensor {
      const t = tensors.get(name);
      if (!t) throw new ModelFormatError(`${file}: tensor '${name}' is missing`);
      if (t.byteLength === undefined) {
        throw new ModelFormatError(
          `${file}: tensor '${t.name}' has type ${t.type}, which apekit does not support (supported: ${Object.keys(FORMATS).join(", ")})`,
        );
      }
      return { name: t.name, dtype: t.type, shape: t.shape, data: src.readAt(t.offset, t.byteLength) };
    },
    close: () => src.close(),
  };
}

/** Opens a GGUF file and reads its header; tensors are read on demand (close() when done). */
export function openGguf(path: string): GgufFile {
  const src = fileSource(path);
  try {
    return parse(src, path);
  } catch (e) {
    src.close();
    throw e;
  }
}

/** Parses a GGUF file held in memory. */
export function parseGguf(bytes: Uint8Array, name = "<memory>"): GgufFile {
  return parse(memorySource(bytes), name);
}

// ---------------------------------------------------------------------------------------------
// Model config from metadata

const ARCHS: Record<string, Architecture> = { llama: "llama", mistral: "mistral", qwen2: "qwen2", qwen3: "qwen3" };

/** Whether llama.cpp's converter permuted q_proj/k_proj rows for this architecture (llama family). */
export function permutesQk(arch: Architecture): boolean {
  return arch === "llama" || arch === "mistral";
}

/** The ModelConfig of a GGUF model (architectures llama, mistral, qwen2, qwen3). */
export function ggufConfig(f: GgufFile): ModelConfig {
  const m = f.metadata;
  const where = f.source;
  const archName = m.get("general.architecture");
  if (typeof archName !== "string") throw new ModelFormatError(`${where}: metadata 'general.architecture' is missing`);
  const architecture = ARCHS[archName];
  if (!architecture) throw new ModelFormatError(`${where}: architecture '${archName}' is not supported (supported: ${Object.keys(ARCHS).join(", ")})`);
  const key = (k: string) => `${archName}.${k}`;
  const num = (k: string, fallback?: number): number => {
    const v = m.get(key(k));
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ModelFormatError(`${where}: metadata '${key(k)}' must be a number (got ${v === undefined ? "nothing" : String(v)})`);
    return v;
  };
  const positive = (k: string, fallback?: number): number => {
    const v = num(k, fallback);
    if (!(v > 0)) throw new ModelFormatError(`${where}: metadata '${key(k)}' must be > 0 (got ${v})`);
    return v;
  };
  const int = (k: string, fallback?: number): number => {
    const v = num(k, fallback);
    if (!Number.isInteger(v) || v <= 0) throw new ModelFormatError(`${where}: metadata '${key(k)}' must be a positive integer (got ${v})`);
    return v;
  };
  const hidden = int("embedding_length");
  const heads = int("attention.head_count");
  const kvHeads = int("attention.head_count_kv", heads);
  if (heads % kvHeads !== 0) throw new ModelFormatError(`${where}: '${key("attention.head_count")}' (${heads}) is not a multiple of '${key("attention.head_count_kv")}' (${kvHeads})`);
  const headDim = int("attention.key_length", hidden / heads);
  const valueLen = int("attention.value_length", headDim);
  if (valueLen !== headDim) throw new ModelFormatError(`${where}: '${key("attention.value_length")}' (${valueLen}) differs from the key length (${headDim})`);
  if (headDim % 2 !== 0 || headDim > 256) throw new ModelFormatError(`${where}: head dim ${headDim} is not supported (even, at most 256)`);
  const ropeDims = int("rope.dimension_count", headDim);
  if (ropeDims !== headDim) throw new ModelFormatError(`${where}: partial RoPE ('${key("rope.dimension_count")}' = ${ropeDims}, head dim ${headDim}) is not supported`);

  let ropeScaling: RopeScaling = { type: "none" };
  const scalingType = m.get(key("rope.scaling.type"));
  const scalingFactor = m.get(key("rope.scaling.factor"));
  if (scalingType === "linear" || (scalingType === undefined && typeof scalingFactor === "number" && scalingFactor !== 1)) {
    ropeScaling = { type: "linear", factor: positive("rope.scaling.factor") };
  } else if (scalingType !== undefined && scalingType !== "none") {
    throw new ModelFormatError(`${where}: '${key("rope.scaling.type")}' = '${String(scalingType)}' is not supported (supported: none, linear)`);
  }

  const tokens = m.get("tokenizer.ggml.tokens");
  const embd = f.tensors.get("token_embd.weight");
  const vocabMeta = m.get(key("vocab_size"));
  const vocabSize = vocabMeta !== undefined ? int("vocab_size") : embd ? embd.shape[0] : Array.isArray(tokens) ? tokens.length : 0;
  if (!(vocabSize > 0)) throw new ModelFormatError(`${where}: the vocabulary size is unknown (no '${key("vocab_size")}', token_embd.weight or tokenizer.ggml.tokens)`);
  const has = (n: string) => f.tensors.has(n);
  const qkvBias = has("blk.0.attn_q.bias");
  const slidingWindow = m.get(key("attention.sliding_window"));
  if (slidingWindow !== undefined && architecture !== "mistral") {
    throw new ModelFormatError(`${where}: '${key("attention.sliding_window")}' is not supported for ${archName}`);
  }
  const id = (k: string) => {
    const v = m.get(k);
    return typeof v === "number" ? v : undefined;
  };
  const eos = [id("tokenizer.ggml.eos_token_id"), id("tokenizer.ggml.eot_token_id"), id("tokenizer.ggml.eom_token_id")]
    .filter((x): x is number => x !== undefined);
  return {
    architecture,
    vocabSize,
    hidden,
    intermediate: int("feed_forward_length"),
    layers: int("block_count"),
    heads,
    kvHeads,
    headDim,
    rmsEps: positive("attention.layer_norm_rms_epsilon", 1e-5),
    ropeTheta: positive("rope.freq_base", 10000),
    ropeScaling,
    maxPositions: int("context_length", 4096),
    tieEmbeddings: !has("output.weight"),
    qkvBias,
    oBias: has("blk.0.attn_output.bias"),
    qkNorm: architecture === "qwen3" || has("blk.0.attn_q_norm.weight"),
    slidingWindow: slidingWindow === undefined ? 0 : int("attention.sliding_window"),
    bosTokenId: id("tokenizer.ggml.bos_token_id"),
    eosTokenIds: [...new Set(eos)],
  };
}

// ---------------------------------------------------------------------------------------------
// Tensor names

const GLOBAL_NAMES: Record<string, string> = {
  "model.embed_tokens.weight": "token_embd.weight",
  "model.norm.weight": "output_norm.weight",
  "lm_head.weight": "output.weight",
};

const LAYER_NAMES: Record<string, string> = {
  "input_layernorm.weight": "attn_norm.weight",
  "post_attention_layernorm.weight": "ffn_norm.weight",
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.q_proj.bias": "attn_q.bias",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.k_proj.bias": "attn_k.bias",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.v_proj.bias": "attn_v.bias",
  "self_attn.o_proj.weight": "attn_output.weight",
  "self_attn.o_proj.bias": "attn_output.bias",
  "self_attn.q_norm.weight": "attn_q_norm.weight",
  "self_attn.k_norm.weight": "attn_k_norm.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
};

/** The GGUF tensor name of a Hugging Face tensor name (undefined when it has none). */
export function ggufName(hf: string): string | undefined {
  if (GLOBAL_NAMES[hf]) return GLOBAL_NAMES[hf];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (m && LAYER_NAMES[m[2]]) return `blk.${m[1]}.${LAYER_NAMES[m[2]]}`;
  return undefined;
}

/**
 * Reorders the rows of a [rows, ...] tensor within each head: llama.cpp stores row (h, 2i + j) what HF
 * has at (h, j*half + i) (its convert script's `permute`); `inverse` undoes it (GGUF -> HF), otherwise
 * it applies it (HF -> GGUF). Rows are moved as raw bytes, so this works for any format.
 */
export function permuteRows(t: HostTensor, heads: number, inverse: boolean): HostTensor {
  const rows = t.shape[0];
  if (rows % heads !== 0 || (rows / heads) % 2 !== 0) {
    throw new ModelFormatError(`tensor '${t.name}': ${rows} rows cannot be split into ${heads} heads of even size`);
  }
  const rb = t.data.byteLength / rows;
  const hd = rows / heads, half = hd / 2;
  const out = new Uint8Array(t.data.byteLength);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const gg = h * hd + 2 * i + j, hf = h * hd + j * half + i;
        const [from, to] = inverse ? [gg, hf] : [hf, gg];
        out.set(t.data.subarray(from * rb, (from + 1) * rb), to * rb);
      }
    }
  }
  return { ...t, data: out };
}

/**
 * The model's tensors under Hugging Face names (the WeightSource buildModel takes), with q/k rows
 * un-permuted for llama-family models. Each get() reads the tensor from the file.
 */
export function ggufWeights(f: GgufFile, config: ModelConfig): { get(name: string): HostTensor | undefined } {
  const permute = permutesQk(config.architecture);
  return {
    get(hf: string): HostTensor | undefined {
      const g = ggufName(hf);
      if (!g || !f.tensors.has(g)) return undefined;
      const t = { ...f.read(g), name: hf };
      if (permute && /self_attn\.q_proj\./.test(hf)) return permuteRows(t, config.heads, true);
      if (permute && /self_attn\.k_proj\./.test(hf)) return permuteRows(t, config.kvHeads, true);
      return t;
    },
  };
}

/**
 * llama.cpp's RoPE frequency factors (`rope_freqs.weight`, written for Llama 3.x's rope scaling):
 * inverse frequencies are divided by them. Undefined when absent.
 */
export function ropeFreqFactors(f: GgufFile): Float32Array | undefined {
  if (!f.tensors.has("rope_freqs.weight")) return undefined;
  const t = f.read("rope_freqs.weight");
  if (t.dtype !== "F32") throw new ModelFormatError(`${f.source}: tensor 'rope_freqs.weight' has type ${t.dtype} (F32 expected)`);
  const factors = new Float32Array(t.data.slice().buffer);
  const bad = factors.findIndex((x) => !(x > 0 && Number.isFinite(x)));
  if (bad >= 0) throw new ModelFormatError(`${f.source}: tensor 'rope_freqs.weight' has factor ${factors[bad]} at ${bad} (finite and > 0 expected)`);
  return factors;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer metadata

/** The tokenizer as GGUF holds it (tokenizer.ggml.* keys) plus the chat template. */
export interface GgufTokenizer {
  /** "gpt2" (byte-level BPE), "llama" (SentencePiece), ... */
  model: string;
  /** Pre-tokenizer name ("smollm", "llama-bpe", "qwen2", ...). */
  pre?: string;
  tokens: string[];
  /** "a b" merge rules (BPE models). */
  merges?: string[];
  /** 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  tokenType?: Int32Array;
  scores?: Float32Array;
  bosId?: number;
  eosId?: number;
  eotId?: number;
  unkId?: number;
  padId?: number;
  addBos?: boolean;
  addEos?: boolean;
  addSpacePrefix?: boolean;
  chatTemplate?: string;
}

/** The tokenizer metadata of a GGUF file, or undefined if it carries none. */
export function ggufTokenizer(f: GgufFile): GgufTokenizer | undefined {
  const m = f.metadata;
  const model = m.get("tokenizer.ggml.model");
  const tokens = m.get("tokenizer.ggml.tokens");
  if (typeof model !== "string" || !Array.isArray(tokens)) return undefined;
  const num = (k: string) => (typeof m.get(k) === "number" ? (m.get(k) as number) : undefined);
  const bool = (k: string) => (typeof m.get(k) === "boolean" ? (m.get(k) as boolean) : undefined);
  const str = (k: string) => (typeof m.get(k) === "string" ? (m.get(k) as string) : undefined);
  const merges = m.get("tokenizer.ggml.merges");
  const tt = m.get("tokenizer.ggml.token_type");
  const scores = m.get("tokenizer.ggml.scores");
  return {
    model,
    pre: str("tokenizer.ggml.pre"),
    tokens: tokens as string[],
    merges: Array.isArray(merges) ? (merges as string[]) : undefined,
    tokenType: tt instanceof Int32Array ? tt : undefined,
    scores: scores instanceof Float32Array ? scores : undefined,
    bosId: num("tokenizer.ggml.bos_token_id"),
    eosId: num("tokenizer.ggml.eos_token_id"),
    eotId: num("tokenizer.ggml.eot_token_id"),
    unkId: num("tokenizer.ggml.unknown_token_id"),
    padId: num("tokenizer.ggml.padding_token_id"),
    addBos: bool("tokenizer.ggml.add_bos_token"),
    addEos: bool("tokenizer.ggml.add_eos_token"),
    addSpacePrefix: bool("tokenizer.ggml.add_space_prefix"),
    chatTemplate: str("tokenizer.chat_template"),
  };
}
