// `ape logits` end to end: the CLI contract external checks rely on (flags and JSON shape).
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { runtimeName } from "../src/runtime.ts";
import { relError } from "./reference/random_model.ts";

const DENO = new URL("../node_modules/@deno/linux-x64-glibc/deno", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

function ape(args: string[]) {
  const r = spawnSync(DENO, ["run", "-A", "sdk/cli.ts", ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, XDG_RUNTIME_DIR: "/tmp" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe(`ape logits CLI (spawned from ${runtimeName()})`, () => {
  const ref = JSON.parse(readFileSync(`${ROOT}fixtures/models/mistral/reference.json`, "utf8"));

  it("--ids --json prints the last position's logits; --all prints every position", () => {
    const c = ref.logits[1];
    const last = ape(["logits", "--model", "fixtures/models/mistral", "--ids", c.ids.join(","), "--json"]);
    expect(last.code, last.err).toBe(0);
    expect(relError(JSON.parse(last.out).logits, c.logits[c.logits.length - 1])).toBeLessThan(1e-4);
    const all = ape(["logits", "--model", "fixtures/models/mistral", "--ids", c.ids.join(","), "--all", "--json"]);
    const rows = JSON.parse(all.out).logits as number[][];
    expect(rows.length).toBe(c.ids.length);
    rows.forEach((r, i) => expect(relError(r, c.logits[i])).toBeLessThan(1e-4));
  });

  it("--mode ape with repeated --context-ids matches the reference", () => {
    const c = ref.ape.find((x: { mode: string; prefix: number[]; contexts: number[][] }) => x.mode === "ape" && x.prefix.length > 0 && x.contexts.length > 1);
    const args = ["logits", "--model", "fixtures/models/mistral", "--mode", "ape", "--prefix-ids", c.prefix.join(",")];
    for (const ctx of c.contexts) args.push("--context-ids", ctx.join(","));
    args.push("--query-ids", c.query.join(","), "--temperature", String(c.temperature), "--scale", String(c.scale), "--json");
    const r = ape(args);
    expect(r.code, r.err).toBe(0);
    expect(relError(JSON.parse(r.out).logits, c.logits)).toBeLessThan(1e-4);
  });

  it("bad input exits non-zero with a message naming the problem", () => {
    const r = ape(["logits", "--model", "fixtures/models/mistral", "--ids", "1,x", "--json"]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--ids: 'x' is not a token id/);
    const m = ape(["logits", "--model", "fixtures/models/mistral", "--mode", "ape", "--query-ids", "1", "--temperature", "-1"]);
    expect(m.code).not.toBe(0);
    expect(m.err).toMatch(/--temperature must be a positive number/);
  });
});

describe(`ape generate / cache / logits from text (spawned from ${runtimeName()})`, () => {
  const MODEL = "fixtures/models/llama3";
  it("--prefix/--context/--query TEXT tokenize each part alone (BOS only before the prefix)", () => {
    const tok = (text: string) => {
      const r = ape(["tokenize", "--tokenizer", MODEL, "--text", text, "--no-special-tokens", "--json"]);
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out).ids as number[];
    };
    const prefix = [380, ...tok("use the text")], c1 = tok("the cat sat"), c2 = tok("a dog ran"), q = tok("who sat");
    const byIds = ape(["logits", "--model", MODEL, "--mode", "ape", "--prefix-ids", prefix.join(","), "--context-ids", c1.join(","),
      "--context-ids", c2.join(","), "--query-ids", q.join(","), "--json"]);
    const byText = ape(["logits", "--model", MODEL, "--mode", "ape", "--prefix", "use the text", "--context", "the cat sat", "--context", "a dog ran",
      "--query", "who sat", "--json"]);
    expect(byText.code, byText.err).toBe(0);
    expect(JSON.parse(byText.out).logits).toEqual(JSON.parse(byIds.out).logits);
  });

  it("generate --json prints text and stats; cache add stores documents and cache ls lists them", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "apekit-cli-"));
    const store = `file://${dir}/store`;
    writeFileSync(join(dir, "a.txt"), "the cat sat on the mat");
    writeFileSync(join(dir, "b.txt"), "a dog ran in the park");
    const add = ape(["cache", "add", "--store", store, "--model", MODEL, "--prefix", "use the text\n", join(dir, "a.txt"), join(dir, "b.txt")]);
    expect(add.code, add.err).toBe(0);
    const ids = add.out.trim().split("\n").map((l) => l.split("\t")[0]);
    expect(ids).toHaveLength(2);
    const ls = ape(["cache", "ls", "--store", store, "--json"]);
    const entries: { key: string; bytes: number; kind: string }[] = JSON.parse(ls.out).entries;
    expect(entries.filter((e) => e.kind === "context").map((e) => e.key).sort()).toEqual([...ids].sort());
    // the BM25 index of the two documents sits beside them (one entry for the prefix and model)
    expect(entries.filter((e) => e.kind === "search-index")).toHaveLength(1);
    expect(entries.every((e) => e.bytes > 0)).toBe(true);
    const gen = ape(["generate", "--model", MODEL, "--store", store, "--prefix", "use the text\n", "--context", "the cat sat on the mat",
      "--context", "a dog ran in the park", "--query", "who sat", "--max-tokens", "5", "--json"]);
    expect(gen.code, gen.err).toBe(0);
    const out = JSON.parse(gen.out);
    expect(typeof out.text).toBe("string");
    expect(out.stats.mode).toBe("ape");
    expect(out.stats.cacheHits).toBe(2); // served from the store written by `cache add`
    const bad = ape(["generate", "--model", MODEL, "--query", "x", "--mode", "nope"]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--mode must be sequential, parallel or ape/);
    const badCompute = ape(["generate", "--model", MODEL, "--prompt", "x", "--compute", "f8"]);
    expect(badCompute.code).not.toBe(0);
    expect(badCompute.err).toMatch(/compute must be "f32", "f16" or "int8"/);
  });
});
