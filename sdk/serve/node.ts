/**
 * Serving an app on Node (`@hono/node-server`); the request's signal aborts when the client goes away.
 *
 * @example
 * ```ts
 * import { serveNode } from "./node.ts";
 * // const l = await serveNode(app.fetch, { hostname: "127.0.0.1", port: 0 }); console.log(l.url); await l.close();
 * ```
 */
import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { urlOf } from "./deno.ts";
import type { Listener, ListenOptions } from "./listen.ts";

export function serveNode(fetch: (r: Request) => Response | Promise<Response>, o: ListenOptions): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname: o.hostname, port: o.port }, (info: AddressInfo) => {
      resolve({
        hostname: o.hostname, port: info.port, url: urlOf(o.hostname, info.port),
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        }),
      });
    });
    server.once("error", reject);
  });
}
