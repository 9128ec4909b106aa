/**
 * Request bodies through Hono's validator with a zod schema: a body that is not JSON (415 for another Content-Type), not an object,
 * or not of the schema's shape is answered 400 in OpenAI's error shape, naming the first bad field
 * (`messages.0.role: ...`), before any handler runs.
 *
 * @example
 * ```ts
 * import { jsonBody } from "./validate.ts";
 * import { contextsBody } from "./schemas.ts";
 * // app.post("/v1/contexts", jsonBody(contextsBody), (c) => c.json(c.req.valid("json")));
 * ```
 */
import { zValidator } from "@hono/zod-validator";
import type * as z from "zod";
import { badRequest, HttpError } from "./errors.ts";

export function jsonBody<T extends z.ZodType>(schema: T) {
  return zValidator("json", schema, (result, c) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (!/^application\/([\w.-]+\+)?json$/.test(type)) {
      throw new HttpError(415, "invalid_request_error", `Content-Type must be application/json (got '${type.slice(0, 64)}')`, { code: "unsupported_media_type" });
    }
    if (result.success) return;
    const issues = result.error.issues;
    const where = (p: PropertyKey[]) => (p.length ? p.map(String).join(".") : "body");
    const first = issues[0];
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
    throw badRequest(`${where(first.path)}: ${first.message}${more}`, first.path.length ? where(first.path) : undefined);
  });
}
