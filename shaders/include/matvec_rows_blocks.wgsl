// matvec_rows_blocks: the weight side of every matvec_rows_<format> kernel of the GGUF block formats (the
// body is matvec_rows_body.wgsl). A format's file declares BLOCK (weights per block) and BLOCK_BYTES and
// includes its block decoder (block_<format>.wgsl: deq8) before this; its header comment states the
// inputs, outputs, layout and bounds.
@group(0) @binding(1) var<storage, read> w: array<u32>;
//#include quant_bytes.wgsl

alias W8 = V8;
// row n's first byte
fn row_base(n: u32) -> u32 { return n * (p.K / BLOCK) * BLOCK_BYTES; }
fn load8(rb: u32, k: u32) -> W8 { return deq8(rb, k); }
alias M4 = mat4x4<f32>;
fn xdot(xa: vec4<f32>, xb: vec4<f32>, lo: M4, hi: M4) -> vec4<f32> { return xa * lo + xb * hi; }
fn xpos(k: u32) -> vec2<u32> { return vec2<u32>(k / 4u, k / 4u + 1u); }

//#include matvec_rows_body.wgsl
