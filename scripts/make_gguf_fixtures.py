#!/usr/bin/env python3
"""Writes the small GGUF fixtures under fixtures/gguf/ with llama.cpp's own Python package (gguf==0.17.1),
so apekit's TypeScript reader and dequantizers are checked against an independent writer:

- quant_<TYPE>.gguf: for each tensor type apekit reads, a tensor 'q' of that type ([4, 512]) and a
  tensor 'ref' (F32) holding gguf-py's own dequantization of 'q'. Q8_0..Q5_1, F16 and BF16 are
  quantized by gguf-py from random values; K-quants (gguf-py has no quantizer for them) are random
  valid blocks (f16 scales set to sane values).
- tiny-llama/: a tiny random Llama as a Hugging Face folder (config.json + model.safetensors, F32) and
  tiny-llama/model.gguf, the same weights converted the way llama.cpp's convert_hf_to_gguf.py does
  (tensor names, metadata, q_proj/k_proj rows permuted), with a small tokenizer vocabulary, merges and
  a chat template in the metadata.

Run once (deterministic; seeds fixed): python3 scripts/make_gguf_fixtures.py

`--smollm2 PATH/model.gguf` instead prints what test/gguf_default_model.test.ts pins for the default
model: the prompts' token ids (HF `tokenizers` byte-level BPE built from the GGUF vocabulary and merges)
and the next tokens of a float64 numpy Llama forward pass on gguf-py's dequantization of the weights
(q/k rows un-permuted, HF-style RoPE): an implementation independent of apekit's.
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gguf")


def quant_fixtures(rng: np.random.Generator) -> None:
    rows, cols = 4, 512
    for qt in [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q6_K]:
        x = (rng.standard_normal((rows, cols)) * 0.5).astype(np.float32)
        x[0, :32] = 0.0  # an all-zero block (d = 0)
        if qt in (T.Q4_K, T.Q6_K):
            block_size, type_size = gguf.GGML_QUANT_SIZES[qt]
            nblocks = rows * cols // block_size
            blocks = rng.integers(0, 256, size=(nblocks, type_size), dtype=np.uint8)
            d = (rng.uniform(0.001, 0.05, size=(nblocks, 1))).astype(np.float16).view(np.uint8)
            if qt == T.Q4_K:
                dmin = (rng.uniform(0.001, 0.05, size=(nblocks, 1))).astype(np.float16).view(np.uint8)
                blocks[:, 0:2] = d
                blocks[:, 2:4] = dmin
            else:
                blocks[:, 208:210] = d
            q = blocks.reshape(rows, cols // block_size * type_size)
        else:
            q = quantize(x, qt)
        ref = dequantize(q, qt).astype(np.float32).reshape(rows, cols)
        w = gguf.GGUFWriter(os.path.join(ROOT, f"quant_{qt.name}.gguf"), "llama")
        w.add_tensor("q", q, raw_dtype=qt)
        w.add_tensor("ref", ref)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute (verbatim logic)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def tiny_llama(rng: np.random.Generator) -> None:
    from safetensors.numpy import save_file

    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=64, hidden_size=32,
               intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
               max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=50000.0, tie_word_embeddings=False,
               hidden_act="silu", bos_token_id=1, eos_token_id=2)
    V, H, I, L = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = H // nh
    r = lambda *s: (rng.uniform(-0.3, 0.3, size=s)).astype(np.float32)
    one = lambda n: (1 + rng.uniform(-0.3, 0.3, size=(n,))).astype(np.float32)
    hf: dict[str, np.ndarray] = {"model.embed_tokens.weight": r(V, H), "model.norm.weight": one(H), "lm_head.weight": r(V, H)}
    for l in range(L):
        p = f"model.layers.{l}."
        hf[p + "input_layernorm.weight"] = one(H)
        hf[p + "post_attention_layernorm.weight"] = one(H)
        hf[p + "self_attn.q_proj.weight"] = r(nh * hd, H)
        hf[p + "self_attn.k_proj.weight"] = r(nkv * hd, H)
        hf[p + "self_attn.v_proj.weight"] = r(nkv * hd, H)
        hf[p + "self_attn.o_proj.weight"] = r(H, nh * hd)
        hf[p + "mlp.gate_proj.weight"] = r(I, H)
        hf[p + "mlp.up_proj.weight"] = r(I, H)
        hf[p + "mlp.down_proj.weight"] = r(H, I)
    d = os.path.join(ROOT, "tiny-llama")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    save_file(hf, os.path.join(d, "model.safetensors"))

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
                 "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
                 "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
                 "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
                 "mlp.down_proj.weight": "ffn_down.weight"}
    w = gguf.GGUFWriter(os.path.join(d, "model.gguf"), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(H)
    w.add_block_count(L)
    w.add_feed_forward_length(I)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(V)
    w.add_rope_dimension_count(hd)
    w.add_file_type(0)
    tokens = ["<unk>", "<s>", "</s>"] + [chr(ord("a") + i % 26) * (1 + i // 26) for i in range(V - 3)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (V - 3))
    w.add_token_merges(["a a", "b b", "aa a"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_chat_template("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}")
    w.add_array("test.nested", [[1, 2], [3]])
    w.add_float64("test.f64", 0.125)
    w.add_int64("test.i64", -5)
    w.add_int8("test.i8", -3)
    for name, t in hf.items():
        if name.startswith("model.layers."):
            l, rest = name[len("model.layers."):].split(".", 1)
            gname = f"blk.{l}.{per_layer[rest]}"
        else:
            gname = names[name]
        if name.endswith("q_proj.weight"):
            t = permute(t, nh, nh)
        elif name.endswith("k_proj.weight"):
            t = permute(t, nh, nkv)
        w.add_tensor(gname, np.ascontiguousarray(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def smollm2_reference(path: str) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    r = gguf.GGUFReader(path)
    f = {k: v.contents() for k, v in r.fields.items() if not k.startswith("tokenizer.ggml.") or k in (
        "tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type")}
    tokens, merges, ttype = f["tokenizer.ggml.tokens"], f["tokenizer.ggml.merges"], f["tokenizer.ggml.token_type"]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ", 1)) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True) for t, ty in zip(tokens, ttype) if ty == 3])

    arch = f["general.architecture"]
    H, L = f[f"{arch}.embedding_length"], f[f"{arch}.block_count"]
    nh, nkv = f[f"{arch}.attention.head_count"], f[f"{arch}.attention.head_count_kv"]
    hd, eps, theta = H // nh, f[f"{arch}.attention.layer_norm_rms_epsilon"], f[f"{arch}.rope.freq_base"]
    W = {}
    for t in r.tensors:
        W[t.name] = dequantize(t.data, t.tensor_type).astype(np.float64).reshape([int(d) for d in reversed(t.shape)])

    def unpermute(w, heads):  # inverse of permute(): (h, half, 2) -> (h, 2, half)
        return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    inv = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    rms = lambda x, w: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def rope(x, pos):  # x: [T, heads, hd], HF rotate_half
        a = pos[:, None] * inv[None, :]
        c, s = np.cos(np.concatenate([a, a], -1))[:, None, :], np.sin(np.concatenate([a, a], -1))[:, None, :]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * c + np.concatenate([-x2, x1], -1) * s

    def logits(ids):
        x = W["token_embd.weight"][ids]
        T = len(ids)
        pos = np.arange(T, dtype=np.float64)
        mask = np.triu(np.full((T, T), -np.inf), 1)
        for l in range(L):
            p = f"blk.{l}."
            h = rms(x, W[p + "attn_norm.weight"])
            q = (h @ unpermute(W[p + "attn_q.weight"], nh).T).reshape(T, nh, hd)
            k = (h @ unpermute(W[p + "attn_k.weight"], nkv).T).reshape(T, nkv, hd)
            v = (h @ W[p + "attn_v.weight"].T).reshape(T, nkv, hd)
            q, k = rope(q, pos), rope(k, pos)
            k, v = np.repeat(k, nh // nkv, 1), np.repeat(v, nh // nkv, 1)
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            o = np.einsum("hqk,khd->qhd", s, v).reshape(T, nh * hd)
            x = x + o @ W[p + "attn_output.weight"].T
            h = rms(x, W[p + "ffn_norm.weight"])
            g, u = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
            x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "ffn_down.weight"].T
        head = W.get("output.weight", W["token_embd.weight"])
        return rms(x[-1], W["output_norm.weight"]) @ head.T

    out = {}
    plain = tok.encode("The capital of France is").ids
    lg = logits(plain)
    top = np.argsort(-lg)[:5]
    out["plain"] = {"ids": plain, "top5": [[int(i), tokens[i], float(lg[i])] for i in top]}
    chat = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    ids = tok.encode(chat).ids
    gen = []
    for _ in range(8):
        gen.append(int(np.argmax(logits(ids + gen))))
    out["chat"] = {"ids": ids, "greedy": gen, "text": tok.decode(gen)}
    print(json.dumps(out))


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--smollm2":
        smollm2_reference(sys.argv[2])
        return 0
    os.makedirs(ROOT, exist_ok=True)
    quant_fixtures(np.random.default_rng(7))
    tiny_llama(np.random.default_rng(11))
    for dirpath, _, files in os.walk(ROOT):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            print(f"{os.path.relpath(p, ROOT)}: {os.path.getsize(p)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
