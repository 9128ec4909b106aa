/**
 * Fuzzing the KV-cache loader: 100,000+ mutated and truncated files (bit flips, length-field
 * edits, truncation and extension, byte insertions and deletions, JSON token edits, and metadata
 * edits whose metadata checksum is recomputed so the deeper checks are reached). Each must end in
 * a typed error (CacheCorruptError / CacheMismatchError, or their `CODE|` form straight from the
 * wasm entry) or in a correct load, never in a trap, a hang or a crash. Most mutations go through
 * the wasm entry `kvCheckFile` directly (speed); every 10th also through `openKvFile`, every 100th
 * also through the streaming `KvReader`.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ApeError, CacheCorruptError, CacheMismatchError } from "../src/errors.ts";
import { KvReader, openKvFile, serializeKv } from "../src/kv/mod.ts";
import type { KvDescription } from "../src/kv/meta.ts";
import { wasm } from "../src/wasm/module.ts";
import { headerOf, meta, rng, tensors, withHeader } from "./kv_file_util.ts";

const N = 100_000;
const SEED = 0x5eed_4b56;

const enc = new TextEncoder();

/** The metadata checksum (wasm/src/kvfile/checksum.rs), computed independently of the wasm module's code path. */
function metaChecksum(md: Record<string, string>): string {
  const parts: Uint8Array[] = [];
  const u64 = (n: number) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
    return b;
  };
  const keys = Object.keys(md).filter((k) => k !== "checksum" && k !== "meta_checksum");
  keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const k of keys) {
    const kb = enc.encode(k);
    const vb = enc.encode(md[k]);
    parts.push(u64(kb.length), kb, u64(vb.length), vb);
  }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return wasm().kvHashHex(all);
}

const TOKENS = ['"', "{", "}", "[", "]", ",", ":", "0", "1", "-1", "9", " ", "\\", "\\u0000", "null", "true", "1e999",
  "18446744073709551616", '"k.0"', '"v.0"', '"__metadata__"', '"F16"', '"F32"', "[[[[[[[[", "\u00e9", "\ud83d\ude00"];

const SEMANTIC: [string, (r: () => number) => string][] = [
  ["layers", (r) => String(r() % 5)],
  ["kv_heads", (r) => String(r() % 4)],
  ["head_dim", (r) => String(r() % 9)],
  ["tokens", (r) => String(r() % 8)],
  ["token_ids", (r) => ["", "1", "1,2,3,4,5", "1,,2", "4294967296", "1,2,3,4,5,6"][r() % 6]],
  ["dtype", (r) => ["F16", "BF16", "F32", "f16", "I8"][r() % 5]],
  ["first_pos", (r) => ["0", "4294967295", "4294967296", "01", "-1"][r() % 5]],
  ["format_version", (r) => ["0", "1", "2", "x"][r() % 4]],
  ["kind", (r) => ["prefix", "context", "other"][r() % 3]],
  ["model_fingerprint", (r) => ["", "other", "x".repeat(2000)][r() % 3]],
  ["checksum", (r) => ["----------------", "0000000000000000", "ABCDEF0123456789"][r() % 3]],
];

type Mutant = { bytes: Uint8Array; semantic: boolean };

