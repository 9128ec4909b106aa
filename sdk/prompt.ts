/**
 * Prompt layout: the token ids of the shared prefix, of each document and of the query, for every
 * caller (`Ape`, `ape logits`). One policy: BOS starts the prefix only where the model asks for it
 * (`addBos`) and no chat template supplies it; user text (system, instruction, documents, query) is always
 * plain text, so special-token markers in it stay ordinary characters; only the template's own
 * scaffolding is encoded with special tokens.
 *
 * @example
 * ```ts
 * import { loadModel } from "./load.ts";
 * import { promptLayout } from "./prompt.ts";
 * const model = await loadModel("fixtures/models/qwen2"); // a tiny fixture model with a ChatML template
 * const layout = promptLayout(model, { prefix: "Answer from the documents.\n\n" });
 * const doc = layout.documentIds("Montpelier is the capital of Vermont.");
 * const query = layout.queryIds("Capital?");
 * console.log(JSON.stringify(model.tokenizer.decode(layout.prefixIds))); // "<|im_start|>user\nAnswer from the documents.\n\n"
 * console.log(JSON.stringify(model.tokenizer.decode(query))); // "Question: Capital?<|im_end|>\n<|im_start|>assistant\n"
 * console.log(layout.prefixIds.length, doc.length, query.length); // 15 23 18
 * model.destroy();
 * ```
 */
import { type ChatTurn, splitChatTemplate, splitConversation } from "../src/chat/template.ts";
import { InvalidArgumentError, ModelFormatError } from "../src/errors.ts";
import type { ApeModel } from "./load.ts";

export interface PromptLayout {
  /** Ids before the documents: BOS / template head / system / instruction. */
  prefixIds: Uint32Array;
  /** Ids of one document, wrapped by the document template. */
  documentIds: (text: string) => Uint32Array;
  /** Ids after the documents: the wrapped question and the template's tail up to the answer. */
  queryIds: (question: string) => Uint32Array;
  /**
   * Ids after the documents for a whole conversation, rendered by the chat template up to the
   * generation prompt: a leading user message follows the documents in their turn (wrapped like a
   * question, so one user turn gives `queryIds`' ids); system and assistant turns, and later user
   * turns, are rendered in order after it. Raw layouts take one user turn only.
   */
  conversationIds: (turns: ChatTurn[]) => Uint32Array;
}

export interface LayoutOptions {
  prefix?: string;
  system?: string;
  raw?: boolean;
  documentTemplate?: string;
  queryTemplate?: string;
}

/** Concatenates id arrays. */
export function concatIds(...parts: ArrayLike<number>[]): Uint32Array {
  const out = new Uint32Array(parts.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of parts) (out.set(x, o), o += x.length);
  return out;
}

/** `text` as ordinary text: no BOS/EOS added, special-token markers not recognised. */
export function plainIds(model: Pick<ApeModel, "tokenizer">, text: string): Uint32Array {
  return model.tokenizer.encode(text, { addSpecialTokens: false, allowSpecial: false });
}

/** The model's BOS where prompts start with one (`addBos`) and it has one, else nothing. */
export function bosIds(model: Pick<ApeModel, "tokenizer" | "addBos">): Uint32Array {
  const b = model.tokenizer.bosId;
  return b !== undefined && model.addBos ? Uint32Array.of(b) : new Uint32Array(0);
}

/** Raw layout (no chat template): BOS (per the model) + instruction, documents and query verbatim. */
export function rawLayout(model: Pick<ApeModel, "tokenizer" | "addBos">, opts: LayoutOptions = {}): PromptLayout {
  const doc = documentTemplate(opts);
  const query = queryTemplate(opts, "{query}");
  const queryIds = (q: string) => plainIds(model, query(q));
  return {
    prefixIds: concatIds(bosIds(model), plainIds(model, opts.prefix ?? "")),
    documentIds: (t) => plainIds(model, doc(t)),
    queryIds,
    conversationIds: (turns) => {
      checkTurns(turns);
      if (turns.length !== 1 || turns[0].role !== "user") throw new InvalidArgumentError("without a chat template (a raw layout) a conversation is one user message");
      return queryIds(turns[0].content);
    },
  };
}

