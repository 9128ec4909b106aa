#!/usr/bin/env python3
"""Check fixtures/models/*/reference.json with an independent numpy float64 implementation.

Needs only numpy (no torch, no transformers). It reads config.json (both the transformers-4.x layout,
rope_theta + rope_scaling, and the 5.x layout, rope_parameters), the safetensors files (single or
sharded; F32, F16, BF16), computes RoPE's inverse frequencies itself (default, linear, llama3) and
runs the forward pass and the APE merge of ../shared/APE.md, then compares with reference.json:
"logits" (every position), "ape" (last query position, all three modes) and "greedy".

    python3 scripts/fixtures_check.py [fixtures/models] [--tol 1e-5]

HF computes inv_freq in float32; this script computes it in float64, so expect differences of about
1e-6 relative, not 1e-15.
"""
import argparse
import glob
import json
import math
import os
import struct
import sys

import numpy as np

DT = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        raw = data[a:b]
        if v["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(DT[v["dtype"]]).newbyteorder("<"))
        out[k] = arr.astype(np.float64).reshape(v["shape"])
    return out


def load(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    w = {}
    for f in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
        w.update(read_safetensors(f))
    return cfg, w


def inv_freq(cfg, hd):
    rp = cfg.get("rope_parameters")
    if rp is None:
        rp = dict(cfg.get("rope_scaling") or {})
        rp["rope_theta"] = cfg.get("rope_theta", 10000.0)
    typ = rp.get("rope_type", rp.get("type", "default"))
    inv = 1.0 / (rp["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    if typ == "default":
        return inv
    if typ == "linear":
        return inv / rp["factor"]
    if typ == "llama3":
        f, lo, hi, orig = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"], \
            rp["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        out = np.where(wl > orig / lo, inv / f, inv)
        smooth = (orig / wl - lo) / (hi - lo)
        mid = (wl >= orig / hi) & (wl <= orig / lo)
        return np.where(mid, (1 - smooth) * inv / f + smooth * inv, out)
    raise ValueError("rope_type " + typ)


class Model:
    def __init__(self, d):
        cfg, w = load(d)
        self.cfg = cfg
        self.nh, self.nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hd = cfg.get("head_dim") or cfg["hidden_size"] // self.nh
        self.eps = cfg["rms_norm_eps"]
        self.inv = inv_freq(cfg, self.hd)
        self.w = w
        self.embed = w["model.embed_tokens.weight"]
        self.lm_head = w.get("lm_head.weight", self.embed) if not cfg.get("tie_word_embeddings") else self.embed
        self.L = cfg["num_hidden_layers"]

    def rms(self, x, g):
        return g * (x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps))

    def rope(self, x, pos):  # x [n, heads, hd]
        ang = np.asarray(pos, dtype=np.float64)[:, None] * self.inv[None, :]
        cos = np.concatenate([np.cos(ang)] * 2, -1)[:, None, :]
        sin = np.concatenate([np.sin(ang)] * 2, -1)[:, None, :]
        h = self.hd // 2
        rot = np.concatenate([-x[..., h:], x[..., :h]], -1)
        return x * cos + rot * sin

    def forward(self, ids, pos, mask_o, mask_c=None, ape=None, T=1.0, S=1.0):
        w, n = self.w, len(ids)
        x = self.embed[np.asarray(ids)]
        rep = self.nh // self.nkv
        for i in range(self.L):
            p = f"model.layers.{i}."
            h = self.rms(x, w[p + "input_layernorm.weight"])

            def proj(name, heads):
                y = h @ w[p + f"self_attn.{name}.weight"].T
                if p + f"self_attn.{name}.bias" in w:
                    y = y + w[p + f"self_attn.{name}.bias"]
                return y.reshape(n, heads, self.hd)

            q, k, v = proj("q_proj", self.nh), proj("k_proj", self.nkv), proj("v_proj", self.nkv)
            if p + "self_attn.q_norm.weight" in w:
                q = self.rms(q, w[p + "self_attn.q_norm.weight"])
                k = self.rms(k, w[p + "self_attn.k_norm.weight"])
            q, k = self.rope(q, pos), self.rope(k, pos)
            out = np.zeros((n, self.nh, self.hd))
            for hh in range(self.nh):
                kv = hh // rep
                s = q[:, hh, :] @ k[:, kv, :].T / math.sqrt(self.hd)
                for r in range(n):
                    def part(sc, m):
                        sc = sc[m]
                        mx = sc.max()
                        e = np.exp(sc - mx)
                        return mx + math.log(e.sum()), (e / e.sum()) @ v[m, kv, :]
                    lse_o, out_o = part(s[r], mask_o[r])
                    if ape is not None and ape[r]:
                        lse_c, out_c = part(s[r] / T, mask_c[r])
                        wc = 1.0 / (1.0 + math.exp(-(S * T * lse_c - lse_o)))
                        out[r, hh] = wc * out_c + (1 - wc) * out_o
                    else:
                        out[r, hh] = out_o
            x = x + out.reshape(n, -1) @ w[p + "self_attn.o_proj.weight"].T
            h = self.rms(x, w[p + "post_attention_layernorm.weight"])
            g = h @ w[p + "mlp.gate_proj.weight"].T
            x = x + ((g / (1 + np.exp(-g))) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        return self.rms(x, w["model.norm.weight"]) @ self.lm_head.T


def layout(prefix, contexts, query, mode):
    if mode == "sequential":
        ids = list(prefix) + [t for c in contexts for t in c] + list(query)
        n = len(ids)
        return ids, list(range(n)), np.tril(np.ones((n, n), bool)), None, None
    P, M = len(prefix), max(len(c) for c in contexts)
    ids, pos, grp = [], [], []
    ids += prefix; pos += list(range(P)); grp += [-1] * P
    for i, c in enumerate(contexts):
        ids += c; pos += list(range(P, P + len(c))); grp += [i] * len(c)
    ids += query; pos += list(range(P + M, P + M + len(query))); grp += [-2] * len(query)
    n, g = len(ids), np.array(grp)
    mo, mc = np.zeros((n, n), bool), np.zeros((n, n), bool)
    for r in range(n):
        for c in range(n):
            if g[r] == -1:
                mo[r, c] = g[c] == -1 and c <= r
            elif g[r] >= 0:
                mo[r, c] = g[c] == -1 or (g[c] == g[r] and c <= r)
            else:
                mo[r, c] = g[c] == -1 or (g[c] == -2 and c <= r)
                mc[r, c] = g[c] >= 0
    return ids, pos, mo, mc, g == -2


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / np.abs(b).max())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "fixtures", "models"))
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()
    bad = 0
    for d in sorted(glob.glob(os.path.join(args.root, "*", "reference.json"))):
        d = os.path.dirname(d)
        ref = json.load(open(os.path.join(d, "reference.json")))
        m = Model(d)
        worst = {"logits": 0.0, "ape": 0.0, "parallel": 0.0, "sequential": 0.0}
        for c in ref["logits"]:
            ids, pos, mo, _, _ = layout(c["ids"], [], [], "sequential")
            worst["logits"] = max(worst["logits"], rel(m.forward(ids, pos, mo), c["logits"]))
        for c in ref["ape"]:
            ids, pos, mo, mc, qr = layout(c["prefix"], c["contexts"], c["query"], c["mode"])
            out = m.forward(ids, pos, mo, mc, qr, c["temperature"], c["scale"])[-1]
            worst[c["mode"]] = max(worst[c["mode"]], rel(out, c["logits"]))
        seq = list(ref["greedy"]["prompt"])
        for _ in ref["greedy"]["tokens"]:
            ids, pos, mo, _, _ = layout(seq, [], [], "sequential")
            seq.append(int(np.argmax(m.forward(ids, pos, mo)[-1])))
        greedy_ok = seq[len(ref["greedy"]["prompt"]):] == ref["greedy"]["tokens"]
        ok = greedy_ok and max(worst.values()) < args.tol
        bad += not ok
        print(f"{os.path.basename(d):14s} {'ok  ' if ok else 'FAIL'} greedy={'ok' if greedy_ok else 'MISMATCH'} "
              + " ".join(f"{k}={v:.1e}" for k, v in worst.items()))
    print(f"{bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
