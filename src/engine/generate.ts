/**
 * The decode loop. The prompt's prefill and every decode step run on the GPU back to back: each step
 * embeds the id the GPU sampler just chose, so the CPU never waits per token. Tokens come back in
 * chunks (`stepsPerReadback`, default 16; 4 on CPU adapters, where a submit runs its steps at once, so
 * steps past a stop are not free); the next chunk is already enqueued while a chunk is read,
 * and generation stops on an end-of-sequence id, a caller's stop check, `maxTokens` or an abort signal.
 * A prompt longer than one forward pass is prefilled in chunks (Engine.plan); only the last chunk's
 * pass carries the sampler. GPU errors surface as typed errors: those of the prefill and first steps
 * through error scopes awaited with the first readback, those of later replays through the device's
 * uncaptured-error record, which every readback checks (no extra GPU round trip per step).
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { Engine } from "./engine.ts";
 * import { decode } from "./generate.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
 * const prompt = Uint32Array.from([1, 2, 3]), maxTokens = 4;
 * const block = engine.pool.allocate(prompt.length + maxTokens, 0); // the live sequence: prompt, then generated tokens
 * const group = (rows: number, writeAt: number) => ({ rows, write: block, writeAt, plain: [block] }); // causal, plain attention
 * for await (const ids of decode(engine, { prompt, block, group, maxTokens })) console.log(ids); // greedy ids, a readback at a time
 * engine.pool.release(block);
 * engine.destroy();
 * model.destroy();
 * ```
 */
import type { Engine } from "./engine.ts";
import { Forward, type AttendGroup } from "./forward.ts";
import type { KvBlock } from "./kv_pool.ts";
import { Sampler, type SamplingOptions } from "./sampler.ts";
import { readBuffer } from "../gpu/buffers.ts";
import { deviceErrors, errorScope } from "../gpu/device.ts";
import { ApeError, CapacityError, InvalidArgumentError, NonFiniteError } from "../errors.ts";

export interface DecodeRequest {
  /** Prompt ids of the live sequence (already placed: `block` starts at the first prompt token). */
  prompt: Uint32Array;
  /** The live sequence's KV block (capacity >= prompt + maxTokens). */
  block: KvBlock;
  /** Attention group for `rows` rows written at slot `writeAt` of `block`. */
  group: (rows: number, writeAt: number) => AttendGroup;
  temperature?: number;
  scale?: number;
  maxTokens: number;
  stopIds?: number[];
  sampling?: SamplingOptions;
  /** Token ids seen before the prompt (e.g. contexts), for the repetition penalty. */
  history?: ArrayLike<number>;
  stepsPerReadback?: number;
  /** Tokens in the first readback (default stepsPerReadback; 1 gives the earliest first token). */
  firstChunk?: number;
  signal?: AbortSignal;
}

