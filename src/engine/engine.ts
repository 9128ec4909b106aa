/**
 * The engine: a model plus its GPU KV pool, and the one primitive everything else is built from:
 * run a batch of row groups (each writing its own KV block and attending its own block list) and,
 * optionally, read back logits.
 *
 * Inputs longer than one forward pass (`batchRows`: maxBatchRows, lowered where a per-row scratch
 * buffer would outgrow the device's binding or buffer limit) run as consecutive passes over the same
 * KV blocks (chunked prefill): a chunk of a group keeps the group's block and lists, its rows are
 * written at writeAt + offset, and since visibility is by position later chunks see earlier chunks'
 * keys. Logit rows requested across chunks come back concatenated in order. What cannot fit even one
 * row per pass is refused with CapacityError. The passes are recorded and submitted inside WebGPU
 * error scopes, awaited with the readback: a validation or out-of-memory error is thrown, typed, by
 * the call that caused it.
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { Engine } from "./engine.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2"); // a tiny fixture model (paths from the repository root)
 * const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
 * const ids = Uint32Array.from([1, 2, 3]);
 * const block = engine.pool.allocate(ids.length, 0); // KV slots for positions 0..2
 * const logits = await engine.run(ids, { groups: [{ rows: ids.length, write: block, writeAt: 0, plain: [block] }], logits: { from: ids.length - 1, count: 1 } });
 * console.log(logits.length === model.config.vocabSize); // true: the last position's logits
 * engine.pool.release(block);
 * engine.destroy();
 * model.destroy();
 * ```
 */
import type { Model } from "../model/model.ts";
import { CapacityError, InvalidArgumentError } from "../errors.ts";
import { deviceErrors, errorScope } from "../gpu/device.ts";
import { type AttendGroup, Forward, type ForwardInput, forwardRowBytes } from "./forward.ts";
import { type KvBlock, type KvDtype, KvPool } from "./kv_pool.ts";

export interface EngineOptions {
  /** Bytes of GPU memory for KV blocks (default 256 MiB). */
  kvBudgetBytes?: number;
  /** Most rows in one forward batch (longer inputs are split; default 4096). */
  maxBatchRows?: number;
  /** KV cache storage: "f32" (default) or "f16" (half the memory; attention math stays f32). */
  kvDtype?: KvDtype;
  /**
   * A newly recorded forward pass is submitted every this many layers while the host records the rest (the GPU
   * starts on the first layers meanwhile); 0 records it whole, then submits. Default: 4 on GPUs, 0 on CPU adapters
   * (lavapipe runs a submit's work before it returns).
   */
  layersPerSubmit?: number;
}

/** One forward pass of a chunked run: rows [start, start + rows) of the input, as its own ForwardInput. */
export interface Chunk {
  start: number;
  rows: number;
  input: ForwardInput;
  /** Index, among the run's logit rows, of this chunk's first one. */
  logitAt: number;
}

export class Engine {
  readonly pool: KvPool;
  readonly maxBatchRows: number;
  /** Layers recorded between submits of a newly recorded forward pass (0: whole, then submitted). */
  readonly layersPerSubmit: number;
  /** Rows in one forward pass: maxBatchRows, or fewer where the widest per-row buffer would not fit. */
  readonly batchRows: number;
  /** Logit rows one forward pass can hold ([rows, vocab] f32 in one binding). */
  readonly logitRowsPerPass: number;
  /** The device's per-buffer limit (the smaller of maxStorageBufferBindingSize and maxBufferSize). */
  readonly bufferLimit: number;
  readonly #widest: { label: string; bytes: number };

  constructor(readonly model: Model, opts: EngineOptions = {}) {
    const maxBatchRows = opts.maxBatchRows ?? 4096;
    if (!Number.isInteger(maxBatchRows) || maxBatchRows < 1) throw new InvalidArgumentError(`maxBatchRows must be a positive integer (got ${maxBatchRows})`);
    this.pool = new KvPool(model.gpu, model.config, opts.kvBudgetBytes ?? 256 * 1024 * 1024, opts.kvDtype ?? "f32");
    this.maxBatchRows = maxBatchRows;
    const lps = opts.layersPerSubmit ?? (model.gpu.isCpu ? 0 : 4);
    if (!Number.isInteger(lps) || lps < 0) throw new InvalidArgumentError(`layersPerSubmit must be a non-negative integer (got ${lps})`);
    this.layersPerSubmit = lps;
    const { limits } = model.gpu;
    this.bufferLimit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    const [label, bytes] = Object.entries(forwardRowBytes(model.config)).reduce((a, b) => (b[1] > a[1] ? b : a));
    this.#widest = { label, bytes };
    this.batchRows = Math.min(maxBatchRows, Math.floor(this.bufferLimit / bytes));
    this.logitRowsPerPass = Math.floor(this.bufferLimit / (model.config.vocabSize * 4));
  }

