// `ape serve` as users run it (`deno run -A sdk/cli.ts serve ...`, processes), on the tiny qwen2 fixture:
// - scale-out: two servers on one redis-server share contexts: one caches a context, the other serves
//   its id as a store hit (no re-encode) with the same answer, and goes on when the first is stopped;
// - load: autocannon with 100 concurrent connections; every request gets a complete answer or a 429
//   with Retry-After, none is lost, batched answers equal the answer alone, the server stays up and its
//   queue and KV pool return to idle.
// Node only: these tests drive separate server processes (the runtime under test is the servers'
// Deno), so running them again from Bun's or Deno's vitest would repeat the same work; autocannon is
// a Node load generator. Every process started here is stopped, also when a check fails.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { createRequire } from "node:module";
import { runtimeName } from "../src/runtime.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DENO = `${ROOT}node_modules/@deno/linux-x64-glibc/deno`;
const MODEL = `${ROOT}fixtures/models/qwen2`;
const isNode = !runtimeName().startsWith("deno") && !runtimeName().startsWith("bun");
const hasRedis = spawnSync("sh", ["-c", "command -v redis-server"]).status === 0;

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Proc {
  child: ChildProcess;
  url: string;
  log: () => string;
  exited: Promise<number | null>;
}

const started: ChildProcess[] = [];

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const code = await exited;
  clearTimeout(t);
  return code;
}

