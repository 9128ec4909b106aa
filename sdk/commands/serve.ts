/**
 * `ape serve`: an OpenAI-compatible HTTP server over one model and one context store (sdk/serve/).
 *
 *   ape serve [--model M] [--dtype auto|f32|f16] [--compute f32|f16] [--store URL] [--host H] [--port P]
 *             [--token T] [--parallel N] [--max-queue N] [--prefix TEXT] [--system TEXT] [--model-name NAME]
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
import { parseArgs } from "./args.ts";
import { openModel } from "./model_arg.ts";

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    string: [
      "model", "dtype", "compute", "store", "host", "port", "token", "parallel", "max-queue", "prefix", "system", "model-name",
      "max-tokens", "max-contexts", "max-context-tokens", "body-bytes",
    ],
  });
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
    ape = await Ape.create(model, { prefix: a.string.prefix, system: a.string.system, store });
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
