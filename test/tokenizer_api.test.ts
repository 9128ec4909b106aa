/**
 * The tokenizer's behaviour beyond id parity: special tokens are text by default, BOS/EOS from
 * tokenizer_config.json, the streaming decoder, GGUF metadata, typed errors on bad input, no wasm
 * memory growth over 10,000 encodes, and the `ape tokenize` / `ape detokenize` CLI.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenizerError } from "../src/errors.ts";
import { type GgufTokenizerMetadata, Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { wasm } from "../src/wasm/module.ts";
import { firstDiff, MULTILINGUAL, pythonRef, randomUnicode, ROOT, sotu, SPECIAL_MARKERS, TOK, WHITESPACE_DIGITS_CONTRACTIONS } from "./tokenizer_corpus.ts";

const toks: Record<string, Tokenizer> = {};
beforeAll(() => {
  for (const [k, v] of Object.entries(TOK)) toks[k] = Tokenizer.fromFile(v);
});
afterAll(() => Object.values(toks).forEach((t) => t.free()));

describe("special tokens are not parsed from text by default", () => {
  it("<|im_end|> in a document is ordinary text for Qwen3", () => {
    const q = toks.qwen3;
    const imEnd = q.tokenToId("<|im_end|>")!;
    expect(imEnd).toBe(151645);
    const plain = q.encode("<|im_end|>");
    expect(Array.from(plain)).not.toContain(imEnd);
    expect(plain.length).toBeGreaterThan(1);
    expect(q.decode(plain)).toBe("<|im_end|>");
    expect(Array.from(q.encode("<|im_end|>", { allowSpecial: true }))).toEqual([imEnd]);
    // what Python tokenizers does with encode_special_tokens = True
    const py = pythonRef({ path: `${TOK.qwen3}/tokenizer.json` }, ["<|im_end|>"], [{ add_special: true, encode_special: true }]);
    expect(Array.from(plain)).toEqual(py.ids[0][0]);
  });

  it("<|begin_of_text|> in a document is ordinary text for Llama-3", () => {
    const l = toks.llama3;
    const bot = l.tokenToId("<|begin_of_text|>")!;
    const ids = Array.from(l.encode("<|begin_of_text|>hello<|eot_id|>"));
    expect(ids).not.toContain(bot);
    expect(ids).not.toContain(l.tokenToId("<|eot_id|>"));
    expect(Array.from(l.encode("<|begin_of_text|>", { allowSpecial: true, addSpecialTokens: false }))).toEqual([bot]);
  });

  it("<s> in a document is ordinary text for Llama-2 (crate engine)", () => {
    const ids = Array.from(toks.llama2.encode("<s>", { addSpecialTokens: false }));
    expect(ids).not.toContain(1);
    expect(Array.from(toks.llama2.encode("<s>", { addSpecialTokens: false, allowSpecial: true }))).toEqual([1]);
  });
});

describe("BOS / EOS", () => {
  it("comes from tokenizer_config.json", () => {
    expect(toks.qwen3.bosId).toBeUndefined();
    expect(toks.qwen3.eosId).toBe(151645);
    expect(toks.llama3.bosId).toBe(128000);
    expect(toks.llama3.eosId).toBe(128001);
    expect(toks.llama2.bosId).toBe(1);
    expect(toks.llama2.eosId).toBe(2);
    expect(toks.llama2.encode("hi")[0]).toBe(1);
    expect(toks.llama2.encode("hi", { addSpecialTokens: false })[0]).not.toBe(1);
  });

  it("add_bos_token / add_eos_token in the config decide the ends", () => {
    const json = readFileSync(`${TOK.llama3}/tokenizer.json`);
    const cfg = JSON.parse(readFileSync(`${TOK.llama3}/tokenizer_config.json`, "utf8"));
    const t = Tokenizer.fromJson(json, { ...cfg, add_bos_token: true, add_eos_token: true });
    const ids = Array.from(t.encode("hi"));
    expect(ids[0]).toBe(128000);
    expect(ids.at(-1)).toBe(128001);
    expect(Array.from(t.encode("hi", { addSpecialTokens: false }))).toEqual(ids.slice(1, -1));
    t.free();
    const l2 = Tokenizer.fromJson(readFileSync(`${TOK.llama2}/tokenizer.json`), { bos_token: "<s>", add_bos_token: false });
    expect(l2.encode("hi")[0]).not.toBe(1);
    l2.free();
  });
});

describe("streaming decoder", () => {
  const texts = [...MULTILINGUAL, ...WHITESPACE_DIGITS_CONTRACTIONS, ...randomUnicode(60, 7), sotu(40)[0].slice(0, 3000)];
  for (const name of ["qwen3", "llama3", "llama2"]) {
    it(`${name}: chunks are whole characters and add up to decode()`, () => {
      const tok = toks[name];
      for (const t of texts) {
        const ids = tok.encode(t, { addSpecialTokens: false });
        const s = tok.createStreamDecoder();
        let out = "";
        for (const id of ids) {
          const chunk = s.push(id);
          if (!t.includes("\uFFFD")) expect(chunk).not.toContain("\uFFFD");
          expect(chunk.isWellFormed?.() ?? true).toBe(true);
          out += chunk;
        }
        out += s.flush();
        s.free();
        expect(out).toBe(tok.decode(ids));
      }
    });
  }

  it("holds a character split over byte tokens until it is complete", () => {
    const q = toks.qwen3;
    const ids = q.encode("👩‍👩‍👧‍👦", { addSpecialTokens: false }); // several ids, byte pieces of emoji
    expect(ids.length).toBeGreaterThan(1);
    const s = q.createStreamDecoder();
    const chunks = Array.from(ids, (id) => s.push(id));
    expect(chunks.join("") + s.flush()).toBe("👩‍👩‍👧‍👦");
    expect(chunks.filter((c) => c === "").length).toBeGreaterThan(0);
  });

  it("skips special tokens when asked, and flush reports an unfinished character", () => {
    const q = toks.qwen3;
    const s = q.createStreamDecoder({ skipSpecialTokens: true });
    expect(s.push(151645)).toBe("");
    const rare = q.encode("\u{2070E}", { addSpecialTokens: false }); // a CJK extension char: byte tokens
    expect(rare.length).toBeGreaterThan(1);
    expect(s.push(rare[0])).toBe("");
    expect(s.flush()).toBe("\uFFFD");
  });
});

/** GGUF-like metadata from a byte-level BPE tokenizer.json (what llama.cpp's converter stores). */
function ggufFromJson(folder: string, pre: string): GgufTokenizerMetadata {
  const j = JSON.parse(readFileSync(`${folder}/tokenizer.json`, "utf8"));
  let n = 0;
  for (const id of Object.values(j.model.vocab as Record<string, number>)) n = Math.max(n, id + 1);
  for (const a of j.added_tokens) n = Math.max(n, a.id + 1);
  const tokens = new Array<string>(n).fill("");
  const types = new Array<number>(n).fill(1);
  for (const [t, id] of Object.entries(j.model.vocab as Record<string, number>)) tokens[id] = t;
  for (const a of j.added_tokens) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  for (let i = 0; i < n; i++) if (tokens[i] === "") { tokens[i] = `[PAD${i}]`; types[i] = 5; }
  const merges = (j.model.merges as (string | string[])[]).map((m) => (Array.isArray(m) ? m.join(" ") : m));
  return { model: "gpt2", pre, tokens, merges, tokenTypes: types };
}

