// The default model's answer quality, measured by apekit's own engine: the default-model issue's bar
// (sequential answers at least half; APE at least 90% as often as sequential) on a small slice of the
// benchmark protocol (bench/quality.ts): the first 12 questions of the test split, each with its gold
// document among 5 distractors, greedy, the first line of at most 24 tokens, APE with the default
// model's own T and S (0.5, 0.9; chosen on the validation split). Greedy decoding is deterministic, and
// this slice gives the same answers on lavapipe as on the H200: sequential 6/12, APE 6/12 there (and on
// the other slices from 10 to 20 questions: 10 5/5, 14 7/7, 16 9/9, 18 10/10, 20 11/10).
// The full measurement (bench/results-quality-h200.txt, 200 held-out questions) gives sequential 51%,
// APE 93% of it; slices this small swing both ways (the holdout split's first 12: 7 and 4).
// Slow on a CPU adapter (24 generations, ~8 minutes on 2 cores), so it runs under Node only.
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { defaultModelPath } from "../src/model/default_model.ts";
import { runtimeName } from "../src/runtime.ts";
import { measureQuality } from "../bench/quality.ts";

const present = existsSync(defaultModelPath());
const node = runtimeName().startsWith("node");

describe.skipIf(!present || !node)("default model quality (slow; Node only)", () => {
  it("sequential answers at least half of 12 test questions; APE at least 90% as many", async () => {
    const [seq, ape] = await measureQuality({ split: "test", questions: 12, modes: ["sequential", "ape"] });
    expect(ape.temperature).toBe(0.5); // the default model's tuned pair, not the paper's 0.9
    expect(seq.correct, JSON.stringify(seq.answers)).toBeGreaterThanOrEqual(6);
    expect(ape.correct, JSON.stringify({ ape: ape.answers, sequential: seq.answers })).toBeGreaterThanOrEqual(Math.ceil(0.9 * seq.correct));
  }, 1_500_000);
});
