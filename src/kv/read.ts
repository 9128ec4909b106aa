/**
 * Reading KV-cache files. The wasm module validates the header (length bounds, JSON, metadata,
 * tensor table, offsets, file length) before any payload byte is used, then hashes the payload as
 * it passes; {@link checkExpect} compares the file's fingerprints with the loader's. Every failure
 * is a CacheCorruptError or CacheMismatchError whose message names the problem.
 *
 * - {@link openKvFile}: a file already in memory; tensors are views into it (one contiguous
 *   `queue.writeBuffer` per tensor, no copy on the way).
 * - {@link readKvFile}: a path or a stream, read into one buffer of the file's exact size.
 * - {@link KvReader}: a file path or a byte stream, read piece by piece (memory use: one chunk).
 *   The pieces of the last tensor arrive only after the checksum has been verified; if iteration
 *   throws, whatever was loaded from the earlier pieces must be discarded.
 *
 * @example
 * ```ts
 * import { openKvFile } from "./read.ts";
 * import { serializeKv } from "./write.ts";
 * const k = [new Float32Array(2 * 3 * 4)], v = [new Float32Array(2 * 3 * 4)]; // 1 layer, 2 kv heads, 3 tokens, head dim 4
 * const bytes = serializeKv({ modelFingerprint: "m", tokenizerFingerprint: "t", kind: "context", tokenIds: [5, 6, 7], firstPos: 0, dtype: "F32", layers: 1, kvHeads: 2, headDim: 4 }, { k, v }).toBytes();
 * const f = openKvFile(bytes, { expect: { modelFingerprint: "m" } });
 * console.log(f.meta.tokens, f.k(0).byteLength); // 3 96
 * ```
 */
import { open, type FileHandle } from "node:fs/promises";
import { CacheCorruptError, InvalidArgumentError } from "../errors.ts";
import { wasm } from "../wasm/module.ts";
import { checkExpect, parseDescription, type KvExpect, type KvLayout, type KvMeta, type KvTensorInfo } from "./meta.ts";
import { feed, kvCall } from "./wasm.ts";

type ReadState = InstanceType<ReturnType<typeof wasm>["KvReadState"]>;

export interface KvOpenOptions {
  /** Fields the file must match (CacheMismatchError otherwise). */
  expect?: KvExpect;
  /** Hash the payload and compare with the header's checksum (default true). */
  verify?: boolean;
}

/** A cache file held in memory. */
export interface KvFile {
  meta: KvMeta;
  layout: KvLayout;
  /** In file order: k.0, v.0, k.1, v.1, ... */
  tensors: KvTensorInfo[];
  /** The whole file. */
  bytes: Uint8Array;
  /** Tensor `name`'s bytes: a view into {@link bytes}, laid out [kvHeads, tokens, headDim]. */
  tensor(name: string): Uint8Array;
  k(layer: number): Uint8Array;
  v(layer: number): Uint8Array;
  /** Tensor `name` as Float32Array (F32) or Uint16Array (F16/BF16 bits); copied only if misaligned. */
  array(name: string): Float32Array | Uint16Array;
}

function describeState(state: ReadState): { meta: KvMeta; layout: KvLayout; tensors: KvTensorInfo[] } {
  return parseDescription(state.describe(), state.tokenIds());
}

function readHeaderState(head: Uint8Array, fileLength: number | undefined): ReadState {
  const w = wasm();
  const n = kvCall(() => w.kvHeaderJsonLength(head.subarray(0, 8), fileLength));
  if (head.length < 8 + n) throw new CacheCorruptError(`file is truncated inside its ${n}-byte header`);
  const Ctor = w.KvReadState;
  return kvCall(() => new Ctor(head.subarray(8, 8 + n), fileLength));
}

function makeKvFile(bytes: Uint8Array, meta: KvMeta, layout: KvLayout, tensors: KvTensorInfo[]): KvFile {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const tensor = (name: string): Uint8Array => {
    const t = byName.get(name);
    if (!t) throw new InvalidArgumentError(`no tensor '${name}' in this cache (layers = ${meta.layers})`);
    return bytes.subarray(t.offset, t.offset + t.byteLength);
  };
  return {
    meta,
    layout,
    tensors,
    bytes,
    tensor,
    k: (layer) => tensor(`k.${layer}`),
    v: (layer) => tensor(`v.${layer}`),
    array(name) {
      let b = tensor(name);
      const size = meta.dtype === "F32" ? 4 : 2;
      if (b.byteOffset % size !== 0) b = b.slice();
      return size === 4 ? new Float32Array(b.buffer, b.byteOffset, b.length / 4) : new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
    },
  };
}

