/**
 * An independent float64 CPU reference of the transformer and of APE (../shared/APE.md), written
 * separately from the engine (no shared kernels or layout code) so the GPU engine can be checked
 * against the formula itself. Slow and simple on purpose: tiny models only.
 */
import type { ModelConfig } from "../../src/model/config.ts";
import { inverseFrequencies } from "../../src/model/rope.ts";

export interface RefWeights {
  embed: Float64Array; // [vocab, hidden]
  layers: {
    attnNorm: Float64Array;
    q: Float64Array; k: Float64Array; v: Float64Array; o: Float64Array;
    qb?: Float64Array; kb?: Float64Array; vb?: Float64Array;
    qNorm?: Float64Array; kNorm?: Float64Array;
    mlpNorm: Float64Array;
    gate: Float64Array; up: Float64Array; down: Float64Array;
  }[];
  norm: Float64Array;
  lmHead: Float64Array; // [vocab, hidden]
}

/** One layer's keys/values of a block: per kv head, per token, head_dim values; and positions. */
interface BlockKV {
  pos: number[];
  k: Float64Array[][]; // [layer][token] -> kvHeads*headDim (rotated)
  v: Float64Array[][];
}

function matvec(w: Float64Array, x: Float64Array, rows: number, cols: number, bias?: Float64Array): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = bias ? bias[r] : 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

function rms(x: Float64Array, w: Float64Array, eps: number, off = 0, n = x.length): void {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[off + i] * x[off + i];
  const inv = 1 / Math.sqrt(s / n + eps);
  for (let i = 0; i < n; i++) x[off + i] = x[off + i] * inv * w[i];
}

function rotate(x: Float64Array, heads: number, hd: number, pos: number, inv: Float64Array): void {
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const a = pos * inv[i], c = Math.cos(a), s = Math.sin(a);
      const x1 = x[h * hd + i], x2 = x[h * hd + i + half];
      x[h * hd + i] = x1 * c - x2 * s;
      x[h * hd + i + half] = x2 * c + x1 * s;
    }
  }
}

/** Softmax-attention part over keys: returns (out, lse) with scores * scale. */
function attend(q: Float64Array, keys: Float64Array[], vals: Float64Array[], off: number, hd: number, scale: number) {
  const out = new Float64Array(hd);
  if (keys.length === 0) return { out, lse: -Infinity };
  const s = keys.map((k) => {
    let d = 0;
    for (let i = 0; i < hd; i++) d += q[i] * k[off + i];
    return d * scale;
  });
  const m = Math.max(...s);
  let z = 0;
  const p = s.map((x) => Math.exp(x - m));
  for (const x of p) z += x;
  for (let j = 0; j < keys.length; j++) for (let i = 0; i < hd; i++) out[i] += (p[j] / z) * vals[j][off + i];
  return { out, lse: m + Math.log(z) };
}

export class CpuReference {
  readonly inv: Float64Array;
  constructor(readonly cfg: ModelConfig, readonly w: RefWeights) {
    this.inv = inverseFrequencies(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling);
  }

