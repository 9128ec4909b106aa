// dequant_q4_k: expands rows of a GGUF Q4_K weight into f32, so prefill can run the fast
// matmul_f32 on them (one pass over the weights per forward, instead of decoding every block in every
// output tile of a fused kernel).
// Inputs:  w: array<u32>, one chunk's raw blocks: row n starts at byte n * (K/BLOCK) * BLOCK_BYTES, rows
//          contiguous, plus >= 4 bytes of padding; params { rows, K, rowOffset }: rows rowOffset ..
//          rowOffset+rows-1 of the chunk are expanded.
//          144-byte super-blocks of 256: f16 d, f16 dmin, scales[12] (8 six-bit scales and mins), qs[128]; element e is in sub-block e/32 and is the nibble (low for even sub-blocks) of qs[32*(e/64) + e%32]; x = d*sc*q - dmin*m.
// Outputs: out: array<vec4<f32>> [rows, K/4] (row-major f32).
// Bounds:  K a multiple of the block size; one invocation per 8 weights: dispatch
//          (ceil(rows*K/8/64) folded over x and y); invocations past the end return at once.
const BLOCK = 256u;
const BLOCK_BYTES = 144u;
//#include block_q4_k.wgsl
//#include dequant_blocks.wgsl
