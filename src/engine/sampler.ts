/**
 * Sampling settings and the GPU samplers that append shaders/sample.wgsl to a step's program. A `Sampler`
 * samples one request: the chosen id lands in `tokens[step]` (read back in chunks) and in `next` (the next
 * step's input). A `SamplerBank` samples the rows of a batched step (src/engine/batch.ts) in ONE dispatch, a
 * workgroup per row, each row with its own Sampler's settings, step and repetition mask: every row's choice
 * is the one its Sampler would make alone on the same logits (the same kernel, the same operations).
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { readBuffer, uploadF32 } from "../gpu/buffers.ts";
 * import { Program } from "./program.ts";
 * import { Sampler } from "./sampler.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const logits = new Float32Array(model.config.vocabSize);
 * logits[42] = 5; // the most likely token
 * const s = new Sampler(model, { temperature: 0 }, 1, []); // greedy, one token, no repetition history
 * const prog = new Program(model.gpu.device);
 * s.record(prog, uploadF32(model.gpu.device, logits));
 * s.setStep(0);
 * prog.submit();
 * console.log(new Uint32Array(await readBuffer(model.gpu.device, s.tokens, 4))[0]); // 42
 * s.destroy();
 * prog.destroy();
 * model.destroy();
 * ```
 */
import { storageBuffer, uploadBytes, uploadU32 } from "../gpu/buffers.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { Model } from "../model/model.ts";
import { Params, type Program } from "./program.ts";

export interface SamplingOptions {
  /** 0 = greedy (default). */
  temperature?: number;
  /** Keep the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set whose probability reaches p (1 = off). */
  topP?: number;
  /** HF-style repetition penalty over prompt and generated tokens (1 = off). */
  repetitionPenalty?: number;
  /** RNG seed: the same seed and inputs give the same tokens. */
  seed?: number;
}

export function checkSampling(s: SamplingOptions): Required<SamplingOptions> {
  const out = { temperature: s.temperature ?? 0, topK: s.topK ?? 0, topP: s.topP ?? 1, repetitionPenalty: s.repetitionPenalty ?? 1, seed: s.seed ?? 0 };
  if (!(out.temperature >= 0) || !Number.isFinite(out.temperature)) throw new InvalidArgumentError(`sampling.temperature must be >= 0 (got ${s.temperature})`);
  if (!Number.isInteger(out.topK) || out.topK < 0) throw new InvalidArgumentError(`sampling.topK must be a non-negative integer (got ${s.topK})`);
  if (!(out.topP > 0 && out.topP <= 1)) throw new InvalidArgumentError(`sampling.topP must be in (0, 1] (got ${s.topP})`);
  if (!(out.repetitionPenalty > 0) || !Number.isFinite(out.repetitionPenalty)) throw new InvalidArgumentError(`sampling.repetitionPenalty must be > 0 (got ${s.repetitionPenalty})`);
  if (!Number.isInteger(out.seed) || out.seed < 0 || out.seed > 0xffffffff) throw new InvalidArgumentError(`sampling.seed must be a 32-bit unsigned integer (got ${s.seed})`);
  return out;
}

/** Bytes of one row's entry in the kernel's `rowp` array (struct Row in shaders/sample.wgsl). */
const ROW_BYTES = 32;

/** Writes one row's entry (step, token slot, settings) at byte `offset` of `view`. */
function writeRow(view: DataView, offset: number, s: Required<SamplingOptions>, step: number, at: number): void {
  view.setUint32(offset, step, true);
  view.setUint32(offset + 4, at, true);
  view.setUint32(offset + 8, s.topK, true);
  view.setUint32(offset + 12, s.seed, true);
  view.setFloat32(offset + 16, s.temperature, true);
  view.setFloat32(offset + 20, s.topP, true);
  view.setFloat32(offset + 24, s.repetitionPenalty, true);
  view.setFloat32(offset + 28, 0, true);
}

/** Appends one sample dispatch of `rows` workgroups (see shaders/sample.wgsl for the bindings). */
function recordSample(model: Model, program: Program, rows: number, buffers: GPUBuffer[]): void {
  const k = model.kernels;
  const pipe = k.pipeline("sample");
  const params = program.uniform(new Params().u(model.config.vocabSize, 0, 0, 0).bytes());
  program.dispatch(pipe, k.bind(pipe, [...buffers, params]), rows);
}

