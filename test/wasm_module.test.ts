import { describe, expect, it } from "vitest";
import { runtimeName } from "../src/runtime.ts";
import { wasm } from "../src/wasm/module.ts";

describe(`wasm module on ${runtimeName()}`, () => {
  it("loads from bytes and reports the crate version", () => {
    expect(wasm().wasmVersion()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("round-trips random bytes in both directions", () => {
    const n = 1 << 20;
    const bytes = new Uint8Array(n);
    let x = 12345;
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      bytes[i] = x >>> 24;
    }
    const back = wasm().reverseBytes(bytes);
    expect(back.length).toBe(n);
    for (let i = 0; i < n; i += 4099) expect(back[i]).toBe(bytes[n - 1 - i]);
    const again = wasm().reverseBytes(back);
    expect(again.length).toBe(n);
    let same = true;
    for (let i = 0; i < n; i++) if (again[i] !== bytes[i]) same = false;
    expect(same).toBe(true);
  });
});