  /**
   * Runs `ids` at positions start.. . Each row attends causally to its own block, plainly to all of
   * `plain` (keys at lower positions), and when `ctx` is given, to all of `ctx` with scores / T, merged
   * with w_C = sigmoid(S*T*LSE_C - LSE_O). Returns the block's KV and the logits of every row.
   */
  encode(ids: number[], start: number, plain: BlockKV[], ctx: BlockKV[] | null, T = 1, S = 1): { kv: BlockKV; logits: Float64Array[] } {
    const { cfg, w } = this;
    const { hidden, heads, kvHeads, headDim: hd } = cfg;
    const group = heads / kvHeads;
    const n = ids.length;
    const kv: BlockKV = { pos: ids.map((_, i) => start + i), k: [], v: [] };
    let xs = ids.map((id) => w.embed.slice(id * hidden, (id + 1) * hidden));
    for (let l = 0; l < cfg.layers; l++) {
      const L = w.layers[l];
      const qs: Float64Array[] = [], ks: Float64Array[] = [], vs: Float64Array[] = [];
      for (let r = 0; r < n; r++) {
        const xn = xs[r].slice();
        rms(xn, L.attnNorm, cfg.rmsEps);
        const q = matvec(L.q, xn, heads * hd, hidden, L.qb);
        const k = matvec(L.k, xn, kvHeads * hd, hidden, L.kb);
        const v = matvec(L.v, xn, kvHeads * hd, hidden, L.vb);
        if (L.qNorm && L.kNorm) {
          for (let h = 0; h < heads; h++) rms(q, L.qNorm, cfg.rmsEps, h * hd, hd);
          for (let h = 0; h < kvHeads; h++) rms(k, L.kNorm, cfg.rmsEps, h * hd, hd);
        }
        rotate(q, heads, hd, start + r, this.inv);
        rotate(k, kvHeads, hd, start + r, this.inv);
        qs.push(q); ks.push(k); vs.push(v);
      }
      kv.k.push(ks); kv.v.push(vs);
      const next: Float64Array[] = [];
      for (let r = 0; r < n; r++) {
        const pos = start + r;
        const att = new Float64Array(heads * hd);
        // O: plain blocks (visible by position) + own block causally
        const oKeys: Float64Array[] = [], oVals: Float64Array[] = [];
        for (const b of plain) b.pos.forEach((p, j) => { if (p <= pos) { oKeys.push(b.k[l][j]); oVals.push(b.v[l][j]); } });
        for (let j = 0; j <= r; j++) { oKeys.push(ks[j]); oVals.push(vs[j]); }
        const cKeys: Float64Array[] = [], cVals: Float64Array[] = [];
        for (const b of ctx ?? []) b.pos.forEach((_, j) => { cKeys.push(b.k[l][j]); cVals.push(b.v[l][j]); });
        for (let h = 0; h < heads; h++) {
          const qh = qs[r].subarray(h * hd, (h + 1) * hd);
          const off = Math.floor(h / group) * hd;
          const O = attend(qh, oKeys, oVals, off, hd, 1 / Math.sqrt(hd));
          let out = O.out;
          if (ctx) {
            const C = attend(qh, cKeys, cVals, off, hd, 1 / (Math.sqrt(hd) * T));
            const wc = C.lse === -Infinity ? 0 : 1 / (1 + Math.exp(-(S * T * C.lse - O.lse)));
            out = O.out.map((o, i) => wc * C.out[i] + (1 - wc) * o);
          }
          att.set(out, h * hd);
        }
        const x = xs[r].slice();
        const o = matvec(L.o, att, hidden, heads * hd);
        for (let i = 0; i < hidden; i++) x[i] += o[i];
        const xn = x.slice();
        rms(xn, L.mlpNorm, cfg.rmsEps);
        const g = matvec(L.gate, xn, cfg.intermediate, hidden);
        const u = matvec(L.up, xn, cfg.intermediate, hidden);
        const hh = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
        const d = matvec(L.down, hh, hidden, cfg.intermediate);
        for (let i = 0; i < hidden; i++) x[i] += d[i];
        next.push(x);
      }
      xs = next;
    }
    const logits = xs.map((x) => {
      const xn = x.slice();
      rms(xn, w.norm, cfg.rmsEps);
      return matvec(w.lmHead, xn, cfg.vocabSize, hidden);
    });
    return { kv, logits };
  }

  /** Logits of every position of a plain causal sequence. */
  sequential(ids: number[]): Float64Array[] {
    return this.encode(ids, 0, [], null).logits;
  }

  /** APE (../shared/APE.md): logits of the last query token. T = S = 1 is plain parallel encoding. */
  ape(prefix: number[], contexts: number[][], query: number[], T: number, S: number): Float64Array {
    const P = prefix.length;
    const pre = P > 0 ? [this.encode(prefix, 0, [], null).kv] : [];
    const ctx = contexts.map((c) => this.encode(c, P, pre, null).kv);
    const maxL = Math.max(0, ...contexts.map((c) => c.length));
    const { logits } = this.encode(query, P + maxL, pre, ctx, T, S);
    return logits[logits.length - 1];
  }
}
