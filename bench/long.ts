/**
 * `ape bench long [--shape llama-3.2-1b|tiny] [--dtype f16|f32|q8_0|q4_1|q4_0] [--compute f32|f16|int8] [--kv f16|f32]
 *   [--lengths 2K,8K,32K,128K] [--context 512] [--query 256] [--prefix 16] [--decode 32] [--sequential-max 128K]
 *   [--batch-rows N] [--steps-per-readback N] [--repeat N] [--no-breakdown] [--out results.json]`
 *
 * APE over long cached contexts against sequential encoding, for a model of the given shape with random
 * weights (bench/engine.ts's SHAPES and random source) and random token ids. For each total context
 * length L (L / context contexts of `context` tokens, behind a shared prefix of `prefix` tokens):
 * - encode all: the prefix and every context in one APE pass (src/ape/ape.ts encodePrefix +
 *   encodeContexts, batched up to the engine's maxBatchRows), timed until the GPU has finished;
 * - APE first token: a `query`-token query over all contexts, prefill + the first sampled token, driven
 *   as the SDK's Ape.generate drives it (startQuery, then src/engine/generate.ts decode with firstChunk 1);
 * - APE decode: ms per token in steady state: from the second readback to the last, so the first
 *   chunk's start-up does not count (`decode` tokens timed); with `--repeat N` the query and its decode run
 *   N times over the same cached contexts (as llama-bench repeats its tests) and the figures are the
 *   medians, each run's decode listed;
 * - sequential first token: prefix + contexts + query concatenated, one causal prompt decoded as the
 *   SDK's sequential mode decodes it (decode() prefills it in passes of the engine's batchRows, the
 *   last one sampling); sequential decode likewise, after it;
 * - end to end with 256 tokens out: first token + 255 x decode (contexts already cached, for APE).
 * Where the time goes: the GPU time of the APE query prefill and of one APE decode step (contexts
 * attached), per kernel (bench/decode_breakdown.ts's replay).
 *
 * Every length gets its own Engine with a KV pool sized for it. A failure in one length (CapacityError,
 * a typed GPU error: validation, out of memory, device lost; the engine raises those of its own passes,
 * and each part ends by checking the device's error record) is printed in its row and the bench goes on
 * with the next. Per-length lines are printed as each part completes (and
 * `--out` rewritten), so a run cut short by a timeout keeps what it measured.
 *
 * @example
 * ```sh
 * deno run -A sdk/cli.ts bench long --shape tiny --lengths 1K,2K --decode 8
 * ```
 */
import process from "node:process";
import { writeFileSync } from "node:fs";
import { deviceErrors, errorScope, getGpu, type Gpu } from "../src/gpu/device.ts";
import { readBuffer } from "../src/gpu/buffers.ts";
import { buildModel, type Model } from "../src/model/model.ts";
import { Engine } from "../src/engine/engine.ts";
import { decode, type DecodeRequest } from "../src/engine/generate.ts";
import { Forward } from "../src/engine/forward.ts";
import { Sampler } from "../src/engine/sampler.ts";
import type { KvBlock } from "../src/engine/kv_pool.ts";
import { encodeContexts, encodePrefix, startQuery } from "../src/ape/ape.ts";
import { CapacityError, InvalidArgumentError } from "../src/errors.ts";
import { runtimeName } from "../src/runtime.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { progressBar } from "../sdk/commands/progress.ts";
import { DTYPES, modelArgs, randomSource, shapeConfig } from "./engine.ts";
import { type KernelTime, replayBreakdown, type ReplayBreakdown } from "./decode_breakdown.ts";
import { randomWords } from "./random_weights.ts";

/** Tokens out in the end-to-end column. */
const OUT_TOKENS = 256;
/** APE's T and S (the paper's defaults; they do not change the work done). */
const T = 0.9, S = 0.9;

interface Breakdown {
  gpuMs: number;
  dispatches: number;
  reps: number;
  kernels: KernelTime[];
}

