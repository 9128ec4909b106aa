// matvec_blocks: the body shared by every matvec_<format> kernel of the GGUF block formats:
// the one-row decode kernel for GPUs (32 lanes per row).
// A format's file declares BLOCK (weights per block) and BLOCK_BYTES and includes its block decoder
// (block_<format>.wgsl: deq8) before this; the header comment of each matvec_<format>.wgsl states
// the inputs, outputs, layout and bounds.
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, eps: f32 }
const WG_SIZE = 256u;
//#include matvec_input.wgsl
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

//#include quant_bytes.wgsl

//#include matvec_output.wgsl

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  input_prepare(lid.x);
  let lane = lid.x % 32u;
  let sub = lid.x / 32u;
  let n = (wg.x + wg.y * 65535u) * 8u + sub;
  var s = 0.0;
  if (n < p.N) {
    let rb = n * (p.K / BLOCK) * BLOCK_BYTES;
    for (var k = lane * 8u; k < p.K; k += 256u) {
      let v = deq8(rb, k);
      s += dot(v.lo, xin4(k / 4u));
      s += dot(v.hi, xin4(k / 4u + 1u));
    }
  }
  matvec_store(lid.x, lane, n, s);
}
