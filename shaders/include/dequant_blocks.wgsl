// dequant_blocks: the body shared by every dequant_<format> kernel of the GGUF block formats:
// the expand-to-f32 kernel (prefill of 16+ rows).
// A format's file declares BLOCK (weights per block) and BLOCK_BYTES and includes its block decoder
// (block_<format>.wgsl: deq8) before this; the header comment of each dequant_<format>.wgsl states
// the inputs, outputs, layout and bounds.
struct Params { rows: u32, K: u32, rowOffset: u32 }
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

//#include quant_bytes.wgsl

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u; // which group of 8 weights
  let per = p.K / 8u;
  if (i >= p.rows * per) { return; }
  let r = i / per;
  let k = (i % per) * 8u;
  let v = deq8((p.rowOffset + r) * (p.K / BLOCK) * BLOCK_BYTES, k);
  out[i * 2u] = v.lo;
  out[i * 2u + 1u] = v.hi;
}
