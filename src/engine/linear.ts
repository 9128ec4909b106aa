/**
 * Records one linear layer, y = x W^T (+ bias), choosing the kernel by W's storage format and the
 * number of rows: matmul_<format> for many rows (prefill), and for one row (decode) either
 * matvec_<format> (32 lanes per row: coalesced reads, what GPUs want) or matvec_rows_<format> (one
 * row per invocation, no barriers: what CPU adapters such as lavapipe run several times faster).
 * Matrices split into row chunks get one dispatch per chunk.
 *
 * @example
 * ```ts
 * import { recordLinear } from "./linear.ts";
 * // recordLinear(program, kernels, x, W, y, rows, gpu.isCpu ? "rows" : "lanes");
 * ```
 */
import type { Kernels } from "../gpu/shaders.ts";
import type { GpuLinear } from "../model/weights.ts";
import { ModelFormatError } from "../errors.ts";
import { Params, type Program } from "./program.ts";

export type MatvecLayout = "lanes" | "rows";

const ceil = (a: number, b: number) => Math.ceil(a / b);

export function recordLinear(prog: Program, k: Kernels, x: GPUBuffer, W: GpuLinear, y: GPUBuffer, rows: number, layout: MatvecLayout): void {
  if (W.cols % 4 !== 0) throw new ModelFormatError(`a linear layer has ${W.cols} input features; apekit needs a multiple of 4`);
  const name = rows > 1 ? `matmul_${W.format}` : layout === "rows" ? `matvec_rows_${W.format}` : `matvec_${W.format}`;
  const pipe = k.pipeline(name);
  for (const ch of W.chunks) {
    const params = prog.uniform(new Params().u(rows, ch.rows, W.cols, W.rows, ch.rowStart, W.bias ? 1 : 0).bytes());
    const bind = k.bind(pipe, [x, ch.buffer, y, params, W.bias ?? ch.buffer]);
    if (rows > 1) prog.dispatch(pipe, bind, ceil(ch.rows, 64), ceil(rows, 64));
    else {
      const groups = ceil(ch.rows, layout === "rows" ? 64 : 8);
      prog.dispatch(pipe, bind, Math.min(groups, 65535), ceil(groups, 65535));
    }
  }
}