export class Sampler {
  readonly tokens: GPUBuffer;
  readonly next: GPUBuffer;
  /** The kernel's one row: step index, token slot (= step) and settings. */
  readonly state: GPUBuffer;
  readonly seen: GPUBuffer;
  readonly settings: Required<SamplingOptions>;
  #destroyed = false;

  constructor(readonly model: Model, sampling: SamplingOptions, readonly maxTokens: number, history: ArrayLike<number>) {
    this.settings = checkSampling(sampling);
    const dev = model.gpu.device;
    const V = model.config.vocabSize;
    const bits = new Uint32Array(Math.ceil(V / 32));
    for (let i = 0; i < history.length; i++) bits[history[i] >>> 5] |= 1 << (history[i] & 31);
    this.seen = uploadU32(dev, bits, "seen");
    this.tokens = storageBuffer(dev, maxTokens * 4, "tokens");
    this.next = storageBuffer(dev, 16, "next");
    const row = new DataView(new ArrayBuffer(ROW_BYTES));
    writeRow(row, 0, this.settings, 0, 0);
    this.state = uploadBytes(dev, row, "sampler.state");
  }

  /** Whether destroy() ran (its buffers are gone). */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Appends one sampling dispatch reading `logits` (row 0) to `program`. */
  record(program: Program, logits: GPUBuffer): void {
    recordSample(this.model, program, 1, [logits, this.seen, this.tokens, this.next, this.state]);
  }

  /** Sets the step index the next submitted sampling dispatch writes to. */
  setStep(step: number): void {
    this.model.gpu.device.queue.writeBuffer(this.state, 0, new Uint32Array([step, step]));
  }

  destroy(): void {
    this.#destroyed = true;
    for (const b of [this.tokens, this.next, this.state, this.seen]) b.destroy();
  }
}

/**
 * The samplers of a batched step's rows as one dispatch: row r is `samplers[r]`'s request, sampled from
 * row r of the step's logits with that sampler's settings and RNG. While the bank lives it holds the rows'
 * sampling state (their repetition masks and the tokens they sample: row r's token of step t at
 * `tokens[base(r) + t - first[r]]`; the last chosen ids in the step's `next`, the forward pass's ids):
 * `load` copies it in from the samplers, `unload` hands it back (GPU copies, queued in order), so a
 * request can move between banks, or back to decoding alone, with nothing lost.
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { readBuffer, storageBuffer, uploadF32 } from "../gpu/buffers.ts";
 * import { Program } from "./program.ts";
 * import { Sampler, SamplerBank } from "./sampler.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const dev = model.gpu.device, V = model.config.vocabSize;
 * const logits = new Float32Array(2 * V); // two rows
 * logits[7] = 5; // row 0's most likely token
 * logits[V + 9] = 5; // row 1's
 * const rows = [new Sampler(model, {}, 1, []), new Sampler(model, { temperature: 0.8, topK: 1, seed: 3 }, 1, [])];
 * const bank = new SamplerBank(model, rows, [0, 0]);
 * const next = storageBuffer(dev, 8); // the next step's input ids
 * const prog = new Program(dev);
 * bank.record(prog, uploadF32(dev, logits), next);
 * bank.setSteps([0, 0]);
 * prog.submit();
 * const enc = dev.createCommandEncoder();
 * bank.unload(enc, next, [1, 1]); // the tokens (and masks, and last ids) back into each Sampler's buffers
 * dev.queue.submit([enc.finish()]);
 * console.log(new Uint32Array(await readBuffer(dev, rows[0].tokens, 4))[0], new Uint32Array(await readBuffer(dev, rows[1].tokens, 4))[0]); // 7 9
 * bank.destroy();
 * for (const s of rows) s.destroy();
 * prog.destroy();
 * model.destroy();
 * ```
 */
