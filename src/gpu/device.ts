/**
 * Acquires the one GPUDevice the engine uses, on any runtime:
 * - Deno: its built-in `navigator.gpu` (wgpu);
 * - Bun and Node: the npm `webgpu` package (Dawn), whose `create()` result must stay referenced for
 *   the life of the process (if it is collected, Node aborts and Bun segfaults), so it is pinned here.
 *
 * The device is requested with the adapter's real limits (not WebGPU's conservative defaults) and with
 * `shader-f16` and `subgroups` when the adapter offers them. Dawn is created with `allow_unsafe_apis`, which
 * exposes `chromium-experimental-subgroup-matrix` (integer tensor cores on NVIDIA); the device takes it when the
 * adapter has the configuration the int8 prefill kernels use (hasInt8Matrix; APEKIT_INT8_MATRIX=0 declines it).
 *
 * GPU errors are never silent: work that is recorded and submitted in one synchronous stretch runs
 * inside `errorScope` (validation and out-of-memory); anything outside a scope reaches the device's
 * `uncapturederror` listener and is recorded in `deviceErrors(device)`, and a lost device is recorded
 * for good. `readBuffer` (the one readback path) throws what was recorded as a typed error.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * const gpu = await getGpu();
 * console.log(gpu.description, gpu.limits.maxStorageBufferBindingSize);
 * ```
 */
import process from "node:process";
import {
  type ApeError, GpuDeviceLostError, GpuInternalError, GpuOutOfMemoryError, GpuUnavailableError, GpuValidationError,
} from "../errors.ts";

export interface Gpu {
  device: GPUDevice;
  /** The adapter the device came from (its `limits` are what the device asked for). */
  adapter: GPUAdapter;
  adapterInfo: GPUAdapterInfo;
  /** One line naming the adapter and backend, for logs and the demo. */
  description: string;
  hasF16: boolean;
  hasSubgroups: boolean;
  /**
   * The device has `chromium-experimental-subgroup-matrix` with i8 x i8 -> i32 at M x N x K = 16 x 16 x 32 and
   * subgroups of 32 invocations: what shaders/matmul_i8.wgsl needs (compute "int8").
   */
  hasInt8Matrix: boolean;
  /** A software adapter running on the CPU (lavapipe / llvmpipe / SwiftShader): kernels pick CPU-friendly layouts. */
  isCpu: boolean;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
  };
}

const INSTALL_HINT =
  "Install a Vulkan driver: on Debian 12, `apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1` " +
  "(Mesa 25 lavapipe runs WebGPU on the CPU); Bun and Node also need the npm package `webgpu`.";

// Pinned for the process's life: Dawn's GPU object must never be garbage-collected.
let dawnGpu: GPU | undefined;
let pending: Promise<Gpu> | undefined;

async function findGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  if (isDeno) {
    if (nav?.gpu) return nav.gpu;
    throw new GpuUnavailableError(`Deno exposes no navigator.gpu. ${INSTALL_HINT}`);
  }
  if (!dawnGpu) {
    let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
    try {
      mod = (await import("webgpu")) as unknown as typeof mod;
    } catch (cause) {
      throw new GpuUnavailableError(`cannot load the npm package 'webgpu' (Dawn). ${INSTALL_HINT}`, { cause });
    }
    Object.assign(globalThis, mod.globals);
    // allow_unsafe_apis: Dawn's experimental features (subgroup matrices) are offered only with it
    dawnGpu = mod.create(["enable-dawn-features=allow_unsafe_apis"]);
  }
  return dawnGpu;
}

const SUBGROUP_MATRIX = "chromium-experimental-subgroup-matrix";

interface SubgroupMatrixConfig { componentType: string; resultComponentType: string; M: number; N: number; K: number }

/**
 * Whether `adapter` offers subgroup matrices of i8 x i8 -> i32 at 16 x 16 x 32 with subgroups of exactly 32
 * invocations (matmul_i8.wgsl's shape and its subgroup arithmetic).
 */
export function int8MatrixOffered(adapter: GPUAdapter): boolean {
  if (!adapter.features.has(SUBGROUP_MATRIX as GPUFeatureName)) return false;
  const info = adapter.info as GPUAdapterInfo & { subgroupMatrixConfigs?: SubgroupMatrixConfig[]; subgroupMinSize?: number; subgroupMaxSize?: number };
  if (info.subgroupMinSize !== 32 || info.subgroupMaxSize !== 32) return false;
  return (info.subgroupMatrixConfigs ?? []).some((c) =>
    c.componentType === "i8" && c.resultComponentType === "i32" && c.M === 16 && c.N === 16 && c.K === 32
  );
}


