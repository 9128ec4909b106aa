/**
 * `--model` for every CLI command: a Hugging Face folder, a .gguf file, a hub id (`org/name[@revision]`,
 * `org/name/file.gguf`), an https:// URL, or (absent) the embedded
 * default model; loaded with a progress bar on a terminal.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError, TokenizerError } from "../../src/errors.ts";
import { ggufTokenizer, openGguf } from "../../src/model/gguf.ts";
import { requireDefaultModel } from "../../src/model/default_model.ts";
import { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { loadModel, type ApeModel, tokenizerFromGguf } from "../load.ts";
import type { ArgSpec } from "./args.ts";
import { progressBar } from "./progress.ts";

/** --help lines of the model flags (openModel's arguments). */
export const MODEL_HELP: ArgSpec["help"] = {
  model: ["M", "a Hugging Face folder, a .gguf file, a hub id or an https:// URL (default: the default model)"],
  dtype: ["D", "weight storage of f32/f16/bf16 weights: auto | f32 | f16 (quantized GGUF weights stay quantized)"],
  compute: ["C", "arithmetic: f32 | f16 (needs shader-f16) | int8 (prefill on int8 subgroup matrices: Dawn, NVIDIA)"],
};

function oneOf(flag: string, v: string | undefined, allowed: string[]): void {
  const list = allowed.map((x) => `"${x}"`);
  const names = `${list.slice(0, -1).join(", ")} or ${list[list.length - 1]}`;
  if (v !== undefined && !allowed.includes(v)) throw new InvalidArgumentError(`--${flag} must be ${names} (got '${v}')`);
}

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

/** `--dtype auto|f32|f16` (weight storage) and `--compute f32|f16|int8` (arithmetic), checked here by name. */
export function openModel(path: string | undefined, dtype?: string, compute?: string): Promise<ApeModel> {
  oneOf("dtype", dtype, ["auto", "f32", "f16"]);
  oneOf("compute", compute, ["f32", "f16", "int8"]);
  const d = dtype === undefined ? undefined : (dtype as "auto" | "f32" | "f16");
  const c = compute === undefined ? undefined : (compute as "f32" | "f16" | "int8");
  return loadModel(path, { dtype: d, compute: c, onProgress: progressBar("loading model"), download: { onProgress: downloadBars() } });
}

/**
 * The tokenizer of `tokenize` / `detokenize`: `--tokenizer` (a tokenizer.json, a folder holding one, or a
 * .gguf file), else `--model`'s (a Hugging Face folder or a .gguf file), else the default model's. Only
 * the tokenizer is read: no GPU, no weights.
 */
export function openTokenizer(tokenizer: string | undefined, model: string | undefined): Tokenizer {
  if (tokenizer !== undefined && model !== undefined) throw new InvalidArgumentError("give --tokenizer or --model, not both");
  let path = tokenizer ?? model ?? requireDefaultModel();
  if (!existsSync(path)) throw new InvalidArgumentError(`${path}: no such file or folder`);
  if (statSync(path).isDirectory() && !existsSync(join(path, "tokenizer.json"))) {
    const ggufs = readdirSync(path).filter((n) => n.toLowerCase().endsWith(".gguf"));
    if (ggufs.length !== 1) throw new TokenizerError(`${path}: no tokenizer.json (and not exactly one .gguf file) in this folder`);
    path = join(path, ggufs[0]);
  }
  if (!path.toLowerCase().endsWith(".gguf")) return Tokenizer.fromFile(path);
  const f = openGguf(path);
  try {
    const t = ggufTokenizer(f);
    if (!t) throw new TokenizerError(`${path}: the GGUF file carries no tokenizer (tokenizer.ggml.*)`);
    return tokenizerFromGguf(t);
  } finally {
    f.close();
  }
}
