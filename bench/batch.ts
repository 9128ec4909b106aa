/**
 * `ape bench batch [--shape llama-3.2-1b|tiny] [--dtype f16|f32|q8_0|q4_1|q4_0] [--compute f32|f16|int8] [--streams 1,8,32]
 *   [--prompt 32] [--decode 64] [--kv f32|f16] [--steps 16] [--rows N] [--repeat 3] [--breakdown]`
 *
 * Continuous batching: aggregate decode tokens/s of N concurrent greedy streams sharing the engine's
 * batched steps (src/engine/batch.ts), for each N, and the ratio to 1 stream. A model of the given
 * shape with random weights (as `ape bench engine`). Each figure is the difference of two runs of N
 * streams (16 and 16 + --decode tokens each), so prefills, first readbacks and start-up cancel out; the
 * pair runs --repeat times and the median of its differences is the figure (one pair alone has come out
 * impossible on the H200: an 8-row step "faster" than a 1-row one), every pair's rate listed.
 * Every stream has its own prompt (sequential layout, --prompt tokens) and KV block. `--rows` caps the
 * rows of one forward pass (default: the most streams; `--rows 1` is the unbatched baseline, every
 * stream its own pass within the shared submit).
 * `--breakdown` then prints, for each N > 1, where a batched step's GPU time goes: the step as the Batcher
 * records it (one Forward of N rows, each attending its own block of --prompt + 16 keys, and the sampler
 * bank's one dispatch of N workgroups reading the logits in place and writing the next step's ids),
 * replayed in one submit, kernel by kernel (bench/decode_breakdown.ts), and the bank's dispatch replayed alone.
 */
import { getGpu } from "../src/gpu/device.ts";
import { buildModel } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { Batcher } from "../src/engine/batch.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { DTYPES, modelArgs, randomSource, shapeConfig } from "./engine.ts";
import { Forward } from "../src/engine/forward.ts";
import { Sampler, SamplerBank } from "../src/engine/sampler.ts";
import { Program } from "../src/engine/program.ts";
import { replayBreakdown } from "./decode_breakdown.ts";

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { string: ["shape", "dtype", "compute", "streams", "prompt", "decode", "kv", "steps", "rows", "repeat"], boolean: ["breakdown"] });
  const { shapeName, shape, dtype, compute } = modelArgs(a.string);
  const streams = (a.string.streams ?? "1,8,32").split(",").map(Number);
  if (!streams.every((n) => Number.isInteger(n) && n >= 1)) throw new InvalidArgumentError(`--streams must be positive integers, e.g. 1,8,32 (got '${a.string.streams}')`);
  const promptN = Number(a.string.prompt ?? 32), decodeN = Number(a.string.decode ?? 64);
  if (!(Number.isInteger(promptN) && promptN >= 1 && Number.isInteger(decodeN) && decodeN >= 1)) throw new InvalidArgumentError("--prompt and --decode must be positive integers");
  const kv = a.string.kv ?? "f32";
  if (kv !== "f32" && kv !== "f16") throw new InvalidArgumentError(`--kv must be f32 or f16 (got '${kv}')`);
  const steps = a.string.steps ? Number(a.string.steps) : undefined;
  const repeat = Number(a.string.repeat ?? 3);
  if (!(Number.isInteger(repeat) && repeat >= 1)) throw new InvalidArgumentError(`--repeat must be a positive integer (got '${a.string.repeat}')`);
  const cfg = shapeConfig(shape);
  const gpu = await getGpu();
  console.log(`adapter: ${gpu.description}`);
  console.log(`model: ${shapeName} shape (${cfg.layers} layers, hidden ${cfg.hidden}, vocab ${cfg.vocabSize}), random ${dtype} weights, ${compute} compute, ${kv} KV`);
  const model = buildModel(gpu, cfg, randomSource(cfg, DTYPES[dtype]), { source: "random", fingerprintSeed: "bench-batch", compute });
  const short = 16, long = 16 + decodeN;
  const slots = Math.max(...streams) * (promptN + long);
  const bytesPerToken = cfg.layers * 2 * cfg.kvHeads * cfg.headDim * (kv === "f16" ? 2 : 4);
  const engine = new Engine(model, { kvBudgetBytes: Math.ceil(slots * 1.1 + 64) * bytesPerToken, kvDtype: kv });
  const maxRows = a.string.rows ? Number(a.string.rows) : Math.max(...streams);
  if (!(Number.isInteger(maxRows) && maxRows >= 1)) throw new InvalidArgumentError(`--rows must be a positive integer (got '${a.string.rows}')`);
  const batcher = new Batcher(engine, { stepsPerReadback: steps, maxRows });
  console.log(`streams ${streams.join(", ")}: ${promptN}-token prompts, ${decodeN} timed tokens each; at most ${maxRows} rows per forward pass, ${batcher.chunk} steps per readback`);

  /** N streams of `tokens` tokens each, started together; returns the wall time and the steps they took. */
  const timed = async (n: number, tokens: number) => {
    const blocks = Array.from({ length: n }, () => engine.pool.allocate(promptN + tokens, 0));
    const before = { ...batcher.counters };
    const t0 = performance.now();
    try {
      const counts = await Promise.all(blocks.map(async (block, s) => {
        const prompt = Uint32Array.from({ length: promptN }, (_, i) => (s * 7919 + i * 104729 + 1) % cfg.vocabSize);
        let got = 0;
        for await (const ids of batcher.decode({ prompt, block, maxTokens: tokens, group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }) })) got += ids.length;
        return got;
      }));
      if (counts.some((c) => c !== tokens)) throw new Error(`a stream produced ${counts.find((c) => c !== tokens)} of ${tokens} tokens`);
    } finally {
      for (const b of blocks) engine.pool.release(b);
    }
    return { ms: performance.now() - t0, steps: batcher.counters.steps - before.steps, rows: batcher.counters.rows - before.rows };
  };

  const rates: number[] = [];
  for (const n of streams) {
    await timed(n, short); // warm-up: the n-row step's pipelines (matmul tiles depend on the row count)
    const pairs: { ms: number; steps: number; rows: number }[] = [];
    for (let i = 0; i < repeat; i++) {
      const s = await timed(n, short), l = await timed(n, long);
      pairs.push({ ms: l.ms - s.ms, steps: l.steps - s.steps, rows: l.rows - s.rows });
    }
    // the median pair by time (of an even count, the two middle ones pooled)
    const byTime = [...pairs].sort((x, y) => x.ms - y.ms);
    const middle = byTime.slice((byTime.length - 1) >> 1, (byTime.length >> 1) + 1);
    const mid = middle.reduce((t, p) => ({ ms: t.ms + p.ms, steps: t.steps + p.steps, rows: t.rows + p.rows }), { ms: 0, steps: 0, rows: 0 });
    const perStepMs = mid.ms / mid.steps;
    const rate = (middle.length * n * decodeN) / (mid.ms / 1000);
    rates.push(rate);
    console.log(
      `streams ${String(n).padStart(3)}: ${rate.toFixed(1)} tokens/s aggregate, ${(rate / n).toFixed(1)} per stream; ` +
        `${perStepMs.toFixed(3)} ms per batched step (${(mid.rows / mid.steps).toFixed(1)} rows per step; difference of ${short}- and ${long}-token runs, ` +
        `median of ${repeat}: ${pairs.map((p) => ((n * decodeN) / (p.ms / 1000)).toFixed(0)).join(" / ")} tokens/s)`,
    );
  }
  const one = streams.indexOf(1);
  if (one >= 0) {
    console.log(`ratio to 1 stream: ${streams.map((n, i) => `${n}: ${(rates[i] / rates[one]).toFixed(2)}x`).join(", ")}`);
  }
  await batcher.close();
  if (a.boolean.breakdown) for (const n of streams.filter((n) => n > 1)) await stepBreakdown(engine, n, promptN + 16);
  engine.destroy();
  model.destroy();
  return 0;
}

