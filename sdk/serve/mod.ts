/**
 * `ape serve` as a library: an OpenAI-compatible Hono app over an `Ape`, to run on its own (`listen`)
 * or mount in another Hono server.
 *
 * @example
 * ```ts
 * import { Ape, loadModel } from "../mod.ts";
 * import { createApp, listen } from "./mod.ts";
 * const model = await loadModel();
 * const ape = await Ape.create(model, { prefix: "Answer from the documents.\n\n" });
 * const { app } = createApp(ape, { maxQueue: 32 });
 * const l = await listen(app.fetch, { hostname: "127.0.0.1", port: 8080 });
 * console.log(l.url);
 * ```
 */
export { type ApeApp, type AppOptions, createApp } from "./app.ts";
export { type Listener, listen, type ListenOptions } from "./listen.ts";
export { checkBinding } from "./auth.ts";
export { DEFAULT_LIMITS, type Limits } from "./limits.ts";