export class SamplerBank {
  /** Row r's entry of the kernel's `rowp` (step, token slot, settings). */
  readonly params: GPUBuffer;
  /** The rows' repetition masks, row r at r * words. */
  readonly seen: GPUBuffer;
  /** The tokens the rows sample here: row r's steps first[r] .. maxTokens - 1 from word base[r]. */
  readonly tokens: GPUBuffer;
  readonly #base: number[] = [];
  readonly #row: DataView;
  readonly #maskBytes: number;

  /** `first[r]`: the step of row r's first token sampled in this bank (the tokens before are its sampler's). */
  constructor(readonly model: Model, readonly samplers: Sampler[], readonly first: number[]) {
    if (samplers.length !== first.length) throw new InvalidArgumentError(`SamplerBank: ${samplers.length} samplers but ${first.length} first steps`);
    const dev = model.gpu.device;
    const n = samplers.length;
    this.#maskBytes = Math.ceil(model.config.vocabSize / 32) * 4;
    let words = 0;
    samplers.forEach((s, r) => {
      this.#base.push(words);
      words += Math.max(1, s.maxTokens - first[r]);
    });
    this.tokens = storageBuffer(dev, words * 4, "bank.tokens");
    this.seen = storageBuffer(dev, n * this.#maskBytes, "bank.seen");
    this.#row = new DataView(new ArrayBuffer(n * ROW_BYTES));
    this.params = storageBuffer(dev, n * ROW_BYTES, "bank.params");
  }

  /** Appends the dispatch sampling every row: row r from `logits` row r; its id also lands in `next[r]`. */
  record(program: Program, logits: GPUBuffer, next: GPUBuffer): void {
    recordSample(this.model, program, this.samplers.length, [logits, this.seen, this.tokens, next, this.params]);
  }

  /** Sets each row's step index (`steps[r]`) for the next submitted dispatch: one queue write for all rows. */
  setSteps(steps: number[]): void {
    this.samplers.forEach((s, r) => writeRow(this.#row, r * ROW_BYTES, s.settings, steps[r], this.#base[r] + steps[r] - this.first[r]));
    this.model.gpu.device.queue.writeBuffer(this.params, 0, new Uint8Array(this.#row.buffer));
  }

  /** Queues copies of each row's state from its sampler: its repetition mask, and its last id into `next[r]`. */
  load(enc: GPUCommandEncoder, next: GPUBuffer): void {
    this.samplers.forEach((s, r) => {
      enc.copyBufferToBuffer(s.seen, 0, this.seen, r * this.#maskBytes, this.#maskBytes);
      enc.copyBufferToBuffer(s.next, 0, next, r * 4, 4);
    });
  }

  /**
   * Queues copies of each row's state back into its sampler (rows whose sampler is destroyed are skipped):
   * the mask, the last id (`next[r]`) and the tokens of steps first[r] .. steps[r] - 1.
   */
  unload(enc: GPUCommandEncoder, next: GPUBuffer, steps: number[]): void {
    this.samplers.forEach((s, r) => {
      if (s.destroyed) return;
      enc.copyBufferToBuffer(this.seen, r * this.#maskBytes, s.seen, 0, this.#maskBytes);
      enc.copyBufferToBuffer(next, r * 4, s.next, 0, 4);
      if (steps[r] > this.first[r]) enc.copyBufferToBuffer(this.tokens, this.#base[r] * 4, s.tokens, this.first[r] * 4, (steps[r] - this.first[r]) * 4);
    });
  }

  /**
   * Queues copies of row r's tokens of steps from .. to - 1 into `dst` at word `at`: those sampled in this
   * bank from here, the earlier ones from its sampler's own buffer.
   */
  copyTokens(enc: GPUCommandEncoder, r: number, from: number, to: number, dst: GPUBuffer, at: number): void {
    const split = Math.min(to, Math.max(from, this.first[r]));
    if (split > from) enc.copyBufferToBuffer(this.samplers[r].tokens, from * 4, dst, at * 4, (split - from) * 4);
    if (to > split) enc.copyBufferToBuffer(this.tokens, (this.#base[r] + split - this.first[r]) * 4, dst, (at + split - from) * 4, (to - split) * 4);
  }

  destroy(): void {
    for (const b of [this.params, this.seen, this.tokens]) b.destroy();
  }
}