function mutate(base: Uint8Array, r: () => number): Mutant {
  let f = base.slice();
  let semantic = false;
  const setLen = (file: Uint8Array, n: number) => new DataView(file.buffer, file.byteOffset).setBigUint64(0, BigInt(Math.max(0, n)), true);
  const hdrLen = () => (f.length >= 8 ? Number(new DataView(f.buffer, f.byteOffset).getBigUint64(0, true)) : 0);
  const inHeader = () => 8 + (r() % Math.max(1, Math.min(hdrLen(), f.length - 8)));
  const ops = 1 + (r() % 3);
  for (let o = 0; o < ops && f.length > 0; o++) {
    switch (r() % 12) {
      case 0: { // bit flip anywhere
        f[r() % f.length] ^= 1 << (r() % 8);
        break;
      }
      case 1:
      case 2: { // bit flip in the header
        f[inHeader()] ^= 1 << (r() % 8);
        break;
      }
      case 3: { // truncate
        f = f.slice(0, r() % f.length);
        break;
      }
      case 4: { // extend
        const extra = new Uint8Array(1 + (r() % 40)).map(() => r());
        const g = new Uint8Array(f.length + extra.length);
        g.set(f);
        g.set(extra, f.length);
        f = g;
        break;
      }
      case 5: { // length field
        if (f.length < 8) break;
        const choice = r() % 5;
        const n = hdrLen();
        if (choice === 0) setLen(f, n + (r() % 17) - 8);
        else if (choice === 1) setLen(f, r() * 65536 + r());
        else if (choice === 2) setLen(f, f.length);
        else if (choice === 3) new DataView(f.buffer, f.byteOffset).setBigUint64(0, 0xffff_ffff_ffff_ffffn, true);
        else f[r() % 8] = r();
        break;
      }
      case 6:
      case 7: { // insert or delete header bytes, half the time fixing the length field
        if (f.length < 9) break;
        const at = inHeader();
        const fix = r() % 2 === 0;
        if (r() % 2 === 0) {
          const ins = enc.encode(TOKENS[r() % TOKENS.length]);
          const g = new Uint8Array(f.length + ins.length);
          g.set(f.subarray(0, at));
          g.set(ins, at);
          g.set(f.subarray(at), at + ins.length);
          if (fix) setLen(g, hdrLen() + ins.length);
          f = g;
        } else {
          const n = Math.min(1 + (r() % 6), f.length - at);
          const h = hdrLen();
          const g = new Uint8Array(f.length - n);
          g.set(f.subarray(0, at));
          g.set(f.subarray(at + n), at);
          f = g;
          if (fix && f.length >= 8) setLen(f, h - n);
        }
        break;
      }
      case 8: { // overwrite a header byte with a JSON-significant one
        if (f.length < 9) break;
        f[inHeader()] = enc.encode(TOKENS[r() % 9])[0];
        break;
      }
      case 9: { // swap two header bytes
        if (f.length < 9) break;
        const a = inHeader();
        const b = inHeader();
        [f[a], f[b]] = [f[b], f[a]];
        break;
      }
      default: { // metadata edit with a recomputed metadata checksum (reaches the deep checks)
        let h: { json: string; payload: Uint8Array };
        let obj: Record<string, unknown>;
        try {
          h = headerOf(f);
          obj = JSON.parse(h.json);
        } catch {
          f[r() % f.length] ^= 0x20;
          break;
        }
        const md = obj?.__metadata__ as Record<string, string> | undefined;
        if (!md || typeof md !== "object") break;
        const [key, gen] = SEMANTIC[r() % SEMANTIC.length];
        md[key] = gen(r);
        if (r() % 4 !== 0) md.meta_checksum = metaChecksum(md);
        if (r() % 3 === 0) {
          // also shift a tensor's offsets
          const names = Object.keys(obj).filter((k) => k !== "__metadata__");
          const t = obj[names[r() % names.length]] as { data_offsets?: number[] };
          if (t?.data_offsets) t.data_offsets = [t.data_offsets[0] + (r() % 5) - 2, t.data_offsets[1] + (r() % 5) - 2];
        }
        f = withHeader(JSON.stringify(obj), h.payload);
        semantic = true;
      }
    }
  }
  return { bytes: f, semantic };
}

function isTypedWasmError(e: unknown): boolean {
  return e instanceof Error && !(e instanceof WebAssembly.RuntimeError) && /^E_CACHE_(CORRUPT|MISMATCH)\|\S/.test(e.message);
}