/** The layout `Ape` uses: the chat template's, or the raw one (`raw`, or a model without a template). */
export function promptLayout(model: ApeModel, opts: LayoutOptions = {}): PromptLayout {
  if (opts.raw || !model.chatTemplate) return rawLayout(model, opts);
  const doc = documentTemplate(opts);
  const query = queryTemplate(opts, "Question: {query}");
  const special = (s: string) => model.tokenizer.encode(s, { addSpecialTokens: false, allowSpecial: true });
  // the system text and the instruction are user text: the template is rendered around a marker in
  // the system's place and the instruction is split off its end, so special-token markers in either
  // stay ordinary text; only the template's own text is encoded with special tokens
  const system = opts.system;
  const template = model.chatTemplate;
  const splitOpts = { system: system === undefined ? undefined : SYSTEM_SLOT, instruction: opts.prefix, bosToken: model.bosToken, eosToken: model.eosToken };
  const split = splitChatTemplate(template, splitOpts);
  const instr = opts.prefix ?? "";
  const head = split.prefix.slice(0, split.prefix.length - instr.length);
  let headIds: Uint32Array;
  if (system === undefined) headIds = special(head);
  else {
    const at = head.indexOf(SYSTEM_SLOT);
    if (at < 0 || head.indexOf(SYSTEM_SLOT, at + 1) >= 0 || split.queryTail.includes(SYSTEM_SLOT)) {
      throw new ModelFormatError("chat template: the system message is not rendered verbatim once before the user message");
    }
    headIds = concatIds(special(head.slice(0, at)), plainIds(model, system), special(head.slice(at + SYSTEM_SLOT.length)));
  }
  return {
    prefixIds: concatIds(headIds, plainIds(model, instr)),
    documentIds: (t) => plainIds(model, doc(t)),
    queryIds: (q) => concatIds(plainIds(model, query(q)), special(split.queryTail)),
    conversationIds: (turns) => {
      checkTurns(turns);
      const wrapped = turns[0].role === "user" ? [{ role: "user" as const, content: query(turns[0].content) }, ...turns.slice(1)] : turns;
      const conv = splitConversation(template, splitOpts, wrapped);
      // the documents are cached under one prefix: a conversation may not change the text before them
      if (conv.prefix !== split.prefix) throw new InvalidArgumentError("this model's chat template renders the text before the documents differently for this conversation (the shared prefix cannot change per request)");
      if (conv.tail.some((p) => !p.content && p.text.includes(SYSTEM_SLOT))) throw new ModelFormatError("chat template: the system message is rendered again after the user message");
      return concatIds(...conv.tail.map((p) => (p.content ? plainIds(model, p.text) : special(p.text))));
    },
  };
}

const ROLES = new Set(["system", "user", "assistant"]);

function checkTurns(turns: ChatTurn[]): void {
  if (!Array.isArray(turns) || turns.length === 0) throw new InvalidArgumentError("messages must be a non-empty array");
  for (const [i, t] of turns.entries()) {
    if (!ROLES.has(t?.role)) throw new InvalidArgumentError(`messages[${i}].role must be system, user or assistant`);
    if (typeof t.content !== "string") throw new InvalidArgumentError(`messages[${i}].content must be a string`);
  }
  if (!turns.some((t) => t.role === "user")) throw new InvalidArgumentError("messages: no user message");
}

/** Stands for the system text while the template renders (no template or text contains it). */
const SYSTEM_SLOT = "\u{F0000}apekit-system\u{F0000}";

function documentTemplate(opts: LayoutOptions): (text: string) => string {
  const t = opts.documentTemplate ?? "{text}\n\n";
  if (!t.includes("{text}")) throw new InvalidArgumentError("documentTemplate must contain {text}");
  return (text) => t.replace("{text}", () => text);
}

function queryTemplate(opts: LayoutOptions, fallback: string): (query: string) => string {
  const t = opts.queryTemplate ?? (opts.raw ? "{query}" : fallback);
  if (!t.includes("{query}")) throw new InvalidArgumentError("queryTemplate must contain {query}");
  return (q) => t.replace("{query}", () => q);
}
