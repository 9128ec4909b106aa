/**
 * The default model (SmolLM2-135M-Instruct, Q4_1 GGUF, fetched by scripts/fetch-default-model.sh):
 * it loads with quantized weights on the GPU, its config and tokenizer metadata are read, and it
 * predicts what a float64 numpy forward pass on gguf-py's dequantization of the same file predicts
 * (ids and logits pinned below, printed by `python3 scripts/make_gguf_fixtures.py --smollm2 <file>`;
 * token ids from HF `tokenizers` built on the GGUF vocabulary): " Paris" after "The capital of France
 * is", and "The capital of France is Paris." greedily for the chat question. Skipped, saying so, when
 * the file is absent.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../src/engine/engine.ts";
import { sequentialLogits } from "../src/ape/ape.ts";
import { DEFAULT_MODEL_APE, DEFAULT_MODEL_NAME, defaultModelPath } from "../src/model/default_model.ts";
import { loadModel as loadSdkModel } from "../sdk/load.ts";
import { type LoadedModel, loadEngineModel } from "../src/model/load.ts";
import { runtimeName } from "../src/runtime.ts";

const path = defaultModelPath();
const present = existsSync(path);
if (!present) {
  console.warn(`[gguf_default_model.test] SKIPPED: the default model ${DEFAULT_MODEL_NAME} is not at ${path}; run 'bash scripts/fetch-default-model.sh' (or scripts/setup.sh)`);
}

// "The capital of France is" -> top 5 next tokens and their logits (numpy float64 reference).
const PLAIN = [504, 3575, 282, 4649, 314];
const PLAIN_TOP5: [number, string, number][] = [
  [7042, "ĠParis", 17.371259238316334], [260, "Ġthe", 14.888588701587853], [4528, "ĠLondon", 13.244973576774703],
  [2250, "ĠLe", 13.009466936638248], [1315, "ĠNew", 12.951514431531399],
];
// The chat template applied to "What is the capital of France?" (default system prompt) and its greedy answer.
const CHAT = [
  1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198,
  1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198,
];
const CHAT_GREEDY = [504, 3575, 282, 4649, 314, 7042, 30, 2]; // "The capital of France is Paris." <|im_end|>

describe.skipIf(!present)(`the default model (SmolLM2-135M-Instruct Q4_1) on ${runtimeName()}`, () => {
  let loaded: LoadedModel, engine: Engine;
  beforeAll(async () => {
    loaded = await loadEngineModel(); // no path: the default model
    engine = new Engine(loaded.model, { kvBudgetBytes: 16 << 20 });
  });
  afterAll(() => {
    engine?.destroy();
    loaded?.model.destroy();
  });

  it("loads its config, tokenizer metadata and chat template; weights stay quantized", () => {
    const { model, tokenizer, chatTemplate } = loaded;
    expect(model.source).toBe(path);
    expect(model.config).toMatchObject({
      architecture: "llama", layers: 30, hidden: 576, intermediate: 1536, heads: 9, kvHeads: 3, headDim: 64,
      vocabSize: 49152, ropeTheta: 100000, rmsEps: 1e-5, maxPositions: 8192, tieEmbeddings: true, bosTokenId: 1, eosTokenIds: [2],
    });
    expect(model.layers[0].qkv.format).toBe("q4_1");
    expect(model.layers[29].down.format).toBe("q4_1");
    expect(model.lmHead.format).toBe("q8_0"); // the tied Q8_0 embedding, kept quantized as the LM head
    expect(model.embed.format).toBe("f32");
    expect(tokenizer).toMatchObject({ model: "gpt2", pre: "smollm", bosId: 1, eosId: 2, addBos: false });
    expect(tokenizer!.tokens.length).toBe(49152);
    expect(tokenizer!.merges!.length).toBe(48900);
    expect(tokenizer!.tokens[7042]).toBe("ĠParis");
    expect(chatTemplate).toContain("<|im_start|>");
  });

  it('predicts " Paris" after "The capital of France is", with the reference\'s logits', async () => {
    const logits = await sequentialLogits(engine, Uint32Array.from(PLAIN));
    expect(logits.length).toBe(49152);
    expect(logits.every(Number.isFinite)).toBe(true);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    expect(best).toBe(7042);
    for (const [id, , want] of PLAIN_TOP5) expect(Math.abs(logits[id] - want), `token ${id}`).toBeLessThan(0.02);
  });

  it('answers the chat question greedily: "The capital of France is Paris."', async () => {
    const block = engine.pool.allocate(CHAT.length + CHAT_GREEDY.length, 0);
    try {
      const argmax = (l: Float32Array) => l.reduce((b, v, i) => (v > l[b] ? i : b), 0);
      let logits = await engine.run(Uint32Array.from(CHAT), {
        groups: [{ rows: CHAT.length, write: block, writeAt: 0, plain: [block] }],
        logits: { from: CHAT.length - 1, count: 1 },
      });
      const out: number[] = [];
      for (let step = 0; step < CHAT_GREEDY.length; step++) {
        out.push(argmax(logits));
        if (step === CHAT_GREEDY.length - 1) break;
        // decode: one row at a time (matvec kernels), attending the cached block
        logits = await engine.run(Uint32Array.from([out[step]]), {
          groups: [{ rows: 1, write: block, writeAt: CHAT.length + step, plain: [block] }],
          logits: { from: 0, count: 1 },
        });
      }
      expect(out).toEqual(CHAT_GREEDY);
    } finally {
      engine.pool.release(block);
    }
  });

  it("through the SDK, with no path or its own path, it carries the APE T and S tuned for it", async () => {
    for (const p of [undefined, path]) {
      const m = await loadSdkModel(p);
      try {
        expect(m.apeDefaults).toEqual(DEFAULT_MODEL_APE);
      } finally {
        m.destroy();
      }
    }
  });
});
