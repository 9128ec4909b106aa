// rope_store_f16: rope_store.wgsl for half-float KV pools (2 halves per u32 word, element e in word e/2).
// rotary position embedding (HF "rotate_half": features i and i + headDim/2 of a head form a pair
// rotated by pos * invFreq[i]) fused with the KV write. Query heads are rotated in place in the fused
// qkv rows; key heads are rotated and written, with the values, into the row's KV block ([kvHeads,
// capacity, headDim] from pool slot `base`: token t of kv head h at (base*kvHeads + h*capacity + t)*headDim).
// Inputs:  qkv: array<f32> (row r: Q heads at r*rowStride, K at colK, V at colV), cs: array<f32>
//          [rows, headDim/2, 2] (cos, sin), dest: array<vec4<u32>> per row (base, capacity, t, _), params.
// Outputs: qkv's Q features rotated in place; kpool, vpool: array<u32> (packed halves), the destination slots.
// (A one-row decode step on a GPU, the lanes layout, does this in the qkv projection's epilogue instead:
// main_rope in shaders/include/matvec_body.wgsl, LinearInput.rope; this kernel serves every other forward.)
// Bounds:  one thread per (2 consecutive pairs, head) over heads + kvHeads heads, and row; headDim % 4 == 0;
//          dispatch (ceil((heads + kvHeads) * headDim/4 / 64), rows).
@group(0) @binding(3) var<storage, read_write> kpool: array<u32>;
@group(0) @binding(4) var<storage, read_write> vpool: array<u32>;
// a, b even (headDim % 4 == 0): each pair is one word
fn store_kv(a: u32, b: u32, kLo: vec2<f32>, kHi: vec2<f32>, vLo: vec2<f32>, vHi: vec2<f32>) {
  kpool[a >> 1u] = pack2x16float(kLo);
  kpool[b >> 1u] = pack2x16float(kHi);
  vpool[a >> 1u] = pack2x16float(vLo);
  vpool[b >> 1u] = pack2x16float(vHi);
}
//#include rope_store_body.wgsl
