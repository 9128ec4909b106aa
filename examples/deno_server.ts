/**
 * A Deno HTTP server (Hono) answering questions over cached documents with APE.
 *
 *   deno run -A examples/deno_server.ts            # PORT (8787), APEKIT_MODEL, APEKIT_STORE
 *
 *   POST /contexts   {"texts": ["doc", ...]}                    -> {"contexts": [{"id", "tokens"}]}
 *   POST /generate   {"query", "contexts": [id...], "mode"?, "maxTokens"?}  -> text/event-stream:
 *                    "token" events ({"text"}) then one "done" event ({"text", "stats"})
 *   GET  /stats      cache statistics
 */
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { Ape, type ContextHandle, InvalidArgumentError, loadModel } from "../sdk/mod.ts";

const model = await loadModel(Deno.env.get("APEKIT_MODEL") || undefined);
const ape = await Ape.create(model, {
  prefix: "Answer the question with a short phrase, using the documents below.\n\n",
  store: Deno.env.get("APEKIT_STORE") || "memory:",
});
const known = new Map<string, ContextHandle>();

const app = new Hono();
app.onError((err, c) => c.json({ error: err.message, code: (err as { code?: string }).code ?? "E_INTERNAL" }, err instanceof InvalidArgumentError ? 400 : 500));

app.post("/contexts", async (c) => {
  const { texts } = await c.req.json<{ texts: string[] }>();
  if (!Array.isArray(texts) || texts.some((t) => typeof t !== "string")) throw new InvalidArgumentError("texts must be an array of strings");
  const handles = await ape.cache(texts);
  for (const h of handles) known.set(h.id, h);
  return c.json({ contexts: handles.map((h) => ({ id: h.id, tokens: h.tokens })) });
});

app.post("/generate", async (c) => {
  const body = await c.req.json<{ query: string; contexts?: string[]; mode?: "sequential" | "parallel" | "ape"; maxTokens?: number }>();
  if (typeof body.query !== "string") throw new InvalidArgumentError("query must be a string");
  const contexts = (body.contexts ?? []).map((id) => {
    const h = known.get(id);
    if (!h) throw new InvalidArgumentError(`unknown context id ${id}: POST it to /contexts first`);
    return h;
  });
  const events = ape.generate({ query: body.query, contexts, mode: body.mode, maxTokens: body.maxTokens ?? 64, signal: c.req.raw.signal });
  return streamSSE(c, async (stream) => {
    for await (const ev of events) {
      if (ev.type === "token") await stream.writeSSE({ event: "token", data: JSON.stringify({ text: ev.text }) });
      else await stream.writeSSE({ event: "done", data: JSON.stringify({ text: ev.text, stats: ev.stats }) });
    }
  });
});

app.get("/stats", (c) => c.json(ape.stats()));

const server = Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT") ?? 8787), onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`) }, app.fetch);
Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  await ape.close();
  model.destroy();
  Deno.exit(0);
});
