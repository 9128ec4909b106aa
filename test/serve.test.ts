// `ape serve`'s app (sdk/serve/) in-process on the tiny qwen2 fixture, served by this runtime's own
// server (Deno.serve, Bun.serve, @hono/node-server) and driven by the official `openai` client: its
// answers must be the SDK's own (Ape.generateText on the same request), plain and streamed; then
// contexts, validation, auth, the bounded queue and client disconnects. Every server is stopped.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { Ape, type ApeModel, type KvStore, loadModel, openStore } from "../sdk/mod.ts";
import { type ApeApp, checkBinding, createApp, listen, type Listener } from "../sdk/serve/mod.ts";
import { runtimeName } from "../src/runtime.ts";
import { Template } from "@huggingface/jinja";
import { promptLayout } from "../sdk/prompt.ts";
import { splitConversation } from "../src/chat/template.ts";

const MODEL = new URL("../fixtures/models/qwen2", import.meta.url).pathname;
const DOCS = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning"];
const QUERY = "what sat on the mat";
const PREFIX = "use the text\n";

/** A memory store that records every key it is asked about. */
async function recordingStore(): Promise<KvStore & { keys: string[] }> {
  const inner = await openStore("memory:");
  const keys: string[] = [];
  const note = (k: string) => (keys.push(k), k);
  return {
    url: inner.url, keys,
    get: (k) => inner.get(note(k)), put: (k, v) => inner.put(note(k), v), delete: (k) => inner.delete(note(k)),
    list: () => inner.list(), close: () => inner.close(),
  };
}

