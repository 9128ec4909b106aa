/**
 * Serving an app on Deno (`Deno.serve`); the request's signal aborts when the client goes away.
 *
 * @example
 * ```ts
 * import { serveDeno } from "./deno.ts";
 * // const l = await serveDeno(app.fetch, { hostname: "127.0.0.1", port: 0 }); console.log(l.url); await l.close();
 * ```
 */
import type { Listener, ListenOptions } from "./listen.ts";

interface DenoServe {
  serve(o: { hostname: string; port: number; signal?: AbortSignal; onListen?: (a: { hostname: string; port: number }) => void }, h: (r: Request) => Response | Promise<Response>): {
    finished: Promise<void>;
    shutdown(): Promise<void>;
  };
}

export function serveDeno(fetch: (r: Request) => Response | Promise<Response>, o: ListenOptions): Promise<Listener> {
  const Deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: o.hostname, port: o.port,
      onListen: ({ hostname, port }) => resolve({ hostname, port, url: urlOf(hostname, port), close: () => server.shutdown() }),
    }, fetch);
  });
}

export function urlOf(hostname: string, port: number): string {
  return `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}
