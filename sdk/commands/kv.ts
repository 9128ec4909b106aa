/**
 * `ape kv`: inspect and verify KV-cache files (format: wasm/src/kvfile.rs).
 *
 *   ape kv inspect <file> [--json] [--header-only] [--expect-model FP] [--expect-tokenizer FP]
 *       prints the metadata and the tensor table (after verifying the checksum unless
 *       --header-only); exits 1 with the error's message for a bad file.
 *   ape kv verify <file> [--json] [--expect-model FP] [--expect-tokenizer FP]
 *       checks header, layout and checksum; exits 0 only when the file is sound.
 *
 * @example
 * ```sh
 * deno task ape kv inspect /tmp/ctx.kv --json
 * deno task ape kv verify /tmp/ctx.kv && echo sound
 * ```
 */
import { ApeError } from "../../src/errors.ts";
import type { KvExpect } from "../../src/kv/meta.ts";
import { inspectKv, type KvInspection } from "../../src/kv/read.ts";
import { type ArgSpec, HelpRequested, helpText, parseArgs } from "./args.ts";

const USAGE = `usage: ape kv inspect <file> [--json] [--header-only] [--expect-model FP] [--expect-tokenizer FP]
       ape kv verify <file> [--json] [--expect-model FP] [--expect-tokenizer FP]`;

const EXPECT: ArgSpec["help"] = {
  "expect-model": ["FP", "fail unless the file's model fingerprint is FP"],
  "expect-tokenizer": ["FP", "fail unless the file's tokenizer fingerprint is FP"],
};
const SPECS: Record<"inspect" | "verify", ArgSpec> = {
  inspect: {
    usage: "ape kv inspect FILE [options]\n\nPrints the metadata and tensor table (after verifying the checksum unless --header-only).",
    help: { json: "print JSON", "header-only": "read the header only: skip the checksum", ...EXPECT },
    boolean: ["json", "header-only"],
    string: ["expect-model", "expect-tokenizer"],
  },
  verify: {
    usage: "ape kv verify FILE [options]\n\nChecks header, layout and checksum; exits 0 only when the file is sound.",
    help: { json: "print {file, ok, checksum, byteLength}", ...EXPECT },
    boolean: ["json"],
    string: ["expect-model", "expect-tokenizer"],
  },
};

function expectFrom(s: Record<string, string | undefined>): KvExpect | undefined {
  const e: KvExpect = {};
  if (s["expect-model"] !== undefined) e.modelFingerprint = s["expect-model"];
  if (s["expect-tokenizer"] !== undefined) e.tokenizerFingerprint = s["expect-tokenizer"];
  return Object.keys(e).length ? e : undefined;
}

function human(file: string, r: KvInspection): string {
  const m = r.meta;
  const ids = m.tokenIds.length > 16 ? `${m.tokenIds.slice(0, 16).join(",")},… (${m.tokenIds.length})` : m.tokenIds.join(",");
  const rows = [
    `file                  ${file}`,
    `format                ${m.format} v${m.formatVersion}`,
    `kind                  ${m.kind}`,
    `model fingerprint     ${m.modelFingerprint}`,
    `tokenizer fingerprint ${m.tokenizerFingerprint}`,
    `prefix hash           ${m.prefixHash || "(none)"}`,
    `tokens                ${m.tokens} (positions ${m.firstPos}..${m.firstPos + m.tokens - 1})`,
    `token ids             ${ids}`,
    `dtype                 ${m.dtype}`,
    `layers x kv heads x head dim   ${m.layers} x ${m.kvHeads} x ${m.headDim}`,
    `checksum (xxh3-64)    ${m.checksum}${r.verified ? " (verified)" : " (not verified: --header-only)"}`,
    `meta checksum         ${m.metaChecksum}`,
    `bytes                 ${r.layout.byteLength} (header ${r.layout.headerLength}, payload ${r.layout.payloadLength})`,
    ...Object.entries(m.extra).map(([k, v]) => `extra ${k.padEnd(16)}${JSON.stringify(v)}`),
    "",
    `${"tensor".padEnd(10)}${"dtype".padEnd(7)}${"shape".padEnd(20)}${"offset".padStart(14)}${"bytes".padStart(14)}`,
    ...r.tensors.map((t) =>
      `${t.name.padEnd(10)}${t.dtype.padEnd(7)}${`[${t.shape.join(", ")}]`.padEnd(20)}${String(t.offset).padStart(14)}${String(t.byteLength).padStart(14)}`
    ),
  ];
  return rows.join("\n");
}

/** Indented JSON with arrays of numbers (token ids, shapes) kept on one line. */
function compactJson(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(/\[\s+(-?[\d.e+-]+(?:,\s+-?[\d.e+-]+)*)\s+\]/g, (_, inner: string) => `[${inner.split(/,\s+/).join(", ")}]`);
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "--help" || sub === "-h") throw new HelpRequested(`${helpText(SPECS.inspect)}\n\n${helpText(SPECS.verify)}`);
  if (sub !== "inspect" && sub !== "verify") {
    console.error(USAGE);
    return 2;
  }
  const a = parseArgs(rest, SPECS[sub]);
  if (a.positional.length !== 1) {
    console.error(`ape kv ${sub}: expected exactly one file\n${USAGE}`);
    return 2;
  }
  const file = a.positional[0];
  let r: KvInspection;
  try {
    r = await inspectKv(file, { verify: !a.boolean["header-only"], expect: expectFrom(a.string) });
  } catch (e) {
    if (e instanceof ApeError) {
      console.error(`ape kv ${sub}: ${file}: ${e.name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
  if (sub === "inspect") {
    console.log(a.boolean.json ? compactJson({ file, ...r }) : human(file, r));
  } else if (a.boolean.json) {
    console.log(JSON.stringify({ file, ok: true, checksum: r.meta.checksum, byteLength: r.layout.byteLength }));
  } else {
    const m = r.meta;
    console.log(`ok ${file}: ${m.kind}, ${m.tokens} tokens, ${m.layers} layers, ${m.dtype}, checksum ${m.checksum}`);
  }
  return 0;
}
