/**
 * Sampling settings and the GPU sampler that appends shaders/sample.wgsl to a step's program: the
 * chosen id lands in `tokens[step]` (read back in chunks) and in `next` (the next step's input).
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
import { storageBuffer, uploadU32 } from "../gpu/buffers.ts";
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

export class Sampler {
  readonly tokens: GPUBuffer;
  readonly next: GPUBuffer;
  readonly state: GPUBuffer;
  readonly seen: GPUBuffer;
  readonly settings: Required<SamplingOptions>;

  constructor(readonly model: Model, sampling: SamplingOptions, readonly maxTokens: number, history: ArrayLike<number>) {
    this.settings = checkSampling(sampling);
    const dev = model.gpu.device;
    const V = model.config.vocabSize;
    const bits = new Uint32Array(Math.ceil(V / 32));
    for (let i = 0; i < history.length; i++) bits[history[i] >>> 5] |= 1 << (history[i] & 31);
    this.seen = uploadU32(dev, bits, "seen");
    this.tokens = storageBuffer(dev, maxTokens * 4, "tokens");
    this.next = storageBuffer(dev, 16, "next");
    this.state = storageBuffer(dev, 16, "state");
  }

  /** Appends one sampling dispatch reading `logits` (row 0) to `program`. */
  record(program: Program, logits: GPUBuffer): void {
    const k = this.model.kernels;
    const s = this.settings;
    const pipe = k.pipeline("sample");
    const params = program.uniform(
      new Params().u(this.model.config.vocabSize, s.topK, s.seed, 0).f(s.temperature, s.topP, s.repetitionPenalty, 0).bytes(),
    );
    program.dispatch(pipe, k.bind(pipe, [logits, this.seen, this.tokens, this.next, this.state, params]), 1);
  }

  /** Sets the step index the next submitted sampling dispatch writes to. */
  setStep(step: number): void {
    this.model.gpu.device.queue.writeBuffer(this.state, 0, new Uint32Array([step, 0, 0, 0]));
  }

  destroy(): void {
    for (const b of [this.tokens, this.next, this.state, this.seen]) b.destroy();
  }
}