/** Opens (and by default verifies) a cache file held in memory; tensors are views into `bytes`. */
export function openKvFile(bytes: Uint8Array, opts: KvOpenOptions = {}): KvFile {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError("openKvFile needs the file's bytes as a Uint8Array (use readKvFile for a path or a stream)");
  const state = readHeaderState(bytes, bytes.length);
  try {
    const { meta, layout, tensors } = describeState(state);
    checkExpect(meta, opts.expect);
    if (opts.verify !== false) {
      feed(state, bytes.subarray(layout.headerLength));
      kvCall(() => state.finish());
    }
    return makeKvFile(bytes, meta, layout, tensors);
  } finally {
    state.free();
  }
}

/**
 * Reads a whole cache file from a path or a stream into one buffer of exactly its size (no
 * intermediate copies), verifying it on the way; tensors are views into that buffer.
 */
export async function readKvFile(source: KvSource, opts: KvReaderOptions = {}): Promise<KvFile> {
  const r = await KvReader.open(source, opts);
  const bytes = new Uint8Array(r.layout.byteLength);
  bytes.set(r.headerBytes);
  for await (const p of r.pieces()) bytes.set(p.data, p.tensor.offset + p.offset);
  return makeKvFile(bytes, r.meta, r.layout, r.tensors);
}

/** A piece of the payload: bytes `offset..offset+data.length` of `tensor`. */
export interface KvPiece {
  tensor: KvTensorInfo;
  /** Byte offset of `data` inside the tensor (the engine writes it at block offset + this). */
  offset: number;
  /** Valid until the next piece is requested. */
  data: Uint8Array;
}

/** Where a streamed file comes from: a path, bytes, or any (async) iterable of byte chunks. */
export type KvSource = string | Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface KvReaderOptions {
  expect?: KvExpect;
  /** Bytes per read from a file (default 4 MiB). */
  chunkSize?: number;
}

async function* fileChunks(fh: FileHandle, chunkSize: number): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(chunkSize);
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

async function* iterate(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const c of source as AsyncIterable<Uint8Array>) {
    if (!(c instanceof Uint8Array)) throw new InvalidArgumentError("a KV-cache stream must yield Uint8Array chunks");
    if (c.length > 0) yield c;
  }
}

/** Streams a cache file: header validated at {@link open}, payload hashed as it is iterated. */
export class KvReader {
  readonly meta: KvMeta;
  readonly layout: KvLayout;
  readonly tensors: KvTensorInfo[];
  /** The file's first `layout.headerLength` bytes (length field + JSON header). */
  readonly headerBytes: Uint8Array;
  #state: ReadState | undefined;
  #chunks: AsyncGenerator<Uint8Array>;
  #rest: Uint8Array;
  #used = false;

  private constructor(state: ReadState, chunks: AsyncGenerator<Uint8Array>, rest: Uint8Array, headerBytes: Uint8Array) {
    this.headerBytes = headerBytes;
    this.#state = state;
    this.#chunks = chunks;
    this.#rest = rest;
    const d = describeState(state);
    this.meta = d.meta;
    this.layout = d.layout;
    this.tensors = d.tensors;
  }

  /** Reads and validates the header (and checks `expect`). */
  static async open(source: KvSource, opts: KvReaderOptions = {}): Promise<KvReader> {
    let fileLength: number | undefined;
    let chunks: AsyncGenerator<Uint8Array>;
    if (typeof source === "string") {
      let fh: FileHandle;
      try {
        fh = await open(source, "r");
      } catch (e) {
        throw new InvalidArgumentError(`cannot open ${source}: ${(e as Error).message}`);
      }
      fileLength = (await fh.stat()).size;
      chunks = fileChunks(fh, opts.chunkSize ?? 4 << 20);
    } else if (source instanceof Uint8Array) {
      fileLength = source.length;
      chunks = iterate([source]);
    } else if (source && (Symbol.asyncIterator in source || Symbol.iterator in source)) {
      chunks = iterate(source);
    } else {
      throw new InvalidArgumentError("KvReader.open needs a path, bytes, or an iterable of byte chunks");
    }
    let state: ReadState | undefined;
    try {
      // The header: 8 bytes of length, then N bytes of JSON (copied: it is small).
      const head8 = await take(chunks, 8, new Uint8Array(0));
      const n = kvCall(() => wasm().kvHeaderJsonLength(head8.bytes, fileLength));
      const json = await take(chunks, n, head8.rest);
      const Ctor = wasm().KvReadState;
      state = kvCall(() => new Ctor(json.bytes, fileLength));
      const headerBytes = new Uint8Array(8 + n);
      headerBytes.set(head8.bytes);
      headerBytes.set(json.bytes, 8);
      const r = new KvReader(state, chunks, json.rest, headerBytes);
      checkExpect(r.meta, opts.expect);
      return r;
    } catch (e) {
      state?.free();
      await chunks.return(undefined);
      throw e;
    }
  }

