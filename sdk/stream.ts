/**
 * Streaming: generated id chunks to text events. Ids are detokenized incrementally (multi-byte
 * characters are held until complete); an end-of-sequence id ends the answer (its id is reported, no
 * text), and so does a stop string (the stop and what follows are not returned).
 *
 * @example
 * ```ts
 * import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
 * import { type StreamResult, streamText } from "./stream.ts";
 * const tokenizer = Tokenizer.fromFile("fixtures/models/qwen2"); // the tiny fixture model's tokenizer
 * // generated ids, as a sequence's decode() yields them: in chunks (here of two)
 * const ids = Array.from(tokenizer.encode("Montpelier.\nAnd more.", { addSpecialTokens: false }));
 * async function* chunks() {
 *   for (let i = 0; i < ids.length; i += 2) yield ids.slice(i, i + 2);
 * }
 * const out: StreamResult = { text: "", ids: [], stopReason: "length" };
 * const events: string[] = [];
 * for await (const ev of streamText(chunks(), tokenizer, { stopIds: [tokenizer.eosId!], stops: ["\n"] }, out)) events.push(ev.text);
 * console.log(JSON.stringify(out.text), out.stopReason, events.join("") === out.text); // "Montpelier." stop true
 * tokenizer.free();
 * ```
 */
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { InvalidArgumentError } from "../src/errors.ts";

export interface StreamResult {
  text: string;
  ids: number[];
  stopReason: "eos" | "stop" | "length";
}

export interface StreamOptions {
  /** End-of-sequence ids. */
  stopIds: number[];
  /** Stop strings. */
  stops: string[];
  /** Called when the first chunk arrives. */
  onFirstChunk?: () => void;
}

/**
 * Yields `{ type: "token" }` events; fills `out` with the whole text, ids and why it stopped. Text that
 * could be the start of a stop string is held back until the stop is ruled out (then it is yielded)
 * or completed (then it is dropped with everything after it), so a stop split across chunks, tokens
 * or the bytes of one character never leaves a part of itself in the answer.
 */
export async function* streamText(chunks: AsyncIterable<number[]>, tokenizer: Tokenizer, opts: StreamOptions, out: StreamResult): AsyncGenerator<{ type: "token"; text: string; ids: number[] }> {
  const { stopIds, stops } = opts;
  for (const s of stops) if (typeof s !== "string" || s.length === 0) throw new InvalidArgumentError(`stop strings must be non-empty strings (got ${JSON.stringify(s)})`);
  const stream = tokenizer.createStreamDecoder();
  let pending = ""; // decoded, not yet yielded: possibly the start of a stop string
  let first = true;
  /** Moves what is decided out of `pending`; true when a stop string completed. */
  const settle = (final: boolean): { text: string; stopped: boolean } => {
    const at = Math.min(...stops.map((s) => pending.indexOf(s)).filter((i) => i >= 0));
    if (Number.isFinite(at)) {
      const text = pending.slice(0, at);
      pending = "";
      return { text, stopped: true };
    }
    const hold = final ? 0 : heldBack(pending, stops);
    const text = pending.slice(0, pending.length - hold);
    pending = pending.slice(pending.length - hold);
    return { text, stopped: false };
  };
  try {
    for await (const chunk of chunks) {
      if (first) (first = false, opts.onFirstChunk?.());
      const emitted: number[] = [];
      let eos = false;
      for (const id of chunk) {
        out.ids.push(id);
        emitted.push(id);
        if (stopIds.includes(id)) {
          eos = true;
          break;
        }
        pending += stream.push(id);
        if (stops.length && stops.some((s) => pending.includes(s))) break;
      }
      if (!eos && !stops.some((s) => pending.includes(s))) {
        const { text } = settle(false);
        out.text += text;
        yield { type: "token", text, ids: emitted };
        continue;
      }
      pending += eos ? stream.flush() : "";
      const { text, stopped } = settle(true);
      out.text += text;
      out.stopReason = stopped ? "stop" : "eos";
      if (text || emitted.length) yield { type: "token", text, ids: emitted };
      return;
    }
    pending += stream.flush();
    const { text, stopped } = settle(true);
    if (stopped) out.stopReason = "stop";
    out.text += text;
    if (text) yield { type: "token", text, ids: [] };
  } finally {
    stream.free();
  }
}

/** The length of the longest suffix of `text` that is a proper prefix of a stop string. */
function heldBack(text: string, stops: string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(text.length, s.length - 1); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