interface Row {
  label: string;
  length: number;
  contexts: number;
  encodeMs?: number;
  apeFirstMs?: number;
  apeDecodeMs?: number;
  apeEndToEndMs?: number;
  /** --repeat: every run's APE first token and decode (ms, ms per token); the figures above are their medians. */
  apeRuns?: { firstMs: number; decodeMs: number }[];
  apeError?: string;
  seqFirstMs?: number;
  seqDecodeMs?: number;
  seqEndToEndMs?: number;
  /** "not run" (above --sequential-max) or the error that stopped it. */
  seqError?: string;
  breakdown?: { queryPrefill?: Breakdown; decodeStep?: Breakdown; error?: string };
  /** Host-side phases of an APE first token, ms each, in order (see firstTokenPhases). */
  phases?: [string, number][];
}

/** "2K" -> 2048, "128K" -> 131072, "1000" -> 1000. */
function parseLength(flag: string, s: string): number {
  const m = /^(\d+)([kK]?)$/.exec(s.trim());
  if (!m) throw new InvalidArgumentError(`--${flag}: '${s}' is not a length (e.g. 2K, 8K, 4096)`);
  return Number(m[1]) * (m[2] ? 1024 : 1);
}

function label(n: number): string {
  return n % 1024 === 0 ? `${n / 1024}K` : String(n);
}

function positiveInt(flag: string, s: string | undefined, fallback: number): number {
  const v = s === undefined ? fallback : Number(s);
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`--${flag} must be a positive integer (got '${s}')`);
  return v;
}

const ms = (x: number | undefined) => (x === undefined ? "-" : x < 1000 ? `${x.toFixed(x < 10 ? 2 : 0)} ms` : `${(x / 1000).toFixed(x < 10000 ? 2 : 1)} s`);
const perToken = (x: number | undefined) => (x === undefined ? "-" : `${x.toFixed(2)} ms/token (${(1000 / x).toFixed(0)} tok/s)`);
const errorText = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));
const note = (s: string) => process.stderr.write(`[bench long] ${s}\n`);

/**
 * Waits for the GPU and throws, typed, any GPU error the device recorded outside the engine's own error
 * scopes (e.g. in the breakdown's replays), so no figure of a failed part is reported.
 */
async function settle(dev: GPUDevice): Promise<void> {
  await dev.queue.onSubmittedWorkDone();
  deviceErrors(dev).throwIfFailed();
}

/** `count` random token ids below `vocab` (a seeded stream: the same run gives the same ids). */
function randomIds(count: number, vocab: number, words: (n: number) => Uint32Array): Uint32Array {
  const ids = words(count);
  for (let i = 0; i < count; i++) ids[i] %= vocab;
  return ids;
}

interface Timed {
  firstMs: number;
  decodeMs: number;
}

/**
 * Runs decode() for 1 + chunk + `tokens` tokens with firstChunk 1 (as the SDK does) and times it: the
 * first token from `t0`, and decode per token from the second readback to the last (steady state).
 */
async function timedDecode(engine: Engine, req: Omit<DecodeRequest, "maxTokens" | "firstChunk" | "stepsPerReadback">, chunk: number, tokens: number, t0: number): Promise<Timed> {
  const maxTokens = 1 + chunk + tokens;
  const stamps: { t: number; n: number }[] = [];
  let got = 0;
  for await (const ids of decode(engine, { ...req, maxTokens, firstChunk: 1, stepsPerReadback: chunk })) {
    got += ids.length;
    stamps.push({ t: performance.now(), n: got });
  }
  if (got !== maxTokens) throw new Error(`decode produced ${got} of ${maxTokens} tokens`);
  const second = stamps[Math.min(1, stamps.length - 1)], last = stamps[stamps.length - 1];
  const base = last.n > second.n ? second : stamps[0];
  return { firstMs: stamps[0].t - t0, decodeMs: (last.t - base.t) / (last.n - base.n) };
}

/** GPU time per kernel of a Forward (with greedy sampling appended, as decode runs it). */
async function forwardBreakdown(engine: Engine, fwd: Forward): Promise<Breakdown> {
  const sampler = new Sampler(engine.model, {}, 1, []);
  try {
    sampler.record(fwd.program, fwd.logits);
    const r: ReplayBreakdown = await replayBreakdown(engine.model.gpu.device, fwd.program, fwd.logits);
    return { gpuMs: r.gpuMs, dispatches: r.dispatches, reps: r.reps, kernels: r.kernels };
  } finally {
    sampler.destroy();
  }
}

/**
 * Where an APE first token's wall time goes on the host: the steps decode() takes for it (startQuery,
 * the sampler, recording the query's Forward and the decode step's, encoding + submitting, closing the
 * error scopes, the token's readback, the scopes' outcome), each timed alone; then a replay of the same
 * recorded prefill with its readback, and a bare readback round trip, for scale.
 */
