/**
 * `POST /v1/chat/completions` and `POST /v1/completions`, in OpenAI's request and response shapes,
 * plain (one JSON body) or streamed (server-sent events, `data: {chunk}` ... `data: [DONE]`).
 *
 * Prompt layout: the server's `Ape` builds the prompt with the model's chat template from its shared
 * prefix (system message, instruction), the request's contexts and the question. A chat request is one
 * user turn (the question), optionally after a system message equal to the server's; the completions
 * `prompt` is placed where that user turn goes. Extensions: `contexts` ([{id} | {text}]) and
 * `ape: {mode, temperature, scale}` (APE's T and S; OpenAI's `temperature` is the sampling one).
 *
 * @example
 * ```ts
 * import { openaiRoutes } from "./openai.ts";
 * // app.route("/v1", openaiRoutes(deps, "my-model"));
 * ```
 */
import { type Context, Hono } from "hono";
import { ApeError } from "../mod.ts";
import { badRequest, HttpError } from "./errors.ts";
import { type Deps, finishReason, type Generation, type Job, jobOf, startGeneration, usageOf } from "./generate.ts";
import { type ChatBody, chatBody, completionBody, messageText } from "./schemas.ts";
import { CHAT, type Shape, TEXT } from "./shapes.ts";
import { streamAnswer } from "./sse.ts";
import { jsonBody } from "./validate.ts";

/** The question of a chat request: its one user turn, after at most the server's own system message. */
function chatQuery(deps: Deps, body: ChatBody): string {
  const system = deps.ape.options.system;
  let query: string | undefined;
  for (const [i, m] of body.messages.entries()) {
    if (m.role === "system" || m.role === "developer") {
      if (query !== undefined || i > 0) throw badRequest(`messages[${i}]: a system message must come first`, `messages[${i}]`);
      if (messageText(m) !== system) {
        throw badRequest(
          system === undefined
            ? `messages[${i}]: this server uses its model's default system prompt (contexts are cached under it): omit the system message, or start the server with --system`
            : `messages[${i}]: the system message differs from this server's (contexts are cached under one system prompt): omit it or send the server's`,
          `messages[${i}].content`, "system_mismatch",
        );
      }
    } else if (m.role === "user") {
      if (query !== undefined) throw badRequest(`messages[${i}]: one user turn per request (send earlier turns' content as contexts)`, `messages[${i}]`, "multi_turn_unsupported");
      query = messageText(m);
    } else {
      throw badRequest(`messages[${i}]: assistant turns are not supported: one user turn per request`, `messages[${i}].role`, "multi_turn_unsupported");
    }
  }
  if (query === undefined) throw badRequest("messages: no user message", "messages");
  return query;
}

/** Starts the generation; a KV pool full of other running requests is 503 + Retry-After (transient). */
async function start(deps: Deps, job: Job, signal: AbortSignal): Promise<Generation> {
  try {
    return await startGeneration(deps, job, signal);
  } catch (e) {
    if (signal.aborted) deps.metrics.disconnects++; // gone while queued or before its first token
    if (e instanceof ApeError && e.code === "E_CAPACITY" && deps.queue.active > 0) {
      const retry = deps.queue.retryAfterSeconds();
      throw new HttpError(503, "server_error", `the GPU KV pool is in use by ${deps.queue.active} running requests: retry after ${retry} s (${e.message})`, {
        code: "kv_pool_busy", headers: { "Retry-After": String(retry) },
      });
    }
    throw e; // a request too big for the pool even alone stays 413 (errors.ts)
  }
}

export function openaiRoutes(deps: Deps, modelName: string): Hono {
  const app = new Hono();

  const answer = async (c: Context, shape: Shape, job: Job, stream: boolean, includeUsage: boolean) => {
    const signal = c.req.raw.signal;
    const gen = await start(deps, job, signal);
    const head = { id: `${shape.idPrefix}-${crypto.randomUUID().replaceAll("-", "")}`, created: Math.floor(Date.now() / 1000), model: modelName };
    if (stream) return streamAnswer(c, deps, gen, shape, head, includeUsage);
    try {
      for await (const ev of gen.events) {
        if (ev.type !== "done") continue;
        deps.metrics.tokens(ev.stats.promptTokens, ev.stats.generatedTokens, ev.stats.contextTokens);
        return c.json({ ...head, object: shape.object, choices: [shape.answer(ev.text, finishReason(ev.stats))], usage: usageOf(ev.stats) });
      }
      throw new Error("generation ended without a result");
    } catch (e) {
      if (signal.aborted) deps.metrics.disconnects++;
      throw e;
    } finally {
      await gen.close();
    }
  };

  app.post("/chat/completions", jsonBody(chatBody), async (c) => {
    const body = c.req.valid("json");
    const job = jobOf(deps, body, chatQuery(deps, body), "messages");
    return await answer(c, CHAT, job, body.stream === true, body.stream_options?.include_usage === true);
  });

  app.post("/completions", jsonBody(completionBody), async (c) => {
    const body = c.req.valid("json");
    const prompt = typeof body.prompt === "string" ? body.prompt : body.prompt[0];
    const job = jobOf(deps, body, prompt, "prompt");
    return await answer(c, TEXT, job, body.stream === true, body.stream_options?.include_usage === true);
  });

  return app;
}
