// Shared by the fixture tests (f32 and f16 compute): greedy generation, and decoding one row at a time
// through the GPU "lanes" kernels (RMSNorm and SwiGLU fused into the projections' input stage), compared
// with transformers' reference.
import { expect } from "vitest";
import type { Engine } from "../../src/engine/engine.ts";
import { decode } from "../../src/engine/generate.ts";
import { relError } from "./random_model.ts";

export interface FixtureReference {
  logits: { ids: number[]; logits: number[][] }[];
  greedy: { prompt: number[]; tokens: number[] };
}

/** Logits at every position of the first reference sequence within `tolerance`, and identical greedy tokens. */
export async function expectLanesDecodeMatches(engine: Engine, ref: FixtureReference, tolerance: number): Promise<void> {
  const model = engine.model;
  model.matvecLayout = "lanes";
  try {
    const V = model.config.vocabSize, c = ref.logits[0];
    const block = engine.pool.allocate(c.ids.length, 0);
    try {
      for (let p = 0; p < c.ids.length; p++) {
        const got = await engine.run(Uint32Array.of(c.ids[p]), { groups: [{ rows: 1, write: block, writeAt: p, plain: [block] }], logits: { from: 0, count: 1 } });
        expect(relError(got.subarray(0, V), c.logits[p]), `position ${p}`).toBeLessThan(tolerance);
      }
    } finally {
      engine.pool.release(block);
    }
    await expectGreedyMatches(engine, ref);
  } finally {
    model.matvecLayout = undefined;
  }
}

/** Greedy generation from the reference prompt reproduces transformers' tokens. */
export async function expectGreedyMatches(engine: Engine, ref: FixtureReference): Promise<void> {
  const prompt = Uint32Array.from(ref.greedy.prompt), n = ref.greedy.tokens.length;
  const block = engine.pool.allocate(prompt.length + n, 0);
  const got: number[] = [];
  try {
    for await (const c of decode(engine, { prompt, block, maxTokens: n, group: (rows, writeAt) => ({ rows, write: block, writeAt, plain: [block] }) })) got.push(...c);
  } finally {
    engine.pool.release(block);
  }
  expect(got).toEqual(ref.greedy.tokens);
}