async function firstTokenPhases(engine: Engine, s: Setup, prefix: Awaited<ReturnType<typeof encodePrefix>>, contexts: KvBlock[]): Promise<[string, number][]> {
  const dev = engine.model.gpu.device;
  const out: [string, number][] = [];
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    out.push([name, now - t]);
    t = now;
  };
  const Q = s.query.length;
  const live = startQuery(engine, { prefix, contexts, query: s.query, temperature: T, scale: S, reserve: 2 });
  const owned: { destroy(): void }[] = [];
  try {
    lap("startQuery");
    const sampler = new Sampler(engine.model, {}, 2, s.query);
    owned.push(sampler);
    lap("sampler");
    const prefill = new Forward(engine.model, engine.pool, Q, { groups: [live.group(Q, 0)], temperature: T, scale: S, logits: { from: Q - 1, count: 1 } });
    owned.push(prefill);
    sampler.record(prefill.program, prefill.logits);
    lap(`record query Forward (${prefill.program.steps.length} dispatches)`);
    const step = new Forward(engine.model, engine.pool, 1, { groups: [live.group(1, Q)], temperature: T, scale: S, logits: { from: 0, count: 1 } }, sampler.next);
    owned.push(step);
    sampler.record(step.program, step.logits);
    lap(`record step Forward (${step.program.steps.length} dispatches)`);
    const close = errorScope(dev, "bench: first-token phases");
    sampler.setStep(0);
    prefill.setIds(s.query);
    prefill.program.submit();
    lap("encode + submit");
    const scoped = close();
    lap("pop error scopes");
    await readBuffer(dev, sampler.tokens, 4, 0);
    lap("first token readback (GPU work + map)");
    await scoped;
    lap("error scopes' outcome");
    prefill.program.submit();
    await readBuffer(dev, sampler.tokens, 4, 0);
    lap("replay of the query + readback");
    await readBuffer(dev, sampler.tokens, 4, 0);
    lap("bare readback round trip");
  } finally {
    for (const o of owned) o.destroy();
    engine.pool.release(live.block);
  }
  return out;
}

function topKernels(b: Breakdown, n = 6): string {
  const sorted = [...b.kernels].sort((x, y) => y.ms - x.ms);
  const top = sorted.slice(0, n).map((k) => `${k.name} x${k.dispatches} ${k.ms.toFixed(3)} ms`);
  const rest = sorted.slice(n);
  if (rest.length) top.push(`${rest.length} others ${rest.reduce((s, k) => s + k.ms, 0).toFixed(3)} ms`);
  return top.join(", ");
}

