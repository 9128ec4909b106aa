// embed: gathers embedding rows, out[r, :] = table[ids[idOffset + r] - rowOffset, :]
// Inputs:  ids: array<u32> (token ids; read from idOffset, so a decode step can read the id the sampler
//          just wrote), table: array<f32> [chunkRows, hidden] (one row chunk of the embedding matrix;
//          big tables are split across bindings), params.
// Outputs: out: array<f32> [rows, hidden]; rows whose id lies outside [rowOffset, rowOffset+chunkRows)
//          are left untouched (another chunk's dispatch writes them).
// Bounds:  one thread per (row, feature); dispatch (ceil(hidden/64), rows).
struct Params { rows: u32, hidden: u32, rowOffset: u32, chunkRows: u32, idOffset: u32 }
@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let r = gid.y;
  if (c >= p.hidden || r >= p.rows) { return; }
  let id = ids[p.idOffset + r];
  if (id < p.rowOffset || id - p.rowOffset >= p.chunkRows) { return; }
  out[r * p.hidden + c] = table[(id - p.rowOffset) * p.hidden + c];
}
