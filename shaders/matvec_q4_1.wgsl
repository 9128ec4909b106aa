// matvec_q4_1: the decode-time linear layer for a single row, y[colOffset + n] = sum_k x[k] * W[n, k]
// (+ bias[colOffset + n]), with W kept as GGUF Q4_1 blocks in GPU memory and dequantized on the fly
// (f32 accumulation). W is HF-shaped (out x in), possibly one row chunk of a larger matrix.
// Inputs:  x: array<vec4<f32>> [K/4]; w: array<u32>, the chunk's raw blocks: row n starts at byte
//          n * (K/32) * 20 (a whole word: blocks are 5 words), rows contiguous;
//          bias: array<f32> (read only when flags bit 0 set); params (same struct as matvec_f32; M must be 1).
//          20-byte blocks of 32: f16 d, f16 m, qs[16] (nibbles as Q4_0); x = d * q + m.
// Outputs: y: array<f32>, entries colOffset .. colOffset+N-1.
// Layout:  256 threads = 8 output rows x 32 lanes; each lane decodes 8 consecutive weights at a time
//          (lane-strided over K), then the lanes reduce in workgroup memory.
// Bounds:  K a multiple of 32; dispatch (min(ceil(N/8), 65535), ceil(ceil(N/8)/65535)); rows n >= N are masked.
// flags: bit 0 = add bias, bit 1 = accumulate (y += result: the residual add, fused); bits 2, 3 = SwiGLU or
//        RMSNorm of the input on the fly (x is read through shaders/include/matvec_input.wgsl).
struct Params { M: u32, N: u32, K: u32, ldy: u32, colOffset: u32, flags: u32, eps: f32 }
const WG_SIZE = 256u;
//#include matvec_input.wgsl
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const BLOCK = 32u;
const BLOCK_BYTES = 20u;

// the low nibbles of the 4 bytes of v, as f32
fn nib4(v: u32) -> vec4<f32> { return vec4<f32>(vec4<u32>(v & 15u, (v >> 8u) & 15u, (v >> 16u) & 15u, (v >> 24u) & 15u)); }

struct V8 { lo: vec4<f32>, hi: vec4<f32> }

// elements k..k+7 (k a multiple of 8) of the row starting at byte rb: 20-byte blocks are whole words,
// so three aligned word loads: (d, m), and the two words of nibbles (low nibbles for the block's first
// 16 weights, high nibbles for the last 16)
fn deq8(rb: u32, k: u32) -> V8 {
  let bo = (rb >> 2u) + (k >> 5u) * 5u;
  let dm = unpack2x16float(w[bo]);
  let j = (k >> 3u) & 3u;
  let qw = bo + 1u + (j & 1u) * 2u;
  let sh = (j >> 1u) * 4u;
  return V8(nib4(w[qw] >> sh) * dm.x + dm.y, nib4(w[qw + 1u] >> sh) * dm.x + dm.y);
}

var<workgroup> partial: array<f32, 256>;

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
  partial[lid.x] = s;
  workgroupBarrier();
  for (var step = 16u; step > 0u; step >>= 1u) {
    if (lane < step) { partial[lid.x] += partial[lid.x + step]; }
    workgroupBarrier();
  }
  if (lane == 0u && n < p.N) {
    var v = partial[lid.x];
    if ((p.flags & 1u) != 0u) { v += bias[p.colOffset + n]; }
    if ((p.flags & 2u) != 0u) { v += y[p.colOffset + n]; }
    y[p.colOffset + n] = v;
  }
}
