// src/gpu/unroll.ts: the `//#unroll` loops of WGSL source unrolled (as GPUs compile the kernels), checked on the text;
// every marked kernel compiles unrolled, and unrolled kernels are checked against float64 in test/matmul.test.ts and
// test/attention_tiled.test.ts (the unrolled text's own GPU runs).
import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import process from "node:process";
import { evaluate, MAX_UNROLL, UNROLL_MARK, unrollLoops } from "../src/gpu/unroll.ts";
import { Kernels, shaderSource, unrollsLoops } from "../src/gpu/shaders.ts";
import { getGpu } from "../src/gpu/device.ts";
import { runtimeName } from "../src/runtime.ts";

const loop = (header: string, body = "s += f32(i);") => `const N = 3u;\noverride M: u32 = 2u;\nfn f() {\n  var s = 0.0;\n  //#unroll\n  ${header} {\n    ${body}\n  }\n}\n`;

describe("unrollLoops", () => {
  it("copies the body once per iteration, the variable a let of its value; nested marks too; constants and overrides", () => {
    const out = unrollLoops(loop("for (var i = 0u; i < N; i++)", "s += f32(i);\n    //#unroll\n    for (var j = 1u; j <= M; j += 1u) { s += f32(i * j); }"), { M: 3 });
    expect(out).not.toMatch(/\bfor\b/);
    expect(out).not.toContain("//#unroll");
    for (const i of [0, 1, 2]) expect(out).toContain(`{ let i = ${i}u;`);
    // the override's pipeline constant (3), not its default (2): j = 1, 2, 3 inside each of the 3 copies
    expect(out.match(/let j = 3u;/g)?.length).toBe(3);
    expect(out.match(/let j = /g)?.length).toBe(9);
    // an i32 loop keeps its type; a step; a loop without a mark is left alone
    const signed = unrollLoops(loop("for (var k: i32 = -2; k < 4; k += 3)", "s += f32(k);") + "fn g() { for (var q = 0u; q < 9u; q++) {} }\n");
    expect(signed).toContain("{ let k = -2i;");
    expect(signed).toContain("{ let k = 1i;");
    expect(signed).not.toContain("let k = 4i");
    expect(signed).toContain("for (var q = 0u; q < 9u; q++) {}");
  });

  it("braces in comments do not end the body; the text is unchanged without marks", () => {
    const out = unrollLoops(loop("for (var i = 0u; i < 2u; i++)", "// } a brace in a comment {\n    if (i > 0u) { s += 1.0; }"));
    expect(out.match(/if \(i > 0u\) \{ s \+= 1\.0; \}/g)?.length).toBe(2);
    const plain = "fn f() { for (var i = 0u; i < 4u; i++) {} } // mentions //#unroll in a comment\n";
    expect(unrollLoops(plain)).toBe(plain);
  });

  it("refuses what it cannot unroll, naming the loop", () => {
    expect(() => unrollLoops(loop("for (var i = 0u; i < p.K; i++)"))).toThrow(/line 5.*not constant integers/);
    expect(() => unrollLoops(loop("for (var i = 0u; i < N; i++)", "if (s > 1.0) { break; }"))).toThrow(/break or continue/);
    expect(() => unrollLoops(loop("for (var i = 0u; i < N; i++)", "i += 1u;"))).toThrow(/assigns 'i'/);
    expect(() => unrollLoops(loop("for (var i = 0u; i < N; i++)", "s = f32(i); i++;"))).toThrow(/assigns 'i'/);
    expect(() => unrollLoops(loop("for (var i = 0u; i < 100000u; i++)"))).toThrow(new RegExp(`more than ${MAX_UNROLL}`));
    expect(() => unrollLoops(loop("for (var i = 0u; i < N; i = i + 1u)"))).toThrow(/is not 'for \(var v = A; v < B; v\+\+\) \{'/);
    expect(() => unrollLoops(loop("for (var i = 0u; j < N; i++)"))).toThrow(/another variable/);
    expect(() => unrollLoops(loop("for (var i = N; i < 5u; i++)"))).toThrow(/give 'i' a type/);
    expect(unrollLoops(loop("for (var i: u32 = N; i < 5u; i++)"))).toContain("{ let i = 4u;");
    expect(() => unrollLoops("fn f() {\n  //#unroll\n  let x = 1;\n}\n", {}, "k")).toThrow(/^k: the loop marked/);
  });

  it("evaluates integer expressions of literals and known names, and nothing else", () => {
    const names = new Map([["BM", 128], ["BK", 16], ["WG", 256]]);
    expect(evaluate("(BM * BK / 4u + WG - 1u) / WG", names)).toBe(2);
    expect(evaluate("7 % 4 - -1", names)).toBe(4);
    expect(evaluate("p.K", names)).toBeUndefined();
    expect(evaluate("BM / 0", names)).toBeUndefined();
    expect(evaluate("BM BK", names)).toBeUndefined();
    expect(evaluate("unknown + 1", names)).toBeUndefined();
  });

  it("GPUs take the unrolled text, CPU adapters the loops as written; APEKIT_UNROLL overrides", () => {
    const saved = process.env.APEKIT_UNROLL;
    try {
      delete process.env.APEKIT_UNROLL;
      expect(unrollsLoops({ isCpu: false })).toBe(true);
      expect(unrollsLoops({ isCpu: true })).toBe(false);
      process.env.APEKIT_UNROLL = "0";
      expect(unrollsLoops({ isCpu: false })).toBe(false);
      process.env.APEKIT_UNROLL = "1";
      expect(unrollsLoops({ isCpu: true })).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.APEKIT_UNROLL;
      else process.env.APEKIT_UNROLL = saved;
    }
  });

  it("every kernel with marks unrolls with its default constants", () => {
    const dir = new URL("../shaders/", import.meta.url);
    const marked = readdirSync(dir).filter((f) => f.endsWith(".wgsl")).map((f) => f.slice(0, -5)).filter((k) => UNROLL_MARK.test(shaderSource(k)));
    expect(marked).toEqual(expect.arrayContaining(["attention_tiled_rows", "attention_tiled_rows_f16kv", "matmul_f32", "matmul_f16", "attention_combine", "ape_combine", "attention_decode", "attention_decode_f16kv", "attention", "attention_f16kv"]));
    for (const k of marked) {
      const out = unrollLoops(shaderSource(k), {}, k);
      expect(out, k).not.toMatch(UNROLL_MARK);
      expect(out.length, k).toBeGreaterThan(shaderSource(k).length);
    }
  });

  // the WebGPU implementation's own compiler (Tint under Node and Bun, naga under Deno) validates the unrolled text
  // in the shapes GPUs run (pipeline creation only: lavapipe's code generation runs at the first dispatch)
  it(`the unrolled kernels compile on ${runtimeName()} in the shapes GPUs run`, async () => {
    const gpu = await getGpu();
    const k = new Kernels(gpu.device, gpu.hasF16, true);
    const cases: [string, Record<string, number>][] = [
      ["attention_tiled_rows", { HD: 64, NT: 128, BC: 32 }],
      ["attention_tiled_rows_f16kv", { HD: 64, NT: 128, BC: 32 }],
      ["attention_combine", {}],
      ["ape_combine", {}],
      ["attention_decode_f16kv", { HD: 64, NH: 4, KT: 4, WG: 128, PREFETCH: 1 }],
      ["attention_decode", { HD: 64, NH: 4, KT: 4, WG: 128, PREFETCH: 1 }],
      ["attention_f16kv", { HD: 64, NH: 4, WG: 256, CH: 256, KP: 4 }],
      ["attention", { HD: 64, NH: 4, WG: 256, CH: 256, KP: 4 }],
      // (the GPU tilings with k steps scaled to this adapter's workgroup storage, as test/matmul.test.ts's)
      ["matmul_f32", { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8, NB: 2 }],
      ["matmul_f16", { BM: 128, BN: 64, BK: 16, TM: 8, TN: 4, NB: 2 }],
      ...(gpu.hasF16 ? [["matmul_f16c", { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8, NB: 2 }] as [string, Record<string, number>]] : []),
    ];
    for (const [name, constants] of cases) {
      gpu.device.pushErrorScope("validation");
      k.pipeline(name, constants);
      const err = await gpu.device.popErrorScope();
      expect(err?.message, name).toBeUndefined();
    }
  });
});
