/**
 * Reads safetensors model files (single or sharded through model.safetensors.index.json) into
 * HostTensors, validating the header so a malformed file fails with a ModelFormatError naming it.
 *
 * @example
 * ```ts
 * import { readSafetensorsFolder } from "./safetensors.ts";
 * const tensors = readSafetensorsFolder("fixtures/models/llama3");
 * console.log(tensors.get("model.embed_tokens.weight")?.shape);
 * ```
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ModelFormatError } from "../errors.ts";
import { type HostTensor, numel } from "./tensor.ts";

const BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export function parseSafetensors(bytes: Uint8Array, file: string): Map<string, HostTensor> {
  if (bytes.byteLength < 8) throw new ModelFormatError(`${file}: too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > bytes.byteLength - 8 || headerLen > 100_000_000) {
    throw new ModelFormatError(`${file}: header length ${headerLen} exceeds the file (${bytes.byteLength} bytes)`);
  }
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new ModelFormatError(`${file}: header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + headerLen;
  const out = new Map<string, HostTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = info.data_offsets ?? [];
    const size = BYTES[info.dtype];
    if (size === undefined) throw new ModelFormatError(`${file}: tensor '${name}' has unknown dtype '${info.dtype}'`);
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin > end || dataStart + end > bytes.byteLength) {
      throw new ModelFormatError(`${file}: tensor '${name}' has data offsets out of bounds`);
    }
    if ((end - begin) !== numel(info.shape) * size) {
      throw new ModelFormatError(`${file}: tensor '${name}' has ${end - begin} bytes for shape [${info.shape}] ${info.dtype}`);
    }
    out.set(name, { name, dtype: info.dtype, shape: info.shape, data: bytes.subarray(dataStart + begin, dataStart + end) });
  }
  return out;
}

/** All tensors of a model folder: model.safetensors, or the shards listed in model.safetensors.index.json. */
export function readSafetensorsFolder(dir: string): Map<string, HostTensor> {
  const index = join(dir, "model.safetensors.index.json");
  const files: string[] = [];
  if (existsSync(index)) {
    const weightMap = JSON.parse(readFileSync(index, "utf8")).weight_map as Record<string, string> | undefined;
    if (!weightMap) throw new ModelFormatError(`${index}: 'weight_map' is missing`);
    files.push(...new Set(Object.values(weightMap)));
  } else if (existsSync(join(dir, "model.safetensors"))) {
    files.push("model.safetensors");
  } else {
    throw new ModelFormatError(`${dir}: neither model.safetensors nor model.safetensors.index.json exists`);
  }
  const all = new Map<string, HostTensor>();
  for (const f of files) {
    const path = join(dir, f);
    if (!existsSync(path)) throw new ModelFormatError(`${path}: shard listed in the index is missing`);
    for (const [k, v] of parseSafetensors(new Uint8Array(readFileSync(path)), path)) all.set(k, v);
  }
  return all;
}
