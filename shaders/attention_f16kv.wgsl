// attention_f16kv: attention.wgsl for KV pools stored as half floats (2 per u32 word; f32 math).
// attention: flash-attention-style scaled dot-product attention over a LIST of KV blocks held in
// separate places of the pools (the prefix, cached contexts, the live sequence), without copying them
// together. GQA: a workgroup serves one query row and NH query heads of one kv head's group (query head h
// reads kv head h / (heads/kvHeads)), loading each key and value once for all of them; the row's visible
// keys are taken in chunks of CH (one chunk for a decode step over a short list: see attention_body.wgsl).
// A key at position kp is visible to a query row at position qp iff kp <= qp (and qp - kp < window when
// a sliding window is set): that one rule gives causal prefill, independent contexts (each row's list is
// [prefix, own context]) and APE queries.
// Scores are q.k * scale, with scale = 1/(sqrt(headDim) * T) (T = APE temperature; 1 elsewhere).
// Inputs:  q: array<f32> (read as vec4; fused qkv rows; head h of row r at r*qStride + h*headDim), kpool, vpool:
//          packed halves read as vec2<u32> (4 elements), in the layout of rope_store_f16.wgsl (headDim a multiple of 4), rows: array<vec4<u32>> per query row (pos, listStart, listLen, _),
//          blocks: array<vec4<u32>> (base, tokens, capacity, firstPos), params.
// Outputs: out: array<f32> [rows, heads*headDim] (softmax-weighted values; 0 when nothing is visible),
//          lse: array<f32> [rows, heads] (log-sum-exp of the scaled scores; -1e30 when nothing is visible).
// Bounds:  pipeline constants HD (headDim <= 256, a multiple of 4), NH <= 8 query heads per workgroup, WG
//          threads (>= HD/4), CH <= WG keys per chunk (ceil(CH / (WG / (HD/4))) <= 16), KP score lanes per key
//          (1, 2 or 4, dividing HD/4): chosen by rowAttentionShape in src/engine/attention.ts; dispatch
//          (kvHeads * ceil((heads/kvHeads) / NH), rows) with rows > 65535 folded into z.
@group(0) @binding(1) var<storage, read> kpool: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> vpool: array<vec2<u32>>;
// quad i: elements 4i..4i+3 (one 8-byte load of two words)
fn kQuad(i: u32) -> vec4<f32> { let w = kpool[i]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
fn vQuad(i: u32) -> vec4<f32> { let w = vpool[i]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
//#include attention_body.wgsl