/** GPU time of one batched step of n rows (forward pass and the sampler bank, one program), kernel by kernel. */
async function stepBreakdown(engine: Engine, n: number, keys: number): Promise<void> {
  const { model, pool } = engine;
  const blocks = Array.from({ length: n }, () => pool.allocate(keys + 1, 0));
  for (const b of blocks) b.tokens = keys;
  const fwd = new Forward(model, pool, n, { groups: blocks.map((b) => ({ rows: 1, write: b, writeAt: keys, plain: [b] })), logits: { from: 0, count: n } });
  // as the Batcher's Cohort records it: greedy rows, every row's sampling in one dispatch appended to the pass
  const samplers = blocks.map(() => new Sampler(model, {}, 4, []));
  const bank = new SamplerBank(model, samplers, samplers.map(() => 0));
  bank.record(fwd.program, fwd.logits, fwd.ids);
  try {
    fwd.setIds(Uint32Array.from({ length: n }, (_, i) => i + 1));
    bank.setSteps(samplers.map(() => 0));
    const f = await replayBreakdown(model.gpu.device, fwd.program, bank.tokens);
    // the bank's dispatch also on its own, replayed 256 times: one dispatch of ~20 us is below the
    // whole-step replay's noise (greedy rows leave the logits as they are, so every replay is the same work)
    const alone = new Program(model.gpu.device);
    bank.record(alone, fwd.logits, fwd.ids);
    const sm = await replayBreakdown(model.gpu.device, alone, bank.tokens, { reps: 256 }).finally(() => alone.destroy());
    console.log(`step of ${n} rows: ${f.gpuMs.toFixed(3)} ms (${f.dispatches} dispatches), of which sampling ${(sm.gpuMs * 1000).toFixed(1)} us (one dispatch of ${n} workgroups, replayed alone)`);
    for (const k of [...f.kernels].sort((a, b) => b.ms - a.ms)) {
      console.log(`  ${k.name.padEnd(44)} x${String(k.dispatches).padStart(3)}  ${(k.ms * 1000).toFixed(1).padStart(8)} us  ${((k.ms * 1000) / k.dispatches).toFixed(1).padStart(7)} us each`);
    }
  } finally {
    fwd.destroy();
    bank.destroy();
    for (const s of samplers) s.destroy();
    for (const b of blocks) pool.release(b);
  }
}