async function acquire(): Promise<Gpu> {
  const gpu = await findGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new GpuUnavailableError(`no WebGPU adapter found. ${INSTALL_HINT}`);
  const want: GPUFeatureName[] = [];
  const hasF16 = adapter.features.has("shader-f16");
  if (hasF16) want.push("shader-f16");
  const hasSubgroups = adapter.features.has("subgroups" as GPUFeatureName);
  if (hasSubgroups) want.push("subgroups" as GPUFeatureName);
  const hasInt8Matrix = hasSubgroups && int8MatrixOffered(adapter) && process.env.APEKIT_INT8_MATRIX !== "0";
  if (hasInt8Matrix) want.push(SUBGROUP_MATRIX as GPUFeatureName);
  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxBufferSize: a.maxBufferSize,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
  };
  const device = await adapter.requestDevice({ requiredFeatures: want, requiredLimits });
  deviceErrors(device); // listens for uncaptured errors and loss from the start
  const info = adapter.info;
  const name = info.description || info.device || "unknown adapter";
  const vendor = info.vendor && !/^\d+$/.test(info.vendor) ? `${info.vendor} ` : "";
  const description = `${vendor}${name}${info.architecture && info.architecture !== "0" ? ` (${info.architecture})` : ""}`;
  const l = device.limits;
  return {
    device,
    adapter,
    adapterInfo: info,
    description,
    hasF16,
    hasSubgroups,
    hasInt8Matrix,
    isCpu: /llvmpipe|lavapipe|swiftshader/i.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`),
    limits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  };
}

/** Returns the process-wide GPU (acquired once; concurrent callers share the same promise). */
export function getGpu(): Promise<Gpu> {
  if (!pending) {
    pending = acquire();
    pending.catch(() => (pending = undefined));
  }
  return pending;
}

/** A new device of its own, not the shared one (for tests that lose or destroy a device). */
export function createGpu(): Promise<Gpu> {
  return acquire();
}

/** The limits buffer creation and binding are checked against (read once per device). */
export interface BufferLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxUniformBufferBindingSize: number;
}

const limitsOf = new WeakMap<GPUDevice, BufferLimits>();

export function bufferLimits(device: GPUDevice): BufferLimits {
  let l = limitsOf.get(device);
  if (!l) {
    const d = device.limits;
    l = { maxBufferSize: d.maxBufferSize, maxStorageBufferBindingSize: d.maxStorageBufferBindingSize, maxUniformBufferBindingSize: d.maxUniformBufferBindingSize };
    limitsOf.set(device, l);
  }
  return l;
}

/** A WebGPU error as apekit's typed error (`context` says what was running). */
export function typedGpuError(error: GPUError, context = ""): ApeError {
  const kind = (error as { constructor?: { name?: string } }).constructor?.name ?? "";
  if (/OutOfMemory/i.test(kind)) return new GpuOutOfMemoryError(error.message, context);
  if (/Internal/i.test(kind)) return new GpuInternalError(error.message, context);
  return new GpuValidationError(error.message, context);
}

/**
 * What a device reported outside any error scope: uncaptured errors (kept until thrown once) and its
 * loss (kept for good: every later call fails fast).
 */
export class DeviceErrors {
  #pending: ApeError[] = [];
  #lost?: { message: string; reason: string };

  constructor(device: GPUDevice) {
    const onError = (ev: GPUUncapturedErrorEvent) => {
      ev.preventDefault?.(); // reported as a typed error instead of a console line
      if (this.#pending.length < 16) this.#pending.push(typedGpuError(ev.error, "uncaptured"));
    };
    if (typeof device.addEventListener === "function") device.addEventListener("uncapturederror", onError as EventListener);
    else (device as { onuncapturederror: unknown }).onuncapturederror = onError;
    device.lost.then((info) => {
      this.#lost = { message: info.message, reason: info.reason ?? "unknown" };
      if (info.reason !== "destroyed") console.error(`apekit: GPU device lost: ${info.message}`);
    });
  }

  get lost(): boolean {
    return this.#lost !== undefined;
  }

  /** Throws GpuDeviceLostError once the device is lost. */
  throwIfLost(): void {
    if (this.#lost) throw new GpuDeviceLostError(this.#lost.message, this.#lost.reason);
  }

  /** Throws the device's loss, else the first error recorded since the last throw (the rest were its echoes). */
  throwIfFailed(): void {
    this.throwIfLost();
    const first = this.#pending[0];
    if (first) {
      this.#pending = [];
      throw first;
    }
  }
}

const errorsOf = new WeakMap<GPUDevice, DeviceErrors>();

/** The device's error record (its listeners are installed on first use; getGpu installs them at once). */
export function deviceErrors(device: GPUDevice): DeviceErrors {
  let e = errorsOf.get(device);
  if (!e) errorsOf.set(device, (e = new DeviceErrors(device)));
  return e;
}

/**
 * Opens validation and out-of-memory error scopes; the returned function closes them and resolves to
 * the typed error of the first failure inside (undefined when none). Push and close must enclose
 * synchronous work only (the scopes are a per-device stack: an await in between would let other
 * calls' errors in). Closing costs no GPU round trip: await it together with a readback.
 */
export function errorScope(device: GPUDevice, context: string): () => Promise<ApeError | undefined> {
  device.pushErrorScope("validation");
  device.pushErrorScope("out-of-memory");
  return () => {
    const oom = device.popErrorScope(), validation = device.popErrorScope();
    return Promise.all([oom, validation]).then(
      ([o, v]) => (o ? new GpuOutOfMemoryError(o.message, context) : v ? new GpuValidationError(v.message, context) : undefined),
      () => undefined, // a lost device rejects nothing it had; the loss is reported by deviceErrors
    );
  };
}
