/**
 * `--model` for every CLI command: a Hugging Face folder, a .gguf file, or (absent) the embedded
 * default model; loaded with a progress bar on a terminal.
 */
import { loadModel, type ApeModel } from "../load.ts";
import { progressBar } from "./progress.ts";

export function openModel(path: string | undefined, dtype?: string): Promise<ApeModel> {
  const d = dtype === undefined ? undefined : (dtype as "auto" | "f32" | "f16");
  return loadModel(path, { dtype: d, onProgress: progressBar("loading model") });
}