describe("KV-cache file fuzz", () => {
  const bases = [
    meta(),
    meta({ dtype: "BF16", layers: 1, tokenIds: [] }),
    meta({ dtype: "F32", layers: 2, kvHeads: 1, headDim: 2, tokenIds: [5, 6], kind: "prefix", prefixHash: "", extra: {} }),
  ].map((m) => {
    const s = serializeKv(m, tensors(m));
    const bytes = s.toBytes();
    const desc = JSON.parse(wasm().kvCheckFile(bytes)) as KvDescription;
    return { bytes, desc, payload: headerOf(bytes).payload };
  });

  it(`${N} mutated files: each a typed error or a correct load, never a trap`, async () => {
    const r = rng(SEED);
    const check = wasm().kvCheckFile;
    const stats = { corrupt: 0, mismatch: 0, loaded: 0, semanticLoaded: 0, viaTs: 0, viaReader: 0 };
    const fail = (i: number, f: Uint8Array, why: string) => {
      const dir = mkdtempSync(join(tmpdir(), "apekit-kv-fuzz-"));
      const p = join(dir, `mutant-${i}.kv`);
      writeFileSync(p, f);
      throw new Error(`mutation ${i} (seed ${SEED}): ${why}; file saved to ${p}`);
    };
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const base = bases[i % bases.length];
      const { bytes: f, semantic } = mutate(base.bytes, r);
      let desc: KvDescription | undefined;
      try {
        desc = JSON.parse(check(f)) as KvDescription;
      } catch (e) {
        if (!isTypedWasmError(e)) fail(i, f, `untyped failure: ${String(e)}`);
        if ((e as Error).message.startsWith("E_CACHE_MISMATCH")) stats.mismatch++;
        else stats.corrupt++;
      }
      if (desc) {
        // A correct load: everything lies inside the file and matches what the header says...
        const { layout, tensors: ts, meta: m } = desc;
        if (layout.byteLength !== f.length) fail(i, f, "loaded with a wrong length");
        for (const t of ts) {
          const els = t.shape[0] * t.shape[1] * t.shape[2];
          if (t.offset + t.byteLength > f.length || t.byteLength !== els * (m.dtype === "F32" ? 4 : 2)) fail(i, f, `tensor ${t.name} out of bounds`);
        }
        if (semantic) stats.semanticLoaded++;
        else {
          // ...and, unless the metadata checksum was deliberately recomputed, it is the original.
          stats.loaded++;
          if (JSON.stringify(m) !== JSON.stringify(base.desc.meta)) fail(i, f, "loaded different metadata");
          if (Buffer.compare(f.subarray(layout.headerLength), base.payload) !== 0) fail(i, f, "loaded a different payload");
        }
      }
      if (i % 10 === 0) {
        stats.viaTs++;
        try {
          const o = openKvFile(f);
          if (!desc) fail(i, f, "openKvFile loaded what kvCheckFile refused");
          if (o.meta.checksum !== desc!.meta.checksum) fail(i, f, "openKvFile disagrees with kvCheckFile");
        } catch (e) {
          if (!(e instanceof CacheCorruptError || e instanceof CacheMismatchError)) fail(i, f, `openKvFile: untyped ${String(e)}`);
          if (desc) fail(i, f, `openKvFile refused what kvCheckFile loaded: ${(e as Error).message}`);
        }
      }
      if (i % 100 === 0) {
        stats.viaReader++;
        const chunks = function* () {
          for (let at = 0; at < f.length; at += 64) yield f.subarray(at, at + 64);
        };
        try {
          await (await KvReader.open(chunks())).verify();
          if (!desc) fail(i, f, "KvReader loaded what kvCheckFile refused");
        } catch (e) {
          if (!(e instanceof ApeError) || !(e instanceof CacheCorruptError || e instanceof CacheMismatchError)) {
            fail(i, f, `KvReader: untyped ${String(e)}`);
          }
          if (desc) fail(i, f, `KvReader refused what kvCheckFile loaded: ${(e as Error).message}`);
        }
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(`kv fuzz: ${N} mutants in ${seconds.toFixed(1)} s`, stats);
    expect(stats.corrupt + stats.mismatch + stats.loaded + stats.semanticLoaded).toBe(N);
    expect(stats.corrupt).toBeGreaterThan(N * 0.8);
    // The module still works after all that.
    expect(openKvFile(bases[0].bytes).meta.tokens).toBe(5);
  }, 300_000);
});
