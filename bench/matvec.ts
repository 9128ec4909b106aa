/**
 * `ape bench matvec [--kernels matvec_f16,matvec_q4_1,...] [--reps 50]`
 *
 * GPU time of the decode matvec kernels alone, on the Llama-3.2-1B layer shapes with random weights:
 * each kernel is dispatched `reps` times in one submit, and the time of a 1-dispatch submit is
 * subtracted (so no host round trip is counted). Prints microseconds per dispatch and the weight
 * bytes streamed per second, beside the card's copy rate, with the input stage as a decode step uses
 * it: RMSNorm for gate/up and the LM head, SwiGLU for down_proj (and down_proj without it).
 * Each kernel's output is compared with the first kernel of the same weight type (max abs difference),
 * so a variant under test shows any numeric change beside its speed.
 */
import { getGpu } from "../src/gpu/device.ts";
import { readBuffer, storageBuffer, uploadBytes, uploadF32 } from "../src/gpu/buffers.ts";
import { Kernels } from "../src/gpu/shaders.ts";
import { Params, Program } from "../src/engine/program.ts";
import { parseArgs } from "../sdk/commands/args.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import { FORMATS, rowBytes } from "../src/model/quant.ts";
import { RANDOM_TYPES, randomWeightBytes } from "./random_weights.ts";

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { string: ["kernels", "reps"] });
  const kernels = (a.string.kernels ?? "matvec_f16,matvec_q8_0,matvec_q4_1").split(",");
  const reps = Number(a.string.reps ?? 50);
  const gpu = await getGpu();
  const k = new Kernels(gpu.device, gpu.hasF16);
  const dev = gpu.device;
  console.log(`adapter: ${gpu.description}`);
  const shapes = [
    { name: "gate_up+norm", N: 16384, K: 2048, flags: 8 },
    { name: "down+swiglu", N: 2048, K: 8192, flags: 4 },
    { name: "down", N: 2048, K: 8192, flags: 0 },
    { name: "o_proj", N: 2048, K: 2048, flags: 0 },
    { name: "lm_head+norm", N: 128256, K: 2048, flags: 8 },
  ];
  const x = uploadF32(dev, Float32Array.from({ length: 2 * 8192 }, (_, i) => Math.sin(i)));
  const g = uploadF32(dev, new Float32Array(8192).fill(1));
  const y = storageBuffer(dev, 128256 * 4);
  const reference = new Map<string, Float32Array>(); // "type/shape" -> the first kernel's output
  for (const name of kernels) {
    // the weight type from the kernel's name: matvec_<gpu format>[variant]
    const type = RANDOM_TYPES.find((t) => name.replace(/^matvec\d?_/, "").startsWith(FORMATS[t].gpu ?? t.toLowerCase()));
    if (!type) throw new InvalidArgumentError(`--kernels: no random weights for '${name}' (formats: ${RANDOM_TYPES.join(", ")})`);
    const pipe = k.pipeline(name);
    for (const sh of shapes) {
      const padded = new Uint8Array(sh.N * rowBytes(type, sh.K) + 4); // block kernels may read one word past the end
      padded.set(randomWeightBytes(type, sh.N * sh.K));
      const w = uploadBytes(dev, padded);
      const timed = async (n: number) => {
        const prog = new Program(dev);
        const params = prog.uniform(new Params().u(1, sh.N, sh.K, sh.N, 0, sh.flags).f(1e-5).bytes());
        const groups = Math.ceil(sh.N / 8);
        for (let r = 0; r < n; r++) prog.dispatch(pipe, k.bind(pipe, [x, w, y, params, x, g]), Math.min(groups, 65535), Math.ceil(groups / 65535));
        const t0 = performance.now();
        prog.submit();
        await readBuffer(dev, y, 4);
        prog.destroy();
        return performance.now() - t0;
      };
      await timed(2);
      const one = await timed(1), many = await timed(reps + 1);
      // correctness against the first kernel of this type (y was written by the last run; flag bit 1 is clear)
      const out = new Float32Array(await readBuffer(dev, y, sh.N * 4));
      const key = `${type}/${sh.name}`;
      const ref = reference.get(key) ?? (reference.set(key, out), out);
      let diff = 0, mag = 0;
      for (let i = 0; i < sh.N; i++) {
        diff = Math.max(diff, Math.abs(out[i] - ref[i]));
        mag = Math.max(mag, Math.abs(ref[i]));
      }
      const us = ((many - one) / reps) * 1000;
      const bytes = sh.N * rowBytes(type, sh.K);
      const rate = us > 0 ? `${(bytes / us / 1e6).toFixed(2).padStart(6)} TB/s of weights` : "(no difference measured: raise --reps)";
      console.log(`${name.padEnd(18)} ${sh.name.padEnd(14)} ${Math.max(0, us).toFixed(1).padStart(8)} us  ${rate} (${(bytes / 1e6).toFixed(1)} MB)  max |diff| ${diff.toExponential(1)} of ${mag.toExponential(1)}`);
      w.destroy();
    }
  }
  for (const b of [x, g, y]) b.destroy();
  return 0;
}
