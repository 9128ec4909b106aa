/**
 * `ape generate`: answer a query over contexts through Ape.generate, streaming the text to stdout and
 * its timings (first token, total, encode / load / prefill / decode, cache hits) to stderr; with --json
 * one line `{"text": "...", "stats": {...}}` on stdout instead.
 *
 *   ape generate [--model M] [--store URL] [--prefix TEXT] [--context TEXT | --context-file F | --context-id ID]...
 *                (--query TEXT | --query-file F) [--mode sequential|parallel|ape] [--temperature T] [--scale S] ...
 *   ape generate [--model M] (--prompt TEXT | --prompt-file F) [--max-tokens N]      plain generation, no template
 *
 * Contexts are used in command-line order. `--context-id` takes the ids `ape cache add` prints; they
 * are looked up in --store (the same --model, --prefix, --system and --raw as `cache add` are needed
 * for them to be cache hits). Files given as `-` are read from standard input; a file's final line
 * breaks are dropped (as `$(cat F)` drops them), so `cache add F` and `--context-file F` agree.
 *
 * @example
 * ```sh
 * ape generate --model fixtures/models/qwen2 --context "The cat sat on the mat." --query "Who sat?" --max-tokens 8
 * ape cache add --store file:///tmp/kv doc.txt && ape generate --store file:///tmp/kv --context-file doc.txt --query-file q.txt
 * ```
 */
import process from "node:process";
import { inspectKv } from "../../src/kv/read.ts";
import { openStore } from "../../src/cache/store.ts";
import { CacheMismatchError, InvalidArgumentError } from "../../src/errors.ts";
import { Ape } from "../ape.ts";
import type { ApeModel } from "../load.ts";
import type { ApeOptions, GenerateStats, Mode } from "../options.ts";
import { type Args, type ArgSpec, parseArgs, readTextFile } from "./args.ts";
import { MODEL_HELP, openModel } from "./model_arg.ts";

/** The flags that decide a context's cache scope: `cache add` and `generate` share them. */
export const SCOPE_HELP: ArgSpec["help"] = {
  prefix: ["TEXT", "instruction at the start of the prompt, before the documents (part of the cached scope)"],
  system: ["TEXT", "system message (default: the chat template's)"],
  raw: "no chat template: prefix, documents and query verbatim",
};

/** Ape.create's options from the scope flags (the same for `cache add` and `generate`). */
export function scopeOptions(a: Args, raw = a.boolean.raw): ApeOptions {
  return { prefix: a.string.prefix, system: a.string.system, raw, documentTemplate: raw ? "{text}" : undefined };
}

const SPEC: ArgSpec = {
  usage: "ape generate [options] (--query TEXT | --query-file F | --prompt TEXT | --prompt-file F)",
  help: {
    ...MODEL_HELP,
    store: ["URL", "context cache: memory: (default), file:///path or redis://host:port"],
    ...SCOPE_HELP,
    context: ["TEXT", "a document"],
    "context-file": ["F", "a document read from file F (- = stdin)"],
    "context-id": ["ID", "a document cached by `ape cache add` in --store"],
    query: ["TEXT", "the question"],
    "query-file": ["F", "the question read from file F (- = stdin)"],
    prompt: ["TEXT", "plain generation from TEXT: no template, no documents"],
    "prompt-file": ["F", "--prompt read from file F (- = stdin)"],
    mode: ["M", "sequential | parallel | ape (default ape)"],
    temperature: ["T", "APE's attention temperature T (not sampling; default: the model's, else 0.9)"],
    scale: ["S", "APE's scaling factor S (default: the model's, else 0.9)"],
    "max-tokens": ["N", "tokens to generate at most (default 128)"],
    "sampling-temperature": ["X", "sampling temperature (default 0: greedy)"],
    "top-k": ["K", "sample from the K most likely tokens (0 = off)"],
    "top-p": ["P", "sample from the smallest set reaching probability P (1 = off)"],
    "repetition-penalty": ["R", "HF-style repetition penalty (1 = off)"],
    seed: ["N", "sampling seed (same seed, same tokens)"],
    stop: ["S", "stop when the text contains S (not printed)"],
    json: "print one JSON line {text, stats} instead of streaming",
  },
  string: ["model", "dtype", "compute", "store", "prefix", "system", "query", "query-file", "prompt", "prompt-file", "mode", "temperature", "scale",
    "max-tokens", "sampling-temperature", "top-k", "top-p", "repetition-penalty", "seed"],
  multi: ["context", "context-file", "context-id", "stop"],
  boolean: ["raw", "json"],
};

/** One line of timings for stderr. */
export function timingLine(s: GenerateStats): string {
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  return `[${s.mode}] ${s.generatedTokens} tokens (${s.stopReason}), first token ${ms(s.timeToFirstTokenMs)}, total ${ms(s.totalMs)} ` +
    `(encode ${ms(s.encodeMs)}, load ${ms(s.loadMs)}, prefill ${ms(s.prefillMs)}, decode ${ms(s.decodeMs)}); ` +
    `${s.promptTokens} prompt + ${s.contextTokens} context tokens; cache: ${s.cacheHits} hits, ${s.cacheMisses} misses`;
}

