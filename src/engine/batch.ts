/**
 * Continuous batching: every live generation of an engine decodes in ONE batched forward pass per
 * step, a row per sequence, each row attending its own block list (its prefix / contexts / live block),
 * so APE, parallel and sequential requests share a step. Requests join and leave between chunks of
 * steps; a joining request's prompt is prefilled in its own pass(es), then it rides along.
 *
 * One step for the rows of a cohort (rows sharing APE's T and S; plain rows ride with any), one compute pass:
 *   forward pass over n rows -> logits [n, vocab]                                 (forward.ts, as recorded)
 *   ONE sampling dispatch, a workgroup per row (sampler.ts SamplerBank): row r reads logits row r in place
 *   with its sequence's settings, RNG, step and repetition mask, exactly as the request decoding alone,
 *   and writes its id into the step's ids[r] (the next step's input) and into the bank's token slots
 * A cohort of one row runs the single-sequence step of generate.ts (the sequence's own sampler reads the
 * logits and feeds the embedding directly). The recorded step is replayed while the cohort's membership
 * holds (only the state buffers change); a join or leave records the new cohorts once: a multi-row cohort
 * copies its rows' state (masks, last ids) in from their samplers when recorded and hands it back, with
 * the tokens sampled meanwhile, when replaced (GPU copies, queued in order); readbacks take a sequence's
 * tokens from wherever they are (its bank, or its sampler's own buffer).
 *
 * Steps go to the GPU in chunks (`stepsPerReadback`, default 16; 4 on CPU adapters); the tokens of all
 * sequences come back in one readback per chunk, while the next chunk is already queued. A sequence
 * leaves after an EOS / stop id, at maxTokens, when its consumer stops reading or its signal aborts;
 * steps already queued for it are discarded (the queue runs in order, so its block may be freed and
 * reused at once). A consumer that falls 4 chunks behind pauses its own sequence, never the others.
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { Engine } from "./engine.ts";
 * import { Batcher } from "./batch.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
 * const batcher = new Batcher(engine);
 * const one = async (prompt: Uint32Array) => { // two sequences decode side by side, one row each per step
 *   const block = engine.pool.allocate(prompt.length + 4, 0);
 *   const group = (rows: number, writeAt: number) => ({ rows, write: block, writeAt, plain: [block] });
 *   const out: number[] = [];
 *   for await (const ids of batcher.decode({ prompt, block, group, maxTokens: 4 })) out.push(...ids);
 *   engine.pool.release(block);
 *   return out;
 * };
 * console.log(await Promise.all([one(Uint32Array.from([1, 2, 3])), one(Uint32Array.from([4, 5]))]));
 * await batcher.close();
 * engine.destroy();
 * model.destroy();
 * ```
 */
import type { Engine } from "./engine.ts";
import { type AttendGroup, Forward } from "./forward.ts";
import { Sampler, SamplerBank } from "./sampler.ts";
import type { DecodeRequest } from "./generate.ts";
import { Usage } from "../gpu/buffers.ts";
import { deviceErrors, errorScope } from "../gpu/device.ts";
import { ApeError, CapacityError, InvalidArgumentError, NonFiniteError } from "../errors.ts";

export interface BatcherOptions {
  /** Steps per readback (default 16; 4 on CPU adapters); a request's own smaller value wins while it is live. */
  stepsPerReadback?: number;
  /**
   * Most rows in one batched forward pass (default 64; 1 on CPU adapters, where a pass of a few rows
   * runs the prefill matmul's 32-row tiles and costs several single-row steps: there the sequences
   * still share each submit, one row per pass). More live sequences run as several cohorts per step.
   */
  maxRows?: number;
}

const MAP_READ = 1; // GPUMapMode.READ
/** Chunks a consumer may leave unread before its sequence pauses. */
const MAX_UNREAD = 4;

/** One live generation. */
class Sequence {
  readonly stop: Set<number>;
  readonly group: AttendGroup;
  /** The cohort key: APE rows share a step only with the same T and S; plain rows ride with any. */
  readonly key: string;
  sampler?: Sampler;
  /** While in a multi-row cohort: its sampler bank and row there (which holds its sampling state). */
  banked?: { bank: SamplerBank; row: number };
  /** Tokens whose sampling is submitted / covered by a readback / handed to the consumer. */
  enqueued = 0;
  issued = 0;
  delivered = 0;
  /** The prefill's error scope, awaited with the first readback. */
  scope?: Promise<ApeError | undefined>;
  readonly chunks: number[][] = [];
  ended = false;
  error?: unknown;
  #wake?: () => void;

