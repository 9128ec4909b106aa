/**
 * Errors of `ape serve` in OpenAI's shape: `{"error": {"message", "type", "code", "param"}}`.
 * `HttpError` carries a status (and headers, e.g. Retry-After); SDK errors map by their stable code:
 * invalid arguments 400, a request that cannot fit the GPU KV budget 413, anything else 500.
 *
 * @example
 * ```ts
 * import { HttpError, toHttpError } from "./errors.ts";
 * const e = toHttpError(new HttpError(404, "not_found", "no such context"));
 * console.log(e.status, JSON.stringify(e.body()));
 * ```
 */
import { ApeError } from "../mod.ts";

export type ErrorType = "invalid_request_error" | "authentication_error" | "not_found" | "rate_limit_exceeded" | "server_error";

export class HttpError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 503,
    readonly type: ErrorType,
    message: string,
    readonly extra: { code?: string; param?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }

  body(): { error: { message: string; type: ErrorType; code: string | null; param: string | null } } {
    return { error: { message: this.message, type: this.type, code: this.extra.code ?? null, param: this.extra.param ?? null } };
  }
}

export function badRequest(message: string, param?: string, code = "invalid_value"): HttpError {
  return new HttpError(400, "invalid_request_error", message, { param, code });
}

/** Any thrown value as an HttpError (SDK errors by code; unknown errors are 500s without internals). */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof ApeError) {
    if (e.code === "E_INVALID_ARGUMENT" || e.code === "E_TOKENIZER") return badRequest(e.message, undefined, e.code);
    if (e.code === "E_CAPACITY") return new HttpError(413, "invalid_request_error", e.message, { code: e.code });
    return new HttpError(500, "server_error", e.message, { code: e.code });
  }
  return new HttpError(500, "server_error", "internal error", { code: "E_INTERNAL" });
}