const CASES3 = [
  { add_special: false, encode_special: true },
  { add_special: true, encode_special: true },
  { add_special: false, encode_special: false },
];

describe("GGUF metadata", () => {
  const texts = [...sotu(30), ...MULTILINGUAL, ...WHITESPACE_DIGITS_CONTRACTIONS, ...SPECIAL_MARKERS, ...randomUnicode(200, 5)];

  it("Qwen3 (pre qwen2) and Llama-3 (pre llama-bpe) equal their tokenizer.json", () => {
    for (const [name, pre] of [["qwen3", "qwen2"], ["llama3", "llama-bpe"]] as const) {
      const meta = ggufFromJson(TOK[name], pre);
      const g = Tokenizer.fromGgufMetadata({ ...meta, eosId: toks[name].eosId, bosId: toks[name].bosId });
      expect(g.engine).toBe("fast");
      const ref = toks[name];
      const norm = name === "qwen3" ? (s: string) => s.normalize("NFC") : (s: string) => s;
      for (const t of texts) {
        // Qwen3's tokenizer.json has an NFC normalizer that GGUF does not record: compare on NFC text.
        const want = ref.encode(norm(t), { addSpecialTokens: false });
        const got = g.encode(norm(t), { addSpecialTokens: false });
        expect(firstDiff(got, want), `${name}: ${JSON.stringify(t.slice(0, 80))}`).toBe(-1);
        expect(Array.from(g.encode(norm(t), { allowSpecial: true, addSpecialTokens: false }))).toEqual(
          Array.from(ref.encode(norm(t), { allowSpecial: true, addSpecialTokens: false })),
        );
      }
      expect(g.eosId).toBe(ref.eosId);
      expect(g.decode(g.encode("héllo <|im_end|> 👋"))).toBe("héllo <|im_end|> 👋");
      g.free();
    }
  });

  // The default model's own GGUF (fetched by scripts/setup.sh): its tokenizer.ggml.* metadata, read
  // by the `gguf` Python package, against Python tokenizers on SmolLM2's tokenizer.json layout.
  const smolGguf = `${process.env.XDG_CACHE_HOME || `${homedir()}/.cache`}/apekit/models/smollm2-135m-instruct-q4_1/model.gguf`;
  it.skipIf(!existsSync(smolGguf))("SmolLM2 from its GGUF equals Python tokenizers", () => {
    const r = spawnSync("python3", [`${ROOT}test/py/tokenizer_gguf.py`, smolGguf], { encoding: "utf8", maxBuffer: 1 << 28 });
    expect(r.status, r.stderr).toBe(0);
    const { meta, tokenizer_json } = JSON.parse(r.stdout) as { meta: GgufTokenizerMetadata; tokenizer_json: string };
    expect(meta.pre).toBe("smollm");
    const g = Tokenizer.fromGgufMetadata(meta);
    expect(g.engine).toBe("fast");
    expect(g.bosId).toBe(1);
    expect(g.eosId).toBe(2);
    const py = pythonRef({ json: tokenizer_json }, texts, CASES3, true);
    texts.forEach((t, i) => {
      expect(firstDiff(g.encode(t, { addSpecialTokens: false }), py.ids[0][i]), JSON.stringify(t.slice(0, 80))).toBe(-1);
      expect(firstDiff(g.encode(t), py.ids[1][i])).toBe(-1); // add_bos_token is false in this GGUF
      expect(firstDiff(g.encode(t, { addSpecialTokens: false, allowSpecial: true }), py.ids[2][i])).toBe(-1);
      expect(g.decode(py.ids[0][i])).toBe(py.decoded![i]);
    });
    expect(Array.from(g.encode("<|im_start|>user", { allowSpecial: true, addSpecialTokens: false }))[0]).toBe(1);
    expect(Array.from(g.encode("<|im_start|>user"))).not.toContain(1);
    g.free();
  });

  it("SmolLM-style (pre smollm: digits split, GPT-2 regex) equals Python on the equivalent tokenizer.json", () => {
    const meta = ggufFromJson(TOK.qwen3, "smollm");
    const g = Tokenizer.fromGgufMetadata({ ...meta, bosId: 151643, eosId: 151645, addBosToken: false });
    expect(g.engine).toBe("fast");
    // the HF tokenizer.json of SmolLM2 has exactly this normalizer / pre-tokenizer / decoder
    const j = JSON.parse(readFileSync(`${TOK.qwen3}/tokenizer.json`, "utf8"));
    j.normalizer = null;
    j.pre_tokenizer = {
      type: "Sequence",
      pretokenizers: [{ type: "Digits", individual_digits: true }, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true }],
    };
    const py = pythonRef({ json: JSON.stringify(j) }, texts, [{ add_special: false, encode_special: true }, { add_special: false, encode_special: false }]);
    texts.forEach((t, i) => {
      expect(firstDiff(g.encode(t, { addSpecialTokens: false }), py.ids[0][i]), JSON.stringify(t.slice(0, 80))).toBe(-1);
      expect(firstDiff(g.encode(t, { addSpecialTokens: false, allowSpecial: true }), py.ids[1][i])).toBe(-1);
    });
    g.free();
  });

  it("SentencePiece llama vocabulary (scores -> merges) equals Llama-2's tokenizer.json", () => {
    const j = JSON.parse(readFileSync(`${TOK.llama2}/tokenizer.json`, "utf8"));
    const vocab = j.model.vocab as Record<string, number>;
    const tokens: string[] = [];
    for (const [t, id] of Object.entries(vocab)) tokens[id] = t;
    // scores: a merged token ranks as its first merge (what SentencePiece's scores encode)
    const scores = new Array<number>(tokens.length).fill(0);
    const seen = new Set<string>();
    (j.model.merges as (string | string[])[]).forEach((m, rank) => {
      const [a, b] = Array.isArray(m) ? m : m.split(" ");
      if (!seen.has(a + b)) { seen.add(a + b); scores[vocab[a + b]] = -rank; }
    });
    const types = tokens.map((t, i) => (i === 0 ? 2 : i <= 2 ? 3 : /^<0x[0-9A-F]{2}>$/.test(t) ? 6 : 1));
    const g = Tokenizer.fromGgufMetadata({ model: "llama", tokens, scores, tokenTypes: types, bosId: 1, eosId: 2, unkId: 0, addBosToken: true });
    const ref = toks.llama2;
    let same = 0;
    for (const t of texts) {
      if (firstDiff(g.encode(t), ref.encode(t)) === -1) same++;
      expect(g.decode(g.encode(t, { addSpecialTokens: false }))).toBe(ref.decode(ref.encode(t, { addSpecialTokens: false })));
    }
    // merges rebuilt from scores order the splits of one token by id, which can differ from the
    // original file for a handful of rare words; the texts here all agree
    expect(same / texts.length).toBeGreaterThan(0.97);
    expect(g.encode("hi")[0]).toBe(1);
    g.free();
  });

  it("bad metadata is a TokenizerError", () => {
    const meta = ggufFromJson(TOK.qwen3, "qwen2");
    expect(() => Tokenizer.fromGgufMetadata({ ...meta, pre: "no-such-pre" })).toThrow(TokenizerError);
    expect(() => Tokenizer.fromGgufMetadata({ ...meta, merges: undefined })).toThrow(TokenizerError);
    expect(() => Tokenizer.fromGgufMetadata({ ...meta, tokenTypes: [1, 2] })).toThrow(TokenizerError);
    expect(() => Tokenizer.fromGgufMetadata({ ...meta, model: "t5" })).toThrow(/not supported/);
    expect(() => Tokenizer.fromGgufMetadata({ ...meta, bosId: 1e9 })).toThrow(TokenizerError);
    expect(() => Tokenizer.fromGgufMetadata({ ...meta, merges: ["Ġ notatoken"] })).toThrow(/notatoken/);
    expect(() => Tokenizer.fromGgufMetadata({ model: "gpt2" } as GgufTokenizerMetadata)).toThrow(TokenizerError);
  });
});

