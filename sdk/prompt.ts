/**
 * Prompt layout: the token ids of the shared prefix, of each document and of the query, for every
 * caller (`Ape`, `ape logits`). One policy: BOS starts the prefix only where the model asks for it
 * (`addBos`) and no chat template supplies it; user text (system, instruction, documents, query) is always
 * plain text, so special-token markers in it stay ordinary characters; only the template's own
 * scaffolding is encoded with special tokens.
 *
 * @example
 * ```ts
 * import { promptLayout } from "./prompt.ts";
 * // const layout = promptLayout(model, { prefix: "Answer from the documents.\n\n" });
 * // const ids = [layout.prefixIds, layout.documentIds("Montpelier is ..."), layout.queryIds("Capital?")];
 * ```
 */
import { splitChatTemplate } from "../src/chat/template.ts";
import { InvalidArgumentError, ModelFormatError } from "../src/errors.ts";
import type { ApeModel } from "./load.ts";

export interface PromptLayout {
  /** Ids before the documents: BOS / template head / system / instruction. */
  prefixIds: Uint32Array;
  /** Ids of one document, wrapped by the document template. */
  documentIds: (text: string) => Uint32Array;
  /** Ids after the documents: the wrapped question and the template's tail up to the answer. */
  queryIds: (question: string) => Uint32Array;
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
  return {
    prefixIds: concatIds(bosIds(model), plainIds(model, opts.prefix ?? "")),
    documentIds: (t) => plainIds(model, doc(t)),
    queryIds: (q) => plainIds(model, query(q)),
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
  const split = splitChatTemplate(model.chatTemplate, {
    system: system === undefined ? undefined : SYSTEM_SLOT, instruction: opts.prefix, bosToken: model.bosToken, eosToken: model.eosToken,
  });
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
  };
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
