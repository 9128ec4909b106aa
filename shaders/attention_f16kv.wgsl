// attention_f16kv: attention.wgsl for KV pools stored as half floats (2 per u32 word; f32 math).
// attention: flash-attention-style scaled dot-product attention over a LIST of KV blocks held in
// separate places of the pools (the prefix, cached contexts, the live sequence), without copying them
// together. Online softmax over tiles of 64 keys; GQA (query head h reads kv head h / (heads/kvHeads)).
// A key at position kp is visible to a query row at position qp iff kp <= qp (and qp - kp < window when
// a sliding window is set): that one rule gives causal prefill, independent contexts (each row's list is
// [prefix, own context]) and APE queries.
// Scores are q.k * scale, with scale = 1/(sqrt(headDim) * T) (T = APE temperature; 1 elsewhere).
// Inputs:  q: array<f32> (fused qkv rows; head h of row r at r*qStride + h*headDim), kpool, vpool:
//          packed halves read as vec2<u32> (4 elements), in the layout of rope_store_f16.wgsl (headDim a multiple of 4), rows: array<vec4<u32>> per query row (pos, listStart, listLen, _),
//          blocks: array<vec4<u32>> (base, tokens, capacity, firstPos), params.
// Outputs: out: array<f32> [rows, heads*headDim] (softmax-weighted values; 0 when nothing is visible),
//          lse: array<f32> [rows, heads] (log-sum-exp of the scaled scores; -1e30 when nothing is visible).
// Bounds:  one workgroup of 64 threads per (head, row); headDim <= 256, a multiple of 4, also given as the
//          pipeline constant HD; dispatch (heads, rows) with rows > 65535 folded into z.
@group(0) @binding(1) var<storage, read> kpool: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> vpool: array<vec2<u32>>;
// elements i..i+3 (i a multiple of 4: one 8-byte load of two words)
fn kQuad(i: u32) -> vec4<f32> { let w = kpool[i >> 2u]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
fn vQuad(i: u32) -> vec4<f32> { let w = vpool[i >> 2u]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
//#include attention_body.wgsl
