/**
 * A GGUF writer for the tests: builds GGUF files (versions 2 and 3, every metadata value type) in
 * memory from tiny random models, the inverse of src/model/gguf.ts's reader. Not part of the package.
 *
 * @example
 * ```ts
 * import { configMetadata, toGgufTensors, writeGguf } from "./gguf_writer.ts";
 * // const bytes = writeGguf(configMetadata(cfg), toGgufTensors(cfg, tensors).map(({ name, tensor }) => ({ name, type: "F32", shape: tensor.shape, data: tensor.data })));
 * ```
 */
import { GGUF_MAGIC, GgufType, type GgufValue, ggufName, permuteRows, permutesQk, TYPED } from "../../src/model/gguf.ts";
import type { ModelConfig } from "../../src/model/config.ts";
import { FORMATS, rowBytes } from "../../src/model/quant.ts";
import type { HostTensor } from "../../src/model/tensor.ts";


/** A metadata value to write: plain JS values infer their type (integers as UINT32, or INT32 when
 *  negative, 64-bit beyond those ranges; other numbers FLOAT32; arrays by their first element);
 *  `{ type, value }` forces one. */
export type GgufWriteValue = GgufValue | { type: number; value: GgufValue; elementType?: number };

export interface GgufWriteTensor {
  /** GGUF name. */
  name: string;
  /** Type name (a key of FORMATS). */
  type: string;
  /** Outermost first (HF order); written reversed. */
  shape: number[];
  data: Uint8Array;
}

/** Builds a GGUF file (version 3 unless given) in memory. */
export function writeGguf(
  metadata: [string, GgufWriteValue][] | Record<string, GgufWriteValue>,
  tensors: GgufWriteTensor[],
  opts: { version?: number; alignment?: number } = {},
): Uint8Array {
  const alignment = opts.alignment ?? 32;
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => (parts.push(b), (size += b.byteLength));
  const scalar = (n: number, set: (v: DataView) => void) => {
    const b = new Uint8Array(n);
    set(new DataView(b.buffer));
    push(b);
  };
  const u32 = (v: number) => scalar(4, (d) => d.setUint32(0, v, true));
  const u64 = (v: number | bigint) => scalar(8, (d) => d.setBigUint64(0, BigInt(v), true));
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    u64(b.byteLength);
    push(b);
  };
  const infer = (v: GgufValue): number => {
    if (typeof v === "string") return GgufType.STRING;
    if (typeof v === "boolean") return GgufType.BOOL;
    if (typeof v === "bigint") return v < 0n ? GgufType.INT64 : GgufType.UINT64;
    if (typeof v === "number") {
      if (!Number.isInteger(v)) return GgufType.FLOAT32;
      if (v < 0) return v < -(2 ** 31) ? GgufType.INT64 : GgufType.INT32;
      return v > 0xffffffff ? GgufType.UINT64 : GgufType.UINT32;
    }
    return GgufType.ARRAY;
  };
  const typedType = (v: GgufValue): number | undefined => {
    for (const [t, [Ctor]] of Object.entries(TYPED)) if (v instanceof Ctor) return Number(t);
    return undefined;
  };
  const value = (type: number, v: GgufValue, elementType?: number): void => {
    switch (type) {
      case GgufType.UINT8: return scalar(1, (d) => d.setUint8(0, v as number));
      case GgufType.INT8: return scalar(1, (d) => d.setInt8(0, v as number));
      case GgufType.UINT16: return scalar(2, (d) => d.setUint16(0, v as number, true));
      case GgufType.INT16: return scalar(2, (d) => d.setInt16(0, v as number, true));
      case GgufType.UINT32: return scalar(4, (d) => d.setUint32(0, v as number, true));
      case GgufType.INT32: return scalar(4, (d) => d.setInt32(0, v as number, true));
      case GgufType.FLOAT32: return scalar(4, (d) => d.setFloat32(0, v as number, true));
      case GgufType.BOOL: return scalar(1, (d) => d.setUint8(0, v ? 1 : 0));
      case GgufType.STRING: return str(v as string);
      case GgufType.UINT64: return scalar(8, (d) => d.setBigUint64(0, BigInt(v as number), true));
      case GgufType.INT64: return scalar(8, (d) => d.setBigInt64(0, BigInt(v as number), true));
      case GgufType.FLOAT64: return scalar(8, (d) => d.setFloat64(0, v as number, true));
      case GgufType.ARRAY: {
        const tt = typedType(v);
        if (tt !== undefined) {
          const a = v as Uint8Array;
          u32(tt);
          u64(a.length);
          push(new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)));
          return;
        }
        const arr = v as GgufValue[];
        const et = elementType ?? (arr.length ? infer(arr[0]) : GgufType.UINT32);
        u32(et);
        u64(arr.length);
        for (const x of arr) value(et, x);
        return;
      }
      default:
        throw new Error(`writeGguf: unknown value type ${type}`);
    }
  };
  const entries = Array.isArray(metadata) ? metadata : Object.entries(metadata);
  const withAlign = opts.alignment !== undefined && !entries.some(([k]) => k === "general.alignment")
    ? [...entries, ["general.alignment", { type: GgufType.UINT32, value: alignment }] as [string, GgufWriteValue]]
    : entries;
  u32(GGUF_MAGIC);
  u32(opts.version ?? 3);
  u64(tensors.length);
  u64(withAlign.length);
  for (const [k, raw] of withAlign) {
    str(k);
    const tagged = typeof raw === "object" && raw !== null && !Array.isArray(raw) && "type" in raw && "value" in raw
      ? (raw as { type: number; value: GgufValue; elementType?: number })
      : undefined;
    const type = tagged ? tagged.type : infer(raw as GgufValue);
    u32(type);
    value(type, tagged ? tagged.value : (raw as GgufValue), tagged?.elementType);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const f = FORMATS[t.type];
    if (!f) throw new Error(`writeGguf: unknown tensor type ${t.type}`);
    const cols = t.shape[t.shape.length - 1];
    const want = (t.shape.reduce((a, b) => a * b, 1) / cols) * rowBytes(t.type, cols);
    if (t.data.byteLength !== want) throw new Error(`writeGguf: tensor '${t.name}' has ${t.data.byteLength} bytes, ${want} expected`);
    str(t.name);
    u32(t.shape.length);
    for (const d of t.shape.slice().reverse()) u64(d);
    u32(f.id);
    u64(offset);
    offsets.push(offset);
    offset += Math.ceil(t.data.byteLength / alignment) * alignment;
  }
  const pad = (n: number) => n > 0 && push(new Uint8Array(n));
  pad(Math.ceil(size / alignment) * alignment - size);
  tensors.forEach((t) => {
    push(t.data);
    pad(Math.ceil(t.data.byteLength / alignment) * alignment - t.data.byteLength);
  });
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/**
 * The GGUF tensors of a model given under HF names (the inverse of ggufWeights): GGUF names, q/k rows
 * permuted as llama.cpp's converter does for llama-family models.
 */