  constructor(readonly req: DecodeRequest) {
    this.stop = new Set(req.stopIds ?? []);
    this.group = req.group(1, req.prompt.length);
    const ape = (this.group.contexts?.length ?? 0) > 0;
    this.key = ape ? `ape:${req.temperature ?? 1}:${req.scale ?? 1}` : "plain";
  }

  /** Whether the driver may submit another step for it. */
  get steppable(): boolean {
    return !this.ended && this.sampler !== undefined && this.enqueued < this.req.maxTokens && this.chunks.length < MAX_UNREAD;
  }

  push(ids: number[]): void {
    if (ids.length) this.chunks.push(ids);
    this.notify();
  }

  /** Ends the sequence: done (the consumer drains what was read first) or failed with `error` (thrown at once). */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.notify();
  }

  notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  wait(): Promise<void> {
    return new Promise((r) => (this.#wake = r));
  }

  /** Queues copies of its tokens of steps from .. to - 1 into `dst` at word `at` (from its bank while it has one). */
  copyTokens(enc: GPUCommandEncoder, from: number, to: number, dst: GPUBuffer, at: number): void {
    if (this.banked) this.banked.bank.copyTokens(enc, this.banked.row, from, to, dst, at);
    else enc.copyBufferToBuffer(this.sampler!.tokens, from * 4, dst, at * 4, (to - from) * 4);
  }

  destroy(): void {
    this.sampler?.destroy();
    this.sampler = undefined;
  }
}

/** The recorded step of a set of sequences sharing T and S (see the module comment). */
class Cohort {
  readonly fwd: Forward;
  /** Multi-row cohorts: every row's sampling in one dispatch (reads fwd.logits, writes fwd.ids). */
  readonly bank?: SamplerBank;

  constructor(readonly engine: Engine, readonly seqs: Sequence[]) {
    const { model, pool } = engine;
    const ape = seqs.find((s) => s.key !== "plain");
    const input = {
      groups: seqs.map((s) => s.group), temperature: ape?.req.temperature, scale: ape?.req.scale,
      logits: { from: 0, count: seqs.length },
    };
    for (const s of seqs) s.group.writeAt = s.req.prompt.length + s.enqueued - 1;
    if (seqs.length === 1) {
      this.fwd = new Forward(model, pool, 1, input, seqs[0].sampler!.next);
      seqs[0].sampler!.record(this.fwd.program, this.fwd.logits);
      return;
    }
    this.fwd = new Forward(model, pool, seqs.length, input);
    const bank = (this.bank = new SamplerBank(model, seqs.map((s) => s.sampler!), seqs.map((s) => s.enqueued)));
    bank.record(this.fwd.program, this.fwd.logits, this.fwd.ids);
    seqs.forEach((s, row) => (s.banked = { bank, row }));
    const dev = model.gpu.device;
    const enc = dev.createCommandEncoder();
    bank.load(enc, this.fwd.ids); // the rows' masks, and their last ids as the first step's input
    dev.queue.submit([enc.finish()]);
  }

  /** Encodes one step for every sequence (after writing its state: positions, block lists, step index). */
  step(enc: GPUCommandEncoder): void {
    for (const s of this.seqs) s.group.writeAt = s.req.prompt.length + s.enqueued - 1; // the previous token's slot
    if (this.bank) this.bank.setSteps(this.seqs.map((s) => s.enqueued));
    else this.seqs[0].sampler!.setStep(this.seqs[0].enqueued);
    this.fwd.refreshState();
    const pass = enc.beginComputePass();
    this.fwd.program.encode(pass);
    pass.end();
    for (const s of this.seqs) s.enqueued++;
  }

  /** Hands the bank's state back to the sequences' samplers (queued copies), then frees the cohort. */
  destroy(): void {
    if (this.bank) {
      const dev = this.engine.model.gpu.device;
      const enc = dev.createCommandEncoder();
      this.bank.unload(enc, this.fwd.ids, this.seqs.map((s) => s.enqueued));
      dev.queue.submit([enc.finish()]);
      for (const s of this.seqs) s.banked = undefined;
      this.bank.destroy(); // WebGPU frees it once the queued copies are done
    }
    this.fwd.destroy();
  }
}

/** A readback of several sequences' new tokens in one staging buffer. */
interface Read {
  parts: { seq: Sequence; from: number; count: number; first: boolean; at: number }[];
  data: Promise<Uint32Array>;
}

export class Batcher {
  readonly #pending: Sequence[] = [];
  readonly #live: Sequence[] = [];
  #cohorts: Cohort[] = [];
  #driver?: Promise<void>;
  #wakeDriver?: () => void;
  #closed?: ApeError;
  readonly chunk: number;
  readonly maxRows: number;
  /**
   * Steps run, the rows they carried and the forward passes they took (for benchmarks and tests:
   * rows / passes is the mean batch size of a pass), cohorts recorded (joins and leaves) and the widest.
   */
  readonly counters = { steps: 0, rows: 0, passes: 0, cohortsRecorded: 0, widest: 0 };

  constructor(readonly engine: Engine, opts: BatcherOptions = {}) {
    this.chunk = Math.max(1, opts.stepsPerReadback ?? (engine.model.gpu.isCpu ? 4 : 16));
    this.maxRows = Math.max(1, Math.min(opts.maxRows ?? (engine.model.gpu.isCpu ? 1 : 64), engine.batchRows));
  }

  /** Sequences decoding or waiting to join. */
  get size(): number {
    return this.#pending.length + this.#live.length - [...this.#pending, ...this.#live].filter((s) => s.ended).length;
  }

  /**
   * Yields generated ids in chunks as they are read back (stops after an EOS id, which is yielded),
   * like generate.ts `decode`, while decoding in one batched step with every other live request.
   */
  async *decode(req: DecodeRequest): AsyncGenerator<number[]> {
    const { engine } = this;
    const { prompt, block, maxTokens } = req;
    if (this.#closed) throw this.#closed;
    if (prompt.length === 0) throw new InvalidArgumentError("prompt: no tokens");
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidArgumentError(`maxTokens must be a positive integer (got ${maxTokens})`);
    if (prompt.length + maxTokens > block.capacity) {
      throw new CapacityError(`prompt (${prompt.length}) + maxTokens (${maxTokens}) exceed the live block (${block.capacity} slots)`);
    }
    engine.checkIds(prompt, "prompt");
    deviceErrors(engine.model.gpu.device).throwIfLost();
    const seq = new Sequence(req);
    const onAbort = () => seq.end(new ApeError("E_ABORTED", "generation aborted"));
    if (req.signal?.aborted) onAbort();
    req.signal?.addEventListener("abort", onAbort);
    this.#pending.push(seq);
    this.#kick();
    try {
      for (;;) {
        if (seq.error !== undefined) throw seq.error; // an abort, close() or a GPU error: at once
        const ids = seq.chunks.shift();
        if (ids) {
          this.#kick(); // a paused sequence may step again
          yield ids;
          continue;
        }
        if (seq.ended) return;
        await seq.wait();
      }
    } finally {
      req.signal?.removeEventListener("abort", onAbort);
      seq.end(); // the consumer stopped: the driver drops it before its next step
      this.#kick();
    }
  }

  /** Ends every sequence with E_CLOSED, waits for the driver to stop, and refuses new requests. */
  async close(): Promise<void> {
    this.#closed ??= new ApeError("E_CLOSED", "the batcher is closed");
    for (const s of [...this.#pending, ...this.#live]) s.end(this.#closed);
    this.#kick();
    await this.#driver;
    await this.engine.model.gpu.device.queue.onSubmittedWorkDone(); // the steps still queued
  }

  #kick(): void {
    const w = this.#wakeDriver;
    this.#wakeDriver = undefined;
    w?.();
    if (!this.#driver && this.size > 0) {
      // started a microtask later, so requests arriving in the same tick are admitted together
      this.#driver = Promise.resolve().then(() => this.#drive()).finally(() => {
        this.#driver = undefined;
        if (this.size > 0) this.#kick(); // a request that joined as the driver left
      });
    }
  }

  async #drive(): Promise<void> {
    const outstanding: Read[] = [];
    try {
      for (;;) {
        this.#reap();
        const joined = this.#admit();
        if (joined.length) outstanding.push(this.#read(joined));
        // nobody else is decoding: hand out the first tokens before queueing steps (on CPU adapters a
        // submit runs its work before returning, which would hold them back by a chunk of steps)
        const cpu = this.engine.model.gpu.isCpu; // there every submit runs its work before returning
        const firstOnly = joined.length > 0 && (cpu || (outstanding.length === 1 && this.#live.length === joined.length));
        if (firstOnly && cpu) while (outstanding.length > 1) await this.#deliver(outstanding.shift()!);
        const stepped = firstOnly ? 0 : this.#enqueueChunk();
        if (stepped > 0) outstanding.push(this.#read(this.#live));
        if (outstanding.length === 0) {
          if (this.size === 0) return;
          if (this.#pending.length === 0 && !this.#live.some((s) => s.steppable)) {
            await new Promise<void>((r) => (this.#wakeDriver = r)); // every sequence waits on its consumer
          }
          continue;
        }
        // keep one chunk queued behind the one being read: the GPU never waits on the host
        if (stepped === 0) await this.#deliver(outstanding.shift()!);
        else while (outstanding.length >= 2) await this.#deliver(outstanding.shift()!);
        // on CPU adapters every submit runs its steps before it returns, so the next chunk would hold the
        // tokens just delivered back from their consumers (the first token by two chunks): let them run
        if (cpu) await new Promise((r) => setTimeout(r, 0));
      }
    } catch (e) {
      for (const s of [...this.#pending, ...this.#live]) s.end(e);
      for (const r of outstanding) r.data.catch(() => {});
    } finally {
      this.#reap();
    }
  }

  /** Drops ended sequences (their samplers are freed; queued work on them finishes harmlessly). */
  #reap(): void {
    for (const list of [this.#pending, this.#live]) {
      for (let i = list.length - 1; i >= 0; i--) {
        if (!list[i].ended) continue;
        list[i].destroy();
        list.splice(i, 1);
      }
    }
    if (this.#live.length === 0 && this.#cohorts.length) this.#setCohorts([]);
  }

  /** Prefills the waiting sequences (each in its own pass or passes; a failure ends only that one). */
  #admit(): Sequence[] {
    const joined: Sequence[] = [];
    while (this.#pending.length) {
      const seq = this.#pending.shift()!;
      try {
        this.#prefill(seq);
        this.#live.push(seq);
        joined.push(seq);
      } catch (e) {
        seq.end(e);
        seq.destroy();
      }
    }
    return joined;
  }

  #prefill(seq: Sequence): void {
    const { engine } = this;
    const { model, pool } = engine;
    const { prompt, temperature: T, scale: S, maxTokens } = seq.req;
    const chunks = engine.plan(prompt.length, {
      groups: [seq.req.group(prompt.length, 0)], temperature: T, scale: S, logits: { from: prompt.length - 1, count: 1 },
    });
    const last = chunks[chunks.length - 1];
    const close = errorScope(model.gpu.device, `decode of a ${prompt.length}-token prompt`);
    let fwd: Forward | undefined;
    try {
      if (last.start > 0) {
        engine.enqueue(prompt.subarray(0, last.start), {
          groups: [seq.req.group(last.start, 0)], temperature: T, scale: S, logits: { from: 0, count: 0 },
        });
      }
      const history = new Uint32Array([...Array.from(seq.req.history ?? []), ...prompt]);
      seq.sampler = new Sampler(model, seq.req.sampling ?? {}, maxTokens, history);
      fwd = new Forward(model, pool, last.rows, last.input);
      seq.sampler.record(fwd.program, fwd.logits);
      seq.sampler.setStep(0);
      fwd.setIds(prompt.subarray(last.start));
      fwd.program.submit();
      seq.enqueued = 1;
    } finally {
      fwd?.destroy(); // WebGPU frees it once the submitted work is done
      seq.scope = close();
    }
  }

  /** Queues one chunk of steps for every steppable sequence; returns the steps queued. */
  #enqueueChunk(): number {
    const active = this.#live.filter((s) => s.steppable);
    if (active.length === 0) return 0;
    const same = this.#cohorts.length > 0 && this.#cohorts.flatMap((c) => c.seqs).length === active.length &&
      this.#cohorts.every((c) => c.seqs.every((s) => active.includes(s)));
    if (!same) this.#setCohorts(active);
    let k = this.chunk;
    for (const s of active) k = Math.min(k, s.req.maxTokens - s.enqueued, Math.max(1, s.req.stepsPerReadback ?? k));
    const dev = this.engine.model.gpu.device;
    deviceErrors(dev).throwIfLost();
    for (let i = 0; i < k; i++) {
      const enc = dev.createCommandEncoder();
      for (const c of this.#cohorts) c.step(enc);
      dev.queue.submit([enc.finish()]);
      this.counters.steps++;
      this.counters.rows += active.length;
      this.counters.passes += this.#cohorts.length;
    }
    return k;
  }

  /** Splits the sequences into cohorts (same T and S; plain rows fill the first; at most maxRows each) and records them. */
  #setCohorts(active: Sequence[]): void {
    for (const c of this.#cohorts) c.destroy();
    this.#cohorts = [];
    const byKey = new Map<string, Sequence[]>();
    for (const s of active) if (s.key !== "plain") byKey.set(s.key, [...(byKey.get(s.key) ?? []), s]);
    const plain = active.filter((s) => s.key === "plain");
    const sets = [...byKey.values()];
    if (sets.length) sets[0].push(...plain);
    else sets.push(plain);
    for (const set of sets) {
      for (let i = 0; i < set.length; i += this.maxRows) {
        const seqs = set.slice(i, i + this.maxRows);
        this.#cohorts.push(new Cohort(this.engine, seqs));
        this.counters.cohortsRecorded++;
        this.counters.widest = Math.max(this.counters.widest, seqs.length);
      }
    }
  }

  /** Queues one readback of the tokens `seqs` sampled since their last readback. */
  #read(seqs: Sequence[]): Read {
    const dev = this.engine.model.gpu.device;
    const parts: Read["parts"] = [];
    let words = 0;
    for (const seq of seqs) {
      if (seq.ended || !seq.sampler || seq.issued >= seq.enqueued) continue;
      parts.push({ seq, from: seq.issued, count: seq.enqueued - seq.issued, first: seq.issued === 0, at: words });
      words += seq.enqueued - seq.issued;
      seq.issued = seq.enqueued;
    }
    if (words === 0) return { parts, data: Promise.resolve(new Uint32Array(0)) };
    const staging = dev.createBuffer({ size: words * 4, usage: Usage.MAP_READ | Usage.COPY_DST, label: "batch.tokens" });
    const enc = dev.createCommandEncoder();
    for (const p of parts) p.seq.copyTokens(enc, p.from, p.from + p.count, staging, p.at);
    dev.queue.submit([enc.finish()]);
    const data = staging.mapAsync(MAP_READ).then(
      () => new Uint32Array(staging.getMappedRange().slice(0)),
    ).finally(() => staging.destroy());
    return { parts, data };
  }

  /** Waits for a readback and hands each sequence its tokens (cut after a stop id). */
  async #deliver(read: Read): Promise<void> {
    const errors = deviceErrors(this.engine.model.gpu.device);
    const [data, ...scopes] = await Promise.allSettled([read.data, ...read.parts.map((p) => (p.first ? p.seq.scope : undefined))]);
    read.parts.forEach((p, i) => {
      const s = scopes[i];
      if (s.status === "fulfilled" && s.value) p.seq.end(s.value); // the prefill's own GPU error
    });
    errors.throwIfFailed(); // a lost device or an error of a replayed step: every live sequence fails
    if (data.status === "rejected") throw data.reason;
    for (const p of read.parts) {
      const seq = p.seq;
      if (seq.ended) continue;
      const ids = Array.from(data.value.subarray(p.at, p.at + p.count));
      const bad = ids.findIndex((id) => id >= this.engine.model.config.vocabSize); // the sampler's NONFINITE flag
      if (bad >= 0) {
        seq.push(ids.slice(0, bad));
        seq.end(new NonFiniteError(`the logits of generated token ${p.from + bad + 1} are NaN or infinite (broken weights or config): no token can be chosen`));
        continue;
      }
      const cut = ids.findIndex((id) => seq.stop.has(id));
      const out = cut >= 0 ? ids.slice(0, cut + 1) : ids;
      seq.delivered += out.length;
      seq.push(out);
      if (cut >= 0 || seq.delivered >= seq.req.maxTokens) seq.end();
    }
  }
}
