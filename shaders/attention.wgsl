// attention: flash-attention-style scaled dot-product attention over a LIST of KV blocks held in
// separate places of the pools (the prefix, cached contexts, the live sequence), without copying them
// together. Online softmax over tiles of 64 keys; GQA (query head h reads kv head h / (heads/kvHeads)).
// A key at position kp is visible to a query row at position qp iff kp <= qp (and qp - kp < window when
// a sliding window is set): that one rule gives causal prefill, independent contexts (each row's list is
// [prefix, own context]) and APE queries.
// Scores are q.k * scale, with scale = 1/(sqrt(headDim) * T) (T = APE temperature; 1 elsewhere).
// Inputs:  q: array<f32> (fused qkv rows; head h of row r at r*qStride + h*headDim), kpool, vpool
//          (f32 elements read as vec4, layout of rope_store.wgsl; headDim a multiple of 4), rows: array<vec4<u32>> per query row (pos, listStart, listLen, _),
//          blocks: array<vec4<u32>> (base, tokens, capacity, firstPos), params.
// Outputs: out: array<f32> [rows, heads*headDim] (softmax-weighted values; 0 when nothing is visible),
//          lse: array<f32> [rows, heads] (log-sum-exp of the scaled scores; -1e30 when nothing is visible).
// Bounds:  one workgroup of 64 threads per (head, row); headDim <= 256, a multiple of 4, also given as the
//          pipeline constant HD; dispatch (heads, rows) with rows > 65535 folded into z.
@group(0) @binding(1) var<storage, read> kpool: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vpool: array<vec4<f32>>;
// elements i..i+3 (i a multiple of 4: one 16-byte load)
fn kQuad(i: u32) -> vec4<f32> { return kpool[i >> 2u]; }
fn vQuad(i: u32) -> vec4<f32> { return vpool[i >> 2u]; }
//#include attention_body.wgsl