/** Yields generated ids in chunks as they are read back; stops after an EOS id (which is yielded). */
export async function* decode(engine: Engine, req: DecodeRequest): AsyncGenerator<number[]> {
  const { prompt, block, maxTokens } = req;
  if (prompt.length === 0) throw new InvalidArgumentError("prompt: no tokens");
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidArgumentError(`maxTokens must be a positive integer (got ${maxTokens})`);
  if (prompt.length + maxTokens > block.capacity) {
    throw new CapacityError(`prompt (${prompt.length}) + maxTokens (${maxTokens}) exceed the live block (${block.capacity} slots)`);
  }
  // the last generated token is sampled from the logits at position firstPos + prompt + maxTokens - 2
  const positions = block.firstPos + prompt.length + maxTokens - 1, maxPositions = engine.model.config.maxPositions;
  if (positions > maxPositions) {
    throw new CapacityError(
      `a prompt of ${prompt.length} tokens at position ${block.firstPos} + maxTokens (${maxTokens}) needs ${positions} positions, over the model's max_position_embeddings (${maxPositions})`,
    );
  }
  engine.checkIds(prompt, "prompt");
  const dev = engine.model.gpu.device;
  deviceErrors(dev).throwIfLost();
  const stop = new Set(req.stopIds ?? []);
  const history = new Uint32Array([...Array.from(req.history ?? []), ...prompt]);
  const T = req.temperature, S = req.scale;
  // a prompt longer than one forward pass is prefilled in chunks; only the last carries the sampler
  const chunks = engine.plan(prompt.length, {
    groups: [req.group(prompt.length, 0)], temperature: T, scale: S, logits: { from: prompt.length - 1, count: 1 },
  });
  const last = chunks[chunks.length - 1];
  const stepGroup = req.group(1, prompt.length);
  const chunk = Math.max(1, req.stepsPerReadback ?? (engine.model.gpu.isCpu ? 4 : 16));
  const owned: { destroy(): void }[] = [];
  const own = <O extends { destroy(): void }>(o: O): O => (owned.push(o), o);
  // the prefill and the first steps are recorded and submitted inside error scopes, read with the
  // first tokens; later replays rely on the device's uncaptured-error record, checked at each readback
  const close = errorScope(dev, `decode of a ${prompt.length}-token prompt`);
  let scoped: Promise<ApeError | undefined> | undefined;
  try {
    if (last.start > 0) {
      engine.enqueue(prompt.subarray(0, last.start), {
        groups: [req.group(last.start, 0)], temperature: T, scale: S, logits: { from: 0, count: 0 },
      });
    }
    const sampler = own(new Sampler(engine.model, req.sampling ?? {}, maxTokens, history));
    const prefill = own(engine.record(last.input, prompt.subarray(last.start))); // streamed: its first layers run meanwhile
    sampler.record(prefill.program, prefill.logits);
    // the decode step is recorded once the prefill is submitted (recording ~150 dispatches costs tens of
    // ms on the host, time the GPU spends on the prefill), still inside the error scopes
    let step: Forward | undefined;
    const stepForward = (): Forward => {
      if (step) return step;
      step = own(new Forward(engine.model, engine.pool, 1, { groups: [stepGroup], temperature: T, scale: S, logits: { from: 0, count: 1 } }, sampler.next));
      sampler.record(step.program, step.logits);
      return step;
    };
    let enqueued = 0; // tokens whose sampling is enqueued
    const enqueue = (upTo: number) => {
      for (; enqueued < upTo; enqueued++) {
        sampler.setStep(enqueued);
        if (enqueued === 0) {
          prefill.program.submitRest(); // (its ids are written)
        } else {
          stepGroup.writeAt = prompt.length + enqueued - 1; // the previous token's slot
          const st = stepForward();
          st.refreshState();
          st.program.submit();
        }
      }
    };
    enqueue(Math.min(maxTokens, Math.max(1, req.firstChunk ?? chunk)));
    if (maxTokens > 1) stepForward();
    scoped = close();
    let done = 0;
    while (done < maxTokens) {
      if (req.signal?.aborted) throw new ApeError("E_ABORTED", "generation aborted");
      const upTo = enqueued;
      const first = done === 0;
      const read = readBuffer(dev, sampler.tokens, (upTo - done) * 4, done * 4);
      // keep the GPU busy while we wait; but the next chunk goes in only after the first token is out:
      // on CPU adapters (lavapipe) a submit runs its work before it returns, which would hold the first
      // token back by a whole chunk of decode steps
      if (!first) enqueue(Math.min(maxTokens, upTo + chunk));
      const ids = Array.from(new Uint32Array(await (first ? withScope(scoped, read) : read)));
      const bad = ids.findIndex((id) => id >= engine.model.config.vocabSize); // the sampler's NONFINITE flag
      if (bad >= 0) throw new NonFiniteError(`the logits of generated token ${done + bad + 1} are NaN or infinite (broken weights or config): no token can be chosen`);
      const cut = ids.findIndex((id) => stop.has(id));
      const out = cut >= 0 ? ids.slice(0, cut + 1) : ids;
      done = upTo;
      if (out.length) yield out;
      if (cut >= 0) break;
      if (first) enqueue(Math.min(maxTokens, upTo + chunk));
    }
    // tokens actually kept in the block: prompt + generated (the last one's KV is never written)
  } finally {
    scoped ??= close(); // recording failed before the scopes were closed
    block.tokens = Math.min(block.tokens, block.capacity);
    for (const o of owned) o.destroy();
  }
}

/** Awaits a readback together with an error scope's outcome; the scope's error wins. */
async function withScope<T>(scoped: Promise<ApeError | undefined>, read: Promise<T>): Promise<T> {
  const [scope, data] = await Promise.allSettled([scoped, read]);
  if (scope.status === "fulfilled" && scope.value) throw scope.value;
  if (data.status === "rejected") throw data.reason;
  return data.value;
}
