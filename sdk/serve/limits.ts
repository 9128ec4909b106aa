/**
 * Per-request limits of `ape serve` (all configurable; the defaults suit a small model on one GPU).
 *
 * @example
 * ```ts
 * import { resolveLimits } from "./limits.ts";
 * console.log(resolveLimits({ maxTokens: 64 }).maxContexts); // 16
 * ```
 */
export interface Limits {
  /** Request body bytes (default 1 MiB); larger bodies are answered 413 before they are read whole. */
  bodyBytes: number;
  /** Contexts per request and texts per POST /v1/contexts (default 16). */
  maxContexts: number;
  /** Tokens per context (default 2048). */
  maxContextTokens: number;
  /** Tokens of the question / prompt (default 2048). */
  maxQueryTokens: number;
  /** The largest max_tokens a request may ask for (default 1024). */
  maxTokens: number;
  /** max_tokens when a request names none (default 256). */
  defaultMaxTokens: number;
}

export const DEFAULT_LIMITS: Limits = {
  bodyBytes: 1 << 20, maxContexts: 16, maxContextTokens: 2048, maxQueryTokens: 2048, maxTokens: 1024, defaultMaxTokens: 256,
};

export function resolveLimits(l: Partial<Limits> = {}): Limits {
  const out = { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(l).filter(([, v]) => v !== undefined)) } as Limits;
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`limit ${k} must be a positive integer (got ${v})`);
  }
  out.defaultMaxTokens = Math.min(out.defaultMaxTokens, out.maxTokens);
  return out;
}
