import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CacheCorruptError, CacheMismatchError, InvalidArgumentError } from "../src/errors.ts";
import {
  inspectKv,
  KvFileWriter,
  KvReader,
  KvWriter,
  openKvFile,
  readKvFile,
  serializeKv,
  verifyKv,
  writeKvFile,
  xxh3Hex,
} from "../src/kv/mod.ts";
import type { KvDtype } from "../src/kv/meta.ts";
import { wasm } from "../src/wasm/module.ts";
import { concat, headerOf, meta, rng, tensors, withHeader } from "./kv_file_util.ts";

const dir = mkdtempSync(join(tmpdir(), "apekit-kv-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sample(over = {}) {
  const m = meta(over);
  const t = tensors(m);
  const s = serializeKv(m, t);
  return { m, t, s, bytes: s.toBytes() };
}

describe("KV-cache files: round trip", () => {
  for (const dtype of ["F16", "BF16", "F32"] as KvDtype[]) {
    it(`serializes and opens ${dtype}`, () => {
      const { m, t, s, bytes } = sample({ dtype });
      expect(bytes.length).toBe(s.byteLength);
      const f = openKvFile(bytes);
      expect(f.meta.format).toBe("apekit.kv");
      expect(f.meta.formatVersion).toBe(1);
      expect(f.meta.kind).toBe("context");
      expect(f.meta.modelFingerprint).toBe(m.modelFingerprint);
      expect(f.meta.tokenizerFingerprint).toBe(m.tokenizerFingerprint);
      expect(f.meta.prefixHash).toBe(m.prefixHash);
      expect(f.meta.firstPos).toBe(7);
      expect(Array.from(f.meta.tokenIds)).toEqual(Array.from(m.tokenIds));
      expect(f.meta.tokens).toBe(5);
      expect(f.meta.dtype).toBe(dtype);
      expect([f.meta.layers, f.meta.kvHeads, f.meta.headDim]).toEqual([3, 2, 4]);
      expect(f.meta.extra).toEqual({ note: "héllo" });
      expect(f.meta.checksum).toBe(s.meta.checksum);
      expect(f.meta.checksum).toMatch(/^[0-9a-f]{16}$/);
      expect(f.layout.headerLength % 8).toBe(0);
      expect(f.tensors.map((x) => x.name)).toEqual(["k.0", "v.0", "k.1", "v.1", "k.2", "v.2"]);
      for (let l = 0; l < 3; l++) {
        expect(f.k(l)).toEqual(t.k[l]);
        expect(f.v(l)).toEqual(t.v[l]);
        expect(f.k(l).buffer).toBe(bytes.buffer); // a view, not a copy
      }
      expect(f.tensors[0].shape).toEqual([2, 5, 4]);
      const arr = f.array("v.1");
      expect(arr).toBeInstanceOf(dtype === "F32" ? Float32Array : Uint16Array);
      expect(arr.length).toBe(2 * 5 * 4);
    });
  }

  it("checksum is xxh3-64 of the payload (simd stream == the crate's one-shot), for any size and chunking", () => {
    const r = rng(7);
    for (const tokens of [0, 1, 2, 3, 7, 16, 33, 100, 257]) {
      const m = meta({ tokenIds: Uint32Array.from({ length: tokens }, (_, i) => i), layers: 2, kvHeads: 3, headDim: 8, dtype: "BF16" });
      const t = tensors(m);
      const payload = concat([t.k[0], t.v[0], t.k[1], t.v[1]]);
      const w = new KvWriter(m);
      let at = 0;
      while (at < payload.length) {
        const n = Math.min(payload.length - at, r() % 700);
        w.write(payload.subarray(at, at + n));
        at += n;
      }
      const got = w.finish().checksum;
      expect(got).toBe(wasm().kvHashHex(payload));
      expect(got).toBe(xxh3Hex(payload));
    }
    // A payload larger than the staging buffer, fed whole and in odd pieces.
    const big = new Uint8Array(3 * (1 << 18) + 12345);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    expect(xxh3Hex([big.subarray(0, 1001), big.subarray(1001)])).toBe(wasm().kvHashHex(big));
  });

  it("zero tokens is a valid (empty) cache", () => {
    const { bytes } = sample({ tokenIds: [] });
    const f = openKvFile(bytes);
    expect(f.meta.tokens).toBe(0);
    expect(f.k(0).length).toBe(0);
  });

  it("the streaming writer's header + payload + patch equals serializeKv's bytes", () => {
    const { m, t, bytes } = sample();
    const w = new KvWriter(m);
    const parts = [w.header.slice()];
    expect(new TextDecoder().decode(w.header.subarray(w.checksumOffset, w.checksumOffset + 16))).toBe("----------------");
    for (let l = 0; l < m.layers; l++) {
      w.writeTensor(`k.${l}`, t.k[l]);
      w.writeTensor(`v.${l}`, t.v[l]);
      parts.push(t.k[l], t.v[l]);
    }
    w.finish();
    const file = concat(parts);
    const p = w.checksumPatch();
    file.set(p.bytes, p.offset);
    expect(file).toEqual(bytes);
    expect(w.finalHeader()).toEqual(bytes.subarray(0, w.header.length));
  });

  it("KvFileWriter streams to disk, patches the checksum and renames into place", async () => {
    const { m, t, bytes } = sample({ dtype: "F32" });
    const path = join(dir, "a.kv");
    const w = await KvFileWriter.create(path, m);
    for (let l = 0; l < m.layers; l++) {
      // The engine's GPU readback hands over typed arrays; feed K in two pieces to mimic chunking.
      const k = new Float32Array(t.k[l].buffer);
      await w.write(k.subarray(0, 3));
      await w.write(k.subarray(3));
      await w.writeTensor(`v.${l}`, new Float32Array(t.v[l].buffer));
    }
    const got = await w.close();
    expect(readFileSync(path)).toEqual(Buffer.from(bytes));
    expect(got.checksum).toBe(openKvFile(readFileSync(path)).meta.checksum);
    expect(readdirSync(dir).filter((f) => f.includes(".partial-"))).toEqual([]);
  });

  it("writeKvFile pulls layers from an async source; a failing source leaves no file", async () => {
    const { m, t, bytes } = sample({ dtype: "BF16" });
    const path = join(dir, "b.kv");
    await writeKvFile(path, m, async (l) => {
      await new Promise((r) => setTimeout(r, 1));
      return { k: t.k[l], v: t.v[l] };
    });
    expect(new Uint8Array(readFileSync(path))).toEqual(bytes);
    const bad = join(dir, "c.kv");
    await expect(writeKvFile(bad, m, (l) => {
      if (l === 2) throw new Error("GPU lost");
      return { k: t.k[l], v: t.v[l] };
    })).rejects.toThrow("GPU lost");
    expect(readdirSync(dir).filter((f) => f.startsWith("c.kv"))).toEqual([]);
    // Closing before every tensor was written is an error, and also leaves nothing behind.
    const w = await KvFileWriter.create(join(dir, "d.kv"), m);
    await w.writeLayer(0, t.k[0], t.v[0]);
    await expect(w.close()).rejects.toThrow(InvalidArgumentError);
    expect(readdirSync(dir).filter((f) => f.startsWith("d.kv"))).toEqual([]);
  });
});

describe("KV-cache files: streaming reader", () => {
  it("reads a path, bytes and odd-sized chunks; pieces reassemble the tensors", async () => {
    const { m, t, bytes } = sample();
    const path = join(dir, "r.kv");
    writeFileSync(path, bytes);
    const r = rng(3);
    const chunked = function* () {
      let at = 0;
      while (at < bytes.length) {
        const n = 1 + (r() % 50);
        yield bytes.slice(at, at + n);
        at += n;
      }
    };
    for (const source of [path, bytes, chunked(), (async function* () { yield* chunked(); })()]) {
      const reader = await KvReader.open(source, { chunkSize: 37 });
      expect(reader.meta.checksum).toMatch(/^[0-9a-f]{16}$/);
      const got = new Map<string, Uint8Array[]>();
      for await (const p of reader.pieces()) {
        const list = got.get(p.tensor.name) ?? [];
        expect(p.offset).toBe(list.reduce((s, x) => s + x.length, 0));
        list.push(p.data.slice());
        got.set(p.tensor.name, list);
      }
      for (let l = 0; l < m.layers; l++) {
        expect(concat(got.get(`k.${l}`)!)).toEqual(t.k[l]);
        expect(concat(got.get(`v.${l}`)!)).toEqual(t.v[l]);
      }
    }
  });

  it("readKvFile loads a path or a stream into one exactly-sized buffer", async () => {
    const { m, t, bytes } = sample({ dtype: "BF16" });
    const path = join(dir, "rk.kv");
    writeFileSync(path, bytes);
    const chunks = function* () {
      for (let at = 0; at < bytes.length; at += 33) yield bytes.slice(at, at + 33);
    };
    for (const src of [path, chunks()]) {
      const f = await readKvFile(src, { expect: { dtype: "BF16" } });
      expect(f.bytes).toEqual(bytes);
      expect(f.bytes.buffer.byteLength).toBe(bytes.length);
      expect(f.v(m.layers - 1)).toEqual(t.v[m.layers - 1]);
    }
    const bad = bytes.slice();
    bad[bad.length - 1] ^= 1;
    await expect(readKvFile([bad])).rejects.toThrow(CacheCorruptError);
  });

  it("a damaged payload fails before its last piece is handed out", async () => {
    const { bytes } = sample();
    const bad = bytes.slice();
    bad[bad.length - 100] ^= 4;
    const seen: string[] = [];
    const reader = await KvReader.open(bad);
    await expect((async () => {
      for await (const p of reader.pieces()) seen.push(`${p.tensor.name}@${p.offset}`);
    })()).rejects.toThrow(/payload checksum mismatch/);
    expect(seen).not.toContain("v.2@0");
  });

  it("truncated and over-long streams are corrupt, with the byte counts named", async () => {
    const { bytes } = sample();
    const short = (async function* () { yield bytes.subarray(0, bytes.length - 3); })();
    await expect((await KvReader.open(short)).verify()).rejects.toThrow(/truncated: its payload has \d+ of the \d+ bytes/);
    const long = (async function* () { yield bytes; yield new Uint8Array(5); })();
    await expect((await KvReader.open(long)).verify()).rejects.toThrow(/5 unexpected bytes after the last tensor/);
    await expect(KvReader.open((function* () { yield bytes.subarray(0, 5); })())).rejects.toThrow(/too short/);
    await expect(KvReader.open((function* () { yield bytes.subarray(0, 40); })())).rejects.toThrow(/truncated inside its \d+-byte header/);
  });

  it("inspectKv and verifyKv describe / check a file", async () => {
    const { s, bytes } = sample();
    const path = join(dir, "i.kv");
    writeFileSync(path, bytes);
    const i = await inspectKv(path);
    expect(i.verified).toBe(true);
    expect(i.meta.tokenIds).toEqual([1000, 1037, 1074, 1111, 1148]);
    expect(i.tensors.length).toBe(6);
    expect(JSON.parse(JSON.stringify(i)).layout.byteLength).toBe(bytes.length);
    expect((await verifyKv(path)).checksum).toBe(s.meta.checksum);
    await expect(verifyKv(join(dir, "missing.kv"))).rejects.toThrow(InvalidArgumentError);
  });
});

describe("KV-cache files: validation", () => {
  it("expect: a sound file for another model, tokenizer or prefix is a CacheMismatchError naming the field", async () => {
    const { bytes } = sample();
    const cases: [object, RegExp][] = [
      [{ modelFingerprint: "other" }, /modelFingerprint: the file was made for "model-0123abcd", the loader expects "other"/],
      [{ tokenizerFingerprint: "x" }, /tokenizerFingerprint/],
      [{ prefixHash: "p2" }, /prefixHash/],
      [{ kind: "prefix" }, /kind/],
      [{ dtype: "F32" }, /dtype/],
      [{ layers: 4 }, /layers/],
      [{ tokenIds: [1000, 1037, 1074, 1111, 1149] }, /tokenIds: token 4 is 1148 in the file, the loader expects 1149/],
      [{ tokenIds: [1000] }, /tokenIds: the file holds 5 tokens, the loader expects 1/],
    ];
    for (const [expectArg, msg] of cases) {
      expect(() => openKvFile(bytes, { expect: expectArg })).toThrow(CacheMismatchError);
      expect(() => openKvFile(bytes, { expect: expectArg })).toThrow(msg);
      await expect(KvReader.open(bytes, { expect: expectArg })).rejects.toThrow(CacheMismatchError);
    }
    expect(openKvFile(bytes, { expect: { modelFingerprint: "model-0123abcd", tokenizerFingerprint: "tok-4567", prefixHash: "prefix-89ab" } }).meta.tokens).toBe(5);
  });

  it("each kind of damage is a CacheCorruptError whose message names it", () => {
    const { bytes } = sample();
    const { json, payload } = headerOf(bytes);
    const edit = (a: string, b: string) => {
      expect(json).toContain(a);
      return withHeader(json.replace(a, b), payload);
    };
    const lenField = (n: bigint) => {
      const f = bytes.slice();
      new DataView(f.buffer).setBigUint64(0, n, true);
      return f;
    };
    const cases: [Uint8Array, RegExp][] = [
      [bytes.subarray(0, 3), /too short/],
      [lenField(1n << 40n), /header length field says \d+ bytes, over the 100000000 allowed/],
      [lenField(BigInt(bytes.length)), /header length field says \d+ bytes but the file has only/],
      [bytes.subarray(0, bytes.length - 1), /truncated: it has \d+ bytes but its header describes/],
      [concat([bytes, new Uint8Array(3)]), /3 unexpected bytes after the last tensor/],
      [edit("{", "["), /does not start with '\{'/],
      [edit("}}", "}"), /not well-formed/],
      [edit('"__metadata__"', '"__metadata_"'), /tensor "__metadata_"/],
      [edit('"layers":"3"', '"layers":"2"'), /metadata checksum mismatch/],
      [edit('"tokens":"5"', '"tokens":"6"'), /tokens is 6 but token_ids lists 5/],
      [edit('"data_offsets":[0,80]', '"data_offsets":[0,81]'), /span 81 bytes but F16 x \[2,5,4\] needs 80/],
      [edit('"data_offsets":[80,160]', '"data_offsets":[70,150]'), /overlapping/],
      [edit('"data_offsets":[80,160]', '"data_offsets":[90,170]'), /leaving a gap/],
      [edit('"shape":[2,5,4]', '"shape":[2,4,5]'), /has shape \[2,4,5\]/],
      [edit('"k.1":', '"k.9":'), /tensor 'k.1' is missing/],
      [edit('"format":"apekit.kv"', '"format":"other.kv"'), /not an apekit KV-cache file/],
      [edit('"checksum_algo":"xxh3-64"', '"checksum_algo":"crc32c"'), /checksum_algo/],
    ];
    for (const [f, msg] of cases) {
      let err: unknown;
      try {
        openKvFile(f);
      } catch (e) {
        err = e;
      }
      expect(err, String(msg)).toBeInstanceOf(CacheCorruptError);
      expect((err as Error).message).toMatch(msg);
    }
    const flipped = bytes.slice();
    flipped[bytes.length - 1] ^= 0x80;
    expect(() => openKvFile(flipped)).toThrow(/payload checksum mismatch: the header says [0-9a-f]{16} but the payload hashes to [0-9a-f]{16}/);
    expect(openKvFile(flipped, { verify: false }).meta.tokens).toBe(5);
  });

  it("a future format version is a CacheMismatchError; an unfinished file is named", () => {
    const { bytes } = sample();
    const { json, payload } = headerOf(bytes);
    expect(() => openKvFile(withHeader(json.replace('"format_version":"1"', '"format_version":"2"'), payload)))
      .toThrow(CacheMismatchError);
    const w = new KvWriter(meta());
    const unfinished = concat([w.header, payload]);
    expect(() => openKvFile(unfinished)).toThrow(/never finished/);
    w.dispose();
  });

  it("the writer rejects bad input with InvalidArgumentError", () => {
    const bad: [object, RegExp][] = [
      [{ modelFingerprint: "" }, /modelFingerprint must not be empty/],
      [{ dtype: "F8" }, /dtype must be F16, BF16 or F32/],
      [{ kind: "suffix" }, /kind must be 'prefix' or 'context'/],
      [{ layers: 0 }, /layers must be at least 1/],
      [{ tokenIds: [1, -2] }, /tokenIds\[1\] = -2 is not a token id/],
      [{ extra: { checksum: "x" } }, /reserved/],
      [{ firstPos: 1.5 }, /invalid KV metadata/],
    ];
    for (const [over, msg] of bad) {
      expect(() => new KvWriter(meta(over as never))).toThrow(InvalidArgumentError);
      expect(() => new KvWriter(meta(over as never))).toThrow(msg);
    }
    const m = meta();
    const t = tensors(m);
    const w = new KvWriter(m);
    expect(() => w.writeTensor("v.0", t.v[0])).toThrow(/out of order: the next tensor is k.0/);
    expect(() => w.writeTensor("k.0", t.k[0].subarray(1))).toThrow(/must be 80 bytes/);
    expect(() => w.writeTensor("q.0", t.k[0])).toThrow(/no tensor 'q.0'/);
    expect(() => w.write(new Uint8Array(10_000))).toThrow(/passes the 480 bytes/);
    expect(() => w.finish()).toThrow(/only 0 of the 480 payload bytes were written/);
    w.dispose();
    expect(() => serializeKv(m, { k: t.k, v: t.v.slice(1) })).toThrow(/needs 3 k and v tensors/);
  });
});
