/**
 * Compatibility: Python's `safetensors` (the reference reader, via test/py/kv_read.py) opens files
 * written by apekit and reads the same numbers, shapes, dtypes, offsets and metadata.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openKvFile, writeKvFile } from "../src/kv/mod.ts";
import type { KvDtype } from "../src/kv/meta.ts";
import { meta, tensors, value } from "./kv_file_util.ts";

const dir = mkdtempSync(join(tmpdir(), "apekit-kv-py-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const script = new URL("./py/kv_read.py", import.meta.url).pathname;

interface PyView {
  safetensors: string;
  metadata: Record<string, string>;
  keys: string[];
  offsets: Record<string, [number, number]>;
  tensors: Record<string, { dtype: string; shape: number[]; sha256: string; values: number[] }>;
}

function python(path: string): PyView {
  const r = spawnSync("python3", [script, path], { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python3 ${script} failed (${r.status}): ${r.stderr || r.error}`);
  return JSON.parse(r.stdout) as PyView;
}

describe("KV-cache files: Python safetensors reads what apekit writes", () => {
  for (const dtype of ["F16", "BF16", "F32"] as KvDtype[]) {
    it(`${dtype}`, async () => {
      const m = meta({ dtype, layers: 4, kvHeads: 3, headDim: 8, tokenIds: Uint32Array.from({ length: 9 }, (_, i) => 151_000 + i) });
      const t = tensors(m);
      const path = join(dir, `c-${dtype}.kv`);
      const written = await writeKvFile(path, m, (l) => ({ k: t.k[l], v: t.v[l] }));
      const py = python(path);
      expect(py.safetensors).toMatch(/^\d+\.\d+/);
      expect(py.keys).toEqual(["k.0", "k.1", "k.2", "k.3", "v.0", "v.1", "v.2", "v.3"]);
      // Metadata as Python sees it.
      expect(py.metadata.format).toBe("apekit.kv");
      expect(py.metadata.format_version).toBe("1");
      expect(py.metadata.kind).toBe("context");
      expect(py.metadata.model_fingerprint).toBe(m.modelFingerprint);
      expect(py.metadata.tokenizer_fingerprint).toBe(m.tokenizerFingerprint);
      expect(py.metadata.prefix_hash).toBe(m.prefixHash);
      expect(py.metadata.token_ids).toBe(Array.from(m.tokenIds).join(","));
      expect(py.metadata.tokens).toBe("9");
      expect(py.metadata.first_pos).toBe("7");
      expect(py.metadata.dtype).toBe(dtype);
      expect([py.metadata.layers, py.metadata.kv_heads, py.metadata.head_dim]).toEqual(["4", "3", "8"]);
      expect(py.metadata.checksum_algo).toBe("xxh3-64");
      expect(py.metadata.checksum).toBe(written.checksum);
      expect(py.metadata.meta_checksum).toBe(written.metaChecksum);
      expect(py.metadata.note).toBe("héllo");
      // Tensors: same shape, dtype, bytes, numbers, and the file order k.0, v.0, k.1, ...
      const f = openKvFile(new Uint8Array(readFileSync(path)));
      const n = 3 * 9 * 8;
      for (const ti of f.tensors) {
        const p = py.tensors[ti.name];
        expect(p.dtype).toBe(dtype);
        expect(p.shape).toEqual([3, 9, 8]);
        expect(p.sha256).toBe(createHash("sha256").update(f.tensor(ti.name)).digest("hex"));
        const idx = 2 * ti.layer + (ti.kv === "k" ? 0 : 1);
        expect(p.values).toEqual(Array.from({ length: n }, (_, i) => value(idx, i)));
        expect(py.offsets[ti.name]).toEqual([ti.offset - f.layout.headerLength, ti.offset - f.layout.headerLength + ti.byteLength]);
      }
    });
  }
});
