// attention_tiled_io: the parameters and bindings both tiled attention bodies share (attention_tiled_body.wgsl,
// attention_tiled_rows_body.wgsl); kpool (1) and vpool (2) are bound by the including kernel file.
// q: fused qkv rows as vec4; rowInfo (pos, listStart, listLen, _) per row; blocks (base, tokens, capacity,
// firstPos); tiles (first query vector, count); out: values (or split partials), stats: lse (or (m, l) pairs).
struct Params { rows: u32, heads: u32, kvHeads: u32, group: u32, qStride: u32, scale: f32, window: u32, splits: u32 }
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> rowInfo: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> blocks: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> tiles: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;
