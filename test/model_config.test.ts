import { describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseHfConfig } from "../src/model/config.ts";
import { parseSafetensors } from "../src/model/safetensors.ts";
import { loadHfFolder } from "../src/model/model.ts";
import { ModelFormatError } from "../src/errors.ts";
import { runtimeName } from "../src/runtime.ts";

const base = JSON.parse(readFileSync(new URL("../fixtures/models/llama3/config.json", import.meta.url), "utf8"));

describe(`model config and files on ${runtimeName()}`, () => {
  it("reads both config layouts (rope_scaling + rope_theta, and transformers 5's rope_parameters)", () => {
    const legacy = parseHfConfig(base);
    expect(legacy.ropeScaling.type).toBe("llama3");
    const v5 = parseHfConfig(JSON.parse(readFileSync(new URL("../fixtures/models/llama_linear/config.json", import.meta.url), "utf8")));
    expect(v5.ropeScaling).toEqual({ type: "linear", factor: 2 });
    expect(v5.headDim).toBe(32);
  });

  it.each([
    [{ architectures: ["GPT2LMHeadModel"] }, /'architectures' = 'GPT2LMHeadModel' is not supported/],
    [{ rope_scaling: { rope_type: "yarn", factor: 4 } }, /rope_type' = 'yarn' is not supported/],
    [{ hidden_act: "gelu" }, /'hidden_act' = 'gelu'/],
    [{ num_hidden_layers: 0 }, /'num_hidden_layers' must be a positive integer/],
    [{ num_key_value_heads: 3 }, /not a multiple of 'num_key_value_heads'/],
    [{ architectures: ["Qwen2ForCausalLM"], use_sliding_window: true }, /'use_sliding_window'/],
  ])("rejects %j naming the key", (patch, msg) => {
    expect(() => parseHfConfig({ ...base, ...patch })).toThrow(ModelFormatError);
    expect(() => parseHfConfig({ ...base, ...patch })).toThrow(msg);
  });

  it("malformed safetensors files fail with ModelFormatError, never a crash", () => {
    const good = new Uint8Array(readFileSync(new URL("../fixtures/models/llama3/model.safetensors", import.meta.url)));
    expect(() => parseSafetensors(good.subarray(0, 4), "f")).toThrow(/too short/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => parseSafetensors(huge, "f")).toThrow(/header length/);
    const bad = good.slice();
    bad[10] = 0x7b; // corrupt the JSON
    bad[11] = 0x7b;
    expect(() => parseSafetensors(bad, "f")).toThrow(ModelFormatError);
    expect(() => parseSafetensors(good.subarray(0, good.length - 100), "f")).toThrow(/out of bounds/);
  });

  it("a folder missing a tensor names it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "apekit-model-"));
    cpSync(new URL("../fixtures/models/llama3", import.meta.url).pathname, dir, { recursive: true });
    const st = new Uint8Array(readFileSync(join(dir, "model.safetensors")));
    const n = Number(new DataView(st.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + n)));
    const renamed = JSON.stringify({ ...header, "model.norm.weight": undefined, "model.norm.weightX": header["model.norm.weight"] });
    const hb = new TextEncoder().encode(renamed);
    const out = new Uint8Array(8 + hb.length + st.length - 8 - n);
    new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
    out.set(hb, 8);
    out.set(st.subarray(8 + n), 8 + hb.length);
    writeFileSync(join(dir, "model.safetensors"), out);
    await expect(loadHfFolder(dir)).rejects.toThrow(/tensor 'model.norm.weight' is missing/);
  });
});