/** `--context-id ID`: the token ids of a cached context, checked against the model it is used with. */
async function cachedContext(store: Awaited<ReturnType<typeof openStore>>, id: string, model: ApeModel): Promise<Uint32Array> {
  const bytes = await store.get(id);
  if (!bytes) throw new InvalidArgumentError(`--context-id ${id}: not in ${store.url} (\`ape cache ls --store ${store.url}\` lists the ids)`);
  const { meta } = await inspectKv(bytes, { verify: false });
  if (meta.kind !== "context") throw new InvalidArgumentError(`--context-id ${id}: the entry is a ${meta.kind}, not a context`);
  if (meta.modelFingerprint !== model.model.fingerprint || meta.tokenizerFingerprint !== model.tokenizerFingerprint) {
    throw new CacheMismatchError(`--context-id ${id} was cached with another model or tokenizer: pass the --model it was cached with`);
  }
  return Uint32Array.from(meta.tokenIds);
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, SPEC);
  const num = (flag: string, positive = true) => {
    const v = a.string[flag];
    if (v === undefined) return undefined;
    const x = Number(v);
    if (v.trim() === "" || !Number.isFinite(x) || (positive ? x <= 0 : x < 0)) {
      throw new InvalidArgumentError(`--${flag} must be a ${positive ? "positive" : "non-negative"} number (got '${v}')`);
    }
    return x;
  };
  const one = (flag: string) => {
    if (a.string[flag] !== undefined && a.string[`${flag}-file`] !== undefined) throw new InvalidArgumentError(`give --${flag} or --${flag}-file, not both`);
    const f = a.string[`${flag}-file`];
    return f !== undefined ? readTextFile(`${flag}-file`, f) : Promise.resolve(a.string[flag]);
  };
  const mode = (a.string.mode ?? "ape") as Mode;
  if (!["sequential", "parallel", "ape"].includes(mode)) throw new InvalidArgumentError(`--mode must be sequential, parallel or ape (got '${a.string.mode}')`);
  const prompt = await one("prompt");
  const query = await one("query");
  if (prompt === undefined && query === undefined) throw new InvalidArgumentError("--query TEXT / --query-file F (or --prompt TEXT / --prompt-file F) is required");
  if (prompt !== undefined && (query !== undefined || a.multiOrder.some((m) => m.flag.startsWith("context")))) {
    throw new InvalidArgumentError("--prompt is plain generation: it takes no --query or contexts");
  }
  const maxTokens = num("max-tokens") ?? 128;
  if (!Number.isInteger(maxTokens)) throw new InvalidArgumentError("--max-tokens must be an integer");
  const sampling = {
    temperature: num("sampling-temperature", false), topK: num("top-k", false), topP: num("top-p"), repetitionPenalty: num("repetition-penalty"), seed: num("seed", false),
  };
  const texts: (string | { id: string })[] = [];
  for (const { flag, value } of a.multiOrder) {
    if (flag === "context") texts.push(value);
    else if (flag === "context-file") texts.push(await readTextFile(flag, value));
    else if (flag === "context-id") texts.push({ id: value });
  }
  const storeUrl = a.string.store ?? "memory:";
  if (texts.some((t) => typeof t !== "string") && a.string.store === undefined) {
    throw new InvalidArgumentError("--context-id needs --store URL: the store `ape cache add` put the context in");
  }

  const model = await openModel(a.string.model, a.string.dtype, a.string.compute);
  let store: Awaited<ReturnType<typeof openStore>> | undefined;
  let ape: Ape | undefined;
  try {
    store = await openStore(storeUrl);
    const contexts: (string | Uint32Array)[] = [];
    for (const t of texts) contexts.push(typeof t === "string" ? t : await cachedContext(store, t.id, model));
    const raw = a.boolean.raw || prompt !== undefined;
    ape = await Ape.create(model, { ...scopeOptions(a, raw), prefix: prompt !== undefined ? "" : a.string.prefix, store });
    const events = ape.generate({
      query: prompt ?? query!, contexts, mode: prompt !== undefined ? "sequential" : mode,
      temperature: num("temperature"), scale: num("scale"), maxTokens, sampling, stop: a.multi.stop.length ? a.multi.stop : undefined,
    });
    for await (const ev of events) {
      if (ev.type === "token" && !a.boolean.json) process.stdout.write(ev.text);
      if (ev.type === "done") {
        if (a.boolean.json) console.log(JSON.stringify({ text: ev.text, stats: ev.stats }));
        else {
          process.stdout.write("\n");
          process.stderr.write(timingLine(ev.stats) + "\n");
        }
      }
    }
    return 0;
  } finally {
    await ape?.close();
    await store?.close();
    model.destroy();
  }
}