/** Parses the Prometheus text format strictly enough to catch malformed output: name{labels} value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const types = new Map<string, string>();
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ")) continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      expect(types.has(t[1]), `TYPE ${t[1]} twice`).toBe(false);
      types.set(t[1], t[2]);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/.exec(line);
    expect(m, `bad metrics line: ${line}`).not.toBeNull();
    const family = m![1].replace(/_(bucket|sum|count)$/, "");
    expect(types.has(m![1]) || types.get(family) === "histogram", `sample before its TYPE: ${line}`).toBe(true);
    out.set(m![1] + (m![2] ?? ""), Number(m![3]));
  }
  return out;
}

describe(`ape serve (sdk/serve) on ${runtimeName()}`, () => {
  let model: ApeModel;
  let ape: Ape;
  let store: KvStore & { keys: string[] };
  let server: ApeApp;
  let l: Listener;
  let client: OpenAI;
  const post = (path: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) =>
    fetch(l.url + path, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });

  beforeAll(async () => {
    model = await loadModel(MODEL);
    store = await recordingStore();
    ape = await Ape.create(model, { prefix: PREFIX, store });
    server = createApp(ape, { store, maxQueue: 8, limits: { maxContexts: 4, maxContextTokens: 64, maxQueryTokens: 64, maxTokens: 48, bodyBytes: 16 << 10 } });
    l = await listen(server.app.fetch, { hostname: "127.0.0.1", port: 0 });
    client = new OpenAI({ baseURL: `${l.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    await l?.close();
    await server?.close();
    await ape?.close();
    await store?.close();
    model?.destroy();
  });

  it("chat completions through the openai client are the SDK's answer, plain and streamed, with usage", async () => {
    const ref = await ape.generateText({ query: QUERY, contexts: DOCS, maxTokens: 6 }); // caches DOCS too
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["qwen2"]);
    const req = { model: "qwen2", messages: [{ role: "user" as const, content: QUERY }], max_tokens: 6, contexts: DOCS.map((text) => ({ text })) };
    const plain = await client.chat.completions.create(req as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(plain.object).toBe("chat.completion");
    expect(plain.choices[0].message.content).toBe(ref.text);
    expect(plain.choices[0].finish_reason).toBe(ref.stats.stopReason === "length" ? "length" : "stop");
    const contextTokens = ref.stats.contextTokens;
    expect(plain.usage).toMatchObject({
      prompt_tokens: ref.stats.promptTokens + contextTokens, completion_tokens: ref.ids.length,
      total_tokens: ref.stats.promptTokens + contextTokens + ref.ids.length, prompt_tokens_details: { cached_tokens: contextTokens },
    });
    const ext = (plain.usage as unknown as { ape: { cache_hits: number; cache_misses: number; time_to_first_token_ms: number; mode: string } }).ape;
    expect(ext).toMatchObject({ mode: "ape", cache_hits: 3, cache_misses: 0 });
    expect(ext.time_to_first_token_ms).toBeGreaterThan(0);

    const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } } as OpenAI.ChatCompletionCreateParamsStreaming);
    let text = "", finish: string | null = null, usage: OpenAI.CompletionUsage | undefined, chunks = 0;
    const ids = new Set<string>();
    for await (const ch of stream) {
      chunks++;
      expect(ch.object).toBe("chat.completion.chunk");
      ids.add(ch.id);
      if (ch.choices[0]) {
        text += ch.choices[0].delta.content ?? "";
        finish = ch.choices[0].finish_reason ?? finish;
      }
      if (ch.usage) usage = ch.usage;
    }
    expect(chunks).toBeGreaterThan(2);
    expect(ids.size).toBe(1);
    expect(text).toBe(ref.text);
    expect(finish).toBe(plain.choices[0].finish_reason);
    expect(usage?.completion_tokens).toBe(ref.ids.length);

    // APE's own knobs travel in `ape`: sequential mode is the SDK's sequential answer
    const seq = await ape.generateText({ query: QUERY, contexts: DOCS, maxTokens: 6, mode: "sequential" });
    const viaServer = await client.chat.completions.create({ ...req, ape: { mode: "sequential" } } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(viaServer.choices[0].message.content).toBe(seq.text);
    expect(viaServer.usage?.prompt_tokens).toBe(seq.stats.promptTokens);
    const tuned = await ape.generateText({ query: QUERY, contexts: DOCS, maxTokens: 6, temperature: 0.5, scale: 0.7 });
    const tunedServer = await client.chat.completions.create({ ...req, ape: { temperature: 0.5, scale: 0.7 } } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(tunedServer.choices[0].message.content).toBe(tuned.text);
  });

  it("multi-turn chat: the conversation is rendered by the chat template after the contexts, as the SDK does, plain and streamed", async () => {
    // the layout's query part is the template's own rendering of the conversation with the documents inline
    const layout = promptLayout(model, { prefix: PREFIX });
    const turns = [
      { role: "user" as const, content: QUERY }, { role: "assistant" as const, content: "the cat" }, { role: "user" as const, content: "and the dog?" },
    ];
    const docsText = DOCS.map((d) => `${d}\n\n`).join("");
    const render = (messages: { role: string; content: string }[]) => new Template(model.chatTemplate!).render({ messages, add_generation_prompt: true, bos_token: "", eos_token: "" });
    const tok = (t: string) => Array.from(model.tokenizer.encode(t, { addSpecialTokens: false, allowSpecial: true }));
    const after = (full: string) => tok(full.slice(full.indexOf(docsText) + docsText.length));
    const full = render([{ role: "user", content: `${PREFIX}${docsText}Question: ${QUERY}` }, ...turns.slice(1)]);
    expect(Array.from(layout.conversationIds(turns))).toEqual(after(full));
    expect(tok(full.slice(0, full.indexOf(docsText)))).toEqual(Array.from(layout.prefixIds));
    expect(layout.conversationIds(turns.slice(0, 1))).toEqual(layout.queryIds(QUERY)); // one user turn: the single-question layout
    // a system message other than the server's: its own turn after the documents' turn
    const withSystem = [{ role: "system" as const, content: "answer in one word" }, ...turns];
    const sysFull = render([{ role: "user", content: `${PREFIX}${docsText}` }, ...withSystem]);
    expect(Array.from(layout.conversationIds(withSystem))).toEqual(after(sysFull));
    // a template that refuses the conversation (a system message only first) is a clear invalid-argument error
    const strict = "{% for m in messages %}{% if m.role == 'system' and not loop.first %}{{ raise_exception('system first only') }}{% endif %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>";
    expect(splitConversation(strict, {}, turns).tail.filter((p) => p.content).map((p) => p.text)).toEqual(turns.map((t) => t.content));
    expect(() => splitConversation(strict, {}, withSystem)).toThrow(expect.objectContaining({ code: "E_INVALID_ARGUMENT", message: expect.stringMatching(/refuses the conversation/) }));

    const res = await post("/v1/contexts", { texts: DOCS });
    const ids = (await res.json() as { contexts: { id: string }[] }).contexts.map((c) => ({ id: c.id }));
    const handles = await ape.cache(DOCS);
    expect(handles.map((h) => h.id)).toEqual(ids.map((c) => c.id));
    for (const messages of [turns, withSystem]) {
      const ref = await ape.generateText({ messages, contexts: handles, maxTokens: 6 });
      expect(ref.ids.length).toBeGreaterThan(0);
      const req = { model: "qwen2", messages, max_tokens: 6, contexts: ids };
      const plain = await client.chat.completions.create(req as OpenAI.ChatCompletionCreateParamsNonStreaming);
      expect(plain.choices[0].message.content).toBe(ref.text);
      expect(plain.usage?.prompt_tokens).toBe(ref.stats.promptTokens + ref.stats.contextTokens);
      expect(plain.usage?.prompt_tokens_details?.cached_tokens).toBe(ref.stats.contextTokens);
      const stream = await client.chat.completions.create({ ...req, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
      let text = "";
      for await (const ch of stream) text += ch.choices[0]?.delta.content ?? "";
      expect(text).toBe(ref.text);
      const seq = await ape.generateText({ messages, contexts: handles, maxTokens: 6, mode: "sequential" });
      const seqServer = await client.chat.completions.create({ ...req, ape: { mode: "sequential" } } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      expect(seqServer.choices[0].message.content).toBe(seq.text);
      expect(seqServer.usage?.prompt_tokens).toBe(seq.stats.promptTokens);
    }
    // the conversation changes the answer's prompt: more query tokens than its last question alone
    const last = await ape.generateText({ query: turns[2].content, contexts: handles, maxTokens: 1 });
    const conv = await ape.generateText({ messages: turns, contexts: handles, maxTokens: 1 });
    expect(conv.stats.promptTokens).toBeGreaterThan(last.stats.promptTokens + 4);
    // a first system message equal to the server's --system is the shared prefix's own: the single-question answer
    const sys = await Ape.create(model, { prefix: PREFIX, system: "answer from the text" });
    const sysApp = createApp(sys);
    try {
      const ask = (messages: unknown) => sysApp.app.request("/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages, max_tokens: 4 }) });
      const own = await (await ask([{ role: "system", content: "answer from the text" }, turns[0]])).json();
      expect(own.choices[0].message.content).toBe((await sys.generateText({ query: QUERY, maxTokens: 4 })).text);
      expect(own.usage.prompt_tokens).toBe((await sys.generateText({ query: QUERY, maxTokens: 1 })).stats.promptTokens);
      const other = await (await ask([{ role: "developer", content: "be terse" }, turns[0]])).json();
      expect(other.usage.prompt_tokens).toBe((await sys.generateText({ messages: [{ role: "system", content: "be terse" }, turns[0]], maxTokens: 1 })).stats.promptTokens);
    } finally {
      await sysApp.close();
      await sys.close();
    }
    // a server without a chat template (raw layout) takes one user message
    const raw = await Ape.create(model, { prefix: PREFIX, raw: true });
    const rawApp = createApp(raw);
    try {
      const r = await rawApp.app.request("/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages: turns, max_tokens: 2 }) });
      expect(r.status).toBe(400);
      expect((await r.json()).error.message).toMatch(/one user message/);
    } finally {
      await rawApp.close();
      await raw.close();
    }
  });

  it("completions: the prompt is the question, plain and streamed; seeded sampling is reproducible", async () => {
    const ref = await ape.generateText({ query: "who ran", contexts: [DOCS[1]], maxTokens: 5 });
    const req = { model: "qwen2", prompt: "who ran", max_tokens: 5, contexts: [{ text: DOCS[1] }] };
    const plain = await client.completions.create(req as OpenAI.CompletionCreateParamsNonStreaming);
    expect(plain.object).toBe("text_completion");
    expect(plain.choices[0].text).toBe(ref.text);
    const stream = await client.completions.create({ ...req, stream: true } as OpenAI.CompletionCreateParamsStreaming);
    let text = "";
    for await (const ch of stream) text += ch.choices[0]?.text ?? "";
    expect(text).toBe(ref.text);
    const sampled = await ape.generateText({ query: "who ran", contexts: [DOCS[1]], maxTokens: 5, sampling: { temperature: 1.5, topP: 0.9, seed: 7 } });
    const viaServer = await client.completions.create({ ...req, temperature: 1.5, top_p: 0.9, seed: 7 } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(viaServer.choices[0].text).toBe(sampled.text);
  });

  it("contexts: POST caches, ids name them in requests, GET / DELETE; non-hash ids never reach the store", async () => {
    const res = await post("/v1/contexts", { texts: DOCS.slice(0, 2) });
    expect(res.status).toBe(200);
    const { contexts } = await res.json() as { contexts: { id: string; tokens: number }[] };
    const handles = await ape.cache(DOCS.slice(0, 2)); // the SDK's own ids and token counts
    expect(contexts.map((c) => [c.id, c.tokens])).toEqual(handles.map((h) => [h.id, h.tokens]));
    const ref = await ape.generateText({ query: QUERY, contexts: handles, maxTokens: 4 });
    const byId = await client.chat.completions.create({
      model: "qwen2", messages: [{ role: "user", content: QUERY }], max_tokens: 4, contexts: contexts.map((c) => ({ id: c.id })),
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(byId.choices[0].message.content).toBe(ref.text);
    expect((byId.usage as unknown as { ape: { cache_hits: number } }).ape.cache_hits).toBe(2);

    const got = await fetch(`${l.url}/v1/contexts/${contexts[0].id}`);
    expect(await got.json()).toMatchObject({ id: contexts[0].id, tokens: contexts[0].tokens });
    const before = ape.stats();
    const del = await fetch(`${l.url}/v1/contexts/${contexts[0].id}`, { method: "DELETE" });
    expect(await del.json()).toMatchObject({ id: contexts[0].id, deleted: true });
    expect(await store.get(contexts[0].id)).toBeUndefined();
    // its GPU block and host copy went too: the KV pool has the block back
    const after = ape.stats();
    expect(after.entries).toEqual({ gpu: before.entries.gpu - 1, host: before.entries.host - 1 });
    expect(after.pool.liveBlocks).toBe(before.pool.liveBlocks - 1);
    expect(after.pool.freeTokens).toBeGreaterThanOrEqual(before.pool.freeTokens + contexts[0].tokens);
    expect((await fetch(`${l.url}/v1/contexts/${contexts[0].id}`)).status).toBe(404);
    const gone = await post("/v1/chat/completions", { messages: [{ role: "user", content: "x" }], contexts: [{ id: contexts[0].id }] });
    expect(gone.status).toBe(404);
    expect((await gone.json()).error.code).toBe("context_not_found");
    expect((await fetch(`${l.url}/v1/contexts/${contexts[0].id}`, { method: "DELETE" })).status).toBe(404);
    // its text is encoded anew, not served from a stale copy
    const again = await client.chat.completions.create({
      model: "qwen2", messages: [{ role: "user", content: QUERY }], max_tokens: 4, contexts: [{ text: DOCS[0] }],
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect((again.usage as unknown as { ape: { cache_misses: number } }).ape.cache_misses).toBe(1);

    store.keys.length = 0;
    const hostile = ["..%2F..%2Fetc%2Fpasswd", "ABCDEF0123456789ABCDEF0123456789ABCDEF01", "a".repeat(41), "abc.text"];
    for (const id of hostile) {
      expect((await fetch(`${l.url}/v1/contexts/${id}`)).status).toBe(400);
      expect((await fetch(`${l.url}/v1/contexts/${id}`, { method: "DELETE" })).status).toBe(400);
      const r = await post("/v1/chat/completions", { messages: [{ role: "user", content: "x" }], contexts: [{ id: decodeURIComponent(id) }] });
      expect(r.status).toBe(400);
      expect((await r.json()).error.message).toMatch(/40 lowercase hex digits/);
    }
    expect(store.keys).toEqual([]);
  });

  it("DELETE of a context a running request attends: the request finishes unharmed, then the KV pool is back at idle", async () => {
    const text = "fish swim in the cold river";
    const idle = ape.stats().pool;
    const ref = await ape.generateText({ query: QUERY, contexts: [text], maxTokens: 8 });
    const posted = await post("/v1/contexts", { texts: [text] });
    const [{ id }] = (await posted.json() as { contexts: { id: string }[] }).contexts;
    const running = ape.generate({ query: QUERY, contexts: [(await ape.cache([text]))[0]], maxTokens: 8 });
    const first = await running.next(); // its first token is out: the context is pinned until it ends
    expect(ape.stats().pinnedContexts).toBe(1);
    const del = await fetch(`${l.url}/v1/contexts/${id}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    const mid = ape.stats();
    expect(mid.pool.liveBlocks).toBe(idle.liveBlocks + 2); // its context block (deleted, still attended) and its own
    const gone = await post("/v1/chat/completions", { messages: [{ role: "user", content: QUERY }], contexts: [{ id }] });
    expect(gone.status).toBe(404);
    let rest = "";
    for await (const ev of running) if (ev.type === "done") rest = ev.text;
    expect(first.done).toBe(false);
    expect(rest).toBe(ref.text);
    const end = ape.stats();
    expect(end.pinnedContexts).toBe(0);
    expect([end.pool.liveBlocks, end.pool.freeTokens]).toEqual([idle.liveBlocks, idle.freeTokens]);
  });

  it("malformed, oversized and hostile bodies get clear 400 / 413 / 415 answers", async () => {
    const cases: [unknown, number, RegExp][] = [
      ["{not json", 400, /Malformed JSON/],
      ["[1,2]", 400, /body|expected object/i],
      [{ messages: [] }, 400, /messages: messages must not be empty/],
      [{ messages: [{ role: "wizard", content: "x" }] }, 400, /messages\.0\.role/],
      [{ messages: [{ role: "user", content: 3 }] }, 400, /content must be a string or an array of text parts/],
      [{ messages: [{ role: "user", content: "x" }], max_tokens: 49 }, 400, /max_tokens 49 is over this server's limit of 48/],
      [{ messages: [{ role: "user", content: "x" }], max_tokens: -1 }, 400, /max_tokens/],
      [{ messages: [{ role: "user", content: "x" }], n: 2 }, 400, /n must be 1/],
      [{ messages: [{ role: "user", content: "x" }], contexts: DOCS.concat(DOCS).map((text) => ({ text })) }, 400, /6 contexts, more than this server's limit of 4/],
      [{ messages: [{ role: "user", content: "x" }], contexts: [{ text: "word ".repeat(200) }] }, 400, /more than this server's limit of 64/],
      [{ messages: [{ role: "user", content: "word ".repeat(200) }] }, 400, /messages: \d+ tokens, more than this server's limit of 64/],
      [{ messages: [{ role: "user", content: "x" }], ape: { mode: "fast" } }, 400, /ape\.mode/],
      [{ messages: [{ role: "user", content: "x" }], ape: { temperature: 0 } }, 400, /ape\.temperature/],
      [{ messages: [{ role: "system", content: "be brief" }, { role: "assistant", content: "hi" }] }, 400, /messages: no user message/],
      [{ messages: [{ role: "user", content: "word ".repeat(40) }, { role: "assistant", content: "word ".repeat(40) }] }, 400, /messages: \d+ tokens, more than this server's limit of 64/],
      ['{"__proto__": {"polluted": true}, "messages": [{"role": "user", "content": "x"}], "contexts": {"0": {"text": "a"}}}', 400, /contexts/],
      [{ prompt: "x" }, 400, /messages/],
    ];
    for (const [body, status, message] of cases) {
      const r = await post("/v1/chat/completions", body);
      const j = await r.json() as { error: { message: string; type: string } };
      expect([r.status, j.error.message], JSON.stringify(body).slice(0, 80)).toEqual([status, expect.stringMatching(message)]);
      expect(j.error.type).toBe("invalid_request_error");
    }
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    const big = await post("/v1/chat/completions", { messages: [{ role: "user", content: "x".repeat(20_000) }] });
    expect(big.status).toBe(413);
    expect((await big.json()).error.code).toBe("body_too_large");
    // a chunked body (no Content-Length) is cut off at the limit too
    const chunks = new ReadableStream({
      start(c) {
        for (let i = 0; i < 40; i++) c.enqueue(new TextEncoder().encode(" ".repeat(1024)));
        c.close();
      },
    });
    const chunked = await fetch(`${l.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: chunks, duplex: "half" } as RequestInit);
    expect(chunked.status).toBe(413);
    const text = await post("/v1/completions", "prompt=x", { "content-type": "text/plain" });
    expect(text.status).toBe(415);
    expect((await post("/v1/nope", {})).status).toBe(404);
    // the server is still answering
    expect((await client.completions.create({ model: "qwen2", prompt: "hi", max_tokens: 2 })).choices[0].text).toBeTypeOf("string");
  });

  it("bearer token: required when set (constant-time compare), /health stays open; no token binds loopback only", async () => {
    const secured = createApp(ape, { token: "s3cret-token" });
    try {
      const ask = (auth?: string) => secured.app.request("/v1/models", { headers: auth ? { authorization: auth } : {} });
      expect((await ask()).status).toBe(401);
      expect((await ask("Bearer s3cret-toke")).status).toBe(401);
      expect((await ask("Bearer s3cret-token2")).status).toBe(401);
      expect((await ask("Basic s3cret-token")).status).toBe(401);
      const no = await ask("Bearer wrong");
      expect(no.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect((await no.json()).error.type).toBe("authentication_error");
      expect((await ask("Bearer s3cret-token")).status).toBe(200);
      expect((await secured.app.request("/health")).status).toBe(200);
      const sdk = new OpenAI({ baseURL: "http://in-process/v1", apiKey: "s3cret-token", fetch: async (u: string | URL | Request, i?: RequestInit) => await secured.app.request(String(u), i) });
      expect((await sdk.models.list()).data).toHaveLength(1);
    } finally {
      await secured.close();
    }
    expect(() => checkBinding("0.0.0.0", undefined)).toThrow(/without --token/);
    expect(() => checkBinding("192.168.1.10", undefined)).toThrow(/without --token/);
    expect(() => checkBinding("0.0.0.0", "s3cret-token")).not.toThrow();
    expect(() => checkBinding("127.0.0.1", undefined)).not.toThrow();
    expect(() => checkBinding("::1", undefined)).not.toThrow();
  });

  it("a full queue answers 429 with Retry-After at once; every other request completes", async () => {
    const busy = createApp(ape, { parallel: 1, maxQueue: 1 });
    const bl = await listen(busy.app.fetch, { hostname: "127.0.0.1", port: 0 });
    try {
      const rs = await Promise.all(Array.from({ length: 6 }, () =>
        fetch(`${bl.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "hi", max_tokens: 40 }) })));
      const statuses = rs.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 200, 429, 429, 429, 429]);
      for (const r of rs) {
        const j = await r.json();
        if (r.status === 429) {
          expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
          expect(j.error.type).toBe("rate_limit_exceeded");
        } else expect(j.choices[0].finish_reason).toMatch(/stop|length/);
      }
      const m = parseMetrics(await (await busy.app.request("/metrics")).text());
      expect(m.get("apekit_queue_rejected_total")).toBe(4);
      expect(m.get('apekit_requests_total{route="/v1/completions",status="429"}')).toBe(4);
    } finally {
      await bl.close();
      await busy.close();
    }
  });

  it("a client that disconnects cancels its generation and frees its KV (a small pool does not fill up); a full pool is 503", async () => {
    // a KV pool with room for about two live requests: leaked blocks would make later requests fail
    const c = model.model.config;
    const small = await Ape.create(model, { prefix: PREFIX, kvDtype: "f32", gpuBudgetBytes: 2 * 110 * c.layers * c.kvHeads * c.headDim * 2 * 4 });
    const app = createApp(small, { limits: { maxTokens: 60 } });
    // a prompt whose answer runs to max_tokens (no early end of sequence), so a cancelled one never completes
    let prompt: string | undefined;
    for (const p of ["more", "go on", "what", "a b c"]) {
      if ((await small.generateText({ query: p, maxTokens: 60 })).stats.stopReason === "length") {
        prompt = p;
        break;
      }
    }
    expect(prompt, "no fixture prompt runs to 60 tokens").toBeDefined();
    const sl = await listen(app.app.fetch, { hostname: "127.0.0.1", port: 0 });
    try {
      for (let i = 0; i < 5; i++) {
        const ac = new AbortController();
        const r = await fetch(`${sl.url}/v1/completions`, {
          method: "POST", headers: { "content-type": "application/json" }, signal: ac.signal,
          body: JSON.stringify({ prompt, max_tokens: 60, stream: true }),
        });
        const reader = r.body!.getReader();
        await reader.read(); // the first token has arrived: the generation is running
        ac.abort();
        await reader.cancel().catch(() => {});
      }
      const metrics = async () => parseMetrics(await (await app.app.request("/metrics")).text());
      // idle: the probes above have left the SDK's batch (a finished sequence leaves it between steps)
      for (let i = 0; i < 200 && (await metrics()).get("apekit_live_requests") !== 0; i++) await new Promise((r) => setTimeout(r, 25));
      const idle = await metrics();
      expect(idle.get("apekit_kv_pool_used_bytes")).toBeGreaterThan(0); // the shared prefix
      const until = async (active: number) => {
        for (let i = 0; i < 200 && (await metrics()).get("apekit_queue_active") !== active; i++) await new Promise((r) => setTimeout(r, 25));
      };
      // a plain (not streamed) request whose client goes away while it runs
      for (let i = 0; i < 2; i++) {
        await until(0);
        const ac = new AbortController();
        const pending = fetch(`${sl.url}/v1/completions`, {
          method: "POST", headers: { "content-type": "application/json" }, signal: ac.signal, body: JSON.stringify({ prompt, max_tokens: 60 }),
        }).catch((e) => e);
        await until(1);
        ac.abort();
        expect(await pending).toBeInstanceOf(Error);
      }
      await until(0);
      const m = await metrics();
      expect(m.get("apekit_queue_active")).toBe(0);
      expect(m.get("apekit_client_disconnects_total")).toBe(7);
      expect(m.get('apekit_tokens_total{kind="completion"}')).toBe(0); // none ran to its end
      // full-length requests, one after another, still fit: the cancelled ones gave their blocks back
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${sl.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt, max_tokens: 60 }) });
        expect(r.status, await r.clone().text()).toBe(200);
        expect((await r.json()).usage.completion_tokens).toBeGreaterThan(0);
      }
      // three at once do not fit the pool together: the last is told to come back (503 + Retry-After), not 413
      const three = await Promise.all([0, 1, 2].map(() =>
        fetch(`${sl.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt, max_tokens: 60 }) })));
      expect(three.map((r) => r.status).sort()).toEqual([200, 200, 503]);
      const busy = three.find((r) => r.status === 503)!;
      expect(Number(busy.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect((await busy.json()).error.code).toBe("kv_pool_busy");
      for (let i = 0; i < 200 && (await metrics()).get("apekit_live_requests") !== 0; i++) await new Promise((r) => setTimeout(r, 25));
      const after = await metrics();
      expect(after.get("apekit_kv_pool_used_bytes")).toBe(idle.get("apekit_kv_pool_used_bytes")); // back to idle
      expect(after.get("apekit_kv_pool_blocks")).toBe(idle.get("apekit_kv_pool_blocks"));
      expect(after.get("apekit_live_requests")).toBe(0);
    } finally {
      await sl.close();
      await app.close();
      await small.close();
    }
  });

  it("/metrics is Prometheus text: requests, tokens, time-to-first-token histogram, cache tiers, queue", async () => {
    const res = await fetch(`${l.url}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(await res.text());
    const st = ape.stats();
    expect(m.get('apekit_cache_hits_total{tier="gpu"}')).toBe(st.hits.gpu);
    expect(m.get("apekit_cache_misses_total")).toBe(st.misses);
    expect(m.get('apekit_cache_entries{tier="gpu"}')).toBe(st.entries.gpu);
    expect(m.get('apekit_requests_total{route="/v1/chat/completions",status="200"}')).toBeGreaterThanOrEqual(5);
    expect(m.get('apekit_requests_total{route="/v1/chat/completions",status="400"}')).toBeGreaterThanOrEqual(15);
    const n = m.get("apekit_time_to_first_token_seconds_count")!;
    expect(n).toBeGreaterThanOrEqual(8);
    expect(m.get('apekit_time_to_first_token_seconds_bucket{le="+Inf"}')).toBe(n);
    expect(m.get('apekit_time_to_first_token_seconds_bucket{le="0.025"}')!).toBeLessThanOrEqual(m.get('apekit_time_to_first_token_seconds_bucket{le="60"}')!);
    expect(m.get('apekit_tokens_total{kind="completion"}')).toBeGreaterThan(0);
    expect(m.get("apekit_queue_depth")).toBe(0);
  });
});
