// The default model's answer quality, measured by apekit's own engine (issue: sequential answers at
// least half correctly; APE at least 90% as often as sequential). Slow on a CPU adapter, so it runs
// under Node only; `ape bench quality` gives the full figures.
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { defaultModelPath } from "../src/model/default_model.ts";
import { runtimeName } from "../src/runtime.ts";
import { measureQuality } from "../bench/quality.ts";

const present = existsSync(defaultModelPath());
const node = runtimeName().startsWith("node");

describe.skipIf(!present || !node)("default model quality (slow; Node only)", () => {
  it("sequential answers at least half; APE at least 90% as often as sequential (one question of slack)", async () => {
    const [seq, ape] = await measureQuality({ questions: 6, distractors: 3, modes: ["sequential", "ape"], maxTokens: 16 });
    expect(seq.correct, JSON.stringify(seq.answers)).toBeGreaterThanOrEqual(3);
    expect(ape.correct, JSON.stringify(ape.answers)).toBeGreaterThanOrEqual(Math.ceil(0.9 * seq.correct) - 1);
  }, 600_000);
});