interface Setup {
  gpu: Gpu;
  model: Model;
  kvDtype: "f16" | "f32";
  batchRows?: number;
  chunk: number;
  prefix: Uint32Array;
  query: Uint32Array;
  context: number;
  decodeTokens: number;
  breakdown: boolean;
  /** APE query + decode runs per length (medians reported). */
  repeat: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** An Engine whose KV pool holds `tokens` slots (refused with the sizes when a layer's pool cannot be bound). */
function engineFor(s: Setup, tokens: number): Engine {
  const c = s.model.config;
  const perLayerToken = c.kvHeads * c.headDim * (s.kvDtype === "f16" ? 2 : 4);
  const limit = Math.min(s.gpu.limits.maxStorageBufferBindingSize, s.gpu.limits.maxBufferSize);
  if (tokens * perLayerToken > limit) {
    throw new CapacityError(
      `${tokens} KV slots need ${tokens * perLayerToken} bytes per layer pool, over this device's binding limit of ${limit} bytes`,
    );
  }
  return new Engine(s.model, { kvBudgetBytes: tokens * perLayerToken * 2 * c.layers, kvDtype: s.kvDtype, maxBatchRows: s.batchRows });
}

/** APE: encode all contexts, then the query's first token and decode; optionally the per-kernel breakdown. */
async function runApe(s: Setup, engine: Engine, contexts: Uint32Array[], row: Row, quiet = false): Promise<void> {
  const dev = s.gpu.device;
  const say = quiet ? () => {} : note;
  const blocks: KvBlock[] = [];
  let prefix: Awaited<ReturnType<typeof encodePrefix>> | undefined;
  try {
    say(`${row.label}: encoding the prefix and ${contexts.length} contexts (${row.length} tokens)`);
    let t0 = performance.now();
    prefix = await encodePrefix(engine, s.prefix);
    blocks.push(...await encodeContexts(engine, prefix, contexts));
    await settle(dev);
    row.encodeMs = performance.now() - t0;
    say(`${row.label}: encoded in ${ms(row.encodeMs)}; APE query (${s.query.length} tokens) and decode`);
    const q = { prefix, contexts: blocks, query: s.query, temperature: T, scale: S, reserve: 1 + s.chunk + s.decodeTokens };
    const runs: Timed[] = [];
    for (let i = 0; i < s.repeat; i++) {
      t0 = performance.now();
      const live = startQuery(engine, q);
      try {
        runs.push(await timedDecode(engine, { prompt: s.query, block: live.block, group: live.group, temperature: T, scale: S }, s.chunk, s.decodeTokens, t0));
        await settle(dev);
      } finally {
        engine.pool.release(live.block);
      }
    }
    row.apeFirstMs = median(runs.map((r) => r.firstMs));
    row.apeDecodeMs = median(runs.map((r) => r.decodeMs));
    row.apeEndToEndMs = row.apeFirstMs + (OUT_TOKENS - 1) * row.apeDecodeMs;
    if (runs.length > 1) row.apeRuns = runs;
    if (!s.breakdown) return;
    row.phases = await firstTokenPhases(engine, s, prefix, blocks);
    await settle(dev);
    say(`${row.label}: per-kernel GPU times of the APE query prefill and decode step`);
    row.breakdown = {};
    const bq = startQuery(engine, { ...q, reserve: 1 });
    const Q = s.query.length;
    const prefill = new Forward(engine.model, engine.pool, Q, {
      groups: [bq.group(Q, 0)], temperature: T, scale: S, logits: { from: Q - 1, count: 1 },
    });
    try {
      prefill.setIds(s.query);
      row.breakdown.queryPrefill = await forwardBreakdown(engine, prefill);
      await settle(dev);
      const step = new Forward(engine.model, engine.pool, 1, { groups: [bq.group(1, Q)], temperature: T, scale: S, logits: { from: 0, count: 1 } });
      try {
        step.setIds(s.query.subarray(0, 1));
        row.breakdown.decodeStep = await forwardBreakdown(engine, step);
        await settle(dev);
      } finally {
        step.destroy();
      }
    } finally {
      prefill.destroy();
      engine.pool.release(bq.block);
    }
  } finally {
    for (const b of blocks) engine.pool.release(b);
    if (prefix?.block) engine.pool.release(prefix.block);
  }
}

/** Sequential: prefix + contexts + query concatenated, one causal prompt, decoded as the SDK's sequential mode does. */
async function runSequential(s: Setup, engine: Engine, contexts: Uint32Array[], row: Row, quiet = false): Promise<void> {
  const say = quiet ? () => {} : note;
  const prompt = new Uint32Array(s.prefix.length + row.length + s.query.length);
  prompt.set(s.prefix, 0);
  let o = s.prefix.length;
  for (const c of contexts) (prompt.set(c, o), o += c.length);
  prompt.set(s.query, o);
  say(`${row.label}: sequential prefill of ${prompt.length} tokens (passes of ${engine.batchRows} rows) and decode`);
  const t0 = performance.now();
  const block = engine.pool.allocate(prompt.length + 1 + s.chunk + s.decodeTokens, 0);
  try {
    const group = (n: number, writeAt: number) => ({ rows: n, write: block, writeAt, plain: [block] });
    const t = await timedDecode(engine, { prompt, block, group }, s.chunk, s.decodeTokens, t0);
    await settle(s.gpu.device);
    row.seqFirstMs = t.firstMs;
    row.seqDecodeMs = t.decodeMs;
    row.seqEndToEndMs = t.firstMs + (OUT_TOKENS - 1) * t.decodeMs;
  } finally {
    engine.pool.release(block);
  }
}

function table(rows: Row[]): string {
  const head = "| total context | contexts | encode all | APE first token | APE decode | APE end to end (256 out) | sequential first token | sequential decode | sequential end to end (256 out) |";
  const lines = [head, `|${"---|".repeat(9)}`];
  for (const r of rows) {
    const failed = (e: string) => (e.startsWith("not run") ? e : `**${e.slice(0, 120).replaceAll("|", "/")}**`);
    const ape = r.apeError ? [failed(r.apeError), "", "", ""] : [ms(r.encodeMs), ms(r.apeFirstMs), perToken(r.apeDecodeMs), ms(r.apeEndToEndMs)];
    const seq = r.seqError ? [failed(r.seqError), "", ""] : [ms(r.seqFirstMs), perToken(r.seqDecodeMs), ms(r.seqEndToEndMs)];
    lines.push(`| ${r.label} | ${r.contexts} | ${[...ape, ...seq].join(" | ")} |`);
  }
  return lines.join("\n");
}

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    string: ["shape", "dtype", "compute", "kv", "lengths", "context", "query", "prefix", "decode", "sequential-max", "batch-rows", "steps-per-readback", "repeat", "out"],
    boolean: ["no-breakdown"],
  });
  const { shapeName, shape, dtype, compute } = modelArgs(a.string);
  const lengths = (a.string.lengths ?? "2K,8K,32K,128K").split(",").filter((x) => x.trim()).map((x) => parseLength("lengths", x));
  const context = positiveInt("context", a.string.context, 512);
  const queryN = positiveInt("query", a.string.query, 256);
  const prefixN = a.string.prefix === undefined ? 16 : Number(a.string.prefix);
  if (!Number.isInteger(prefixN) || prefixN < 0) throw new InvalidArgumentError(`--prefix must be a token count >= 0 (got '${a.string.prefix}')`);
  const decodeTokens = positiveInt("decode", a.string.decode, 32);
  const repeat = positiveInt("repeat", a.string.repeat, 1);
  const seqMax = a.string["sequential-max"] === undefined ? Infinity : parseLength("sequential-max", a.string["sequential-max"]);
  const batchRows = a.string["batch-rows"] === undefined ? undefined : positiveInt("batch-rows", a.string["batch-rows"], 0);
  for (const L of lengths) {
    if (L < context || L % context !== 0) throw new InvalidArgumentError(`--lengths: ${label(L)} is not a multiple of --context ${context}`);
  }

  const gpu = await getGpu();
  const kvDtype = (a.string.kv ?? (gpu.hasF16 ? "f16" : "f32")) as "f16" | "f32";
  if (kvDtype !== "f16" && kvDtype !== "f32") throw new InvalidArgumentError(`--kv must be f16 or f32 (got '${a.string.kv}')`);
  const chunk = positiveInt("steps-per-readback", a.string["steps-per-readback"], gpu.isCpu ? 4 : 16);
  const cfg = shapeConfig(shape, 262144);
  const kvPerToken = cfg.layers * 2 * cfg.kvHeads * cfg.headDim * (kvDtype === "f16" ? 2 : 4);
  console.log(`apekit bench long on ${runtimeName()}`);
  console.log(`adapter: ${gpu.description}${gpu.isCpu ? " (CPU)" : ""}; maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize}`);
  console.log(
    `model: ${shapeName} shape (${cfg.layers} layers, hidden ${cfg.hidden}, ${cfg.heads} heads / ${cfg.kvHeads} KV heads, vocab ${cfg.vocabSize}), ` +
      `random ${dtype} weights, ${compute} compute, KV ${kvDtype} (${kvPerToken / 1024} KiB/token)`,
  );
  console.log(
    `layout: ${prefixN}-token shared prefix, contexts of ${context} tokens, a ${queryN}-token query; decode timed over ${decodeTokens} tokens ` +
      `(${chunk} per readback); end to end = first token + ${OUT_TOKENS - 1} x decode; APE T=${T} S=${S}`,
  );
  let t = performance.now();
  const bar = progressBar("loading random weights");
  const model = buildModel(gpu, cfg, randomSource(cfg, DTYPES[dtype]), { source: "random", fingerprintSeed: "bench-long", compute, onProgress: bar });
  console.log(`load: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const words = randomWords(0x51ed270b);
  const setup: Setup = {
    gpu, model, kvDtype, batchRows, chunk, context, decodeTokens, breakdown: !a.boolean["no-breakdown"], repeat,
    prefix: randomIds(prefixN, cfg.vocabSize, words), query: randomIds(queryN, cfg.vocabSize, words),
  };
  const report = {
    runtime: runtimeName(), adapter: gpu.description, shape: shapeName, dtype, compute, kv: kvDtype,
    prefix: prefixN, context, query: queryN, decode: decodeTokens, stepsPerReadback: chunk, rows: [] as Row[],
  };
  const save = () => {
    if (a.string.out) writeFileSync(a.string.out, JSON.stringify(report, null, 2) + "\n");
  };
  const slots = (L: number) => prefixN + L + queryN + 1 + chunk + decodeTokens + 16;

  try {
    // warm-up: every pipeline the measurements use, compiled on a small case (2 contexts)
    note("warm-up (compiling pipelines)");
    t = performance.now();
    try {
      const warm = Array.from({ length: 2 }, () => randomIds(context, cfg.vocabSize, words));
      const engine = engineFor(setup, slots(2 * context));
      try {
        const scratch: Row = { label: "warm-up", length: 2 * context, contexts: 2 };
        await runApe({ ...setup, breakdown: false, repeat: 1 }, engine, warm, scratch, true);
        await runSequential(setup, engine, warm, scratch, true);
      } finally {
        engine.destroy();
      }
      note(`warm-up done in ${ms(performance.now() - t)}`);
    } catch (e) {
      console.log(`warm-up failed: ${errorText(e)}`);
    }

    for (const L of lengths) {
      const n = L / context;
      const row: Row = { label: label(L), length: L, contexts: n };
      report.rows.push(row);
      let engine: Engine | undefined;
      try {
        note(`${row.label}: making ${n} random contexts`);
        const contexts = Array.from({ length: n }, () => randomIds(context, cfg.vocabSize, words));
        engine = engineFor(setup, slots(L));
        try {
          await runApe(setup, engine, contexts, row);
        } catch (e) {
          row.apeError = errorText(e);
        }
        if (row.apeError) console.log(`${row.label} (${n} contexts): APE failed: ${row.apeError}`);
        else {
          console.log(
            `${row.label} (${n} contexts): encode all ${ms(row.encodeMs)}; APE first token ${ms(row.apeFirstMs)}; ` +
              `APE decode ${perToken(row.apeDecodeMs)}; APE end to end (${OUT_TOKENS} out) ${ms(row.apeEndToEndMs)}` +
              (row.apeRuns ? ` (medians of ${row.apeRuns.length} runs; decode ${row.apeRuns.map((r) => (1000 / r.decodeMs).toFixed(0)).join(" / ")} tok/s)` : ""),
          );
          const b = row.breakdown;
          if (b?.queryPrefill) {
            console.log(`${row.label}: APE query prefill (${queryN} rows over ${n} contexts): GPU ${b.queryPrefill.gpuMs.toFixed(3)} ms, ${b.queryPrefill.dispatches} dispatches; by kernel: ${topKernels(b.queryPrefill)}`);
          }
          if (row.phases) {
            console.log(`${row.label}: APE first token, host phases: ${row.phases.map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(", ")}`);
          }
          if (b?.decodeStep) {
            console.log(`${row.label}: APE decode step (${n} contexts attached): GPU ${b.decodeStep.gpuMs.toFixed(3)} ms, ${b.decodeStep.dispatches} dispatches; by kernel: ${topKernels(b.decodeStep)}`);
          }
        }
        save();
        if (L > seqMax) row.seqError = "not run";
        else {
          try {
            await runSequential(setup, engine, contexts, row);
          } catch (e) {
            row.seqError = errorText(e);
          }
        }
        if (row.seqError) console.log(`${row.label}: sequential ${row.seqError === "not run" ? `not run (above --sequential-max)` : `failed: ${row.seqError}`}`);
        else {
          console.log(
            `${row.label}: sequential (${prefixN + L + queryN} tokens, causal): first token ${ms(row.seqFirstMs)}; decode ${perToken(row.seqDecodeMs)}; ` +
              `end to end (${OUT_TOKENS} out) ${ms(row.seqEndToEndMs)}`,
          );
        }
      } catch (e) {
        // the engine for this length could not be made (KV pool over the limits, out of memory)
        row.apeError = row.apeError ?? errorText(e);
        row.seqError = row.seqError ?? (L > seqMax ? "not run" : "not run (no engine)");
        console.log(`${row.label}: ${row.apeError}`);
      } finally {
        engine?.destroy();
        save();
      }
    }
  } finally {
    model.destroy();
  }
  console.log("");
  console.log(table(report.rows));
  return 0;
}
