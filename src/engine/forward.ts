/**
 * The transformer forward pass, top to bottom, for a batch of rows that may belong to different
 * sequences: each group of rows writes its keys/values into a KV block and attends to its own list of
 * blocks. One code path serves every case:
 * - sequential prefill: one group, attending [its own block] causally;
 * - batched context encoding (APE pass 2): one group per context, each attending [prefix, itself];
 * - APE query / decode (pass 3): attends [prefix, live] plainly and, separately, all contexts with
 *   scores / T; the two parts merge with w_C = sigmoid(S*T*LSE_C - LSE_O) (shaders/ape_merge.wgsl).
 *
 * @example
 * ```ts
 * import { loadEngineModel } from "../model/load.ts";
 * import { KvPool } from "./kv_pool.ts";
 * import { Forward } from "./forward.ts";
 * const { model } = await loadEngineModel("fixtures/models/qwen2"); // a tiny fixture model
 * const pool = new KvPool(model.gpu, model.config, 4 << 20);
 * const block = pool.allocate(3, 0); // a sequence's KV slots for positions 0..2
 * // one sequential prefill of 3 rows, causal over its own block, logits of the last row
 * const fwd = new Forward(model, pool, 3, { groups: [{ rows: 3, write: block, writeAt: 0, plain: [block] }], logits: { from: 2, count: 1 } });
 * fwd.setIds(Uint32Array.from([1, 2, 3]));
 * fwd.program.submit();
 * const logits = await fwd.readLogits();
 * console.log(logits.length === model.config.vocabSize); // true
 * fwd.destroy();
 * pool.destroy();
 * model.destroy();
 * ```
 */
import { readBuffer, storageBuffer, uploadU32 } from "../gpu/buffers.ts";
import type { Model } from "../model/model.ts";
import type { GpuLinear } from "../model/weights.ts";
import { cosSinTable } from "../model/rope.ts";
import type { KvBlock, KvPool } from "./kv_pool.ts";
import { Params, Program } from "./program.ts";
import { type AttentionCall, recordApeAttention, recordAttention } from "./attention.ts";
import { dequantScratchBytes, fusesInput, fusesNorm, type LinearInput, recordLinear, ropeOutput, swigluOutput } from "./linear.ts";
import { i8ScratchBytes, usesInt8 } from "./linear_i8.ts";
import { ModelFormatError } from "../errors.ts";

export interface AttendGroup {
  /** Consecutive rows of the batch in this group. */
  rows: number;
  /** Block receiving the group's keys/values, and the slot of its first row. */
  write: KvBlock;
  writeAt: number;
  /** Blocks attended with plain scores, visible by position (causal). */
  plain: KvBlock[];
  /** APE's context set, attended with scores / T and merged with scale S. */
  contexts?: KvBlock[];
}

export interface ForwardInput {
  groups: AttendGroup[];
  /** APE temperature and scale (1, 1 = exact attention over the union). */
  temperature?: number;
  scale?: number;
  /** Rows [from, from + count) whose logits are computed; count 0 for none. */
  logits: { from: number; count: number };
}

const ceil = (a: number, b: number) => Math.ceil(a / b);

/**
 * Bytes per batch row of each per-row buffer a Forward creates below (each must fit one binding and
 * one buffer: Engine.run sizes its chunks by the widest). The logits buffer holds vocab * 4 bytes per
 * logit row; the dequant scratch does not grow with rows.
 */
export function forwardRowBytes(c: Model["config"]): Record<string, number> {
  const qDim = c.heads * c.headDim, qkvDim = qDim + 2 * c.kvHeads * c.headDim;
  return {
    ids: 4, x: c.hidden * 4, xn: c.hidden * 4, qkv: qkvDim * 4, attn: qDim * 4, lse: c.heads * 4,
    gu: 2 * c.intermediate * 4, h: c.intermediate * 4, cosSin: c.headDim * 4, dest: 16, rowInfo: 16,
  };
}

/** Scratch buffers, state buffers and the recorded dispatches for one batch shape. */
/**
 * Streamed recording (Forward's last argument): the ids, written before anything is submitted, and how many layers
 * the host records between submits, so that the GPU starts on the first layers while the host records the rest.
 */
export interface ForwardStream {
  ids: Uint32Array;
  layersPerSubmit: number;
}

export class Forward {
  readonly program: Program;
  readonly ids: GPUBuffer;
  readonly logits: GPUBuffer;
  readonly logitRows: number;
  // per-row state, rewritten between decode steps
  readonly cosSin: GPUBuffer;
  readonly dest: GPUBuffer;
  /**
   * Per row (pos, listStart, listLen, _) of the plain part at rows 0..n, and with APE of the context part
   * from row ctxRow on (aligned for a binding offset), both parts' lists indexing the one `blocks` array:
   * so one split dispatch can serve both parts of an APE decode step (recordApeDecodeSplits).
   */
  readonly rows: GPUBuffer;
  readonly blocks: GPUBuffer;
  readonly ctxRow: number;
  readonly ape: boolean;
  #scratch: GPUBuffer[] = [];

