/**
 * The benchmarks (`ape bench <name>`, from a clone): each lives in bench/<name>.ts and exports
 * `run(args)`. They print figures and are never timed unit tests. bench/ depends on the SDK and src/,
 * never the other way: the shipped CLI finds this file by path at run time (sdk/commands/bench.ts)
 * and imports nothing from bench/.
 *
 *   tokenize          tokenizer throughput vs @huggingface/tokenizers and Python tokenizers
 *   kv                KV-cache file serialize / verify throughput vs a plain memory copy
 *   engine            prefill and decode speed, fraction of the memory-bandwidth floor
 *   matvec            GPU time of each decode matvec kernel alone on the 1B layer shapes
 *   matmul            GPU time and TFLOP/s of one prefill matmul per float format on the 1B layer shapes
 *   quality           answer accuracy of sequential, parallel and APE on the demo documents
 *   attention-decode  GPU time and GB/s of one decode attention call per kernel variant, 64 to 128K keys
 *   long              APE vs sequential over 2K-128K tokens of cached contexts: encode, first token, decode
 *   attention         GPU time and TFLOP/s of the tiled attention kernel alone (APE queries, causal prefill), per variant
 *   batch             continuous batching: aggregate decode tokens/s of 1, 8 and 32 concurrent streams, ratio to 1
 *
 * @example
 * ```ts
 * import { runBench } from "./mod.ts";
 * // process.exitCode = await runBench(["engine", "--dtype", "f16"]);
 * ```
 */
import { InvalidArgumentError } from "../src/errors.ts";
import { HelpRequested } from "../sdk/commands/args.ts";

export const BENCHES: Record<string, () => Promise<{ run(args: string[]): Promise<number> }>> = {
  tokenize: () => import("./tokenize.ts"),
  kv: () => import("./kv.ts"),
  engine: () => import("./engine.ts"),
  matvec: () => import("./matvec.ts"),
  matmul: () => import("./matmul.ts"),
  quality: () => import("./quality.ts"),
  long: () => import("./long.ts"),
  "attention-decode": () => import("./attention_decode.ts"),
  attention: () => import("./attention.ts"),
  batch: () => import("./batch.ts"),
};

/** `argv` = [name, ...options]: runs that benchmark. */
export async function runBench(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h") throw new HelpRequested(`usage: ape bench <name> [options]   (ape bench <name> --help lists its options)\n\nbenchmarks: ${Object.keys(BENCHES).join(", ")}`);
  const load = name ? BENCHES[name] : undefined;
  if (!load) throw new InvalidArgumentError(`ape bench: choose one of ${Object.keys(BENCHES).join(", ")}${name ? ` (got '${name}')` : ""}`);
  return (await load()).run(rest);
}
