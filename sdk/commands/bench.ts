/**
 * `ape bench <name>`: benchmarks that print figures (never timed unit tests). Each lives in
 * bench/<name>.ts and exports `run(args)`.
 *
 *   ape bench tokenize     tokenizer throughput vs @huggingface/tokenizers and Python tokenizers
 *   ape bench kv           KV-cache file serialize / verify throughput vs a plain memory copy
 *   ape bench engine       prefill and decode speed, fraction of the memory-bandwidth floor
 *   ape bench matvec       GPU time of each decode matvec kernel alone on the 1B layer shapes
 *   ape bench matmul       GPU time and TFLOP/s of one prefill matmul per float format on the 1B layer shapes
 *   ape bench quality      answer accuracy of sequential, parallel and APE on the demo documents
 *   ape bench attention-decode  GPU time and GB/s of one decode attention call per kernel variant, 64 to 128K keys
 *   ape bench long         APE vs sequential over 2K-128K tokens of cached contexts: encode, first token, decode
 *   ape bench attention    GPU time and TFLOP/s of the tiled attention kernel alone (APE queries, causal prefill), per variant
 *   ape bench batch        continuous batching: aggregate decode tokens/s of 1, 8 and 32 concurrent streams, ratio to 1
 */
import { InvalidArgumentError } from "../../src/errors.ts";
import { HelpRequested } from "./args.ts";

const BENCHES: Record<string, () => Promise<{ run(args: string[]): Promise<number> }>> = {
  tokenize: () => import("../../bench/tokenize.ts"),
  kv: () => import("../../bench/kv.ts"),
  engine: () => import("../../bench/engine.ts"),
  matvec: () => import("../../bench/matvec.ts"),
  matmul: () => import("../../bench/matmul.ts"),
  quality: () => import("../../bench/quality.ts"),
  long: () => import("../../bench/long.ts"),
  "attention-decode": () => import("../../bench/attention_decode.ts"),
  attention: () => import("../../bench/attention.ts"),
  batch: () => import("../../bench/batch.ts"),
};

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h") throw new HelpRequested(`usage: ape bench <name> [options]   (ape bench <name> --help lists its options)\n\nbenchmarks: ${Object.keys(BENCHES).join(", ")}`);
  const load = name ? BENCHES[name] : undefined;
  if (!load) throw new InvalidArgumentError(`ape bench: choose one of ${Object.keys(BENCHES).join(", ")}${name ? ` (got '${name}')` : ""}`);
  return (await load()).run(rest);
}