  /**
   * Records the forward pass for `input` over `n` rows. `ids` may be given as a GPU buffer (the
   * sampler's output, for decode), else a buffer is created and `setIds` fills it. With `stream`, the ids
   * are written first and the program is submitted every `layersPerSubmit` layers while it is recorded: the
   * caller submits the rest with `program.submitRest()` (a later `program.submit()` replays it all).
   */
  constructor(readonly model: Model, readonly pool: KvPool, readonly n: number, readonly input: ForwardInput, idsBuffer?: GPUBuffer, stream?: ForwardStream) {
    const { config: c, kernels: k, gpu } = model;
    const dev = gpu.device;
    const prog = (this.program = new Program(dev));
    const buf = (floats: number, label: string) => {
      const b = storageBuffer(dev, floats * 4, label);
      this.#scratch.push(b);
      return b;
    };
    const qDim = c.heads * c.headDim, kvDim = c.kvHeads * c.headDim, qkvDim = qDim + 2 * kvDim;
    if (c.headDim % 4 !== 0) throw new ModelFormatError(`head_dim ${c.headDim}: apekit's kernels need a multiple of 4`);
    this.ape = input.groups.some((g) => g.contexts && g.contexts.length > 0);

    this.ids = idsBuffer ?? buf(n, "ids");
    const x = buf(n * c.hidden, "x"), xn = buf(n * c.hidden, "xn");
    const qkv = buf(n * qkvDim, "qkv"), attn = buf(n * qDim, "attn"), lse = buf(n * c.heads, "lse");
    const attnC = this.ape ? buf(n * qDim, "attnC") : attn, lseC = this.ape ? buf(n * c.heads, "lseC") : lse;
    const attnO = this.ape ? buf(n * qDim, "attnO") : attn;
    const gu = buf(n * 2 * c.intermediate, "gu"), h = buf(n * c.intermediate, "h");
    this.cosSin = buf(n * c.headDim, "cosSin");
    this.dest = buf(n * 4, "dest");
    this.logitRows = input.logits.count;
    this.logits = buf(Math.max(1, this.logitRows) * c.vocabSize, "logits");
    const state = this.layoutState();
    this.ctxRow = state.ctxRow;
    this.rows = this.track(uploadU32(dev, state.rows));
    this.blocks = this.track(uploadU32(dev, state.blocks));
    dev.queue.writeBuffer(this.cosSin, 0, state.cosSin);
    dev.queue.writeBuffer(this.dest, 0, state.dest);
    if (stream) this.setIds(stream.ids);

    const layout = model.matvecLayout ?? (gpu.isCpu ? "rows" : "lanes");
    // decode on a GPU: RMSNorm rides in the next projection's input stage and SwiGLU in gate_up's epilogue (fewer
    // dispatches, and down_proj reads silu(gate) * up once instead of computing it in every lane group); a batch of
    // 2..32 rows (a batched decode step) fuses RMSNorm only, where it pays (normedLinear), and keeps SwiGLU's dispatch
    const fused = fusesInput(n, layout);
    const linears = [...model.layers.flatMap((L) => [L.qkv, L.o, L.gateUp, L.down]), ...(input.logits.count > 1 ? [model.lmHead] : [])];
    const scratchBytes = layout === "lanes" ? dequantScratchBytes(linears, n, gpu.limits.maxStorageBufferBindingSize) : 0;
    const scratch = scratchBytes > 0 ? buf(scratchBytes / 4, "dequant") : undefined;
    // compute "int8": x's rows quantized for the int8 prefill kernels (linear_i8.ts), sized by the widest layer
    const i8Layers = linears.filter((W) => usesInt8(W, n));
    const i8Need = i8Layers.length > 0 && layout === "lanes" ? i8ScratchBytes(n, Math.max(...i8Layers.map((W) => W.cols))) : undefined;
    const i8 = i8Need ? { q: buf(i8Need.q / 4, "i8.x"), s: buf(i8Need.s / 4, "i8.xScales") } : undefined;
    const linear = (inp: GPUBuffer, W: GpuLinear, out: GPUBuffer, rows: number, accumulate = false, transform?: LinearInput) =>
      recordLinear(prog, k, inp, W, out, rows, layout, scratch, accumulate, transform, undefined, undefined, i8);
    const rmsnormCopy = (src: GPUBuffer, w: GPUBuffer, dst: GPUBuffer, rows: number, fromRow = 0) => {
      const pipe = k.pipeline("rmsnorm_copy");
      const params = prog.uniform(new Params().u(rows, c.hidden, fromRow).f(c.rmsEps).bytes());
      prog.dispatch(pipe, k.bind(pipe, [src, w, dst, params]), 1, rows);
    };
    // W applied to RMSNorm(x) * normW, for `rows` rows of x from `fromRow` (out's rows start at 0): in the kernel's
    // input stage (one row; the batched matvec's 2..32 rows through layers where that pays: fusesNorm), else through xn
    const normedLinear = (normW: GPUBuffer, W: GpuLinear, out: GPUBuffer, rows = n, fromRow = 0, also: LinearInput = {}) => {
      if (fusesNorm(W, rows, layout, fromRow)) return linear(x, W, out, rows, false, { norm: { weight: normW, eps: c.rmsEps }, fromRow, ...also });
      rmsnormCopy(x, normW, xn, rows, fromRow);
      linear(xn, W, out, rows, false, also);
    };
    const headNorm = (w: GPUBuffer, heads: number, colOffset: number) => {
      const pipe = k.pipeline("rmsnorm");
      const params = prog.uniform(new Params().u(n, c.headDim, qkvDim, colOffset).f(c.rmsEps).u(heads).bytes());
      prog.dispatch(pipe, k.bind(pipe, [qkv, w, params]), heads, n);
    };
    // rotates q and k (q and k heads sit side by side in each fused qkv row) and stores k, v in the KV block
    // (one row on a GPU without q/k norms: in the qkv projection's epilogue instead, ropeOutput; no dispatch)
    const ropeInQkv = (L: (typeof model.layers)[number]) =>
      !(L.qNorm && L.kNorm) && ropeOutput(L.qkv, n, layout, gpu.limits.maxStorageBuffersPerShaderStage);
    const ropeStore = (layer: number) => {
      const pipe = k.pipeline(pool.dtype === "f16" ? "rope_store_f16" : "rope_store");
      const params = prog.uniform(new Params().u(n, c.heads, c.kvHeads, c.headDim, qkvDim, qDim, qDim + kvDim).bytes());
      const bind = k.bind(pipe, [qkv, this.cosSin, this.dest, pool.k[layer], pool.v[layer], params]);
      prog.dispatch(pipe, bind, ceil(((c.heads + c.kvHeads) * c.headDim) / 4, 64), n);
    };
    const plainLists = input.groups.map((g) => ({ rows: g.rows, blocks: g.plain }));
    const ctxLists = input.groups.map((g) => ({ rows: g.rows, blocks: g.contexts ?? [] }));
    const part = (layer: number, ctx: boolean, out: GPUBuffer, lseOut: GPUBuffer, temperature: number): AttentionCall => ({
      layer, q: qkv, out, lse: lseOut, temperature, rows: n,
      rowInfo: { buffer: this.rows, offset: ctx ? this.ctxRow * 16 : 0, size: n * 16 }, blocks: this.blocks, lists: ctx ? ctxLists : plainLists,
    });

    // ---- the forward pass ----
    const embedPipe = k.pipeline("embed");
    for (const ch of model.embed.chunks) {
      const params = prog.uniform(new Params().u(n, c.hidden, ch.rowStart, ch.rows, 0).bytes());
      prog.dispatch(embedPipe, k.bind(embedPipe, [this.ids, ch.buffer, x, params]), ceil(c.hidden, 64), n);
    }
    const T = input.temperature ?? 1, S = input.scale ?? 1;
    for (let l = 0; l < c.layers; l++) {
      const L = model.layers[l];
      // attention block
      if (ropeInQkv(L)) {
        const rope = { cosSin: this.cosSin, dest: this.dest, k: pool.k[l], v: pool.v[l], f16kv: pool.dtype === "f16", heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim };
        normedLinear(L.attnNorm, L.qkv, qkv, n, 0, { rope });
      } else {
        normedLinear(L.attnNorm, L.qkv, qkv);
        if (L.qNorm && L.kNorm) {
          headNorm(L.qNorm, c.heads, 0);
          headNorm(L.kNorm, c.kvHeads, qDim);
        }
        ropeStore(l);
      }
      // attention: over the plain blocks; with APE also over the contexts (scores / T), merged with S
      if (this.ape) recordApeAttention(prog, model, pool, part(l, false, attnO, lse, 1), part(l, true, attnC, lseC, T), attn, S * T);
      else recordAttention(prog, model, pool, part(l, false, attn, lse, 1));
      linear(attn, L.o, x, n, true); // x += o_proj(attn)
      // MLP block
      if (swigluOutput(L.gateUp, n, layout)) { // one row: h = silu(gate) * up in gate_up's epilogue, x += down_proj(h)
        linear(x, L.gateUp, h, n, false, { norm: { weight: L.mlpNorm, eps: c.rmsEps }, swigluOut: true });
        linear(h, L.down, x, n, true);
      } else if (fused) { // one row, gate_up in chunks: down_proj takes silu(gate) * up in its input stage
        normedLinear(L.mlpNorm, L.gateUp, gu);
        linear(gu, L.down, x, n, true, { swiglu: true });
      } else if (i8 && usesInt8(L.down, n)) { // compute int8: SwiGLU inside down_proj's input quantization
        normedLinear(L.mlpNorm, L.gateUp, gu);
        linear(gu, L.down, x, n, true, { swiglu: true });
      } else {
        normedLinear(L.mlpNorm, L.gateUp, gu);
        const swiglu = k.pipeline("swiglu");
        const sp = prog.uniform(new Params().u(n, c.intermediate).bytes());
        prog.dispatch(swiglu, k.bind(swiglu, [gu, h, sp]), ceil(c.intermediate, 64), n);
        linear(h, L.down, x, n, true); // x += down_proj(h)
      }
      if (stream && (l + 1) % stream.layersPerSubmit === 0 && l + 1 < c.layers) prog.submitRest();
    }
    if (this.logitRows > 0) {
      normedLinear(model.norm, model.lmHead, this.logits, this.logitRows, input.logits.from);
    }
  }

