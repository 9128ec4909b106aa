/**
 * The `ape serve` app: a Hono app over one `Ape`, runnable on Deno, Bun and Node (see listen.ts) or
 * mounted inside a user's own Hono server (examples/deno_server.ts).
 *
 * Middleware, in order: errors in OpenAI's shape; request counting for /metrics; bearer-token auth
 * (when a token is set; /health stays open); a body-size limit (413). Then the routes: openai.ts
 * (chat, completions; shapes.ts and sse.ts for the responses) and routes.ts (contexts, models, health,
 * metrics). Requests are checked by schemas.ts / validate.ts and limits.ts, queued by queue.ts.
 *
 * @example
 * ```ts
 * import { Ape, loadModel } from "../mod.ts";
 * import { createApp } from "./app.ts";
 * const model = await loadModel("fixtures/models/qwen2");
 * const ape = await Ape.create(model);
 * const server = createApp(ape, { maxQueue: 16 });
 * const res = await server.app.request("/health");
 * console.log(res.status); // 200
 * await server.close();
 * await ape.close();
 * model.destroy();
 * ```
 */
import { basename } from "node:path";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { routePath } from "hono/route";
import { type Ape, type KvStore, openStore } from "../mod.ts";
import { bearerAuth } from "./auth.ts";
import { ContextRegistry } from "./contexts.ts";
import { HttpError, toHttpError } from "./errors.ts";
import type { Deps } from "./generate.ts";
import { type Limits, resolveLimits } from "./limits.ts";
import { Metrics } from "./metrics.ts";
import { openaiRoutes } from "./openai.ts";
import { AdmissionQueue } from "./queue.ts";
import { contextRoutes, opsRoutes } from "./routes.ts";

export interface AppOptions {
  /** Bearer token every request (but /health) must carry; none: no auth (bind to loopback only). */
  token?: string;
  /** The model's name in /v1/models and responses (default: the model file's or folder's name). */
  modelName?: string;
  /** Generations running at once (default 4; the SDK batches their decode steps). */
  parallel?: number;
  /** Requests waiting at most; more are answered 429 with Retry-After (default 64). */
  maxQueue?: number;
  limits?: Partial<Limits>;
  /**
   * Where context sidecars (text and token count per id) live, so servers sharing a store can serve
   * each other's context ids. Default: the Ape's store when it was given as a KvStore, else one opened
   * from its store URL.
   */
  store?: KvStore;
}

export interface ApeApp {
  app: Hono;
  deps: Deps;
  /** Closes what the app opened (a store it opened itself); the Ape stays the caller's. */
  close(): Promise<void>;
}

/** A store that opens on first use (createApp stays synchronous). */
function lazyStore(url: string): KvStore & { opened(): boolean } {
  let p: Promise<KvStore> | undefined;
  const s = () => (p ??= openStore(url));
  return {
    url,
    get: async (k) => (await s()).get(k),
    put: async (k, v) => (await s()).put(k, v),
    delete: async (k) => (await s()).delete(k),
    list: async () => (await s()).list(),
    close: async () => {
      if (p) await (await p).close();
    },
    opened: () => p !== undefined,
  };
}

export function createApp(ape: Ape, opts: AppOptions = {}): ApeApp {
  const limits = resolveLimits(opts.limits);
  const own = opts.store === undefined && typeof ape.options.store !== "object";
  const store = opts.store ?? (typeof ape.options.store === "object" ? ape.options.store : lazyStore(ape.options.store ?? "memory:"));
  const deps: Deps = {
    ape, limits, metrics: new Metrics(),
    queue: new AdmissionQueue({ parallel: opts.parallel, maxQueue: opts.maxQueue }),
    contexts: new ContextRegistry(ape, store, { maxContexts: limits.maxContexts, maxContextTokens: limits.maxContextTokens }),
  };
  const modelName = opts.modelName ?? basename(ape.model.model.source).replace(/\.gguf$/i, "");
  const app = new Hono();

  app.onError((err, c) => {
    let e: HttpError;
    if (err instanceof HTTPException) e = new HttpError(err.status === 413 ? 413 : 400, "invalid_request_error", err.status === 413 ? `request body over ${limits.bodyBytes} bytes` : err.message, { code: err.status === 413 ? "body_too_large" : "invalid_body" });
    else e = toHttpError(err);
    // a request whose client went away (its generation aborted) is not a server error worth a log line
    if (e.status === 500 && !c.req.raw.signal.aborted) console.error(`ape serve: ${c.req.method} ${c.req.path}:`, err);
    for (const [k, v] of Object.entries(e.extra.headers ?? {})) c.header(k, v);
    return c.json(e.body(), e.status);
  });
  app.notFound((c) => c.json(new HttpError(404, "not_found", `no route ${c.req.method} ${c.req.path}`).body(), 404));

  app.use("*", async (c, next) => {
    await next();
    const route = routePath(c, -1); // the handler's route ("*" when none matched)
    deps.metrics.request(route.includes("*") ? "other" : route, c.res.status);
  });
  if (opts.token !== undefined) {
    const auth = bearerAuth(opts.token);
    app.use("*", async (c, next) => (c.req.path === "/health" ? await next() : await auth(c, next)));
  }
  app.use("*", bodyLimit({
    maxSize: limits.bodyBytes,
    onError: () => {
      throw new HttpError(413, "invalid_request_error", `request body over ${limits.bodyBytes} bytes`, { code: "body_too_large" });
    },
  }));

  app.route("/v1", openaiRoutes(deps, modelName));
  app.route("/v1", contextRoutes(deps));
  app.route("/", opsRoutes(deps, modelName, Date.now()));

  return {
    app, deps,
    close: async () => {
      if (own) await store.close();
    },
  };
}
