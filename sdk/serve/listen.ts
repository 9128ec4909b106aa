/**
 * Listening with the current runtime's own server: Deno.serve (deno.ts), Bun.serve (bun.ts) or
 * @hono/node-server (node.ts); each adapter is loaded only on its runtime.
 *
 * @example
 * ```ts
 * import { listen } from "./listen.ts";
 * // const l = await listen(app.fetch, { hostname: "127.0.0.1", port: 8080 }); console.log(l.url);
 * ```
 */
export interface ListenOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
}

export interface Listener {
  hostname: string;
  port: number;
  /** http://host:port */
  url: string;
  /** Stops accepting connections and ends open ones. */
  close(): Promise<void>;
}

export async function listen(fetch: (r: Request) => Response | Promise<Response>, o: ListenOptions): Promise<Listener> {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Deno) return (await import("./deno.ts")).serveDeno(fetch, o);
  if (g.Bun) return (await import("./bun.ts")).serveBun(fetch, o);
  return (await import("./node.ts")).serveNode(fetch, o);
}
