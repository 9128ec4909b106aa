/**
 * The engine: a model plus its GPU KV pool, and the one primitive everything else is built from:
 * run a batch of row groups (each writing its own KV block and attending its own block list) and,
 * optionally, read back logits.
 *
 * @example
 * ```ts
 * import { Engine } from "./engine.ts";
 * // const engine = new Engine(model, { kvBudgetBytes: 64 << 20 });
 * // const block = engine.pool.allocate(ids.length, 0);
 * // const logits = await engine.run(ids, { groups: [{ rows: ids.length, write: block, writeAt: 0, plain: [block] }],
 * //   logits: { from: ids.length - 1, count: 1 } });
 * ```
 */
import type { Model } from "../model/model.ts";
import { CapacityError, InvalidArgumentError } from "../errors.ts";
import { Forward, type ForwardInput } from "./forward.ts";
import { type KvDtype, KvPool } from "./kv_pool.ts";

export interface EngineOptions {
  /** Bytes of GPU memory for KV blocks (default 256 MiB). */
  kvBudgetBytes?: number;
  /** Most rows in one forward batch (longer inputs are split; default 4096). */
  maxBatchRows?: number;
  /** KV cache storage: "f32" (default) or "f16" (half the memory; attention math stays f32). */
  kvDtype?: KvDtype;
}

export class Engine {
  readonly pool: KvPool;
  readonly maxBatchRows: number;
  constructor(readonly model: Model, opts: EngineOptions = {}) {
    this.pool = new KvPool(model.gpu, model.config, opts.kvBudgetBytes ?? 256 * 1024 * 1024, opts.kvDtype ?? "f32");
    this.maxBatchRows = opts.maxBatchRows ?? 4096;
  }

  /** Checks ids against the vocabulary (an out-of-range id would read past the embedding). */
  checkIds(ids: ArrayLike<number>, what = "token ids"): void {
    const V = this.model.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < V)) throw new InvalidArgumentError(`${what}: id ${ids[i]} at index ${i} is outside the vocabulary (0..${V - 1})`);
    }
  }

  /** Runs one forward batch; returns logits for input.logits rows ([count, vocab]) or an empty array. */
  async run(ids: Uint32Array, input: ForwardInput): Promise<Float32Array> {
    this.checkIds(ids);
    const maxPos = Math.max(...input.groups.map((g) => g.write.firstPos + g.writeAt + g.rows));
    if (maxPos > this.model.config.maxPositions) {
      throw new CapacityError(`positions up to ${maxPos} exceed the model's max_position_embeddings (${this.model.config.maxPositions})`);
    }
    for (const g of input.groups) {
      if (g.writeAt + g.rows > g.write.capacity) {
        throw new CapacityError(`a group of ${g.rows} rows at slot ${g.writeAt} overflows its block of ${g.write.capacity} slots`);
      }
    }
    const fwd = new Forward(this.model, this.pool, ids.length, input);
    try {
      fwd.setIds(ids);
      fwd.program.submit();
      return input.logits.count > 0 ? await fwd.readLogits() : new Float32Array(0);
    } finally {
      fwd.destroy();
    }
  }

  destroy(): void {
    this.pool.destroy();
  }
}
