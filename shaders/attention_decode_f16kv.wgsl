// attention_decode_f16kv: attention_decode.wgsl for KV pools stored as half floats (layout of
// rope_store_f16.wgsl: element e in the low (e even) or high half of word e/2; f32 math).
// Split-K ("flash-decoding") attention for the few query rows of a decode step: a workgroup owns (key
// split, kv head [, chunk of its query heads], row), walks its slice of the row's visible keys in the
// row's LIST of KV blocks, reading each key and value once for the NH query heads of the GQA group it
// serves, and writes the split's partial softmax; attention_combine.wgsl merges the splits.
// Visibility: a key at position kp is visible to the row's query at qp iff kp <= qp and (window == 0
// or qp - kp < window). Scores are q.k * scale, scale = 1/(sqrt(headDim) * T).
// Inputs:  q: array<f32> (read as vec4), kpool, vpool: array<u32> (read as vec2<u32>: 4 halves),
//          rowInfo: array<vec4<u32>> (pos, listStart, listLen, _), blocks: array<vec4<u32>> (base,
//          tokens, capacity, firstPos), params.
// Outputs: pML: array<vec2<f32>>, pAcc: array<f32> (as vec4) at i = (split*rows + row)*heads + head,
//          the format of attention_combine.wgsl.
// Bounds:  as attention_decode.wgsl (HD a multiple of 4, NH <= 8, KT <= 8; dispatch (splits,
//          kvHeads * chunks, rows)).
@group(0) @binding(1) var<storage, read> kpool: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> vpool: array<vec2<u32>>;
alias KvRaw = vec2<u32>; // four halves, unpacked where used
fn kRaw(i: u32) -> KvRaw { return kpool[i]; }
fn vRaw(i: u32) -> KvRaw { return vpool[i]; }
fn unpackKv(w: KvRaw) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
//#include attention_decode_body.wgsl