  /** The payload in file order, split at tensor boundaries; verifies before the last piece. */
  async *pieces(): AsyncGenerator<KvPiece> {
    const state = this.#state;
    if (!state || this.#used) throw new InvalidArgumentError("KvReader.pieces() can be iterated once");
    this.#used = true;
    const { payloadLength, tensorByteLength } = this.layout;
    let pos = 0; // payload bytes consumed
    try {
      let chunk: Uint8Array | undefined = this.#rest;
      while (pos < payloadLength) {
        if (!chunk || chunk.length === 0) {
          const next = await this.#chunks.next();
          if (next.done) {
            throw new CacheCorruptError(`file is truncated: its payload has ${pos} of the ${payloadLength} bytes its header describes`);
          }
          chunk = next.value;
        }
        const ti = Math.floor(pos / tensorByteLength);
        const inTensor = pos - ti * tensorByteLength;
        const n = Math.min(chunk.length, tensorByteLength - inTensor);
        const data = chunk.subarray(0, n);
        chunk = chunk.subarray(n);
        feed(state, data);
        pos += n;
        if (pos === payloadLength) await this.#end(state, chunk);
        yield { tensor: this.tensors[ti], offset: inTensor, data };
      }
      if (payloadLength === 0) await this.#end(state, chunk);
    } finally {
      state.free();
      this.#state = undefined;
      await this.#chunks.return(undefined);
    }
  }

  /** The payload is complete: no bytes may follow, and the checksum must match. */
  async #end(state: ReadState, rest: Uint8Array | undefined): Promise<void> {
    let extra = rest?.length ?? 0;
    for (;;) {
      const next = await this.#chunks.next();
      if (next.done) break;
      extra += next.value.length;
    }
    if (extra > 0) throw new CacheCorruptError(`file has ${extra} unexpected bytes after the last tensor`);
    kvCall(() => state.finish());
  }

  /** Reads the payload to the end, verifying it; returns the metadata. */
  async verify(): Promise<KvMeta> {
    for await (const _ of this.pieces()) { /* hashing happens as pieces pass */ }
    return this.meta;
  }

  /** Stops without reading the payload (only needed when {@link pieces} is not run to its end). */
  async close(): Promise<void> {
    this.#state?.free();
    this.#state = undefined;
    await this.#chunks.return(undefined);
  }
}

/** Pulls exactly `n` bytes (copied) from `chunks`, starting with `rest`; returns the leftover. */
async function take(chunks: AsyncGenerator<Uint8Array>, n: number, rest: Uint8Array): Promise<{ bytes: Uint8Array; rest: Uint8Array }> {
  const out = new Uint8Array(n);
  let have = 0;
  let cur = rest;
  for (;;) {
    const k = Math.min(n - have, cur.length);
    out.set(cur.subarray(0, k), have);
    have += k;
    cur = cur.subarray(k);
    if (have === n) return { bytes: out, rest: cur };
    const next = await chunks.next();
    if (next.done) {
      throw new CacheCorruptError(
        n === 8 ? `file is too short: ${have} bytes, a safetensors file starts with an 8-byte header length` : `file is truncated inside its ${n}-byte header`,
      );
    }
    cur = next.value;
  }
}

/** A file's metadata and tensor table, as plain JSON (token ids as an array). */
export interface KvInspection {
  meta: Omit<KvMeta, "tokenIds"> & { tokenIds: number[] };
  layout: KvLayout;
  tensors: KvTensorInfo[];
  /** True when the payload was hashed and matched its checksum. */
  verified: boolean;
}

/** Reads a file's header (and, by default, verifies its payload) and describes it. */
export async function inspectKv(source: KvSource, opts: KvReaderOptions & { verify?: boolean } = {}): Promise<KvInspection> {
  const r = await KvReader.open(source, opts);
  const verify = opts.verify !== false;
  if (verify) await r.verify();
  else await r.close();
  return { meta: { ...r.meta, tokenIds: Array.from(r.meta.tokenIds) }, layout: r.layout, tensors: r.tensors, verified: verify };
}

/** Verifies a whole file (header, layout, checksum, `expect`); throws a typed error if unsound. */
export async function verifyKv(source: KvSource, opts: KvReaderOptions = {}): Promise<KvMeta> {
  return await (await KvReader.open(source, opts)).verify();
}
