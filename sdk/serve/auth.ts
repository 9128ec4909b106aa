/**
 * Who may call `ape serve`: with a token, every request needs `Authorization: Bearer <token>`,
 * compared in constant time (both sides hashed to 32 bytes, then `timingSafeEqual`, so neither the
 * length nor a common prefix leaks through timing); without a token the server binds to a loopback
 * address only, and refuses to start on any other.
 *
 * @example
 * ```ts
 * import { checkBinding, tokenMatches } from "./auth.ts";
 * checkBinding("127.0.0.1", undefined);               // fine: loopback without a token
 * console.log(tokenMatches("Bearer s3cret", "s3cret")); // true
 * ```
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { InvalidArgumentError } from "../mod.ts";
import { HttpError } from "./errors.ts";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Refuses to serve a non-loopback address without a token. */
export function checkBinding(host: string, token: string | undefined): void {
  if (token !== undefined && token.length < 8) throw new InvalidArgumentError("--token must be at least 8 characters");
  if (token === undefined && !isLoopback(host)) {
    throw new InvalidArgumentError(`refusing to listen on ${host} without --token (or APEKIT_TOKEN): without a token only a loopback address is served`);
  }
}

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** Whether an Authorization header carries the bearer token (constant time in the header's content). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? "");
  const given = digest(m ? m[1] : "");
  const ok = timingSafeEqual(given, digest(token));
  return ok && m !== null;
}

/** Hono middleware: 401 (OpenAI's error shape, WWW-Authenticate) unless the request carries the token. */
export function bearerAuth(token: string): MiddlewareHandler {
  return async (c, next) => {
    if (!tokenMatches(c.req.header("authorization"), token)) {
      throw new HttpError(401, "authentication_error", "missing or invalid bearer token", {
        code: "invalid_api_key", headers: { "WWW-Authenticate": 'Bearer realm="ape serve"' },
      });
    }
    await next();
  };
}
