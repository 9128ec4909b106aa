/**
 * Differential tests: apekit's tokenizer against Hugging Face's Python `tokenizers` (expected ids
 * computed by test/py/tokenizer_ref.py in the same run) and `@huggingface/tokenizers` (HF's JS
 * implementation), on Qwen3, Llama-3 and Llama-2 (SentencePiece-style BPE with byte fallback).
 */
import { readFileSync } from "node:fs";
import { Tokenizer as HfJsTokenizer } from "@huggingface/tokenizers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import {
  brown,
  firstDiff,
  MULTILINGUAL,
  pythonRef,
  type PyResult,
  randomUnicode,
  sotu,
  SPECIAL_MARKERS,
  TOK,
  WHITESPACE_DIGITS_CONTRACTIONS,
} from "./tokenizer_corpus.ts";

const CASES = [
  { add_special: false, encode_special: true }, // apekit default text: specials are plain text
  { add_special: true, encode_special: true },
  { add_special: false, encode_special: false }, // allowSpecial
];

const TEXTS = [
  ...sotu(12),
  ...brown(),
  ...MULTILINGUAL,
  ...WHITESPACE_DIGITS_CONTRACTIONS,
  ...SPECIAL_MARKERS,
  ...randomUnicode(400),
];

function expectSameIds(name: string, texts: string[], got: (t: string) => ArrayLike<number>, want: number[][]) {
  for (let i = 0; i < texts.length; i++) {
    const g = got(texts[i]);
    const d = firstDiff(g, want[i]);
    if (d >= 0) {
      const ctx = Array.from(texts[i]).slice(0, 120).join("");
      expect.fail(`${name}: text #${i} differs at id ${d}: got ${Array.from(g).slice(d, d + 5)} want ${want[i].slice(d, d + 5)}; text ${JSON.stringify(ctx)}`);
    }
  }
}

for (const [name, folder] of Object.entries(TOK)) {
  describe(`tokenizer parity: ${name}`, () => {
    let tok: Tokenizer;
    let py: PyResult;
    beforeAll(() => {
      tok = Tokenizer.fromFile(folder);
      py = pythonRef({ path: `${folder}/tokenizer.json` }, TEXTS, CASES, true);
    });
    afterAll(() => tok.free());

    it("uses the expected engine", () => {
      expect(tok.engine).toBe(name === "llama2" ? "hf" : "fast");
    });

    it("ids equal Python tokenizers (specials as text, with add_special_tokens, with allowSpecial)", () => {
      expectSameIds(`${name} plain`, TEXTS, (t) => tok.encode(t, { addSpecialTokens: false }), py.ids[0]);
      expectSameIds(`${name} addSpecial`, TEXTS, (t) => tok.encode(t), py.ids[1]);
      expectSameIds(`${name} allowSpecial`, TEXTS, (t) => tok.encode(t, { addSpecialTokens: false, allowSpecial: true }), py.ids[2]);
    });

    it("decode equals Python tokenizers, with and without special tokens", () => {
      for (let i = 0; i < TEXTS.length; i++) {
        expect(tok.decode(py.ids[0][i])).toBe(py.decoded![i]);
        expect(tok.decode(py.ids[0][i], { skipSpecialTokens: true })).toBe(py.decoded_skip![i]);
      }
    });

    it("decode(encode(x)) gives back x (after normalization)", () => {
      const norm = name === "qwen3" ? (s: string) => s.normalize("NFC") : (s: string) => s;
      for (const t of [...sotu(40), ...MULTILINGUAL, ...WHITESPACE_DIGITS_CONTRACTIONS, ...SPECIAL_MARKERS, ...randomUnicode(200, 99)]) {
        if (name === "llama2" && t.includes("\u2581")) continue; // U+2581 is its space marker
        expect(tok.decode(tok.encode(t, { addSpecialTokens: false }))).toBe(norm(t));
      }
    });

    it("ids equal @huggingface/tokenizers (HF's JS implementation)", () => {
      const js = new HfJsTokenizer(
        JSON.parse(readFileSync(`${folder}/tokenizer.json`, "utf8")),
        JSON.parse(readFileSync(`${folder}/tokenizer_config.json`, "utf8")),
      );
      // The JS library always matches special tokens in text: compare with allowSpecial.
      const texts = [...sotu(24), ...brown(), ...MULTILINGUAL, ...WHITESPACE_DIGITS_CONTRACTIONS, ...SPECIAL_MARKERS];
      const want = texts.map((t) => js.encode(t, { add_special_tokens: false }).ids as number[]);
      expectSameIds(`${name} vs JS`, texts, (t) => tok.encode(t, { addSpecialTokens: false, allowSpecial: true }), want);
    });
  });
}

describe("other model types run through the tokenizers crate", () => {
  const letters = "abcdefghijklmnopqrstuvwxyz".split("");
  const words = ["the", "and", "hello", "world", "token", "izer", "ing", "er", "state", "union", "nation"];
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const wordpiece = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "[UNK]"), special(1, "[CLS]"), special(2, "[SEP]")],
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [1], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [2], tokens: ["[SEP]"] } },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(
        ["[UNK]", "[CLS]", "[SEP]", ...letters, ...letters.map((l) => `##${l}`), ...words, ...words.map((w) => `##${w}`), ".", ",", "'", "!", "?", "-", "0", "1", "2", "3"]
          .map((t, i) => [t, i]),
      ),
    },
  };
  const unigram = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    normalizer: { type: "NFKC" },
    pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true },
    post_processor: null,
    decoder: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true },
    model: {
      type: "Unigram",
      unk_id: 0,
      byte_fallback: false,
      vocab: [["<unk>", 0], ["<s>", 0], ["</s>", 0], ["\u2581", -2], ...letters.map((l, i) => [l, -3 - i / 10]), ...words.map((w, i) => [`\u2581${w}`, -4 - i / 7]), ...words.map((w) => [w, -6])],
    },
  };
  const texts = [...sotu(60).map((s) => s.slice(0, 4000)), ...MULTILINGUAL, ...WHITESPACE_DIGITS_CONTRACTIONS, ...SPECIAL_MARKERS, ...randomUnicode(100, 77)];

  for (const [name, json] of [["WordPiece (BERT-style)", wordpiece], ["Unigram (Metaspace)", unigram]] as const) {
    it(`${name}: ids and decode equal Python tokenizers`, () => {
      const tok = Tokenizer.fromJson(json);
      expect(tok.engine).toBe("hf");
      const py = pythonRef({ json: JSON.stringify(json) }, texts, [CASES[0], CASES[1]], true);
      expectSameIds(`${name} plain`, texts, (t) => tok.encode(t, { addSpecialTokens: false }), py.ids[0]);
      expectSameIds(`${name} addSpecial`, texts, (t) => tok.encode(t), py.ids[1]);
      texts.forEach((_, i) => expect(tok.decode(py.ids[0][i])).toBe(py.decoded![i]));
      tok.free();
    });
  }
});
