/**
 * `--model` for every CLI command: a Hugging Face folder, a .gguf file, or (absent) the embedded
 * default model; loaded with a progress bar on a terminal.
 */
import { loadModel, type ApeModel } from "../load.ts";
import { progressBar } from "./progress.ts";

/** `--dtype auto|f32|f16` (weight storage) and `--compute f32|f16` (arithmetic); loadModel checks both. */
export function openModel(path: string | undefined, dtype?: string, compute?: string): Promise<ApeModel> {
  const d = dtype === undefined ? undefined : (dtype as "auto" | "f32" | "f16");
  const c = compute === undefined ? undefined : (compute as "f32" | "f16");
  return loadModel(path, { dtype: d, compute: c, onProgress: progressBar("loading model") });
}
