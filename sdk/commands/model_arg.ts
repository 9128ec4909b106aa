/**
 * `--model` for every CLI command: a Hugging Face folder, a .gguf file, a hub id (`org/name[@revision]`,
 * `org/name/file.gguf`), an https:// URL, or (absent) the embedded
 * default model; loaded with a progress bar on a terminal.
 */
import { loadModel, type ApeModel } from "../load.ts";
import { progressBar } from "./progress.ts";

/** A hub id or URL being downloaded: one progress bar per file, in MB. */
function downloadBars(): (p: { file: string; done: number; total: number }) => void {
  const bars = new Map<string, (done: number, total: number) => void>();
  return ({ file, done, total }) => {
    if (!bars.has(file)) bars.set(file, progressBar(`downloading ${file} (MB)`));
    const mb = (n: number) => Math.round(n / 1e5) / 10;
    // the bar ends its line at done >= total: only the file's last call may reach it
    bars.get(file)!(done < total ? Math.min(mb(done), mb(total) - 0.1) : mb(done), mb(total));
  };
}

/** `--dtype auto|f32|f16` (weight storage) and `--compute f32|f16` (arithmetic); loadModel checks both. */
export function openModel(path: string | undefined, dtype?: string, compute?: string): Promise<ApeModel> {
  const d = dtype === undefined ? undefined : (dtype as "auto" | "f32" | "f16");
  const c = compute === undefined ? undefined : (compute as "f32" | "f16");
  return loadModel(path, { dtype: d, compute: c, onProgress: progressBar("loading model"), download: { onProgress: downloadBars() } });
}
