/**
 * One generation of `ape serve`, shared by chat and completions: the request's fields turned into an
 * `Ape.generate` call (query, contexts, APE mode/T/S, sampling, stop, max_tokens), run inside a queue
 * slot, with the first event awaited before any byte is sent (so errors keep their HTTP status) and
 * the SDK generator always closed (its `finally` frees the request's KV blocks), also when the
 * client goes away.
 *
 * @example
 * ```ts
 * import { startGeneration } from "./generate.ts";
 * // const run = await startGeneration(deps, job, c.req.raw.signal);
 * // for await (const ev of run.events) ...; run.close();
 * ```
 */
import type { ChatTurn, GenerateEvent, GenerateRequest, GenerateStats, SamplingOptions } from "../mod.ts";
import type { ContextRegistry } from "./contexts.ts";
import { badRequest } from "./errors.ts";
import type { Limits } from "./limits.ts";
import type { Metrics } from "./metrics.ts";
import type { AdmissionQueue } from "./queue.ts";
import type { ApeParams, ContextRef } from "./schemas.ts";
import type { Ape } from "../mod.ts";

export interface Deps {
  ape: Ape;
  contexts: ContextRegistry;
  queue: AdmissionQueue;
  metrics: Metrics;
  limits: Limits;
}

/** What a chat or completions body asks for, checked against the limits. */
export interface Job {
  /** The question (completions), or the conversation (chat). */
  query?: string;
  messages?: ChatTurn[];
  contexts: ContextRef[];
  ape?: ApeParams;
  maxTokens: number;
  sampling?: SamplingOptions;
  stop?: string[];
}

interface Fields {
  max_tokens?: number;
  max_completion_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  contexts?: ContextRef[];
  ape?: ApeParams;
}

/** The job of a parsed body whose question is `query` (or whose conversation is `messages`: their contents count against maxQueryTokens together). */
export function jobOf(deps: Deps, body: Fields, prompt: { query: string } | { messages: ChatTurn[] }, queryParam: string): Job {
  const query = "query" in prompt ? prompt.query : prompt.messages.map((m) => m.content).join("\n");
  const { limits } = deps;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? limits.defaultMaxTokens;
  if (maxTokens > limits.maxTokens) throw badRequest(`max_tokens ${maxTokens} is over this server's limit of ${limits.maxTokens}`, "max_tokens");
  if (query.length > limits.maxQueryTokens * 64) throw badRequest(`${queryParam}: longer than ${limits.maxQueryTokens} tokens`, queryParam, "prompt_too_long");
  const q = deps.ape.model.tokenizer.encode(query, { addSpecialTokens: false, allowSpecial: false }).length;
  if (q > limits.maxQueryTokens) throw badRequest(`${queryParam}: ${q} tokens, more than this server's limit of ${limits.maxQueryTokens}`, queryParam, "prompt_too_long");
  const contexts = body.contexts ?? [];
  deps.contexts.checkCount(contexts.length, "contexts");
  // OpenAI's temperature is the sampling temperature (absent or 0: greedy); APE's T is ape.temperature
  const sampling = body.temperature ? { temperature: body.temperature, topP: body.top_p, seed: body.seed } : undefined;
  const stop = body.stop === undefined ? undefined : typeof body.stop === "string" ? [body.stop] : body.stop;
  return { ...prompt, contexts, ape: body.ape, maxTokens, sampling, stop };
}

export interface Generation {
  /** The first event (already produced), then the rest. */
  events: AsyncGenerator<GenerateEvent>;
  /** Arrival of the request (performance.now()). */
  t0: number;
  /** Ends the generation (if still running) and frees its slot; idempotent. */
  close(): Promise<void>;
}

/**
 * Waits for a slot (429 when the queue is full), resolves the contexts and runs the generation to its
 * first event. On any failure nothing is left running or pinned.
 */
export async function startGeneration(deps: Deps, job: Job, signal: AbortSignal): Promise<Generation> {
  const t0 = performance.now();
  const slot = await deps.queue.acquire(signal);
  let it: AsyncGenerator<GenerateEvent> | undefined;
  const close = async () => {
    try {
      await it?.return(undefined);
    } finally {
      slot.release();
    }
  };
  try {
    const contexts = await deps.contexts.resolve(job.contexts);
    const req: GenerateRequest = {
      query: job.query, messages: job.messages, contexts, mode: job.ape?.mode, temperature: job.ape?.temperature, scale: job.ape?.scale,
      maxTokens: job.maxTokens, sampling: job.sampling, stop: job.stop, signal,
    };
    it = deps.ape.generate(req);
    const first = await it.next();
    if (!first.done) deps.metrics.ttft((performance.now() - t0) / 1000);
    const gen = it;
    async function* events(): AsyncGenerator<GenerateEvent> {
      if (first.done) return;
      yield first.value;
      yield* gen;
    }
    return { events: events(), t0, close };
  } catch (e) {
    await close();
    throw e;
  }
}

export type FinishReason = "stop" | "length";

/** OpenAI's finish_reason: "length" when max_tokens (or the model's position limit) cut the answer. */
export function finishReason(stats: GenerateStats): FinishReason {
  return stats.stopReason === "length" || stats.stopReason === "limit" ? "length" : "stop";
}

/** OpenAI's usage, with the prompt's cached context tokens and APE's timings. */
export function usageOf(stats: GenerateStats) {
  const prompt = stats.mode === "sequential" ? stats.promptTokens : stats.promptTokens + stats.contextTokens;
  const cached = stats.mode === "sequential" ? 0 : stats.cachedTokens;
  return {
    prompt_tokens: prompt,
    completion_tokens: stats.generatedTokens,
    total_tokens: prompt + stats.generatedTokens,
    prompt_tokens_details: { cached_tokens: cached },
    ape: {
      mode: stats.mode, query_tokens: stats.mode === "sequential" ? undefined : stats.promptTokens, context_tokens: stats.contextTokens,
      cache_hits: stats.cacheHits, cache_misses: stats.cacheMisses,
      time_to_first_token_ms: stats.timeToFirstTokenMs, encode_ms: stats.encodeMs, load_ms: stats.loadMs,
      prefill_ms: stats.prefillMs, decode_ms: stats.decodeMs, total_ms: stats.totalMs,
    },
  };
}
