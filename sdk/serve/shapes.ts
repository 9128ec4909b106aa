/**
 * OpenAI's response objects for chat and (text) completions: the whole answer, and the chunks of a
 * stream (chat opens with the assistant role; each token's text; the finish reason; then usage).
 *
 * @example
 * ```ts
 * import { CHAT } from "./shapes.ts";
 * console.log(JSON.stringify(CHAT.delta("Montpelier")));
 * // {"index":0,"delta":{"content":"Montpelier"},"logprobs":null,"finish_reason":null}
 * ```
 */
import type { FinishReason } from "./generate.ts";

export interface Shape {
  /** Prefix of response ids. */
  idPrefix: string;
  /** `object` of the whole answer and of a stream's chunks. */
  object: string;
  chunkObject: string;
  /** The one choice of a whole answer. */
  answer(text: string, finish: FinishReason): object;
  /** The first chunk's choice, where the API has one. */
  start?(): object;
  delta(text: string): object;
  end(finish: FinishReason): object;
}

export const CHAT: Shape = {
  idPrefix: "chatcmpl", object: "chat.completion", chunkObject: "chat.completion.chunk",
  answer: (text, finish) => ({ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: finish }),
  start: () => ({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }),
  delta: (text) => ({ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }),
  end: (finish) => ({ index: 0, delta: {}, logprobs: null, finish_reason: finish }),
};

export const TEXT: Shape = {
  idPrefix: "cmpl", object: "text_completion", chunkObject: "text_completion",
  answer: (text, finish) => ({ index: 0, text, logprobs: null, finish_reason: finish }),
  delta: (text) => ({ index: 0, text, logprobs: null, finish_reason: null }),
  end: (finish) => ({ index: 0, text: "", logprobs: null, finish_reason: finish }),
};
