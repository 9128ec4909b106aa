// matvec_rows_blocks: the body shared by every matvec_rows_<format> kernel of the GGUF block formats:
// the one-row decode kernel for CPU adapters (one row per invocation).
// A format's file declares BLOCK (weights per block) and BLOCK_BYTES and includes its block decoder
// (block_<format>.wgsl: deq8) before this; the header comment of each matvec_rows_<format>.wgsl states
// the inputs, outputs, layout and bounds.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

//#include quant_bytes.wgsl

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * 64u;
  if (n >= p.N) { return; }
  let rb = n * (p.K / BLOCK) * BLOCK_BYTES;
  var s = 0.0;
  for (var k = 0u; k < p.K; k += 8u) {
    let v = deq8(rb, k);
    s += dot(v.lo, vec4<f32>(x[k], x[k + 1u], x[k + 2u], x[k + 3u]));
    s += dot(v.hi, vec4<f32>(x[k + 4u], x[k + 5u], x[k + 6u], x[k + 7u]));
  }
  if ((p.flags & 1u) != 0u) { s += bias[p.colOffset + n]; }
  if ((p.flags & 2u) != 0u) { s += y[p.colOffset + n]; }
  y[p.colOffset + n] = s;
}
