/**
 * Serving an app on Bun (`Bun.serve`); the request's signal aborts when the client goes away.
 * Generations can outlast Bun's default 10 s idle timeout, so it is raised to its maximum.
 *
 * @example
 * ```ts
 * import { serveBun } from "./bun.ts";
 * // const l = await serveBun(app.fetch, { hostname: "127.0.0.1", port: 0 }); console.log(l.url); await l.close();
 * ```
 */
import { urlOf } from "./deno.ts";
import type { Listener, ListenOptions } from "./listen.ts";

interface BunServe {
  serve(o: { hostname: string; port: number; idleTimeout?: number; fetch: (r: Request) => Response | Promise<Response> }): {
    hostname: string;
    port: number;
    stop(closeActive?: boolean): Promise<void> | void;
  };
}

export function serveBun(fetch: (r: Request) => Response | Promise<Response>, o: ListenOptions): Promise<Listener> {
  const Bun = (globalThis as unknown as { Bun: BunServe }).Bun;
  const server = Bun.serve({ hostname: o.hostname, port: o.port, idleTimeout: 255, fetch });
  return Promise.resolve({
    hostname: server.hostname, port: server.port, url: urlOf(server.hostname, server.port),
    close: async () => {
      await server.stop(true);
    },
  });
}
