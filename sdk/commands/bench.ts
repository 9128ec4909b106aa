/**
 * `ape bench <name>`: the benchmarks of bench/ (bench/mod.ts lists them), in a clone of the repository.
 * bench/ depends on the SDK, never the other way: this command imports nothing from bench/ but finds
 * bench/mod.ts by path at run time; an installed package (which ships no bench/) says so.
 *
 *   ape bench --help            the benchmarks
 *   ape bench engine --dtype f16
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError } from "../../src/errors.ts";

export async function run(argv: string[]): Promise<number> {
  const mod = new URL(["..", "..", "bench", "mod.ts"].join("/"), import.meta.url);
  if (mod.protocol !== "file:" || !existsSync(fileURLToPath(mod))) {
    throw new InvalidArgumentError("ape bench runs from a clone of the apekit repository (bench/ is not part of the package)");
  }
  const { runBench } = (await import(mod.href)) as { runBench(argv: string[]): Promise<number> };
  return runBench(argv);
}
