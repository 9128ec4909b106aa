/**
 * Acquires the one GPUDevice the engine uses, on any runtime:
 * - Deno: its built-in `navigator.gpu` (wgpu);
 * - Bun and Node: the npm `webgpu` package (Dawn), whose `create()` result must stay referenced for
 *   the life of the process (if it is collected, Node aborts and Bun segfaults), so it is pinned here.
 *
 * The device is requested with the adapter's real limits (not WebGPU's conservative defaults) and with
 * `shader-f16` when the adapter offers it.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * const gpu = await getGpu();
 * console.log(gpu.description, gpu.limits.maxStorageBufferBindingSize);
 * ```
 */
import { GpuUnavailableError } from "../errors.ts";

export interface Gpu {
  device: GPUDevice;
  adapterInfo: GPUAdapterInfo;
  /** One line naming the adapter and backend, for logs and the demo. */
  description: string;
  hasF16: boolean;
  hasSubgroups: boolean;
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
      mod = await import("webgpu");
    } catch (cause) {
      throw new GpuUnavailableError(`cannot load the npm package 'webgpu' (Dawn). ${INSTALL_HINT}`, { cause });
    }
    Object.assign(globalThis, mod.globals);
    dawnGpu = mod.create([]);
  }
  return dawnGpu;
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
  device.lost.then((info) => {
    if (info.reason !== "destroyed") console.error(`apekit: GPU device lost: ${info.message}`);
  });
  const info = adapter.info;
  const name = info.description || info.device || "unknown adapter";
  const vendor = info.vendor && !/^\d+$/.test(info.vendor) ? `${info.vendor} ` : "";
  const description = `${vendor}${name}${info.architecture && info.architecture !== "0" ? ` (${info.architecture})` : ""}`;
  const l = device.limits;
  return {
    device,
    adapterInfo: info,
    description,
    hasF16,
    hasSubgroups,
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
