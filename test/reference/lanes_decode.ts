// Shared by the fixture tests: decode one row at a time through the GPU "lanes" kernels (RMSNorm and
// SwiGLU fused into the projections' input stage) and compare with transformers' reference.
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
    const prompt = Uint32Array.from(ref.greedy.prompt), n = ref.greedy.tokens.length;
    const live = engine.pool.allocate(prompt.length + n, 0);
    const got: number[] = [];
    try {
      for await (const ch of decode(engine, { prompt, block: live, maxTokens: n, group: (rows, writeAt) => ({ rows, write: live, writeAt, plain: [live] }) })) got.push(...ch);
    } finally {
      engine.pool.release(live);
    }
    expect(got).toEqual(ref.greedy.tokens);
  } finally {
    model.matvecLayout = undefined;
  }
}
