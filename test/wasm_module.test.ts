import { describe, expect, it } from "vitest";
import { wasm } from "../src/wasm/module.ts";

describe("wasm module", () => {
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
    expect(wasm().reverseBytes(back)).toEqual(bytes);
  });
});