  /** Checks ids against the vocabulary (an out-of-range id would read past the embedding). */
  checkIds(ids: ArrayLike<number>, what = "token ids"): void {
    const V = this.model.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < V)) throw new InvalidArgumentError(`${what}: id ${ids[i]} at index ${i} is outside the vocabulary (0..${V - 1})`);
    }
  }

  /**
   * Splits a forward over `n` rows into passes that fit the device (see the module comment); refuses
   * with CapacityError what cannot fit even at one row per pass.
   */
  plan(n: number, input: ForwardInput): Chunk[] {
    const V = this.model.config.vocabSize;
    const { from, count } = input.logits;
    if (this.batchRows < 1) {
      throw new CapacityError(
        `one batch row of the '${this.#widest.label}' buffer needs ${this.#widest.bytes} bytes, over the device's per-buffer limit of ${this.bufferLimit} bytes`,
      );
    }
    if (count > 0 && this.logitRowsPerPass < 1) {
      throw new CapacityError(`one row of logits needs ${V * 4} bytes (vocabulary ${V} x 4), over the device's per-buffer limit of ${this.bufferLimit} bytes`);
    }
    const step = count > this.logitRowsPerPass ? Math.min(this.batchRows, this.logitRowsPerPass) : this.batchRows;
    if (n <= step) return [{ start: 0, rows: n, input, logitAt: 0 }];
    const chunks: Chunk[] = [];
    let g = 0, done = 0; // the group being split and how many of its rows earlier chunks took
    for (let start = 0; start < n; start += step) {
      const rows = Math.min(step, n - start);
      const groups: AttendGroup[] = [];
      for (let left = rows; left > 0;) {
        const group = input.groups[g];
        const take = Math.min(left, group.rows - done);
        if (take > 0) groups.push({ ...group, rows: take, writeAt: group.writeAt + done });
        left -= take;
        done += take;
        if (done === group.rows) (g++, done = 0);
      }
      const lo = Math.max(from, start), hi = Math.min(from + count, start + rows);
      const logits = hi > lo ? { from: lo - start, count: hi - lo } : { from: 0, count: 0 };
      chunks.push({ start, rows, input: { ...input, groups, logits }, logitAt: hi > lo ? lo - from : 0 });
    }
    return chunks;
  }

  /**
   * Records a forward pass of `ids.length` rows for `input`, its ids written: streamed where the engine streams
   * (submitted every layersPerSubmit layers while recorded). The caller submits what is left with
   * `program.submitRest()` (then the whole again with `program.submit()`).
   */
  record(input: ForwardInput, ids: Uint32Array): Forward {
    const lps = this.layersPerSubmit;
    const fwd = new Forward(this.model, this.pool, ids.length, input, undefined, lps > 0 ? { ids, layersPerSubmit: lps } : undefined);
    if (lps === 0) fwd.setIds(ids);
    return fwd;
  }

  /**
   * Records and submits the forward passes of `input` over `ids` without waiting (inside the
   * caller's error scope, if any); resolves to the requested logits ([count, vocab]) once read back.
   */
  enqueue(ids: Uint32Array, input: ForwardInput): Promise<Float32Array> {
    deviceErrors(this.model.gpu.device).throwIfLost();
    this.checkIds(ids);
    this.#check(ids.length, input);
    const chunks = this.plan(ids.length, input);
    const V = this.model.config.vocabSize;
    const out = hostLogits(input.logits.count, V);
    const reads: Promise<void>[] = [];
    let fwd: Forward | undefined;
    try {
      for (const ch of chunks) {
        if (fwd && sameShape(fwd.input, ch.input)) {
          // a pass like the last one: rewrite its state (positions, destinations, block lists) and replay it
          fwd.input.groups.forEach((g, i) => (g.writeAt = ch.input.groups[i].writeAt));
          fwd.refreshState();
          fwd.setIds(ids.subarray(ch.start, ch.start + ch.rows));
          fwd.program.submit();
        } else {
          fwd?.destroy(); // buffers of submitted work are freed by WebGPU once that work is done
          fwd = this.record(ch.input, ids.subarray(ch.start, ch.start + ch.rows));
          fwd.program.submitRest();
        }
        // the copy to the host is queued now, before the next pass rewrites the logits buffer
        if (ch.input.logits.count > 0) reads.push(fwd.readLogits().then((l) => out.set(l, ch.logitAt * V)));
      }
    } catch (e) {
      for (const r of reads) r.catch(() => {});
      throw e;
    } finally {
      fwd?.destroy();
    }
    return Promise.all(reads).then(() => out);
  }

  /**
   * Runs `input` (in as many passes as it needs); returns logits for input.logits rows ([count, vocab]) or an empty
   * array, once the GPU has done the work (with no logits to read, after queue.onSubmittedWorkDone).
   */
  async run(ids: Uint32Array, input: ForwardInput): Promise<Float32Array> {
    const dev = this.model.gpu.device;
    const close = errorScope(dev, `forward of ${ids.length} rows`);
    let logits: Promise<Float32Array> | undefined, failure: unknown;
    try {
      logits = this.enqueue(ids, input);
      // nothing to read back (a prefix or context encode): wait for the GPU all the same, so that the call returns
      // when its work is done and an error of that work (out of memory, a lost device) surfaces here, not later
      if (input.logits.count === 0) logits = logits.then(async (l) => (await dev.queue.onSubmittedWorkDone(), l));
    } catch (e) {
      failure = e;
    }
    const [scope, read] = await Promise.allSettled([close(), logits ?? Promise.resolve(new Float32Array(0))]);
    if (failure !== undefined) throw failure;
    const scoped = scope.status === "fulfilled" ? scope.value : undefined;
    if (scoped) throw scoped;
    deviceErrors(dev).throwIfFailed();
    if (read.status === "rejected") throw read.reason;
    return read.value;
  }

  #check(n: number, input: ForwardInput): void {
    const covered = input.groups.reduce((s, g) => s + g.rows, 0);
    if (covered !== n) throw new InvalidArgumentError(`forward: groups cover ${covered} rows, the batch has ${n} ids`);
    const { from, count } = input.logits;
    if (!(Number.isInteger(from) && Number.isInteger(count) && from >= 0 && count >= 0 && from + count <= n)) {
      throw new InvalidArgumentError(`forward: logit rows [${from}, ${from + count}) are outside the batch of ${n} rows`);
    }
    const maxPos = Math.max(...input.groups.map((g) => g.write.firstPos + g.writeAt + g.rows));
    if (maxPos > this.model.config.maxPositions) {
      throw new CapacityError(`positions up to ${maxPos} exceed the model's max_position_embeddings (${this.model.config.maxPositions})`);
    }
    for (const g of input.groups) {
      if (g.writeAt + g.rows > g.write.capacity) {
        throw new CapacityError(`a group of ${g.rows} rows at slot ${g.writeAt} overflows its block of ${g.write.capacity} slots`);
      }
    }
  }

  destroy(): void {
    this.pool.destroy();
  }
}

/** The host array for `count` logit rows, or CapacityError when the runtime cannot hold that many at once. */
function hostLogits(count: number, vocab: number): Float32Array {
  try {
    return new Float32Array(count * vocab);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new CapacityError(`${count} logit rows of ${vocab} floats (${count * vocab * 4} bytes) cannot be returned at once (${e.message}); ask for fewer rows`);
  }
}

/** Whether a Forward recorded for `a` can be replayed for `b` (same rows, blocks, lists and logit rows; only writeAt differs). */
function sameShape(a: ForwardInput, b: ForwardInput): boolean {
  const same = (x: KvBlock[] = [], y: KvBlock[] = []) => x.length === y.length && x.every((blk, i) => blk === y[i]);
  return a.logits.from === b.logits.from && a.logits.count === b.logits.count && a.temperature === b.temperature &&
    a.scale === b.scale && a.groups.length === b.groups.length &&
    a.groups.every((g, i) => {
      const h = b.groups[i];
      return g.rows === h.rows && g.write === h.write && same(g.plain, h.plain) && same(g.contexts, h.contexts);
    });
}
