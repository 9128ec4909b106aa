/**
 * A streamed answer as OpenAI's server-sent events: `data: {chunk}` per token, the finish reason,
 * usage when asked (`stream_options.include_usage`), then `data: [DONE]`. When the client goes away
 * the stream aborts, the generation is closed (freeing its KV) and counted as a disconnect; an error
 * after the headers were sent becomes one `data: {"error": ...}` event.
 *
 * @example
 * ```ts
 * import { streamAnswer } from "./sse.ts";
 * // return streamAnswer(c, deps, gen, CHAT, { id, created, model }, includeUsage);
 * ```
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { toHttpError } from "./errors.ts";
import { type Deps, finishReason, type Generation, usageOf } from "./generate.ts";
import type { Shape } from "./shapes.ts";

export function streamAnswer(
  c: Context, deps: Deps, gen: Generation, shape: Shape, head: { id: string; created: number; model: string }, includeUsage: boolean,
): Response {
  const signal = c.req.raw.signal;
  return streamSSE(c, async (s) => {
    let complete = false;
    s.onAbort(() => void gen.close());
    const send = (choices: object[], extra: object = {}) => s.writeSSE({ data: JSON.stringify({ ...head, object: shape.chunkObject, choices, ...extra }) });
    try {
      if (shape.start) await send([shape.start()]);
      for await (const ev of gen.events) {
        if (s.aborted) break;
        if (ev.type === "token") {
          if (ev.text) await send([shape.delta(ev.text)]);
          continue;
        }
        deps.metrics.tokens(ev.stats.promptTokens, ev.stats.generatedTokens, ev.stats.contextTokens);
        await send([shape.end(finishReason(ev.stats))]);
        if (includeUsage) await send([], { usage: usageOf(ev.stats) });
        await s.writeSSE({ data: "[DONE]" });
        complete = true;
      }
    } catch (e) {
      if (!s.aborted && !signal.aborted) await s.writeSSE({ data: JSON.stringify(toHttpError(e).body()) }).catch(() => {});
    } finally {
      if (!complete && (s.aborted || signal.aborted)) deps.metrics.disconnects++;
      await gen.close();
    }
  });
}