  private track(b: GPUBuffer): GPUBuffer {
    this.#scratch.push(b);
    return b;
  }

  /**
   * The per-row state the kernels read: positions' cos/sin, each row's KV destination, and the block
   * lists (plain and context) with each row's range into them. Also advances the written blocks'
   * token counts on the host.
   */
  layoutState() {
    const { model: { config: c, invFreq }, n, input } = this;
    const positions = new Uint32Array(n);
    const dest = new Uint32Array(n * 4);
    // the context part's rows from a row that a binding offset can start at
    const align = this.model.gpu.device.limits.minStorageBufferOffsetAlignment;
    const ctxRow = this.ape ? Math.ceil((n * 16) / align) * align / 16 : 0;
    const rows = new Uint32Array((this.ape ? ctxRow + n : n) * 4);
    const blocks: number[] = [];
    let r = 0;
    for (const g of input.groups) {
      g.write.tokens = Math.max(g.write.tokens, g.writeAt + g.rows);
      const describe = (list: KvBlock[], out: number[]) => {
        const start = out.length / 4;
        for (const b of list) out.push(b.base, b.tokens, b.capacity, b.firstPos);
        return [start, list.length];
      };
      const [ps, pl] = describe(g.plain, blocks);
      const [cs, cl] = describe(g.contexts ?? [], blocks);
      for (let i = 0; i < g.rows; i++, r++) {
        const pos = g.write.firstPos + g.writeAt + i;
        positions[r] = pos;
        dest.set([g.write.base, g.write.capacity, g.writeAt + i, 0], r * 4);
        rows.set([pos, ps, pl, 0], r * 4);
        if (this.ape) rows.set([pos, cs, cl, 0], (ctxRow + r) * 4);
      }
    }
    if (r !== n) throw new Error(`forward: groups cover ${r} rows, batch has ${n}`);
    // Block descriptors are re-read from the blocks at record time: a block written by this batch
    // already counts its new tokens (set above) so rows see keys up to their own position.
    return {
      positions,
      cosSin: cosSinTable(invFreq, positions).subarray(0, n * c.headDim / 2 * 2),
      dest,
      rows,
      ctxRow,
      blocks: new Uint32Array(blocks.length ? blocks : [0, 0, 0, 0]),
    };
  }

  /** Rewrites the state buffers from the groups' current blocks (between decode steps). */
  refreshState(): void {
    const dev = this.model.gpu.device;
    const s = this.layoutState();
    dev.queue.writeBuffer(this.cosSin, 0, s.cosSin);
    dev.queue.writeBuffer(this.dest, 0, s.dest);
    dev.queue.writeBuffer(this.rows, 0, s.rows);
    dev.queue.writeBuffer(this.blocks, 0, s.blocks);
  }

  setIds(ids: Uint32Array): void {
    if (ids.length !== this.n) throw new Error(`forward: ${ids.length} ids for ${this.n} rows`);
    this.model.gpu.device.queue.writeBuffer(this.ids, 0, ids);
  }

  async readLogits(): Promise<Float32Array> {
    const bytes = this.logitRows * this.model.config.vocabSize * 4;
    return new Float32Array(await readBuffer(this.model.gpu.device, this.logits, bytes));
  }

  destroy(): void {
    this.program.destroy();
    for (const b of this.#scratch) b.destroy();
  }
}