export function toGgufTensors(
  config: ModelConfig,
  tensors: Iterable<HostTensor>,
): { name: string; tensor: HostTensor }[] {
  const out: { name: string; tensor: HostTensor }[] = [];
  for (const t of tensors) {
    const g = ggufName(t.name);
    if (!g) throw new Error(`toGgufTensors: no GGUF name for '${t.name}'`);
    let x = t;
    if (permutesQk(config.architecture) && /self_attn\.q_proj\./.test(t.name)) x = permuteRows(t, config.heads, false);
    if (permutesQk(config.architecture) && /self_attn\.k_proj\./.test(t.name)) x = permuteRows(t, config.kvHeads, false);
    out.push({ name: g, tensor: x });
  }
  return out;
}

/** The architecture metadata llama.cpp writes for a config (general.architecture and <arch>.* keys). */
export function configMetadata(config: ModelConfig): [string, GgufWriteValue][] {
  const a = config.architecture;
  const md: [string, GgufWriteValue][] = [
    ["general.architecture", a],
    [`${a}.context_length`, config.maxPositions],
    [`${a}.embedding_length`, config.hidden],
    [`${a}.block_count`, config.layers],
    [`${a}.feed_forward_length`, config.intermediate],
    [`${a}.attention.head_count`, config.heads],
    [`${a}.attention.head_count_kv`, config.kvHeads],
    [`${a}.attention.key_length`, config.headDim],
    [`${a}.attention.value_length`, config.headDim],
    [`${a}.rope.dimension_count`, config.headDim],
    [`${a}.rope.freq_base`, { type: GgufType.FLOAT32, value: config.ropeTheta }],
    [`${a}.attention.layer_norm_rms_epsilon`, { type: GgufType.FLOAT32, value: config.rmsEps }],
    [`${a}.vocab_size`, config.vocabSize],
  ];
  if (config.ropeScaling.type === "linear") {
    md.push([`${a}.rope.scaling.type`, "linear"], [`${a}.rope.scaling.factor`, { type: GgufType.FLOAT32, value: config.ropeScaling.factor }]);
  }
  if (config.slidingWindow > 0) md.push([`${a}.attention.sliding_window`, config.slidingWindow]);
  if (config.bosTokenId !== undefined) md.push(["tokenizer.ggml.bos_token_id", config.bosTokenId]);
  if (config.eosTokenIds.length) md.push(["tokenizer.ggml.eos_token_id", config.eosTokenIds[0]]);
  return md;
}