describe("bad input is a TokenizerError, never a crash", () => {
  const good = () => JSON.parse(readFileSync(`${TOK.qwen3}/tokenizer.json`, "utf8"));
  it("malformed or incomplete tokenizer files", () => {
    expect(() => Tokenizer.fromJson("{")).toThrow(TokenizerError);
    expect(() => Tokenizer.fromJson("")).toThrow(TokenizerError);
    expect(() => Tokenizer.fromJson("[1,2]")).toThrow(TokenizerError);
    expect(() => Tokenizer.fromJson({ model: { type: "BPE" } })).toThrow(TokenizerError);
    const noModel = good();
    delete noModel.model;
    expect(() => Tokenizer.fromJson(noModel)).toThrow(TokenizerError);
    const badMerge = good();
    badMerge.model.merges.push(["Ġ", "doesnotexist"]);
    expect(() => Tokenizer.fromJson(badMerge)).toThrow(/doesnotexist/);
    const l2 = JSON.parse(readFileSync(`${TOK.llama2}/tokenizer.json`, "utf8"));
    l2.model.merges.push("▁ zzzunknown");
    expect(() => Tokenizer.fromJson(l2)).toThrow(/zzzunknown/);
    expect(() => Tokenizer.fromJson(good(), "{not json")).toThrow(TokenizerError);
    expect(() => Tokenizer.fromJson(good(), { eos_token: "<|nope|>" })).toThrow(/nope/);
    expect(() => Tokenizer.fromFile(`${ROOT}no/such/folder`)).toThrow(TokenizerError);
    expect(() => Tokenizer.fromFile(ROOT)).toThrow(TokenizerError);
  });

  it("lone surrogates and bad ids", () => {
    const q = toks.qwen3;
    expect(() => q.encode("abc\uD800def")).toThrow(/surrogate at index 3/);
    expect(() => q.encode("\uDC00")).toThrow(TokenizerError);
    expect(() => q.countTokens("x\uD83D")).toThrow(TokenizerError);
    expect(q.encode("ok 😀").length).toBeGreaterThan(0); // a proper pair is fine
    expect(() => q.decode([1, -1])).toThrow(TokenizerError);
    expect(() => q.decode([1.5])).toThrow(TokenizerError);
    expect(() => q.createStreamDecoder().push(-3)).toThrow(TokenizerError);
    expect(() => q.encode(42 as unknown as string)).toThrow(TokenizerError);
    // ids outside the vocabulary are refused, or skipped as Hugging Face does when asked
    expect(() => q.decode([9707, 999_999])).toThrow(/ids\[1\] = 999999 is outside the vocabulary/);
    expect(() => toks.llama2.decode([22557, 4_000_000_000])).toThrow(TokenizerError);
    expect(() => q.decode([q.vocabSize])).toThrow(TokenizerError);
    expect(() => q.decode([q.vocabSize - 1])).not.toThrow(); // the largest id is inside
    expect(q.decode([9707, 4_000_000_000, 999_999], { skipUnknown: true })).toBe(q.decode([9707]));
    expect(toks.llama2.decode([22557, 4_000_000_000], { skipUnknown: true })).toBe(toks.llama2.decode([22557]));
    expect(q.idToToken(4_000_000_000)).toBeUndefined();
    expect(q.tokenToId("no such token at all")).toBeUndefined();
  });

  it("a freed tokenizer says so", () => {
    const t = Tokenizer.fromFile(TOK.qwen3);
    t.free();
    expect(() => t.encode("x")).toThrow(/freed/);
  });
});

