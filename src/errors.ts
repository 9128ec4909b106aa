/**
 * Every error apekit throws on purpose is an ApeError subclass with a stable `code`, so callers can
 * branch on the kind of failure without parsing messages.
 *
 * @example
 * ```ts
 * import { ApeError } from "./errors.ts";
 * try { throw new ApeError("E_DEMO", "demo"); } catch (e) { if (e instanceof ApeError) console.log(e.code); }
 * ```
 */
export class ApeError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No WebGPU adapter could be found (message says what to install). */
export class GpuUnavailableError extends ApeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("E_GPU_UNAVAILABLE", message, options);
  }
}

/** A model folder or file is malformed or uses an option apekit does not support. */
export class ModelFormatError extends ApeError {
  constructor(message: string) {
    super("E_MODEL_FORMAT", message);
  }
}

/** A tokenizer file is malformed, or the text cannot be tokenized. */
export class TokenizerError extends ApeError {
  constructor(message: string) {
    super("E_TOKENIZER", message);
  }
}

/** A KV-cache file is damaged (bad header, bounds, checksum...). */
export class CacheCorruptError extends ApeError {
  constructor(message: string) {
    super("E_CACHE_CORRUPT", message);
  }
}

/** A KV-cache file is sound but belongs to another model, tokenizer or prefix. */
export class CacheMismatchError extends ApeError {
  constructor(message: string) {
    super("E_CACHE_MISMATCH", message);
  }
}

/** A request does not fit: too many tokens, or the GPU KV byte budget is exhausted. */
export class CapacityError extends ApeError {
  constructor(message: string) {
    super("E_CAPACITY", message);
  }
}

/** A model source (hub repo, revision, file, URL) does not exist, or offline mode lacks it in the cache. */
export class ModelNotFoundError extends ApeError {
  constructor(message: string) {
    super("E_MODEL_NOT_FOUND", message);
  }
}

/** The hub refused access (a gated or private repo): the message says to set HF_TOKEN. */
export class HubAuthError extends ApeError {
  constructor(message: string) {
    super("E_HUB_AUTH", message);
  }
}

/** A download failed (network, HTTP status, or a size / checksum mismatch: `reason`); nothing partial is kept as a file. */
export class DownloadError extends ApeError {
  constructor(message: string, readonly reason: "network" | "http" | "size" | "checksum" = "network", options?: { cause?: unknown }) {
    super(reason === "size" || reason === "checksum" ? "E_DOWNLOAD_INTEGRITY" : "E_DOWNLOAD", message, options);
  }
}

/** The model computed NaN or infinite logits (broken weights or config): no token can be chosen. */
export class NonFiniteError extends ApeError {
  constructor(message: string) {
    super("E_NON_FINITE", message);
  }
}

/** A caller passed an invalid argument (names the argument). */
export class InvalidArgumentError extends ApeError {
  constructor(message: string) {
    super("E_INVALID_ARGUMENT", message);
  }
}

/**
 * WebGPU rejected a call (an invalid binding, a destroyed buffer, a limit exceeded...): a bug caught
 * before it could turn into wrong numbers. `gpuMessage` is WebGPU's own text.
 */
export class GpuValidationError extends ApeError {
  constructor(readonly gpuMessage: string, context = "") {
    super("E_GPU_VALIDATION", `GPU validation error${context ? ` (${context})` : ""}: ${gpuMessage}`);
  }
}

/** The GPU ran out of memory creating a buffer or running work. `gpuMessage` is WebGPU's own text. */
export class GpuOutOfMemoryError extends ApeError {
  constructor(readonly gpuMessage: string, context = "") {
    super("E_GPU_OUT_OF_MEMORY", `GPU out of memory${context ? ` (${context})` : ""}: ${gpuMessage}`);
  }
}

/** The implementation failed internally (e.g. a shader it could not compile for the hardware). */
export class GpuInternalError extends ApeError {
  constructor(readonly gpuMessage: string, context = "") {
    super("E_GPU_INTERNAL", `GPU internal error${context ? ` (${context})` : ""}: ${gpuMessage}`);
  }
}

/** The GPU device was lost (driver reset, destroyed): every later call on it fails with this error. */
export class GpuDeviceLostError extends ApeError {
  constructor(readonly gpuMessage: string, readonly reason = "unknown") {
    super("E_GPU_DEVICE_LOST", `GPU device lost (${reason}): ${gpuMessage || "no message"}`);
  }
}
