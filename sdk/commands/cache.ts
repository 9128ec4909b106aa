/**
 * `ape cache`: the persistent context cache.
 *
 *   ape cache add --store URL [--model M] [--prefix TEXT] [--system TEXT] [--raw] [--json] FILE...   encode + store, print ids
 *   ape cache ls --store URL [--json]                                                                list entries
 *
 * `add` reads each FILE (`-` = standard input) without its final line breaks, as `$(cat FILE)` gives it,
 * so `generate --context "$(cat FILE)"` and `generate --context-file FILE` find it; the ids it prints go
 * to `generate --context-id ID` (with the same --store, --model, --prefix, --system and --raw).
 *
 * @example
 * ```sh
 * ape cache add --store file:///tmp/kv --model fixtures/models/qwen2 notes.txt
 * ape cache ls --store file:///tmp/kv --json
 * ```
 */
import { InvalidArgumentError } from "../../src/errors.ts";
import { openStore } from "../../src/cache/store.ts";
import { Ape } from "../ape.ts";
import { isSearchKey } from "../search.ts";
import { type ArgSpec, HelpRequested, helpText, parseArgs, readTextFile } from "./args.ts";
import { SCOPE_HELP, scopeOptions } from "./generate.ts";
import { MODEL_HELP, openModel } from "./model_arg.ts";
import { progressBar } from "./progress.ts";

const STORE_HELP: ArgSpec["help"] = { store: ["URL", "the store: file:///path or redis://host:port (required)"] };

const ADD: ArgSpec = {
  usage: "ape cache add --store URL [options] FILE...   (FILE - = stdin)\n\nEncodes each file once, stores its KV and prints `ID<TAB>TOKENS tokens<TAB>FILE`.",
  help: { ...STORE_HELP, ...MODEL_HELP, ...SCOPE_HELP, json: 'print {"ids": [{file, id, tokens}], "stats"}' },
  string: ["store", "model", "dtype", "compute", "prefix", "system"],
  boolean: ["json", "raw"],
};

const LS: ArgSpec = {
  usage: "ape cache ls --store URL [--json]\n\nLists the store's entries: `ID<TAB>BYTES<TAB>KIND` (KIND: context, or search-index: the\nBM25 index of the documents cached under one prefix and model).",
  help: { ...STORE_HELP, json: 'print {"entries": [{key, bytes, kind}]}' },
  string: ["store"],
  boolean: ["json"],
};

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const help = `ape cache add ...   encode files into the store\nape cache ls ...    list the store\n\n${helpText(ADD)}\n\n${helpText(LS)}`;
  if (sub === "--help" || sub === "-h") throw new HelpRequested(help);
  if (sub === undefined) {
    console.error(help);
    return 2;
  }
  if (sub !== "add" && sub !== "ls") throw new InvalidArgumentError(`ape cache: use 'add' or 'ls' (got '${sub}')`);
  const a = parseArgs(rest, sub === "ls" ? LS : ADD);
  const store = a.string.store;
  if (!store) throw new InvalidArgumentError("--store URL is required (file:///path, redis://host:port)");
  if (sub === "ls") {
    const s = await openStore(store);
    try {
      const entries = (await s.list()).map((e) => ({ ...e, kind: isSearchKey(e.key) ? "search-index" : "context" }));
      if (a.boolean.json) console.log(JSON.stringify({ entries }));
      else for (const e of entries) console.log(`${e.key}\t${e.bytes}\t${e.kind}`);
    } finally {
      await s.close();
    }
    return 0;
  }
  if (a.positional.length === 0) throw new InvalidArgumentError("ape cache add: name at least one FILE");
  const texts: string[] = [];
  for (const f of a.positional) texts.push(await readTextFile("file", f));
  const model = await openModel(a.string.model, a.string.dtype, a.string.compute);
  let ape: Ape | undefined;
  try {
    ape = await Ape.create(model, { ...scopeOptions(a), store });
    const handles = await ape.cache(texts, { onProgress: progressBar("caching") });
    const stats = ape.stats();
    if (a.boolean.json) console.log(JSON.stringify({ ids: handles.map((h, i) => ({ file: a.positional[i], id: h.id, tokens: h.tokens })), stats }));
    else handles.forEach((h, i) => console.log(`${h.id}\t${h.tokens} tokens\t${a.positional[i]}`));
    return 0;
  } finally {
    await ape?.close();
    model.destroy();
  }
}
