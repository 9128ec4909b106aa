/**
 * Which JavaScript runtime is executing: apekit runs the same code on Deno, Bun and Node and only
 * branches on this where a runtime lacks something (e.g. WebGPU outside Deno).
 *
 * @example
 * ```ts
 * import { runtimeName } from "./runtime.ts";
 * console.log(runtimeName()); // "deno 2.9.6", "bun 1.4.5" or "node v20..."
 * ```
 */
export function runtimeName(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string }; process?: { version: string } };
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${g.process?.version ?? "?"}`;
}
