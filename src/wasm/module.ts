/**
 * Loads apekit's WebAssembly core (built by scripts/build-wasm.sh with wasm-pack --target web) from
 * its bytes, synchronously, so the same module loads the same way in Deno, Bun and Node.
 *
 * @example
 * ```ts
 * import { wasm } from "./module.ts";
 * console.log(wasm().wasmVersion());
 * ```
 */
import { readFileSync } from "node:fs";
import * as glue from "../../wasm/pkg/apekit_wasm.js";

let ready = false;

/** The initialised wasm-bindgen exports. */
export function wasm(): typeof glue {
  if (!ready) {
    const bytes = readFileSync(new URL("../../wasm/pkg/apekit_wasm_bg.wasm", import.meta.url));
    glue.initSync({ module: bytes });
    ready = true;
  }
  return glue;
}
