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
  it("the Deno server caches contexts and streams an answer over SSE", async () => {
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
      const ctx = await (await fetch(`${base}/contexts`, { method: "POST", body: JSON.stringify({ texts: ["the cat sat on the mat", "a dog ran"] }) })).json();
      expect(ctx.contexts).toHaveLength(2);
      const res = await fetch(`${base}/generate`, { method: "POST", body: JSON.stringify({ query: "who sat", contexts: ctx.contexts.map((c: { id: string }) => c.id), maxTokens: 6 }) });
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      const sse = await res.text();
      const done = sse.split("\n\n").find((e) => e.startsWith("event: done"));
      expect(done).toBeDefined();
      const payload = JSON.parse(done!.split("\n").find((l) => l.startsWith("data: "))!.slice(6));
      expect(payload.stats.cacheHits).toBe(2);
      const bad = await fetch(`${base}/generate`, { method: "POST", body: JSON.stringify({ query: "x", contexts: ["nope"] }) });
      expect(bad.status).toBe(400);
      expect((await bad.json()).error).toMatch(/unknown context id/);
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
