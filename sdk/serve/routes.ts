/**
 * The non-generation routes of `ape serve`: contexts (`POST /v1/contexts`, `GET` / `DELETE
 * /v1/contexts/:id`), `GET /v1/models`, `GET /health` and `GET /metrics` (Prometheus text).
 *
 * @example
 * ```ts
 * import { contextRoutes, opsRoutes } from "./routes.ts";
 * // app.route("/v1", contextRoutes(deps)); app.route("/", opsRoutes(deps, "model", Date.now()));
 * ```
 */
import { Hono } from "hono";
import type { Gauge } from "./metrics.ts";
import type { Deps } from "./generate.ts";
import { HttpError } from "./errors.ts";
import { contextsBody } from "./schemas.ts";
import { jsonBody } from "./validate.ts";

export function contextRoutes(deps: Deps): Hono {
  const app = new Hono();
  app.post("/contexts", jsonBody(contextsBody), async (c) => {
    const { texts } = c.req.valid("json");
    const slot = await deps.queue.acquire(c.req.raw.signal);
    try {
      const handles = await deps.contexts.add(texts);
      deps.metrics.tokens(0, 0, handles.reduce((n, h) => n + h.tokens, 0));
      return c.json({ object: "list", contexts: handles.map((h) => ({ id: h.id, object: "context", tokens: h.tokens })) });
    } finally {
      slot.release();
    }
  });
  const notFound = (id: string) => new HttpError(404, "not_found", `unknown context id ${id}`, { param: "id", code: "context_not_found" });
  app.get("/contexts/:id", async (c) => {
    const id = c.req.param("id");
    const got = await deps.contexts.get(id);
    if (!got) throw notFound(id);
    return c.json({ ...got, object: "context" });
  });
  app.delete("/contexts/:id", async (c) => {
    const id = c.req.param("id");
    if (!(await deps.contexts.delete(id))) throw notFound(id);
    return c.json({ id, object: "context", deleted: true });
  });
  return app;
}

/** Figures read at scrape time: the SDK's cache tiers and KV pool, the queue. */
export function scrapeGauges(deps: Deps): Gauge[] {
  const st = deps.ape.stats();
  const p = st.pool;
  const tiers = (o: Record<string, number>) => Object.entries(o).map(([tier, value]) => ({ labels: { tier }, value }));
  return [
    { name: "apekit_cache_hits_total", help: "Context cache hits, by tier.", type: "counter", values: tiers(st.hits) },
    { name: "apekit_cache_misses_total", help: "Contexts encoded because no tier held them.", type: "counter", values: [{ value: st.misses }] },
    { name: "apekit_cache_rejected_total", help: "Store entries found corrupt or mismatched (re-encoded).", type: "counter", values: [{ value: st.rejected }] },
    { name: "apekit_cache_evictions_total", help: "Context cache evictions, by tier.", type: "counter", values: tiers(st.evictions) },
    { name: "apekit_cache_bytes", help: "Bytes of cached contexts resident, by tier.", type: "gauge", values: tiers(st.bytes) },
    { name: "apekit_cache_entries", help: "Cached contexts resident, by tier.", type: "gauge", values: tiers(st.entries) },
    { name: "apekit_queue_depth", help: "Requests waiting for a slot.", type: "gauge", values: [{ value: deps.queue.depth }] },
    { name: "apekit_queue_active", help: "Requests running (holding a slot).", type: "gauge", values: [{ value: deps.queue.active }] },
    { name: "apekit_queue_capacity", help: "Slots (parallel) and queue places (waiting).", type: "gauge", values: [{ labels: { kind: "parallel" }, value: deps.queue.parallel }, { labels: { kind: "waiting" }, value: deps.queue.maxQueue }] },
    { name: "apekit_queue_rejected_total", help: "Requests answered 429 because the queue was full.", type: "counter", values: [{ value: deps.queue.rejected }] },
    { name: "apekit_live_requests", help: "Requests decoding now (in the SDK's batch).", type: "gauge", values: [{ value: st.liveRequests }] },
    { name: "apekit_pinned_contexts", help: "Cached contexts pinned on the GPU by running requests.", type: "gauge", values: [{ value: st.pinnedContexts }] },
    { name: "apekit_kv_pool_capacity_bytes", help: "GPU KV pool size.", type: "gauge", values: [{ value: p.capacityTokens * p.bytesPerToken }] },
    { name: "apekit_kv_pool_used_bytes", help: "GPU KV pool bytes in use (shared prefix, cached contexts, live requests).", type: "gauge", values: [{ value: (p.capacityTokens - p.freeTokens) * p.bytesPerToken }] },
    { name: "apekit_kv_pool_blocks", help: "GPU KV pool blocks allocated.", type: "gauge", values: [{ value: p.liveBlocks }] },
  ];
}

export function opsRoutes(deps: Deps, modelName: string, started: number): Hono {
  const app = new Hono();
  app.get("/v1/models", (c) => c.json({ object: "list", data: [{ id: modelName, object: "model", created: Math.floor(started / 1000), owned_by: "apekit" }] }));
  app.get("/health", (c) => c.json({ status: "ok", model: modelName, queue: { active: deps.queue.active, waiting: deps.queue.depth } }));
  app.get("/metrics", (c) => {
    c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(deps.metrics.render(scrapeGauges(deps)));
  });
  return app;
}
