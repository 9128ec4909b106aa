/**
 * Request bodies of `ape serve`, as zod schemas (validated by Hono's validator, see validate.ts).
 * OpenAI's fields that the server honours are checked here; other OpenAI fields are accepted and
 * ignored (clients send many); a field the server cannot honour (`n` > 1, tools) is refused.
 * Numeric limits that depend on the server's configuration (max_tokens, contexts per request) are
 * checked after parsing, in limits.ts.
 *
 * @example
 * ```ts
 * import { chatBody } from "./schemas.ts";
 * const r = chatBody.safeParse({ model: "m", messages: [{ role: "user", content: "hi" }] });
 * console.log(r.success);
 * ```
 */
import * as z from "zod";

/** Context ids are content hashes: 40 lowercase hex digits (sha-256 prefix); anything else is refused. */
export const CONTEXT_ID = /^[0-9a-f]{40}$/;
export const contextId = z.string().regex(CONTEXT_ID, "a context id is 40 lowercase hex digits (a content hash)");

/** One entry of `contexts`: a cached id, or a text (cached on the way). */
export const contextRef = z.union([
  z.object({ id: contextId }).strict(),
  z.object({ text: z.string().min(1, "a context text is empty") }).strict(),
], { error: "a context is {id: <40 hex digits>} or {text: <non-empty string>}" });

/** APE's own knobs: layout mode and the attention temperature / scale (T, S). */
export const apeParams = z.object({
  mode: z.enum(["sequential", "parallel", "ape"]).optional(),
  temperature: z.number().positive().max(10).optional(),
  scale: z.number().positive().max(10).optional(),
}).strict();

const stop = z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).optional();

/** Fields shared by chat and completions requests. */
const common = {
  model: z.string().max(256).optional(),
  max_tokens: z.number().int().positive().optional(),
  max_completion_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  stop,
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().nullish(),
  n: z.literal(1, { message: "n must be 1: this server returns one choice" }).optional(),
  contexts: z.array(contextRef).optional(),
  ape: apeParams.optional(),
};

const textPart = z.object({ type: z.literal("text"), text: z.string() }).passthrough();
const content = z.union([z.string(), z.array(textPart).min(1)], { error: "content must be a string or an array of text parts ({type: \"text\", text})" });

export const message = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content,
  name: z.string().optional(),
}).passthrough();

export const chatBody = z.object({
  ...common,
  messages: z.array(message).min(1, "messages must not be empty"),
  tools: z.array(z.unknown()).max(0, "tools are not supported").optional(),
}).passthrough();

export const completionBody = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).length(1, "prompt: one prompt per request")]),
  echo: z.literal(false).optional(),
  suffix: z.null().optional(),
}).passthrough();

export const contextsBody = z.object({
  texts: z.array(z.string().min(1, "a context text is empty")).min(1, "texts must not be empty"),
}).strict();

export type ChatBody = z.infer<typeof chatBody>;
export type CompletionBody = z.infer<typeof completionBody>;
export type ContextRef = z.infer<typeof contextRef>;
export type ApeParams = z.infer<typeof apeParams>;

/** A message's text: a string, or its text parts joined. */
export function messageText(m: z.infer<typeof message>): string {
  return typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join("");
}
