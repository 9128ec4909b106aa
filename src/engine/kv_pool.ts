/**
 * The GPU KV cache: one K pool and one V pool per layer, carved into blocks. A block (the shared
 * prefix, one context, a live sequence) is a contiguous range of token slots at the same offset in
 * every layer's pools, laid out [kvHeads, capacity, headDim] inside each pool: the layout of a cache
 * file's `k.<layer>` tensors, so storing or loading a block is one contiguous copy per tensor.
 * Allocation is first-fit under a byte budget; exhausting it throws CapacityError with the figures.
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { KvPool } from "./kv_pool.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2");
 * const pool = new KvPool(model.gpu, model.config, 1 << 20); // 1 MiB of K/V slots for every layer
 * const block = pool.allocate(128, 5); // 128 token slots, first position 5
 * console.log(block.capacity, block.firstPos, pool.freeTokens());
 * pool.release(block);
 * pool.destroy();
 * model.destroy();
 * ```
 */
import type { Gpu } from "../gpu/device.ts";
import { storageBuffer } from "../gpu/buffers.ts";
import { ApeError, CapacityError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";

export interface KvBlock {
  readonly id: number;
  /** First token slot of the block in every layer's pool. */
  readonly base: number;
  /** Token slots reserved. */
  readonly capacity: number;
  /** Token slots filled so far. */
  tokens: number;
  /** Position of the block's first token (positions run on contiguously). */
  firstPos: number;
}

/** Storage of the K/V pools: f32, or f16 (half the memory and bandwidth; attention math stays f32). */
export type KvDtype = "f32" | "f16";

export class KvPool {
  readonly k: GPUBuffer[] = [];
  readonly v: GPUBuffer[] = [];
  /** Token slots in each pool. */
  readonly capacity: number;
  readonly bytesPerToken: number;
  #free: { start: number; size: number }[];
  #live = new Map<number, KvBlock>();
  #nextId = 1;
  #destroyed = false;
  /**
   * Called when an allocation does not fit: free something (e.g. evict the least recently used
   * cached context) and return true to retry, or false to give up with CapacityError.
   */
  onFull?: (neededTokens: number) => boolean;

  constructor(readonly gpu: Gpu, readonly config: ModelConfig, readonly budgetBytes: number, readonly dtype: KvDtype = "f32") {
    const { layers, kvHeads, headDim } = config;
    if (dtype === "f16" && headDim % 2 !== 0) throw new CapacityError(`an f16 KV cache needs an even head_dim (got ${headDim})`);
    const perLayerToken = kvHeads * headDim * this.elementBytes;
    this.bytesPerToken = perLayerToken * 2 * layers;
    const byBudget = Math.floor(budgetBytes / this.bytesPerToken);
    const byBinding = Math.floor(Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize) / perLayerToken);
    this.capacity = Math.min(byBudget, byBinding);
    if (this.capacity < 1) {
      throw new CapacityError(`KV budget of ${budgetBytes} bytes holds no token (one token needs ${this.bytesPerToken} bytes)`);
    }
    for (let l = 0; l < layers; l++) {
      this.k.push(storageBuffer(gpu.device, this.capacity * perLayerToken, `kpool.${l}`));
      this.v.push(storageBuffer(gpu.device, this.capacity * perLayerToken, `vpool.${l}`));
    }
    this.#free = [{ start: 0, size: this.capacity }];
  }

  /** Reserves `capacity` token slots for a block whose first token sits at position `firstPos`. */
  allocate(capacity: number, firstPos: number): KvBlock {
    if (this.#destroyed) throw new ApeError("E_CLOSED", "the KV pool is destroyed (its engine or Ape instance was closed)");
    if (!Number.isInteger(capacity) || capacity < 1) throw new CapacityError(`a KV block needs at least one token slot (got ${capacity})`);
    let i = this.#free.findIndex((f) => f.size >= capacity);
    while (i < 0 && this.onFull?.(capacity)) i = this.#free.findIndex((f) => f.size >= capacity);
    if (i < 0) {
      throw new CapacityError(
        `GPU KV budget exhausted: a block of ${capacity} tokens does not fit (${this.freeTokens()} of ${this.capacity} token slots free, ` +
          `largest run ${Math.max(0, ...this.#free.map((f) => f.size))}; budget ${this.budgetBytes} bytes, ${this.bytesPerToken} bytes per token)`,
      );
    }
    const f = this.#free[i];
    const block: KvBlock = { id: this.#nextId++, base: f.start, capacity, tokens: 0, firstPos };
    f.start += capacity;
    f.size -= capacity;
    if (f.size === 0) this.#free.splice(i, 1);
    this.#live.set(block.id, block);
    return block;
  }

  /**
   * Returns a block's slots to the pool. Releasing is idempotent: a block already released (or one
   * this pool never allocated, e.g. a copy of a descriptor) is ignored, so a second release can never
   * free slots that were since allocated to another block.
   */
  release(block: KvBlock): void {
    if (this.#live.get(block.id) !== block) return;
    this.#live.delete(block.id);
    this.#free.push({ start: block.base, size: block.capacity });
    this.#free.sort((a, b) => a.start - b.start);
    const merged: { start: number; size: number }[] = [];
    for (const f of this.#free) {
      const last = merged[merged.length - 1];
      if (last && last.start + last.size === f.start) last.size += f.size;
      else merged.push({ ...f });
    }
    this.#free = merged;
  }

  /** Blocks allocated and not yet released (for leak checks and metrics). */
  get liveBlocks(): number {
    return this.#live.size;
  }

  freeTokens(): number {
    return this.#free.reduce((n, f) => n + f.size, 0);
  }

  get elementBytes(): number {
    return this.dtype === "f16" ? 2 : 4;
  }

  /** Byte offset and length of a block's tensor in a layer pool ([kvHeads, capacity, headDim]). */
  blockBytes(block: KvBlock): { offset: number; size: number } {
    const per = this.config.kvHeads * this.config.headDim * this.elementBytes;
    return { offset: block.base * per, size: block.capacity * per };
  }

  /** Frees the pools' GPU memory; later allocations fail with E_CLOSED. */
  destroy(): void {
    this.#destroyed = true;
    this.#live.clear();
    for (const b of [...this.k, ...this.v]) b.destroy();
  }
}
