/**
 * Writing KV-cache files. The layout is known from the metadata alone, so the header can be written
 * before any tensor; the payload checksum is computed (in wasm) as the tensors stream past and
 * either patched into the header in place (files: {@link KvFileWriter}) or, when every tensor is
 * already in memory, computed first ({@link serializeKv}). No path copies the payload as a whole.
 *
 * @example
 * ```ts
 * import { KvFileWriter } from "./write.ts";
 * const meta = { modelFingerprint: "m", tokenizerFingerprint: "t", kind: "context" as const, tokenIds: [1, 2],
 *   firstPos: 0, dtype: "F32" as const, layers: 1, kvHeads: 1, headDim: 2 };
 * const w = await KvFileWriter.create("/tmp/ctx.kv", meta);
 * // the engine reads each layer back from the GPU and feeds it in order:
 * await w.writeLayer(0, new Float32Array(4), new Float32Array(4));
 * console.log((await w.close()).checksum);
 * ```
 */
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import process from "node:process";
import { InvalidArgumentError } from "../errors.ts";
import { wasm } from "../wasm/module.ts";
import { type KvLayout, type KvMeta, type KvMetaInput, type KvTensorInfo, parseDescription } from "./meta.ts";
import { asBytes, feed, kvCall } from "./wasm.ts";

type WriteState = InstanceType<ReturnType<typeof wasm>["KvWriteState"]>;

function toWasmMeta(meta: KvMetaInput): { json: string; ids: Uint32Array } {
  if (meta === null || typeof meta !== "object") throw new InvalidArgumentError("KV metadata must be an object");
  const ids = meta.tokenIds instanceof Uint32Array ? meta.tokenIds : Uint32Array.from(meta.tokenIds ?? [], (x, i) => {
    if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new InvalidArgumentError(`tokenIds[${i}] = ${x} is not a token id`);
    return x;
  });
  const plain = {
    modelFingerprint: meta.modelFingerprint,
    tokenizerFingerprint: meta.tokenizerFingerprint,
    kind: meta.kind,
    firstPos: meta.firstPos,
    prefixHash: meta.prefixHash ?? "",
    dtype: meta.dtype,
    layers: meta.layers,
    kvHeads: meta.kvHeads,
    headDim: meta.headDim,
    extra: meta.extra ?? {},
  };
  return { json: JSON.stringify(plain), ids };
}


/**
 * The streaming core: header first (checksum placeholder), then the payload in file order
 * (k.0, v.0, k.1, v.1, ...) in chunks of any size, then {@link finish} for the checksum.
 * Hashing happens here; where the bytes go is the caller's business.
 */
export class KvWriter {
  /** The header with a placeholder checksum: write it first, patch {@link checksumOffset} later. */
  readonly header: Uint8Array;
  /** Absolute offset of the 16 ASCII hex digits of the checksum. */
  readonly checksumOffset: number;
  readonly layout: KvLayout;
  /** In file order. */
  readonly tensors: KvTensorInfo[];
  readonly byteLength: number;
  #state: WriteState | undefined;
  #ids: Uint32Array;
  #written = 0;
  #final: Uint8Array | undefined;
  #meta: KvMeta | undefined;

  constructor(meta: KvMetaInput) {
    const { json, ids } = toWasmMeta(meta);
    const Ctor = wasm().KvWriteState;
    const state = kvCall(() => new Ctor(json, ids));
    this.#state = state;
    this.#ids = ids;
    this.header = state.header();
    this.checksumOffset = state.checksumOffset();
    const d = parseDescription(state.describe(), ids);
    this.layout = d.layout;
    this.tensors = d.tensors;
    this.byteLength = this.layout.byteLength;
  }

  /** Payload bytes written so far. */
  get written(): number {
    return this.#written;
  }

