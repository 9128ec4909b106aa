/**
 * `ape serve`: an OpenAI-compatible HTTP server over one model and one context store (sdk/serve/).
 *
 *   ape serve [--model M] [--dtype auto|f32|f16] [--compute f32|f16|int8] [--store URL] [--host H] [--port P]
 *             [--token T] [--parallel N] [--max-queue N] [--prefix TEXT] [--system TEXT] [--raw] [--model-name NAME]
 *             [--max-tokens N] [--max-contexts N] [--max-context-tokens N] [--body-bytes N]
 *
 * Prints the URL it listens on as its first line, then serves until SIGINT / SIGTERM. Without --token
 * (or APEKIT_TOKEN) it listens on a loopback address only. Several servers given one --store
 * redis://... serve each other's cached contexts.
 */
import process from "node:process";
import { InvalidArgumentError } from "../../src/errors.ts";
import { Ape, openStore } from "../mod.ts";
import { checkBinding, createApp, listen } from "../serve/mod.ts";
import { type ArgSpec, parseArgs } from "./args.ts";
import { SCOPE_HELP, scopeOptions } from "./generate.ts";
import { MODEL_HELP, openModel } from "./model_arg.ts";

const SPEC: ArgSpec = {
  usage: "ape serve [options]: an OpenAI-compatible HTTP server; prints its URL, serves until SIGINT / SIGTERM",
  help: {
    ...MODEL_HELP,
    store: ["URL", "context cache: memory: (default), file:///path or redis://host:port (shared by several servers)"],
    ...SCOPE_HELP,
    host: ["H", "address to listen on (default 127.0.0.1; another needs --token)"],
    port: ["P", "port (default 8080; 0 picks a free one)"],
    token: ["T", "bearer token every request but /health must carry (default: $APEKIT_TOKEN; none: loopback only)"],
    parallel: ["N", "generations running at once, their decode steps batched (default 4)"],
    "max-queue": ["N", "requests waiting at most; more are answered 429 with Retry-After (default 64)"],
    "model-name": ["NAME", "the model's id in /v1/models (default: the model file's or folder's name)"],
    "max-tokens": ["N", "the largest max_tokens a request may ask for (default 1024)"],
    "max-contexts": ["N", "contexts per request (default 16)"],
    "max-context-tokens": ["N", "tokens per context (default 2048)"],
    "body-bytes": ["N", "request body size limit (default 1048576)"],
  },
  string: [
    "model", "dtype", "compute", "store", "prefix", "system", "host", "port", "token", "parallel", "max-queue", "model-name",
    "max-tokens", "max-contexts", "max-context-tokens", "body-bytes",
  ],
  boolean: ["raw"],
};

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, SPEC);
  const int = (flag: string, min: number) => {
    const v = a.string[flag];
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new InvalidArgumentError(`--${flag} must be an integer >= ${min} (got '${v}')`);
    return Number(v);
  };
  const host = a.string.host ?? "127.0.0.1";
  const port = int("port", 0) ?? 8080;
  if (port > 65535) throw new InvalidArgumentError(`--port must be <= 65535 (got ${port})`);
  const token = a.string.token ?? (process.env.APEKIT_TOKEN || undefined);
  checkBinding(host, token);
  const limits = {
    maxTokens: int("max-tokens", 1), maxContexts: int("max-contexts", 1), maxContextTokens: int("max-context-tokens", 1), bodyBytes: int("body-bytes", 1),
  };

  const model = await openModel(a.string.model, a.string.dtype, a.string.compute);
  const store = await openStore(a.string.store ?? "memory:");
  let ape: Ape | undefined;
  try {
    ape = await Ape.create(model, { ...scopeOptions(a), store });
    const server = createApp(ape, { token, modelName: a.string["model-name"], parallel: int("parallel", 1), maxQueue: int("max-queue", 0), limits, store });
    const listener = await listen(server.app.fetch, { hostname: host, port });
    console.log(listener.url);
    console.error(`ape serve: ${server.deps.ape.model.model.source} on ${listener.url} (store ${store.url}${token ? ", bearer token required" : ", no token: loopback only"})`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await listener.close();
    await server.close();
    return 0;
  } finally {
    await ape?.close();
    await store.close();
    model.destroy();
  }
}
