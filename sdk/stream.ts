/**
 * Streaming: generated id chunks to text events. Ids are detokenized incrementally (multi-byte
 * characters are held until complete); an end-of-sequence id ends the answer (its id is reported, no
 * text), and so does a stop string (the stop and what follows are not returned).
 *
 * @example
 * ```ts
 * import { streamText } from "./stream.ts";
 * // const out = { text: "", ids: [] as number[], stopReason: "length" };
 * // for await (const ev of streamText(seq.decode({ stopIds }), tokenizer, { stopIds, stops: ["\n"] }, out)) ...
 * ```
 */
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";

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

/** Yields `{ type: "token" }` events; fills `out` with the whole text, ids and why it stopped. */
export async function* streamText(chunks: AsyncIterable<number[]>, tokenizer: Tokenizer, opts: StreamOptions, out: StreamResult): AsyncGenerator<{ type: "token"; text: string; ids: number[] }> {
  const stream = tokenizer.createStreamDecoder();
  const { stopIds, stops } = opts;
  const ids = out.ids;
  let first = true;
  outer: for await (const chunk of chunks) {
    if (first) (first = false, opts.onFirstChunk?.());
    let delta = "";
    const emitted: number[] = [];
    for (const id of chunk) {
      ids.push(id);
      emitted.push(id);
      if (stopIds.includes(id)) {
        out.stopReason = "eos";
        break;
      }
      delta += stream.push(id);
      const hit = stops.map((s) => (out.text + delta).indexOf(s)).filter((i) => i >= 0);
      if (hit.length > 0) {
        const cut = Math.min(...hit);
        delta = (out.text + delta).slice(out.text.length, cut);
        out.text += delta;
        out.stopReason = "stop";
        if (delta || emitted.length) yield { type: "token", text: delta, ids: emitted };
        break outer;
      }
    }
    out.text += delta;
    yield { type: "token", text: delta, ids: emitted };
    if (out.stopReason === "eos") break;
  }
  if (out.stopReason !== "stop") {
    const tail = stream.flush();
    if (tail) {
      out.text += tail;
      yield { type: "token", text: tail, ids: [] };
    }
  }
}
