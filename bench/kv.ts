/**
 * `ape bench kv`: KV-cache file throughput for a 256 MiB cache (by default: 16 layers x 8 KV heads x
 * 4096 tokens x 128 head dim, F16), beside a plain memory copy of the same bytes in the same run.
 *
 *   copy                 the tensors copied into one preallocated buffer (Uint8Array.set)
 *   serialize            header + checksum as the tensors stream past (KvWriter: what a file
 *                        writer does before its writes; the chunks are the tensors themselves)
 *   serialize+bytes      serializeKv(...).toBytes(buf): checksum plus one copy into a single
 *                        (preallocated) buffer
 *   verify+deserialize   openKvFile(bytes): header validation, checksum, tensor views
 *   verify (stream)      KvReader over the file in 4 MiB chunks: the streaming loader's path
 *
 * Target (issue 4): serialize (checksum + serialize) at no less than half the copy's speed.
 * Each figure is the best of --reps runs, the cases interleaved (GB/s = 1e9 bytes per second).
 *
 * @example
 * ```sh
 * deno task ape bench kv            # or: ape bench kv --mb 64 --reps 3 --json
 * ```
 */
import { parseArgs } from "../sdk/commands/args.ts";
import { KvReader, KvWriter, openKvFile, serializeKv } from "../src/kv/mod.ts";
import type { KvMetaInput } from "../src/kv/meta.ts";

function fillRandom(b: Uint8Array, seed: number): void {
  const w = new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w[i] = x;
  }
}

export async function run(args: string[]): Promise<number> {
  const a = parseArgs(args, { string: ["mb", "reps"], boolean: ["json"] });
  const mb = Number(a.string.mb ?? 256);
  const reps = Number(a.string.reps ?? 7);
  const layers = 16;
  const kvHeads = 8;
  const headDim = 128;
  const tokens = Math.max(1, Math.round((mb * 2 ** 20) / (2 * layers * kvHeads * headDim * 2)));
  const meta: KvMetaInput = {
    modelFingerprint: "bench-model",
    tokenizerFingerprint: "bench-tokenizer",
    kind: "context",
    tokenIds: Uint32Array.from({ length: tokens }, (_, i) => (i * 7919) % 128_000),
    firstPos: 0,
    prefixHash: "bench-prefix",
    dtype: "F16",
    layers,
    kvHeads,
    headDim,
  };
  const tensorBytes = kvHeads * tokens * headDim * 2;
  const k: Uint8Array[] = [];
  const v: Uint8Array[] = [];
  for (let l = 0; l < layers; l++) {
    k.push(new Uint8Array(tensorBytes));
    v.push(new Uint8Array(tensorBytes));
    fillRandom(k[l], 2 * l + 1);
    fillRandom(v[l], 2 * l + 2);
  }
  const payload = 2 * layers * tensorBytes;

  // A plain memory copy of the same bytes (destination allocated and touched up front).
  const dst = new Uint8Array(payload);
  dst.fill(1);
  const copy = () => {
    let at = 0;
    for (let l = 0; l < layers; l++) {
      dst.set(k[l], at);
      at += tensorBytes;
      dst.set(v[l], at);
      at += tensorBytes;
    }
  };

  let checksum = "";
  const serialize = () => {
    const w = new KvWriter(meta);
    const chunks: Uint8Array[] = [w.header];
    for (let l = 0; l < layers; l++) {
      w.writeTensor(`k.${l}`, k[l]);
      w.writeTensor(`v.${l}`, v[l]);
      chunks.push(k[l], v[l]);
    }
    checksum = w.finish().checksum;
    chunks[0] = w.finalHeader();
  };

  const fileBuf = new Uint8Array(payload + (1 << 20));
  fileBuf.fill(1);
  let file = serializeKv(meta, { k, v }).toBytes(fileBuf);
  const serializeBytes = () => {
    file = serializeKv(meta, { k, v }).toBytes(fileBuf);
  };

  const verify = () => {
    const f = openKvFile(file, { expect: { modelFingerprint: "bench-model" } });
    if (f.meta.checksum !== checksum || f.k(layers - 1).length !== tensorBytes) throw new Error("bench: wrong load");
  };

  const verifyStream = async () => {
    const chunks = function* () {
      for (let at = 0; at < file.length; at += 4 << 20) yield file.subarray(at, at + (4 << 20));
    };
    const r = await KvReader.open(chunks());
    for await (const _ of r.pieces()) { /* a loader would writeBuffer each piece here */ }
  };

  // Interleaved, so that every measure sees the same machine (other processes come and go).
  const cases: [string, () => void | Promise<void>][] = [
    ["copy", copy],
    ["serialize", serialize],
    ["serialize+bytes", serializeBytes],
    ["verify+deserialize", verify],
    ["verify (stream)", verifyStream],
  ];
  const bestS = cases.map(() => Infinity);
  for (let r = 0; r < reps; r++) {
    for (const [i, [, f]] of cases.entries()) {
      const t0 = performance.now();
      await f();
      bestS[i] = Math.min(bestS[i], (performance.now() - t0) / 1000);
    }
  }
  const copyS = bestS[0];
  const serializeS = bestS[1];

  const gbs = (s: number) => payload / s / 1e9;
  const rows = cases.map(([name], i) => ({ name, seconds: bestS[i], gbPerS: gbs(bestS[i]), vsCopy: copyS / bestS[i] }));
  const ratio = copyS / serializeS;
  const result = {
    bench: "kv",
    cacheBytes: payload,
    fileBytes: file.length,
    shape: { layers, kvHeads, tokens, headDim, dtype: "F16" },
    reps,
    rows,
    target: { serializeVsCopy: ratio, required: 0.5, met: ratio >= 0.5 },
  };
  if (a.boolean.json) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    console.log(`kv bench: ${(payload / 2 ** 20).toFixed(0)} MiB cache (${layers} layers x ${kvHeads} kv heads x ${tokens} tokens x ${headDim}, F16), best of ${reps}`);
    for (const r of rows) {
      console.log(`  ${r.name.padEnd(20)} ${r.gbPerS.toFixed(2).padStart(7)} GB/s  ${(r.seconds * 1000).toFixed(1).padStart(8)} ms  ${r.vsCopy.toFixed(2)} x copy`);
    }
    console.log(`  target: serialize >= 0.5 x copy: ${ratio.toFixed(2)} x -> ${ratio >= 0.5 ? "met" : "MISSED"}`);
  }
  return 0;
}
