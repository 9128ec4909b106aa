// The examples run as users run them: the Deno server (Hono) under Deno, the Bun app under Bun, on a
// tiny fixture model. The server is always stopped, even when a check fails.
import { describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { runtimeName } from "../src/runtime.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DENO = `${ROOT}node_modules/@deno/linux-x64-glibc/deno`;
const BUN = `${ROOT}node_modules/.bin/bun`;
const MODEL = `${ROOT}fixtures/models/qwen2`;

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe(`examples (driven from ${runtimeName()})`, () => {
  it("the Deno server embeds the ape serve app: its own /ask route and the OpenAI API under /ape", async () => {
    const port = await freePort();
    const server = spawn(DENO, ["run", "-A", "examples/deno_server.ts"], {
      cwd: ROOT, env: { ...process.env, PORT: String(port), APEKIT_MODEL: MODEL, XDG_RUNTIME_DIR: "/tmp" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let log = "";
    server.stdout!.on("data", (d) => (log += d));
    server.stderr!.on("data", (d) => (log += d));
    const exited = new Promise((r) => server.on("exit", r));
    try {
      for (let i = 0; i < 600 && !log.includes("listening"); i++) await new Promise((r) => setTimeout(r, 100));
      expect(log).toContain("listening");
      const base = `http://127.0.0.1:${port}`;
      const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const ctx = await (await post("/ape/v1/contexts", { texts: ["the cat sat on the mat", "a dog ran"] })).json();
      expect(ctx.contexts).toHaveLength(2);
      const chat = await (await post("/ape/v1/chat/completions", {
        messages: [{ role: "user", content: "who sat" }], contexts: ctx.contexts.map((c: { id: string }) => ({ id: c.id })), max_tokens: 6,
      })).json();
      expect(chat.object).toBe("chat.completion");
      expect(chat.usage.ape.cache_hits).toBe(2);
      // the app's own route answers through the mounted API: the same contexts, now cached
      const ask = await (await post("/ask", { question: "who sat", documents: ["the cat sat on the mat", "a dog ran"] })).json();
      expect(ask.answer).toBeTypeOf("string");
      expect(ask.cachedTokens).toBe(ctx.contexts.reduce((n: number, c: { tokens: number }) => n + c.tokens, 0));
      const bad = await post("/ape/v1/chat/completions", { messages: [{ role: "user", content: "x" }], contexts: [{ id: "nope" }] });
      expect(bad.status).toBe(400);
      expect((await bad.json()).error.message).toMatch(/40 lowercase hex digits/);
      expect(await (await fetch(`${base}/ape/metrics`)).text()).toContain('apekit_requests_total{route="/ape/v1/chat/completions",status="200"}');
    } finally {
      server.kill("SIGTERM");
      await exited;
    }
  });

  it("the Bun app answers questions, one JSON line each", () => {
    const r = spawnSync(BUN, ["examples/bun_app.ts", "who founded it", "how long"], {
      cwd: ROOT, env: { ...process.env, APEKIT_MODEL: MODEL, APEKIT_MAX_TOKENS: "5" }, encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.query)).toEqual(["who founded it", "how long"]);
    expect(lines[1].cacheHits).toBe(3);
  });
});
