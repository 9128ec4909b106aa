/**
 * Moves a KV block between the GPU pools and the host, in the cache-file layout
 * ([kvHeads, tokens, headDim] per layer and tensor; Float32Array for f32 pools, Uint16Array of half
 * floats for f16 pools). Reading copies every layer's K and V into one
 * staging buffer and maps it once (one GPU round trip per block, not one per layer); writing is one
 * queue write per tensor (per kv head when the block has spare capacity).
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { Engine } from "./engine.ts";
 * import { readBlock, writeBlock } from "./kv_transfer.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const engine = new Engine(model, { kvBudgetBytes: 4 << 20 });
 * const ids = Uint32Array.from([5, 6, 7]);
 * const block = engine.pool.allocate(ids.length, 0);
 * await engine.run(ids, { groups: [{ rows: ids.length, write: block, writeAt: 0, plain: [block] }], logits: { from: 0, count: 0 } });
 * const kv = await readBlock(engine.pool, block); // the block's keys and values, on the host
 * const copy = engine.pool.allocate(ids.length, 0);
 * writeBlock(engine.pool, copy, kv); // back onto the GPU, into another block
 * const again = await readBlock(engine.pool, copy);
 * console.log(copy.tokens, again.k[0].every((x, i) => x === kv.k[0][i])); // 3 true
 * engine.destroy();
 * model.destroy();
 * ```
 */
import { Usage } from "../gpu/buffers.ts";
import { CacheMismatchError } from "../errors.ts";
import type { KvBlock, KvPool } from "./kv_pool.ts";

export type KvArray = Float32Array | Uint16Array;

export interface HostKv {
  /** Per layer, [kvHeads, tokens, headDim]: f32 values, or f16 bits for an f16 pool. */
  k: KvArray[];
  v: KvArray[];
  tokens: number;
}

export async function readBlock(pool: KvPool, block: KvBlock): Promise<HostKv> {
  const { layers, kvHeads, headDim } = pool.config;
  const dev = pool.gpu.device;
  const { offset, size } = pool.blockBytes(block);
  const staging = dev.createBuffer({ size: size * layers * 2, usage: Usage.MAP_READ | Usage.COPY_DST });
  const enc = dev.createCommandEncoder();
  for (let l = 0; l < layers; l++) {
    enc.copyBufferToBuffer(pool.k[l], offset, staging, (2 * l) * size, size);
    enc.copyBufferToBuffer(pool.v[l], offset, staging, (2 * l + 1) * size, size);
  }
  dev.queue.submit([enc.finish()]);
  await staging.mapAsync(0x1);
  const mapped = staging.getMappedRange().slice(0);
  const all: KvArray = pool.dtype === "f16" ? new Uint16Array(mapped) : new Float32Array(mapped);
  const eb = pool.elementBytes;
  staging.unmap();
  staging.destroy();
  const t = block.tokens, cap = block.capacity, per = cap * headDim;
  const pick = (start: number) => {
    if (t === cap) return all.slice(start, start + kvHeads * per);
    const out = pool.dtype === "f16" ? new Uint16Array(kvHeads * t * headDim) : new Float32Array(kvHeads * t * headDim);
    for (let h = 0; h < kvHeads; h++) out.set(all.subarray(start + h * per, start + h * per + t * headDim), h * t * headDim);
    return out;
  };
  const k: KvArray[] = [], v: KvArray[] = [];
  for (let l = 0; l < layers; l++) {
    k.push(pick((2 * l) * size / eb));
    v.push(pick((2 * l + 1) * size / eb));
  }
  return { k, v, tokens: t };
}

export function writeBlock(pool: KvPool, block: KvBlock, kv: HostKv): void {
  const { layers, kvHeads, headDim } = pool.config;
  if (kv.k.length !== layers || kv.v.length !== layers) throw new CacheMismatchError(`KV has ${kv.k.length} layers, the model ${layers}`);
  if (kv.tokens > block.capacity) throw new CacheMismatchError(`KV of ${kv.tokens} tokens does not fit a block of ${block.capacity}`);
  const want = kvHeads * kv.tokens * headDim;
  const dev = pool.gpu.device;
  const { offset } = pool.blockBytes(block);
  const f16 = pool.dtype === "f16";
  for (let l = 0; l < layers; l++) {
    for (const [arr, buf] of [[kv.k[l], pool.k[l]], [kv.v[l], pool.v[l]]] as const) {
      if ((arr instanceof Uint16Array) !== f16) throw new CacheMismatchError(`KV values are ${f16 ? "f32" : "f16"}, the pool holds ${pool.dtype}`);
      if (arr.length !== want) throw new CacheMismatchError(`layer ${l}: ${arr.length} values, expected ${want} ([${kvHeads}, ${kv.tokens}, ${headDim}])`);
      if (kv.tokens === block.capacity) {
        dev.queue.writeBuffer(buf, offset, arr);
      } else {
        for (let h = 0; h < kvHeads; h++) {
          dev.queue.writeBuffer(buf, offset + h * block.capacity * headDim * pool.elementBytes, arr, h * kv.tokens * headDim, kv.tokens * headDim);
        }
      }
    }
  }
  block.tokens = kv.tokens;
}
