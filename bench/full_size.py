#!/usr/bin/env python3
"""Full-size checks of apekit against transformers (run by bench/full_size.sh on the GPU machine).

  make    --out DIR [--models a,b] [--tiny] [--tokens N]   random-weight bf16 models with the exact configs of
                                                            the real repos (below), and reference logits
  compare --out DIR                                         apekit's logits (from bench/full_size.ts) against
                                                            the references: max / mean abs error per model

Each model folder is what the real repo holds for apekit's needs: config.json exactly as published
(the Hub's transformers-4.x layout: rope_theta / rope_scaling, torch_dtype), generation_config.json, bf16
safetensors (one model.safetensors, as in the real repos, none of which is sharded; `--shard NAME` shards
one model through model.safetensors.index.json to cover that path at full size too), and a tokenizer.
The tokenizer is the test fixture's (fixtures/models/<family>/tokenizer*.json; the real ones cannot be
fetched there): the logits are compared on token ids, so it is never used to encode text.

Weights: random, std 0.02 (the configs' initializer_range) for matrices and embeddings; every RMSNorm
weight (incl. Qwen3's q_norm / k_norm) uniform in [0.7, 1.3] and Qwen2's q/k/v biases N(0, 0.1), so that
no norm is the identity and no bias is zero.

References, per model, on the same random ids (`--tokens`, default 32, from a fixed seed):
  ref_f64   transformers in float64 from the bf16 weights (exact upcast): the truth both are measured against
  torch_f32 transformers in float32 (eager attention): what "f32 compute" should reach
  torch_f16 transformers with the weights cast to float16 and float16 compute: the yardstick for apekit's
            --dtype f16 --compute f16 (the same bf16 -> f16 cast of the weights)
"""
import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# config.json of each real repo (as published on the Hugging Face hub), less keys transformers ignores
CONFIGS = {
    "qwen2.5-0.5b": ("Qwen/Qwen2.5-0.5B-Instruct", "qwen2", {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645,
        "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
        "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2", "num_attention_heads": 14,
        "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.43.1",
        "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
    }, {"bos_token_id": 151643, "pad_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
        "repetition_penalty": 1.1, "temperature": 0.7, "top_p": 0.8, "top_k": 20}),
    "smollm2-360m": ("HuggingFaceTB/SmolLM2-360M-Instruct", "llama", {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 1,
        "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 960, "initializer_range": 0.02, "intermediate_size": 2560,
        "is_llama_config": True, "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 15,
        "num_hidden_layers": 32, "num_key_value_heads": 5, "pad_token_id": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_interleaved": False, "rope_scaling": None, "rope_theta": 100000, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "transformers_version": "4.42.3", "use_cache": True, "vocab_size": 49152,
    }, {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}),
    "qwen3-0.6b": ("Qwen/Qwen3-0.6B", "qwen3", {
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024, "initializer_range": 0.02,
        "intermediate_size": 3072, "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
        "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
        "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False,
        "vocab_size": 151936,
    }, {"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643], "pad_token_id": 151643,
        "temperature": 0.6, "top_k": 20, "top_p": 0.95}),
    "llama3.2-1b": ("meta-llama/Llama-3.2-1B-Instruct", "llama3", {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 128000,
        "eos_token_id": [128001, 128008, 128009], "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
        "initializer_range": 0.02, "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": False,
        "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.45.0.dev0",
        "use_cache": True, "vocab_size": 128256,
    }, {"bos_token_id": 128000, "do_sample": True, "eos_token_id": [128001, 128008, 128009], "temperature": 0.6, "top_p": 0.9}),
}
# --tiny: the same families and options (tied embeddings, qkv bias, q/k norm, llama3 rope scaling), CPU-sized
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "vocab_size": 1000}
FIXTURE_TOKENIZER = {"qwen2": "qwen2", "qwen3": "qwen3", "llama": "llama3", "llama3": "llama3"}


def stand_in_id(name):
    return "standin/" + CONFIGS[name][0].split("/")[1]


