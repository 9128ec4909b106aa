/**
 * Embedding `ape serve`'s app in your own Hono server (Deno): your routes beside the OpenAI-compatible
 * API, which is mounted under /ape with its validation, limits, bounded queue and /metrics.
 *
 *   deno run -A examples/deno_server.ts      # PORT (8787), APEKIT_MODEL, APEKIT_STORE, APEKIT_TOKEN
 *
 *   POST /ape/v1/contexts            {"texts": ["doc", ...]}  -> {"contexts": [{"id", "tokens"}]}
 *   POST /ape/v1/chat/completions    OpenAI's chat API (+ "contexts": [{"id"} | {"text"}]); any OpenAI client
 *   GET  /ape/metrics                Prometheus text
 *   POST /ask                        {"question", "documents": [..]} -> {"answer"}: a route of this app,
 *                                    answered through the mounted API (so it queues like the rest)
 */
import { Hono } from "hono";
import { Ape, loadModel } from "../sdk/mod.ts";
import { createApp } from "../sdk/serve/mod.ts";

const model = await loadModel(Deno.env.get("APEKIT_MODEL") || undefined);
const ape = await Ape.create(model, {
  prefix: "Answer the question with a short phrase, using the documents below.\n\n",
  store: Deno.env.get("APEKIT_STORE") || "memory:",
});
const token = Deno.env.get("APEKIT_TOKEN") || undefined;
const api = createApp(ape, { token, maxQueue: 32, limits: { maxTokens: 256 } });

const app = new Hono();
app.get("/", (c) => c.text("an app with a model: POST /ask, or use any OpenAI client on /ape/v1\n"));
app.route("/ape", api.app);
app.post("/ask", async (c) => {
  const { question, documents = [] } = await c.req.json<{ question: string; documents?: string[] }>();
  const res = await api.app.request("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ messages: [{ role: "user", content: question }], contexts: documents.map((text) => ({ text })), max_tokens: 32 }),
    signal: c.req.raw.signal,
  });
  if (!res.ok) return c.newResponse(res.body, res); // the API's own error (400, 429 + Retry-After, ...)
  const out = await res.json();
  return c.json({ answer: out.choices[0].message.content, cachedTokens: out.usage.prompt_tokens_details.cached_tokens });
});

const server = Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT") ?? 8787), onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`) }, app.fetch);
Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  await api.close();
  await ape.close();
  model.destroy();
  Deno.exit(0);
});