/** `ape serve` in a Deno process; resolves once it printed its URL (its first stdout line). */
async function serve(args: string[]): Promise<Proc> {
  const child = spawn(DENO, ["run", "-A", "sdk/cli.ts", "serve", "--model", MODEL, "--port", "0", ...args], {
    cwd: ROOT, env: { ...process.env, XDG_RUNTIME_DIR: "/tmp" }, stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(child);
  let out = "", err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  for (let i = 0; i < 600 && !out.includes("\n") && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
  const first = out.split("\n")[0];
  expect(first, `ape serve did not start:\n${out}\n${err}`).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  return { child, url: first, log: () => out + err, exited };
}

const json = (url: string, body: unknown) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

async function metrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return new Map(text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => {
    const i = l.lastIndexOf(" ");
    return [l.slice(0, i), Number(l.slice(i + 1))];
  }));
}

describe.skipIf(!isNode || !hasRedis)("ape serve processes: two servers on one redis-server, and 100 concurrent clients", () => {
  let redis: ChildProcess | undefined;
  let store = "";
  let a: Proc, b: Proc;

  beforeAll(async () => {
    const port = await freePort();
    redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    started.push(redis);
    store = `redis://127.0.0.1:${port}`;
    // both servers start together (each loads the model); the first call to redis waits for it
    [a, b] = await Promise.all([
      serve(["--store", store, "--prefix", "use the text\n"]),
      serve(["--store", store, "--prefix", "use the text\n", "--max-queue", "16", "--max-tokens", "8"]),
    ]);
  });
  afterAll(async () => {
    for (const c of started.reverse()) await stop(c);
  });

  it("a context cached through one server is a store hit on the other, which keeps serving when the first stops", async () => {
    const docs = ["the cat sat on the mat", "a dog ran in the park"];
    const cached = await (await json(`${a.url}/v1/contexts`, { texts: docs })).json() as { contexts: { id: string; tokens: number }[] };
    expect(cached.contexts).toHaveLength(2);
    const ids = cached.contexts.map((c) => ({ id: c.id }));
    const ask = { model: "qwen2", messages: [{ role: "user", content: "what sat on the mat" }], max_tokens: 5, contexts: ids };
    const fromA = await (await json(`${a.url}/v1/chat/completions`, ask)).json();
    const before = await metrics(b.url);
    const resB = await json(`${b.url}/v1/chat/completions`, ask);
    expect(resB.status, await resB.clone().text()).toBe(200);
    const fromB = await resB.json();
    expect(fromB.choices[0].message.content).toBe(fromA.choices[0].message.content);
    const after = await metrics(b.url);
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(delta('apekit_cache_hits_total{tier="store"}')).toBe(2); // loaded from redis ...
    expect(delta("apekit_cache_misses_total")).toBe(0); // ... never re-encoded
    expect((await (await fetch(`${b.url}/v1/contexts/${ids[0].id}`)).json()).tokens).toBe(cached.contexts[0].tokens);

    expect(await stop(a.child)).toBe(0); // a clean shutdown on SIGTERM
    const again = await (await json(`${b.url}/v1/chat/completions`, ask)).json();
    expect(again.choices[0].message.content).toBe(fromA.choices[0].message.content);
    expect(again.usage.ape.cache_misses).toBe(0);
  });

  it("100 concurrent clients: each request gets a complete answer or a 429 with Retry-After; the server stays up", async () => {
    const autocannon = createRequire(import.meta.url)("autocannon");
    const ask = { model: "qwen2", messages: [{ role: "user", content: "who ran" }], max_tokens: 2, contexts: [{ text: "a dog ran in the park" }] };
    for (let i = 0; i < 200 && (await metrics(b.url)).get("apekit_live_requests") !== 0; i++) await new Promise((r) => setTimeout(r, 25));
    const idle = await metrics(b.url);
    const alone = (await (await json(`${b.url}/v1/chat/completions`, ask)).json()).choices[0].message.content; // the answer with no one else running
    const again = await metrics(b.url);
    let complete = 0, refused = 0;
    const bad: string[] = [];
    const amount = 250;
    const result = await autocannon({
      url: b.url, connections: 100, amount, timeout: 30,
      requests: [{
        method: "POST", path: "/v1/chat/completions", headers: { "content-type": "application/json" },
        body: JSON.stringify(ask),
        onResponse: (status: number, body: string, _ctx: unknown, headers: Record<string, string>) => {
          if (status === 200) {
            const j = JSON.parse(body);
            // batched with up to 3 others, greedy decoding gives the answer it gives alone
            if (j.object === "chat.completion" && j.choices[0].message.content === alone && j.choices[0].finish_reason && j.usage.completion_tokens > 0) complete++;
            else bad.push(body.slice(0, 200));
          } else if (status === 429 && Number(headers["retry-after"]) >= 1 && JSON.parse(body).error.type === "rate_limit_exceeded") refused++;
          else bad.push(`${status} ${body.slice(0, 200)}`);
        },
      }],
    });
    console.log(`load: ${amount} requests over 100 connections in ${result.duration} s: ${complete} answered, ${refused} refused (429); p99 latency ${result.latency.p99} ms`);
    expect(bad).toEqual([]);
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(complete + refused).toBe(amount); // none lost
    expect(complete).toBeGreaterThanOrEqual(20); // at least the queue's worth (4 running + 16 waiting)
    expect(refused).toBeGreaterThan(0); // 100 clients overflow a 16-place queue

    expect((await fetch(`${b.url}/health`)).status).toBe(200);
    // finished sequences leave the SDK's decode batch between steps: wait for the last to go
    for (let i = 0; i < 200 && (await metrics(b.url)).get("apekit_live_requests") !== 0; i++) await new Promise((r) => setTimeout(r, 25));
    const m = await metrics(b.url);
    expect(m.get("apekit_queue_depth")).toBe(0);
    expect(m.get("apekit_queue_active")).toBe(0);
    expect(m.get("apekit_queue_rejected_total")! - (again.get("apekit_queue_rejected_total") ?? 0)).toBe(refused);
    expect(m.get('apekit_requests_total{route="/v1/chat/completions",status="200"}')! - again.get('apekit_requests_total{route="/v1/chat/completions",status="200"}')!).toBe(complete);
    // the KV pool is back at its idle level: all it holds more is the one context the load cached
    expect(m.get("apekit_kv_pool_used_bytes")! - idle.get("apekit_kv_pool_used_bytes")!).toBe(
      m.get('apekit_cache_bytes{tier="gpu"}')! - idle.get('apekit_cache_bytes{tier="gpu"}')!,
    );
    expect(m.get("apekit_kv_pool_blocks")! - idle.get("apekit_kv_pool_blocks")!).toBe(m.get('apekit_cache_entries{tier="gpu"}')! - idle.get('apekit_cache_entries{tier="gpu"}')!);
    expect(m.get("apekit_live_requests")).toBe(0);
    expect(m.get("apekit_pinned_contexts")).toBe(0);
    const last = await json(`${b.url}/v1/chat/completions`, { messages: [{ role: "user", content: "who ran" }], max_tokens: 8 });
    expect(last.status).toBe(200);
    expect(b.child.exitCode).toBeNull();
  });
});
