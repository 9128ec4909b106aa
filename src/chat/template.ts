/**
 * Splits a model's chat template into APE's three parts instead of hard-coding one model's markers.
 * The template (Jinja, from tokenizer_config.json or GGUF metadata) is rendered once with sentinel
 * strings in the user turn; the rendered text is cut at the sentinels:
 *
 *   [BOS, system turn, opening of the user turn, instruction]  -> prefix   (special tokens allowed)
 *   each document (optionally wrapped)                          -> contexts (ordinary text only)
 *   question + close of the user turn + opening of assistant    -> query    (template part: special
 *                                                                   tokens allowed; question: ordinary)
 *
 * @example
 * ```ts
 * import { splitChatTemplate } from "./template.ts";
 * const parts = splitChatTemplate(
 *   "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n",
 *   { instruction: "Answer from the documents.\n\n" },
 * );
 * console.log(JSON.stringify(parts.prefix)); // "<|im_start|>user\nAnswer from the documents.\n\n"
 * ```
 */
import { Template } from "@huggingface/jinja";
import { InvalidArgumentError, ModelFormatError } from "../errors.ts";

export interface TemplateParts {
  /** Text before the documents: special tokens in it are real. */
  prefix: string;
  /** Text after the question (closes the user turn, opens the assistant's). */
  queryTail: string;
}

const CTX = "\u0000apekit:contexts\u0000";
const QUERY = "\u0000apekit:query\u0000";

export interface SplitOptions {
  /** System message; omitted lets the template use its default. */
  system?: string;
  /** Instruction text at the start of the user turn, before the documents (part of the prefix). */
  instruction?: string;
  bosToken?: string;
  eosToken?: string;
}

export function splitChatTemplate(template: string, opts: SplitOptions = {}): TemplateParts {
  let rendered: string;
  try {
    const messages = [
      ...(opts.system !== undefined ? [{ role: "system", content: opts.system }] : []),
      { role: "user", content: `${opts.instruction ?? ""}${CTX}${QUERY}` },
    ];
    rendered = new Template(template).render({
      messages,
      add_generation_prompt: true,
      bos_token: opts.bosToken ?? "",
      eos_token: opts.eosToken ?? "",
    });
  } catch (e) {
    throw new ModelFormatError(`chat template: cannot render (${(e as Error).message})`);
  }
  const c = rendered.indexOf(CTX), q = rendered.indexOf(QUERY);
  if (c < 0 || q !== c + CTX.length) {
    throw new ModelFormatError("chat template: the user message is not rendered verbatim, so it cannot be split into prefix / contexts / query");
  }
  return { prefix: rendered.slice(0, c), queryTail: rendered.slice(q + QUERY.length) };
}

/** One turn of a conversation. */
export interface ChatTurn {
  role: "system" | "user" | "assistant";
  content: string;
}

/** A piece of the text after the documents: the template's own text (special tokens real) or a message's content (ordinary text). */
export interface TailPiece {
  text: string;
  content: boolean;
}

const turnMark = (i: number) => `\u0000apekit:turn:${i}\u0000`;

/**
 * Splits a whole conversation around the documents: they open the first user turn (after the
 * instruction), as in splitChatTemplate; when `turns` starts with a user message its content follows
 * them in that same turn, else that turn holds only the documents. The later turns are rendered after
 * it, up to the generation prompt. Contents are rendered as markers and put back as `content` pieces,
 * so no message text ever reaches the template engine. A template that refuses the conversation
 * (roles that must alternate, a system message after the first turn) throws InvalidArgumentError.
 */
export function splitConversation(template: string, opts: SplitOptions, turns: ChatTurn[]): { prefix: string; tail: TailPiece[] } {
  const leadsWithUser = turns[0]?.role === "user";
  const messages = [
    ...(opts.system !== undefined ? [{ role: "system", content: opts.system }] : []),
    { role: "user", content: `${opts.instruction ?? ""}${CTX}${leadsWithUser ? turnMark(0) : ""}` },
    ...turns.map((t, i) => ({ role: t.role, content: turnMark(i) })).slice(leadsWithUser ? 1 : 0),
  ];
  let rendered: string;
  try {
    rendered = new Template(template).render({ messages, add_generation_prompt: true, bos_token: opts.bosToken ?? "", eos_token: opts.eosToken ?? "" });
  } catch (e) {
    throw new InvalidArgumentError(`this model's chat template refuses the conversation (${(e as Error).message})`);
  }
  const c = rendered.indexOf(CTX);
  if (c < 0) throw new ModelFormatError("chat template: the user message is not rendered verbatim, so it cannot be split into prefix / contexts / query");
  const tail: TailPiece[] = [];
  let at = c + CTX.length;
  for (const [i, t] of turns.entries()) {
    const m = turnMark(i), j = rendered.indexOf(m, at);
    if (j < 0 || rendered.indexOf(m, j + m.length) >= 0 || rendered.lastIndexOf(m, c) >= 0) {
      throw new InvalidArgumentError(`messages[${i}] (${t.role}): this model's chat template does not render it once, in order, after the documents`);
    }
    if (j > at) tail.push({ text: rendered.slice(at, j), content: false });
    tail.push({ text: t.content, content: true });
    at = j + m.length;
  }
  if (at < rendered.length) tail.push({ text: rendered.slice(at), content: false });
  return { prefix: rendered.slice(0, c), tail };
}
