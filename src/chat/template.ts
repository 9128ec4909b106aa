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
import { ModelFormatError } from "../errors.ts";

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
