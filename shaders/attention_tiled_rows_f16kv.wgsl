// attention_tiled_rows_f16kv: attention_tiled_rows.wgsl for KV pools stored as half floats (f32 math).
// Tiled (FlashAttention-2 style) attention for batches of many query rows over a LIST of KV blocks, one
// query vector per invocation (head_dim <= 64): a workgroup owns a tile of up to NT query vectors of one
// row group and ONE kv head and streams key tiles of BC keys (unpacked to f32) through workgroup memory
// with an online softmax. Visibility: kp <= qp (and qp - kp < window when set); scores q.k * scale.
// Split-K over z.
// Inputs:  q: array<vec4<f32>>, kpool, vpool: array<vec2<u32>> (4 halves per element, layout of
//          rope_store_f16.wgsl: [kvHeads, capacity, headDim] per block), rowInfo, blocks, tiles, params:
//          as in attention_tiled_rows.wgsl.
// Outputs: out and stats as in attention_tiled_rows.wgsl (out, lse with one split; pAcc, pML otherwise).
// Bounds:  as in attention_tiled_rows.wgsl.
@group(0) @binding(1) var<storage, read> kpool: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> vpool: array<vec2<u32>>;
// elements i..i+3 (i a multiple of 4: one vec2 of words)
fn kQuad(i: u32) -> vec4<f32> { let w = kpool[i / 4u]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
fn vQuad(i: u32) -> vec4<f32> { let w = vpool[i / 4u]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
//#include attention_tiled_rows_body.wgsl
