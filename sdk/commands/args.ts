/**
 * A small, strict argument parser for the CLI commands: `--flag value`, `--flag=value`, repeatable
 * flags, booleans and positionals. Unknown flags are an error (named), never silently ignored.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./args.ts";
 * const a = parseArgs(["--ids", "1,2", "--json"], { string: ["ids"], boolean: ["json"] });
 * console.log(a.string.ids, a.boolean.json);
 * ```
 */
import { InvalidArgumentError } from "../../src/errors.ts";

export interface ArgSpec {
  string?: string[];
  boolean?: string[];
  /** String flags that may repeat; collected in order. */
  multi?: string[];
}

export interface Args {
  string: Record<string, string | undefined>;
  boolean: Record<string, boolean>;
  multi: Record<string, string[]>;
  positional: string[];
}

export function parseArgs(argv: string[], spec: ArgSpec): Args {
  const out: Args = { string: {}, boolean: {}, multi: {}, positional: [] };
  for (const b of spec.boolean ?? []) out.boolean[b] = false;
  for (const m of spec.multi ?? []) out.multi[m] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      out.positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : a.slice(eq + 1);
    const takeValue = () => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new InvalidArgumentError(`--${name} needs a value`);
      return argv[++i];
    };
    if (spec.boolean?.includes(name)) out.boolean[name] = true;
    else if (spec.multi?.includes(name)) out.multi[name].push(takeValue());
    else if (spec.string?.includes(name)) out.string[name] = takeValue();
    else throw new InvalidArgumentError(`unknown option --${name}`);
  }
  return out;
}

/** Parses "1,2,3" into token ids, naming the flag on bad input. */
export function parseIds(flag: string, s: string): Uint32Array {
  const parts = s.split(",").map((p) => p.trim()).filter((p) => p.length > 0);
  const ids = new Uint32Array(parts.length);
  parts.forEach((p, i) => {
    if (!/^\d+$/.test(p) || Number(p) > 0xffffffff) throw new InvalidArgumentError(`--${flag}: '${p}' is not a token id`);
    ids[i] = Number(p);
  });
  return ids;
}
