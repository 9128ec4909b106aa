/**
 * APE's tuned temperature T and scale S for a model, as `ape tune` writes them and `loadModel` reads
 * them: a small JSON file beside the model in apekit's model cache (`<model folder>/ape-tuned.json`
 * for a model in `${XDG_CACHE_HOME:-~/.cache}/apekit/models/`), or, for a model elsewhere,
 * `.../apekit/models/tuned/<fingerprint>.json`. The file names the model's fingerprint: a file left by
 * another model (a replaced file) is not used.
 *
 * @example
 * ```ts
 * import { readTuned, tunedPath } from "./tuned.ts";
 * console.log(tunedPath("/elsewhere/model.gguf", "abc123")); // ~/.cache/apekit/models/tuned/abc123.json
 * console.log(readTuned("/elsewhere/model.gguf", "abc123")); // undefined (not tuned)
 * ```
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import process from "node:process";
import { modelCacheDir } from "../model/default_model.ts";

export interface TunedFile {
  version: 1;
  modelFingerprint: string;
  temperature: number;
  scale: number;
  /** What it was tuned on and how well it did there. */
  task: string;
  prefixTokens: number;
  prefix: string;
  split: string;
  samples: number;
  accuracy: number;
  date: string;
}

/** Where the tuned pair of the model loaded from `source` lives. */
export function tunedPath(source: string, fingerprint: string): string {
  const cache = resolve(modelCacheDir());
  const abs = resolve(source);
  const rel = relative(cache, abs);
  if (rel && !rel.startsWith("..") && !rel.startsWith(sep) && rel !== "tuned") {
    const folder = existsSync(abs) && statSync(abs).isDirectory() ? abs : dirname(abs);
    return join(folder, "ape-tuned.json");
  }
  return join(cache, "tuned", `${fingerprint}.json`);
}

/** The model's tuned T and S, if `ape tune` wrote them for this very model (its fingerprint). */
export function readTuned(source: string, fingerprint: string): { temperature: number; scale: number } | undefined {
  let f: TunedFile;
  try {
    f = JSON.parse(readFileSync(tunedPath(source, fingerprint), "utf8"));
  } catch {
    return undefined;
  }
  const ok = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v > 0;
  if (f?.version !== 1 || f.modelFingerprint !== fingerprint || !ok(f.temperature) || !ok(f.scale)) return undefined;
  return { temperature: f.temperature, scale: f.scale };
}

/** Writes the tuned file atomically (temp file + rename); returns its path. */
export function writeTuned(source: string, file: TunedFile): string {
  const path = tunedPath(source, file.modelFingerprint);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(file, null, 2) + "\n");
  renameSync(tmp, path);
  return path;
}
