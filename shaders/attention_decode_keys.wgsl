// attention_decode_keys: key-parallel split-K ("flash-decoding") attention for the few query rows of a
// decode step, built to stream K and V at memory bandwidth. A workgroup owns (key split, kv head [,
// chunk of its query heads], row) and walks its slice of the row's visible keys (the slice comes from
// the block list as it is when the kernel runs, exactly as attention_decode.wgsl: visible keys numbered
// block after block, split s takes keys [s*c, (s+1)*c), c = ceil(total / splits)) in chunks of
// C = KPT*WG keys of one block:
//   1. scores: thread t owns keys t, t+WG, ... of the chunk whole (16-byte loads of K; the NH query
//      heads read from workgroup memory, broadcast), keeps their NH scores in registers;
//   2. ONE max per head for the chunk (two-stage reduction: 2 barriers), online rescale of the running
//      state (all threads hold the same running max);
//   3. each thread writes exp(score - max) of its keys to workgroup memory and sums them itself;
//   4. values: thread (sub, oct) reads octet oct of the V rows of keys sub, sub+NSUB, ... (consecutive
//      lanes read consecutive 16-byte pieces of a row) and accumulates all NH heads from those bytes.
// Three barriers per chunk (plus one per block for its descriptor); the threads' sums and the key
// subsets' outputs merge once at the end.
// Visibility: a key at position kp is visible to the row's query at qp iff kp <= qp and (window == 0
// or qp - kp < window). Scores are q.k * scale, scale = 1/(sqrt(headDim) * T).
// Inputs:  q: array<f32> fused qkv rows (read as vec4; head h of row r at r*qStride + h*HD),
//          kpool, vpool: array<f32> (layout of rope_store.wgsl, read as vec4), rowInfo:
//          array<vec4<u32>> per row (pos, listStart, listLen, _), blocks: array<vec4<u32>> (base,
//          tokens, capacity, firstPos), params.
// Outputs: pML (binding 5): array<f32> holding vec2 (m, l), and pAcc (binding 6): array<f32> (written
//          as vec4) at i = (split*rows + row)*heads + head, the format of attention_combine.wgsl
//          (m = -1e30, l = 0, pAcc 0 for a split that sees no key). With DIRECT (one split only)
//          binding 5 is the lse [rows, heads] (-1e30 where nothing is visible) and binding 6 the
//          normalised output [rows, heads*HD]: no combine pass.
// Bounds:  HD a multiple of 8, WG a multiple of HD/8 and of 16, NH*16 <= WG, NH <= 8, KPT <= 8,
//          VU <= 8; workgroup memory 4*(max(NH*KPT*WG, 8*WG) + NH*HD + NH*WG + 16*NH + WG) + 16 bytes;
//          dispatch (splits, kvHeads * chunks, rows), chunks = ceil((heads/kvHeads) / NH).
@group(0) @binding(1) var<storage, read> kpool: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> vpool: array<vec4<f32>>;
fn kOct(i: u32) -> Oct { return Oct(kpool[2u * i], kpool[2u * i + 1u]); }
fn vOct(i: u32) -> Oct { return Oct(vpool[2u * i], vpool[2u * i + 1u]); }
//#include attention_decode_keys_body.wgsl
