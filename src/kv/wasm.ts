/**
 * The bridge to the wasm KV-cache module (wasm/src/kvfile.rs): maps its `CODE|message` errors to
 * apekit's typed errors and moves bytes into its staging buffers in L2-sized pieces, so hashing a
 * 1 GB payload never allocates more than one staging buffer in wasm memory.
 *
 * @example
 * ```ts
 * import { xxh3Hex } from "./wasm.ts";
 * console.log(xxh3Hex(new Uint32Array([1, 2, 3]))); // 16 hex digits
 * ```
 */
import { ApeError, CacheCorruptError, CacheMismatchError, InvalidArgumentError } from "../errors.ts";
import { wasm } from "../wasm/module.ts";

/** Turns the wasm module's `CODE|text` errors into typed errors; anything else passes through. */
export function mapKvError(e: unknown): unknown {
  if (e instanceof Error && !(e instanceof ApeError) && !(e instanceof WebAssembly.RuntimeError)) {
    const m = /^(E_[A-Z_]+)\|([\s\S]*)$/.exec(e.message);
    if (m) {
      if (m[1] === "E_CACHE_CORRUPT") return new CacheCorruptError(m[2]);
      if (m[1] === "E_CACHE_MISMATCH") return new CacheMismatchError(m[2]);
      return new InvalidArgumentError(m[2]);
    }
  }
  return e;
}

/** Runs `f`, rethrowing the wasm module's errors as typed errors. */
export function kvCall<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw mapKvError(e);
  }
}

/** A wasm state object that hashes bytes staged in its buffer (KvReadState, KvWriteState). */
export interface Staged {
  staging(): number;
  stagingLength(): number;
  updateStaged(len: number): void;
}

let memory: WebAssembly.Memory | undefined;

/** A view of `state`'s staging buffer (valid until wasm memory next grows). */
export function stagingView(state: Staged): Uint8Array {
  const ptr = state.staging(); // may allocate, so take the memory's buffer after it
  memory ??= wasm().kvMemory() as WebAssembly.Memory;
  return new Uint8Array(memory.buffer, ptr, state.stagingLength());
}

/** Uint8Array over any typed array's bytes (no copy). */
export function asBytes(v: ArrayBufferView): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Hashes `data` as the state's next payload bytes, staging it piece by piece. */
export function feed(state: Staged, data: Uint8Array): void {
  if (data.length === 0) return;
  let view = stagingView(state);
  const cap = view.length;
  kvCall(() => {
    for (let off = 0; off < data.length; off += cap) {
      const n = Math.min(cap, data.length - off);
      if (view.byteLength === 0) view = stagingView(state);
      view.set(off === 0 && n === data.length ? data : data.subarray(off, off + n));
      state.updateStaged(n);
    }
  });
}

/** xxh3-64 of `data` (or of several pieces, concatenated) as 16 lowercase hex digits. */
export function xxh3Hex(data: ArrayBufferView | readonly ArrayBufferView[]): string {
  const parts = ArrayBuffer.isView(data) ? [data] : data;
  const w = wasm();
  if (parts.length === 1 && parts[0].byteLength <= 1 << 20) return w.kvHashHex(asBytes(parts[0]));
  const h = new w.Xxh3Hasher();
  try {
    for (const p of parts) feed(h, asBytes(p));
    return h.digestHex();
  } finally {
    h.free();
  }
}
