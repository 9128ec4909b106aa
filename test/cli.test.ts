// The `ape` CLI as users run it (`deno task ape ...`): --help on every command, the README's CLI table
// naming every flag, long inputs from files and stdin, `cache add` ids usable by `generate`, timings on
// stderr, flag validation, and `tokenize` on the default model's tokenizer.
// Runs under Node's vitest only: it spawns the CLI under Deno whatever runtime runs vitest, so the Bun
// and Deno runs of the suite would repeat the same processes (about 30 s each).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultModelPath } from "../src/model/default_model.ts";
import { runtimeName } from "../src/runtime.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DENO = `${ROOT}node_modules/@deno/linux-x64-glibc/deno`;
const MODEL = "fixtures/models/qwen2";
const onNode = runtimeName().startsWith("node");

function ape(args: string[], opts: { input?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(DENO, ["run", "-A", "sdk/cli.ts", ...args], {
    cwd: ROOT, encoding: "utf8", input: opts.input ?? "", env: { ...process.env, XDG_RUNTIME_DIR: "/tmp", NO_COLOR: "1", ...opts.env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The flags a --help text lists: one `  --flag ...` line each. */
function helpFlags(text: string): string[] {
  return [...text.matchAll(/^ {2}(--[a-z0-9-]+)/gm)].map((m) => m[1]).filter((f) => f !== "--help");
}

describe.skipIf(!onNode)("ape CLI (Node-only test: it spawns the CLI under Deno)", () => {
  let tmp = ""; // made in beforeAll: a skipped suite (Bun, Deno) leaves no folder behind
  beforeAll(() => void (tmp = mkdtempSync(join(tmpdir(), "apekit-cli-"))));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("--help on every command exits 0 with one line per flag, and the README's CLI table names each flag", () => {
    const top = ape(["--help"]);
    expect(top.code).toBe(0);
    const commands = [...top.out.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]);
    expect(commands).toEqual(expect.arrayContaining(["demo", "tokenize", "detokenize", "kv", "logits", "generate", "cache", "bench", "serve"]));
    const readme = readFileSync(`${ROOT}README.md`, "utf8");
    const table = readme.slice(readme.indexOf("## The CLI"), readme.indexOf("## Benchmarks"));
    const help = (args: string[]) => {
      const r = ape([...args, "--help"]);
      expect(r.code, `ape ${args.join(" ")} --help: ${r.err}`).toBe(0);
      return r.out;
    };
    const missing: string[] = [];
    for (const cmd of [...commands.filter((c) => !["kv", "cache", "bench"].includes(c)), "kv inspect", "kv verify", "cache add", "cache ls"]) {
      const flags = helpFlags(help(cmd.split(" ")));
      if (cmd !== "demo") expect(flags.length, cmd).toBeGreaterThan(0);
      const row = table.split("\n").filter((l) => l.startsWith(`| \`${cmd}`) || l.startsWith(`| \`${cmd.split(" ")[0]}`)).join("\n");
      expect(row, `README CLI table row for ${cmd}`).not.toBe("");
      for (const f of flags) if (!new RegExp(`${f}(?![a-z-])`).test(row)) missing.push(`${cmd} ${f}`);
    }
    expect(missing, "flags missing from README's CLI table").toEqual([]);
    for (const parent of ["kv", "cache", "bench"]) expect(help([parent]).length).toBeGreaterThan(0);
    const gen = help(["generate"]);
    expect(gen).toMatch(/--temperature T +APE's attention temperature/);
    expect(gen).toMatch(/--sampling-temperature X +sampling temperature/);
  });

  it("cache add ids and files: the same document by --context, --context-file, --context-id and stdin; timings on stderr", () => {
    const store = `file://${join(tmp, "kv")}`;
    const doc = join(tmp, "doc.txt"), query = join(tmp, "q.txt");
    writeFileSync(doc, "The cat sat on the mat.\n\n"); // final line breaks: dropped by add and by --context-file
    writeFileSync(query, "Who sat on the mat?\n");
    const add = ape(["cache", "add", "--store", store, "--model", MODEL, doc]);
    expect(add.code, add.err).toBe(0);
    const [id, tokens] = add.out.trim().split("\t");
    expect(id).toMatch(/^[0-9a-f]{40}$/);
    expect(tokens).toMatch(/^\d+ tokens$/);
    const common = ["generate", "--model", MODEL, "--store", store, "--max-tokens", "3"];
    const json = (args: string[], input?: string) => {
      const r = ape([...common, ...args, "--json"], { input });
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out) as { text: string; stats: { cacheHits: number; cacheMisses: number; contextTokens: number } };
    };
    const byText = json(["--context", "The cat sat on the mat.", "--query", "Who sat on the mat?"]); // as "$(cat doc.txt)" passes it
    const byFile = json(["--context-file", doc, "--query-file", query]);
    const byId = json(["--context-id", id, "--query-file", "-"], "Who sat on the mat?\n");
    for (const r of [byText, byFile, byId]) {
      expect(r.stats).toMatchObject({ cacheHits: 1, cacheMisses: 0, contextTokens: Number(tokens.split(" ")[0]) });
      expect(r.text).toBe(byText.text); // greedy: the same prompt gives the same tokens
    }
    const streamed = ape([...common, "--context-id", id, "--query", "Who sat on the mat?"]);
    expect(streamed.code, streamed.err).toBe(0);
    expect(streamed.out).toBe(`${byText.text}\n`);
    expect(streamed.err).toMatch(/\[ape\] \d+ tokens \(\w+\), first token \d+ ms, total \d+ ms .*cache: 1 hits, 0 misses/);
    const unknown = ape([...common, "--context-id", "0".repeat(40), "--query", "x"]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/--context-id 0+: not in file:/);
    const noStore = ape(["generate", "--model", MODEL, "--context-id", id, "--query", "x"]);
    expect(noStore.err).toMatch(/--context-id needs --store/);
  });

  it("refuses a bad --dtype / --compute by name", () => {
    const d = ape(["generate", "--model", MODEL, "--query", "x", "--dtype", "q3"]);
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/--dtype must be "auto", "f32" or "f16" \(got 'q3'\)/);
    const c = ape(["cache", "add", "--store", `file://${tmp}/kv2`, "--model", MODEL, "--compute", "f8", "x.txt"]);
    expect(c.code).toBe(1);
    expect(c.err).toMatch(/--compute must be "f32", "f16" or "int8"|cannot read/);
  });

  it("tokenize takes --model's tokenizer (a folder or GGUF) or, by default, the default model's", () => {
    const viaModel = ape(["tokenize", "--model", MODEL, "--text", "the cat sat", "--json"]);
    const viaTokenizer = ape(["tokenize", "--tokenizer", `${MODEL}/tokenizer.json`, "--text", "the cat sat", "--json"]);
    expect(viaModel.code, viaModel.err).toBe(0);
    expect(JSON.parse(viaModel.out)).toEqual(JSON.parse(viaTokenizer.out));
    const missing = ape(["tokenize", "--text", "hi"], { env: { XDG_CACHE_HOME: join(tmp, "empty-cache") } });
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/DefaultModelMissingError: the default model .*scripts\/setup\.sh/);
    expect(missing.err).not.toMatch(/fromGgufMetadata|model loader/);
    if (!existsSync(defaultModelPath())) return void console.warn("[cli.test] default model absent: its tokenizer check skipped");
    // HF `tokenizers` on the GGUF vocabulary (pinned in test/gguf_default_model.test.ts); SmolLM2 adds no BOS
    const ids = ape(["tokenize", "--text", "The capital of France is", "--json"]);
    expect(ids.code, ids.err).toBe(0);
    expect(JSON.parse(ids.out).ids).toEqual([504, 3575, 282, 4649, 314]);
    const text = ape(["detokenize", "--ids", "504,3575,282,4649,314", "--json"]);
    expect(JSON.parse(text.out).text).toBe("The capital of France is");
  });
});