  /** The tensor the next payload byte belongs to (undefined once the payload is complete). */
  get nextTensor(): KvTensorInfo | undefined {
    const t = this.layout.tensorByteLength;
    return t === 0 ? undefined : this.tensors[Math.floor(this.#written / t)];
  }

  #live(): WriteState {
    if (!this.#state || this.#final) throw new InvalidArgumentError("the KV writer is finished");
    return this.#state;
  }

  /** Hashes the next payload bytes (any chunking; the caller stores them). */
  write(chunk: ArrayBufferView): void {
    const state = this.#live();
    const bytes = asBytes(chunk);
    if (this.#written + bytes.length > this.layout.payloadLength) {
      throw new InvalidArgumentError(
        `writing ${bytes.length} bytes at payload byte ${this.#written} passes the ${this.layout.payloadLength} bytes the metadata describes`,
      );
    }
    feed(state, bytes);
    this.#written += bytes.length;
  }

  /** Like {@link write}, but checks that `data` is exactly tensor `name` and that it comes next. */
  writeTensor(name: string, data: ArrayBufferView): void {
    const t = this.tensors.find((x) => x.name === name);
    if (!t) throw new InvalidArgumentError(`no tensor '${name}' in this cache (layers = ${this.tensors.length / 2})`);
    const at = t.offset - this.layout.headerLength;
    if (at !== this.#written) {
      const next = this.nextTensor?.name ?? "(none: the payload is complete)";
      throw new InvalidArgumentError(`tensor '${name}' written out of order: the next tensor is ${next}`);
    }
    if (data.byteLength !== t.byteLength) {
      throw new InvalidArgumentError(`tensor '${name}' must be ${t.byteLength} bytes (${t.dtype} x [${t.shape}]), got ${data.byteLength}`);
    }
    this.write(data);
  }

  /** Ends the payload; returns the metadata with its checksum. Throws if bytes are missing. */
  finish(): KvMeta {
    const state = this.#live();
    kvCall(() => state.finish());
    this.#final = kvCall(() => state.finalHeader());
    this.#meta = parseDescription(state.describe(), this.#ids).meta;
    state.free();
    this.#state = undefined;
    return this.#meta;
  }

  /** The header with the real checksum (after {@link finish}). */
  finalHeader(): Uint8Array {
    if (!this.#final) throw new InvalidArgumentError("finalHeader() before finish()");
    return this.#final;
  }

  /** The bytes to write at {@link checksumOffset} (after {@link finish}). */
  checksumPatch(): { offset: number; bytes: Uint8Array } {
    const h = this.finalHeader();
    return { offset: this.checksumOffset, bytes: h.subarray(this.checksumOffset, this.checksumOffset + 16) };
  }

  /** Releases the wasm state without finishing (idempotent). */
  dispose(): void {
    this.#state?.free();
    this.#state = undefined;
  }
}

/** Per-layer tensors: `k[layer]`, `v[layer]`, each [kvHeads, tokens, headDim] in the file's dtype. */
export interface KvTensors {
  k: readonly ArrayBufferView[];
  v: readonly ArrayBufferView[];
}

export interface KvSerialized {
  meta: KvMeta;
  byteLength: number;
  /** The file as chunks: the header, then each tensor's own bytes (views, not copies). */
  chunks: Uint8Array[];
  /** The file as one buffer (one copy of the payload), in `out` when given (reused, no allocation). */
  toBytes(out?: Uint8Array): Uint8Array;
}

/**
 * Serializes a cache whose tensors are all in memory. The checksum is computed first, so the
 * chunks can go to any sink in order (a socket, a stream) without patching.
 */
export function serializeKv(meta: KvMetaInput, tensors: KvTensors): KvSerialized {
  const w = new KvWriter(meta);
  try {
    if (tensors?.k?.length !== meta.layers || tensors?.v?.length !== meta.layers) {
      throw new InvalidArgumentError(`serializeKv needs ${meta.layers} k and v tensors, got ${tensors?.k?.length} and ${tensors?.v?.length}`);
    }
    const chunks: Uint8Array[] = [];
    for (let l = 0; l < meta.layers; l++) {
      for (const [kv, t] of [["k", tensors.k[l]], ["v", tensors.v[l]]] as const) {
        w.writeTensor(`${kv}.${l}`, t);
        chunks.push(asBytes(t));
      }
    }
    const m = w.finish();
    chunks.unshift(w.finalHeader());
    const byteLength = w.byteLength;
    return {
      meta: m,
      byteLength,
      chunks,
      toBytes(into?: Uint8Array) {
        if (into && into.length < byteLength) {
          throw new InvalidArgumentError(`toBytes: the buffer holds ${into.length} bytes, the file needs ${byteLength}`);
        }
        const out = into ? into.subarray(0, byteLength) : new Uint8Array(byteLength);
        let at = 0;
        for (const c of chunks) {
          out.set(c, at);
          at += c.length;
        }
        return out;
      },
    };
  } finally {
    w.dispose();
  }
}

/**
 * Writes a cache file as the engine streams it: the header now, each tensor as it is read back
 * from the GPU, the checksum patched in at {@link close}. The file is written under a temporary
 * name and renamed into place on close, so a reader never sees a half-written file.
 */
export class KvFileWriter {
  readonly path: string;
  readonly writer: KvWriter;
  #fh: FileHandle | undefined;
  #tmp: string;
  #pos: number;

  private constructor(path: string, tmp: string, writer: KvWriter, fh: FileHandle) {
    this.path = path;
    this.#tmp = tmp;
    this.writer = writer;
    this.#fh = fh;
    this.#pos = writer.header.length;
  }

  static async create(path: string, meta: KvMetaInput): Promise<KvFileWriter> {
    const writer = new KvWriter(meta);
    const tmp = `${path}.partial-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, "wx");
      await writeAll(fh, writer.header, 0);
    } catch (e) {
      writer.dispose();
      await fh?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw e;
    }
    return new KvFileWriter(path, tmp, writer, fh);
  }

  #live(): FileHandle {
    if (!this.#fh) throw new InvalidArgumentError(`the KV file writer for ${this.path} is closed`);
    return this.#fh;
  }

  /** The next payload bytes, in file order (any chunking). */
  async write(chunk: ArrayBufferView): Promise<void> {
    const fh = this.#live();
    const bytes = asBytes(chunk);
    this.writer.write(bytes);
    await writeAll(fh, bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** Exactly tensor `name`, which must come next. */
  async writeTensor(name: string, data: ArrayBufferView): Promise<void> {
    const fh = this.#live();
    this.writer.writeTensor(name, data);
    await writeAll(fh, asBytes(data), this.#pos);
    this.#pos += data.byteLength;
  }

  /**
   * Layer `layer`'s K then V. The arrays (e.g. mapped GPU readback ranges) must stay valid until the
   * returned promise resolves: they are written to the file as they are, not copied.
   */
  async writeLayer(layer: number, k: ArrayBufferView, v: ArrayBufferView): Promise<void> {
    await this.writeTensor(`k.${layer}`, k);
    await this.writeTensor(`v.${layer}`, v);
  }

  /** Patches the checksum, flushes and moves the file into place; returns its metadata. */
  async close(): Promise<KvMeta> {
    const fh = this.#live();
    try {
      const meta = this.writer.finish();
      const patch = this.writer.checksumPatch();
      await writeAll(fh, patch.bytes, patch.offset);
      await fh.sync();
      await fh.close();
      this.#fh = undefined;
      await rename(this.#tmp, this.path);
      return meta;
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Drops the partial file (idempotent). */
  async abort(): Promise<void> {
    this.writer.dispose();
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => {});
    await unlink(this.#tmp).catch(() => {});
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`short write at byte ${position + done}`);
    done += bytesWritten;
  }
}

/** Source of per-layer tensors for {@link writeKvFile}: called in layer order. */
export type KvLayerSource = (layer: number) => Promise<{ k: ArrayBufferView; v: ArrayBufferView }> | { k: ArrayBufferView; v: ArrayBufferView };

/** Writes a whole cache file, pulling one layer at a time from `source` (e.g. a GPU readback). */
export async function writeKvFile(path: string, meta: KvMetaInput, source: KvLayerSource): Promise<KvMeta> {
  const w = await KvFileWriter.create(path, meta);
  try {
    for (let l = 0; l < meta.layers; l++) {
      const { k, v } = await source(l);
      await w.writeLayer(l, k, v);
    }
  } catch (e) {
    await w.abort();
    throw e;
  }
  return await w.close();
}
