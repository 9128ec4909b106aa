/**
 * A small, strict argument parser for the CLI commands: `--flag value`, `--flag=value`, repeatable
 * flags, booleans and positionals. Unknown flags are an error (named), never silently ignored.
 * `--help` / `-h` anywhere throws HelpRequested with the command's usage and one line per flag
 * (the spec's `usage` and `help`), which sdk/cli.ts prints to stdout with exit code 0.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./args.ts";
 * const a = parseArgs(["--ids", "1,2", "--json"], { string: ["ids"], boolean: ["json"] });
 * console.log(a.string.ids, a.boolean.json);
 * ```
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { InvalidArgumentError } from "../../src/errors.ts";

export interface ArgSpec {
  string?: string[];
  boolean?: string[];
  /** String flags that may repeat; collected in order. */
  multi?: string[];
  /** For --help: the usage line(s), e.g. "ape tokenize [options]" (and a sentence on what it does). */
  usage?: string;
  /**
   * For --help: one line per flag. Value flags take `[METAVAR, description]`, booleans a description.
   * Flags of the spec without an entry are listed without one.
   */
  help?: Record<string, string | [string, string]>;
}

/** Thrown by parseArgs for `--help` / `-h`: `text` is the command's help. */
export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super(text);
    this.name = "HelpRequested";
  }
}

/** The --help text of a spec: usage, then one line per flag (the spec's order), then -h. */
export function helpText(spec: ArgSpec): string {
  const rows: [string, string][] = [];
  const add = (flag: string, kind: "string" | "multi" | "boolean") => {
    const h = spec.help?.[flag];
    const [meta, text] = Array.isArray(h) ? h : [kind === "boolean" ? "" : "V", h ?? ""];
    rows.push([`--${flag}${meta ? ` ${meta}` : ""}`, [text, kind === "multi" ? "(repeatable)" : ""].filter(Boolean).join(" ")]);
  };
  const kinds = new Map<string, "string" | "multi" | "boolean">();
  for (const f of spec.string ?? []) kinds.set(f, "string");
  for (const f of spec.multi ?? []) kinds.set(f, "multi");
  for (const f of spec.boolean ?? []) if (f !== "help") kinds.set(f, "boolean");
  const order = [...Object.keys(spec.help ?? {}).filter((f) => kinds.has(f)), ...[...kinds.keys()].filter((f) => !spec.help?.[f])];
  for (const f of order) add(f, kinds.get(f)!);
  rows.push(["-h, --help", "this help"]);
  const w = Math.min(30, Math.max(...rows.map(([l]) => l.length)) + 2);
  const lines = rows.map(([l, t]) => (l.length + 2 > w ? `  ${l}\n  ${"".padEnd(w)}${t}` : `  ${l.padEnd(w)}${t}`).trimEnd());
  return `${spec.usage ? `usage: ${spec.usage}\n\n` : ""}options:\n${lines.join("\n")}`;
}

export interface Args {
  string: Record<string, string | undefined>;
  boolean: Record<string, boolean>;
  multi: Record<string, string[]>;
  /** Every repeatable flag's values in command-line order, across flags (e.g. --context / --context-file). */
  multiOrder: { flag: string; value: string }[];
  positional: string[];
}

export function parseArgs(argv: string[], spec: ArgSpec): Args {
  const out: Args = { string: {}, boolean: {}, multi: {}, multiOrder: [], positional: [] };
  for (const b of spec.boolean ?? []) out.boolean[b] = false;
  for (const m of spec.multi ?? []) out.multi[m] = [];
  if (argv.some((a) => a === "--help" || a === "-h")) throw new HelpRequested(helpText(spec));
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
    else if (spec.multi?.includes(name)) {
      const value = takeValue();
      out.multi[name].push(value);
      out.multiOrder.push({ flag: name, value });
    }
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

/** Text with its final line breaks removed, as the shell's `$(cat FILE)` gives it. */
export function trimFinalNewlines(s: string): string {
  return s.replace(/(\r?\n)+$/, "");
}

let stdinTaken: string | undefined;

/**
 * The text of `--<flag>-file PATH`: the file's content, or standard input for `-` (one flag per
 * command may read it), with its final line breaks removed (so `cache add FILE`, `--context-file FILE`
 * and `--context "$(cat FILE)"` are the same document).
 */
export async function readTextFile(flag: string, path: string, trim = true): Promise<string> {
  const done = (s: string) => (trim ? trimFinalNewlines(s) : s);
  if (path === "-") {
    if (stdinTaken !== undefined) throw new InvalidArgumentError(`--${flag} -: standard input is already read by --${stdinTaken}`);
    stdinTaken = flag;
    const chunks: Uint8Array[] = [];
    for await (const c of process.stdin) chunks.push(typeof c === "string" ? new TextEncoder().encode(c) : c);
    let n = 0;
    for (const c of chunks) n += c.length;
    const all = new Uint8Array(n);
    n = 0;
    for (const c of chunks) all.set(c, (n += c.length) - c.length);
    return done(new TextDecoder().decode(all));
  }
  try {
    return done(readFileSync(path, "utf8"));
  } catch (e) {
    throw new InvalidArgumentError(`--${flag} ${path}: cannot read it (${(e as Error).message})`);
  }
}
