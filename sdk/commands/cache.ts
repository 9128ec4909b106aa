/**
 * `ape cache`: the persistent context cache.
 *
 *   ape cache add --store <url> [--model <dir|file.gguf>] [--prefix TEXT] [--raw] FILE...   encode + store, print ids
 *   ape cache ls --store <url> [--json]                                                     list entries
 */
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "../../src/errors.ts";
import { openStore } from "../../src/cache/store.ts";
import { Ape } from "../ape.ts";
import { parseArgs } from "./args.ts";
import { openModel } from "./model_arg.ts";
import { progressBar } from "./progress.ts";

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const a = parseArgs(rest, { string: ["store", "model", "prefix", "system", "dtype", "compute"], boolean: ["json", "raw"] });
  const store = a.string.store;
  if (!store) throw new InvalidArgumentError("--store <url> is required (file:///path, redis://host:port)");
  if (sub === "ls") {
    const s = await openStore(store);
    try {
      const entries = await s.list();
      if (a.boolean.json) console.log(JSON.stringify({ entries }));
      else for (const e of entries) console.log(`${e.key}\t${e.bytes}`);
    } finally {
      await s.close();
    }
    return 0;
  }
  if (sub !== "add") throw new InvalidArgumentError(`ape cache: use 'add' or 'ls' (got '${sub ?? ""}')`);
  if (a.positional.length === 0) throw new InvalidArgumentError("ape cache add: name at least one FILE");
  const texts = a.positional.map((f) => {
    try {
      return readFileSync(f, "utf8");
    } catch (e) {
      throw new InvalidArgumentError(`cannot read ${f}: ${(e as Error).message}`);
    }
  });
  const model = await openModel(a.string.model, a.string.dtype, a.string.compute);
  const ape = await Ape.create(model, { prefix: a.string.prefix, system: a.string.system, raw: a.boolean.raw, store });
  try {
    const handles = await ape.cache(texts, { onProgress: progressBar("caching") });
    const stats = ape.stats();
    if (a.boolean.json) console.log(JSON.stringify({ ids: handles.map((h, i) => ({ file: a.positional[i], id: h.id, tokens: h.tokens })), stats }));
    else handles.forEach((h, i) => console.log(`${h.id}\t${h.tokens} tokens\t${a.positional[i]}`));
    return 0;
  } finally {
    await ape.close();
    model.destroy();
  }
}
