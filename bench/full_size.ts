/**
 * One full-size check run for bench/full_size.sh: loads a model the way users do, `loadModel(<hub id>)`
 * (HF_ENDPOINT points at the stand-in hub, HF_HUB_CACHE at a scratch cache), computes the logits of every
 * position of the given ids, and writes them as little-endian float32 rows (`--out F.bin`), printing one
 * JSON line of timings.
 *
 *   deno run -A bench/full_size.ts --model standin/Qwen3-0.6B --ids 1,2,3 --dtype f16 --compute f16 --out x.bin
 */
import { writeFileSync } from "node:fs";
import process from "node:process";
import { loadModel } from "../sdk/load.ts";
import { Engine } from "../src/engine/engine.ts";
import { sequentialLogits } from "../src/ape/ape.ts";

const arg = (name: string, dflt?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 && dflt === undefined) throw new Error(`--${name} is required`);
  return i < 0 ? dflt! : process.argv[i + 1];
};
const spec = arg("model"), out = arg("out");
const ids = Uint32Array.from(arg("ids").split(",").map(Number));
const t0 = performance.now();
let downloaded = 0, lastDownload = t0;
const model = await loadModel(spec, {
  dtype: arg("dtype", "auto") as "auto" | "f32" | "f16",
  compute: arg("compute", "f32") as "f32" | "f16",
  download: { onProgress: (p) => ((lastDownload = performance.now()), p.done === p.total && (downloaded += p.total)) },
});
const loadMs = performance.now() - t0;
const engine = new Engine(model.model, { kvBudgetBytes: 64 << 20 });
try {
  await sequentialLogits(engine, ids.subarray(0, 4), true); // warm-up: pipelines compiled outside the timing
  const t1 = performance.now();
  const logits = await sequentialLogits(engine, ids, true);
  const logitsMs = performance.now() - t1;
  writeFileSync(out, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
  const c = model.model.config;
  console.log(JSON.stringify({
    model: spec, source: model.model.source, layers: c.layers, vocab: c.vocabSize, rows: ids.length,
    downloadedBytes: downloaded, downloadMs: downloaded ? Math.round(lastDownload - t0) : 0,
    loadMs: Math.round(loadMs), logitsMs: Math.round(logitsMs), weights: model.model.layers[0].qkv.format,
  }));
} finally {
  engine.destroy();
  model.destroy();
}
process.exit(0);
