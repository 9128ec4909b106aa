/**
 * `POST /v1/chat/completions` and `POST /v1/completions`, in OpenAI's request and response shapes,
 * plain (one JSON body) or streamed (server-sent events, `data: {chunk}` ... `data: [DONE]`).
 *
 * Prompt layout: the server's `Ape` builds the prompt with the model's chat template from its shared
 * prefix (system message, instruction), the request's contexts and the conversation: a chat request's
 * messages are rendered after the contexts (the first user message shares their turn), up to the
 * generation prompt; a first system message equal to the server's is the prefix's own, any other is a
 * turn of the conversation. The completions `prompt` is placed where that first user message goes. Extensions: `contexts` ([{id} | {text}]) and
 * `ape: {mode, temperature, scale}` (APE's T and S; OpenAI's `temperature` is the sampling one).
 *
 * @example
 * ```ts
 * import { openaiRoutes } from "./openai.ts";
 * // app.route("/v1", openaiRoutes(deps, "my-model"));
 * ```
 */
import { type Context, Hono } from "hono";
import { ApeError, type ChatTurn } from "../mod.ts";
import { badRequest, HttpError } from "./errors.ts";
import { type Deps, finishReason, type Generation, type Job, jobOf, startGeneration, usageOf } from "./generate.ts";
import { type ChatBody, chatBody, completionBody, messageText } from "./schemas.ts";
import { CHAT, type Shape, TEXT } from "./shapes.ts";
import { streamAnswer } from "./sse.ts";
import { jsonBody } from "./validate.ts";

/**
 * The conversation of a chat request, as the SDK takes it (`developer` is `system`): a first system
 * message equal to the server's `--system` is the shared prefix's already and is dropped; any other
 * system message is a turn of the conversation, rendered after the documents where the model's chat
 * template allows it (else the SDK refuses it: a 400).
 */
function chatTurns(deps: Deps, body: ChatBody): ChatTurn[] {
  const turns = body.messages.map((m) => ({ role: m.role === "developer" ? "system" as const : m.role, content: messageText(m) }));
  if (turns[0].role === "system" && turns[0].content === deps.ape.options.system) turns.shift();
  if (!turns.some((t) => t.role === "user")) throw badRequest("messages: no user message", "messages");
  return turns;
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
    const job = jobOf(deps, body, { messages: chatTurns(deps, body) }, "messages");
    return await answer(c, CHAT, job, body.stream === true, body.stream_options?.include_usage === true);
  });

  app.post("/completions", jsonBody(completionBody), async (c) => {
    const body = c.req.valid("json");
    const prompt = typeof body.prompt === "string" ? body.prompt : body.prompt[0];
    const job = jobOf(deps, body, { query: prompt }, "prompt");
    return await answer(c, TEXT, job, body.stream === true, body.stream_options?.include_usage === true);
  });

  return app;
}
