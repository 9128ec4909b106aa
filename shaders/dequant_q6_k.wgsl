// dequant_q6_k: expands rows of a GGUF Q6_K weight into f32, so prefill can run the fast
// matmul_f32 on them (one pass over the weights per forward, instead of decoding every block in every
// output tile of a fused kernel).
// Inputs:  w: array<u32>, one chunk's raw blocks: row n starts at byte n * (K/BLOCK) * BLOCK_BYTES, rows
//          contiguous, plus >= 4 bytes of padding; params { rows, K, rowOffset }: rows rowOffset ..
//          rowOffset+rows-1 of the chunk are expanded.
//          210-byte super-blocks of 256: ql[128], qh[64], int8 scales[16], f16 d; element e = 128n + 32t + l (t = 0..3): low nibble of ql[64n + l + 32(t&1)] (high nibble if t >= 2), two high bits (2t) of qh[32n + l]; x = d * scales[e/16] * (q - 32).
// Outputs: out: array<vec4<f32>> [rows, K/4] (row-major f32).
// Bounds:  K a multiple of the block size; one invocation per 8 weights: dispatch
//          (ceil(rows*K/8/64) folded over x and y); invocations past the end return at once.
const BLOCK = 256u;
const BLOCK_BYTES = 210u;
//#include block_q6_k.wgsl
//#include dequant_blocks.wgsl