describe("memory", () => {
  it("wasm memory does not grow across 10,000 encode calls", () => {
    const q = toks.llama3;
    const texts = [...MULTILINGUAL, ...WHITESPACE_DIGITS_CONTRACTIONS, ...sotu(60).map((s) => s.slice(0, 2000)), ...randomUnicode(50, 3)];
    for (const t of texts) q.encode(t); // warm the word cache
    const before = wasm().tokenizerMemoryBytes();
    let n = 0;
    for (let i = 0; i < 10_000; i++) n += q.encode(texts[i % texts.length], { allowSpecial: i % 2 === 0 }).length;
    expect(n).toBeGreaterThan(10_000);
    expect(wasm().tokenizerMemoryBytes()).toBe(before);
  });
});

describe("CLI", () => {
  const bun = `${ROOT}node_modules/.bin/bun`;
  const ape = (args: string[], input?: string) => spawnSync(bun, [`${ROOT}sdk/cli.ts`, ...args], { encoding: "utf8", input });

  it("ape tokenize --text / stdin --json and ape detokenize --ids --json", () => {
    const text = "Hello <|im_end|> wörld 👋";
    const r = ape(["tokenize", "--tokenizer", TOK.qwen3, "--text", text, "--json"]);
    expect(r.stderr).toBe("");
    const ids = JSON.parse(r.stdout).ids;
    expect(ids).toEqual(Array.from(toks.qwen3.encode(text)));
    const s = ape(["tokenize", "--tokenizer", `${TOK.llama3}/tokenizer.json`, "--json"], text);
    expect(JSON.parse(s.stdout).ids).toEqual(Array.from(toks.llama3.encode(text)));
    const d = ape(["detokenize", "--tokenizer", TOK.qwen3, "--ids", ids.join(","), "--json"]);
    expect(JSON.parse(d.stdout)).toEqual({ text });
  });

  it("errors are reported, not thrown", () => {
    const r = ape(["tokenize", "--tokenizer", "/no/such/dir", "--text", "x"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/InvalidArgumentError: \/no\/such\/dir: no such file or folder/); // a typed error naming the path
    const d = ape(["detokenize", "--tokenizer", TOK.qwen3, "--ids", "1,x"]);
    expect(d.status).toBe(1);
  });
});
