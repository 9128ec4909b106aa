// attention_decode_keys_f16kv: attention_decode_keys.wgsl for KV pools stored as half floats (layout
// of rope_store_f16.wgsl: element e in the low (e even) or high half of word e/2; f32 math). K and V
// are read as vec4<u32>: 8 halves, 16 bytes per load.
// Key-parallel split-K attention for the few query rows of a decode step: a workgroup owns (key split,
// kv head [, chunk of its query heads], row); per chunk of KPT*WG keys, threads own whole keys for
// the scores, one max per chunk, then threads (key subset, octet) stream the V rows for all NH heads.
// Inputs:  q: array<f32> (read as vec4), kpool, vpool: array<u32> (read as vec4<u32>), rowInfo:
//          array<vec4<u32>> (pos, listStart, listLen, _), blocks: array<vec4<u32>> (base, tokens,
//          capacity, firstPos), params.
// Outputs: pML, pAcc at i = (split*rows + row)*heads + head in the format of attention_combine.wgsl;
//          with DIRECT (one split) the lse and the normalised output (see attention_decode_keys.wgsl).
// Bounds:  as attention_decode_keys.wgsl (HD a multiple of 8; dispatch (splits, kvHeads * chunks, rows)).
@group(0) @binding(1) var<storage, read> kpool: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> vpool: array<vec4<u32>>;
fn oct16(w: vec4<u32>) -> Oct {
  return Oct(vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)), vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w)));
}
fn kOct(i: u32) -> Oct { return oct16(kpool[i]); }
fn vOct(i: u32) -> Oct { return oct16(vpool[i]); }
//#include attention_decode_keys_body.wgsl