def make(args):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    os.makedirs(args.out, exist_ok=True)
    manifest = {"models": {}, "tokens": args.tokens, "tiny": args.tiny, "device": dev,
                "torch": torch.__version__, "transformers": __import__("transformers").__version__}
    for name in args.models.split(","):
        t0 = time.time()
        repo, family, cfg, gen = CONFIGS[name]
        cfg = dict(cfg)
        if args.tiny:
            cfg.update(TINY)
            cfg.pop("head_dim", None)
            if family == "qwen3":
                cfg["head_dim"] = 32
        d = os.path.join(args.out, "models", name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        config = AutoConfig.from_pretrained(d)
        torch.manual_seed(1234)
        with torch.device(dev):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("norm.weight"):
                    p.uniform_(0.7, 1.3)
                elif pname.endswith(".bias"):
                    p.normal_(0.0, 0.1)
                else:
                    p.normal_(0.0, 0.02)
        shard = "300MB" if name == args.shard else "50GB"
        model.save_pretrained(d, safe_serialization=True, max_shard_size=shard)
        # the real repo's config.json, not transformers' rewrite of it (the Hub layout is the one to read)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        with open(os.path.join(d, "generation_config.json"), "w") as f:
            json.dump(gen, f, indent=2)
        fx = os.path.join(ROOT, "fixtures", "models", FIXTURE_TOKENIZER[family])
        for tf in ("tokenizer.json", "tokenizer_config.json"):
            with open(os.path.join(fx, tf), "rb") as src, open(os.path.join(d, tf), "wb") as dst:
                dst.write(src.read())
        del model
        ids = np.random.default_rng(7).integers(0, cfg["vocab_size"], size=args.tokens).tolist()
        refs = references(d, ids, dev)
        for k, v in refs.items():
            np.save(os.path.join(args.out, f"{name}.{k}.npy"), v)
        files = sorted(os.listdir(d))
        size = sum(os.path.getsize(os.path.join(d, f)) for f in files)
        manifest["models"][name] = {"repo": repo, "stand_in": stand_in_id(name), "dir": d, "ids": ids, "files": files,
                                    "bytes": size, "vocab": cfg["vocab_size"], "make_s": round(time.time() - t0, 1)}
        print(f"{name}: {len(files)} files, {size / 1e9:.2f} GB, references in {time.time() - t0:.1f} s", flush=True)
        if dev == "cuda":
            torch.cuda.empty_cache()
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def references(d, ids, dev):
    import torch
    from transformers import AutoModelForCausalLM

    x = torch.tensor([ids], device=dev)
    out = {}
    for key, dtype in (("ref_f64", torch.float64), ("torch_f32", torch.float32), ("torch_f16", torch.float16)):
        if dev == "cpu" and dtype == torch.float16:
            dtype_load = torch.float32  # no f16 matmuls on every CPU: the yardstick is then f16 weights in f32
        else:
            dtype_load = dtype
        m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, attn_implementation="eager").to(dev)
        if key == "torch_f16" and dev == "cpu":
            m = m.to(torch.float16).to(torch.float32)
        else:
            m = m.to(dtype_load)
        m.eval()
        if dtype == torch.float32:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        with torch.no_grad():
            out[key] = m(x).logits[0].to(torch.float64).cpu().numpy()
        del m
        if dev == "cuda":
            torch.cuda.empty_cache()
    return out


def compare(args):
    with open(os.path.join(args.out, "manifest.json")) as f:
        man = json.load(f)
    rows = []
    print(f"{'model':14} {'run':16} {'max abs err':>12} {'mean abs err':>13} {'rel err':>9} {'top1 agree':>10}   (vs float64 transformers)")
    for name, m in man["models"].items():
        ref = np.load(os.path.join(args.out, f"{name}.ref_f64.npy"))
        scale = float(np.abs(ref).max())
        runs = [("torch_f32", np.load(os.path.join(args.out, f"{name}.torch_f32.npy"))),
                ("torch_f16", np.load(os.path.join(args.out, f"{name}.torch_f16.npy")))]
        for run in ("apekit_f32", "apekit_f16"):
            p = os.path.join(args.out, f"{name}.{run}.bin")
            if os.path.exists(p):
                runs.append((run, np.fromfile(p, dtype=np.float32).reshape(ref.shape)))
            else:
                runs.append((run, None))
        for run, got in runs:
            if got is None:
                print(f"{name:14} {run:16} {'missing (see the log)':>36}")
                rows.append({"model": name, "run": run, "missing": True})
                continue
            err = np.abs(got.astype(np.float64) - ref)
            rel = float(np.sqrt((err ** 2).sum() / (ref ** 2).sum()))
            agree = float((got.argmax(-1) == ref.argmax(-1)).mean())
            print(f"{name:14} {run:16} {err.max():12.3e} {err.mean():13.3e} {rel:9.2e} {agree:10.3f}")
            rows.append({"model": name, "run": run, "max_abs": float(err.max()), "mean_abs": float(err.mean()),
                         "rel": rel, "top1": agree, "logit_scale": scale})
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump({"manifest": {k: v for k, v in man.items() if k != "models"}, "rows": rows}, f, indent=1)
    bad = [r for r in rows if r.get("missing") or (r["run"] == "apekit_f32" and r["rel"] > 1e-3) or (r["run"] == "apekit_f16" and r["rel"] > 5e-2)]
    if bad:
        print(f"FAILED: {len(bad)} run(s) missing or beyond rel 1e-3 (f32) / 5e-2 (f16)")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["make", "compare", "ids"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default=",".join(CONFIGS))
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--device", default=None)
    ap.add_argument("--shard", default="", help="one model to save sharded (max_shard_size 300MB)")
    args = ap.parse_args()
    if args.cmd == "make":
        make(args)
        return 0
    if args.cmd == "ids":  # the stand-in hub's --repo arguments and each model's ids, for the shell script
        with open(os.path.join(args.out, "manifest.json")) as f:
            man = json.load(f)
        for name, m in man["models"].items():
            print(name, m["stand_in"], m["dir"], ",".join(map(str, m["ids"])))
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
