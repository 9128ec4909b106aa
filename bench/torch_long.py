#!/usr/bin/env python3
"""The PyTorch peer of `ape bench long`, on the GPU machine (PyTorch + transformers, CUDA, no network).

Llama-3.2-1B shape with random f16 weights (untied LM head), transformers' own LlamaForCausalLM with
attn_implementation="sdpa", eager (no torch.compile, no CUDA graphs). For each total context length L
(the same layout as bench/long.ts: a shared prefix of P tokens, L context tokens, a Q-token query):

- encode all: prefill of the P + L context tokens into a DynamicCache (what the query then reuses);
- cached first token: the Q-token query over that already cached context (one forward with the cache,
  logits of the last token only, argmax), the cache cropped back to P + L between repetitions;
- decode: greedy ms/token over that context (a StaticCache filled from the DynamicCache, one token per
  forward, `--decode` tokens; `--decode-cache dynamic` decodes on the DynamicCache, cropped between reps);
- sequential first token: one causal prefill of all P + L + Q tokens (logits of the last token only);
- end to end with 256 tokens out: first token + 255 x decode (for the cached column the context is
  already in the cache, as APE's contexts are).
torch.cuda.synchronize() around every timing, a warm-up first, the median of `--reps` (3).

    python3 bench/torch_long.py [--lengths 2K,8K,32K,128K] [--context 512] [--prefix 16] [--query 256]
                                [--decode 32] [--reps 3] [--decode-cache dynamic|static] [--json out.json]
"""
import argparse
import inspect
import json
import statistics
import sys
import time

OUT_TOKENS = 256


def parse_length(s):
    s = s.strip()
    return int(s[:-1]) * 1024 if s[-1:] in "kK" else int(s)


def label(n):
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


def fmt_ms(x):
    if x is None:
        return "-"
    if x < 1000:
        return f"{x:.2f} ms" if x < 10 else f"{x:.0f} ms"
    return f"{x / 1000:.2f} s" if x < 10000 else f"{x / 1000:.1f} s"


def fmt_tok(x):
    return "-" if x is None else f"{x:.2f} ms/token ({1000 / x:.0f} tok/s)"


def log(msg):
    print(f"[torch long] {msg}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="2K,8K,32K,128K")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--prefix", type=int, default=16)
    ap.add_argument("--query", type=int, default=256)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    # dynamic by default: on the H200 (transformers 5.17) filling a StaticCache this way hit an index_copy_
    # out-of-bounds device assert, which poisons the CUDA context for every later length
    ap.add_argument("--decode-cache", choices=["static", "dynamic"], default="dynamic")
    ap.add_argument("--sequential-max", default="128K", help="largest length whose sequential prefill runs")
    ap.add_argument("--json", help="also write the rows as JSON")
    args = ap.parse_args()
    lengths = [parse_length(x) for x in args.lengths.split(",") if x.strip()]
    seq_max = parse_length(args.sequential_max)

    import torch
    import transformers
    from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, StaticCache

    dev = torch.device("cuda")
    cfg = LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                      num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=262144,
                      rope_theta=500000.0, tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128009)
    torch.manual_seed(0)
    t = time.perf_counter()
    with torch.device(dev):
        model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa", dtype=torch.float16)
    model.eval()
    torch.cuda.synchronize()
    print(f"torch peer: torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name(0)}")
    print(f"model: Llama-3.2-1B shape (16 layers, hidden 2048, 32 heads / 8 KV heads, vocab 128256), random f16 weights, "
          f"attention {model.config._attn_implementation}, eager; made in {time.perf_counter() - t:.1f} s")
    print(f"layout: {args.prefix}-token prefix, contexts of {args.context} tokens, a {args.query}-token query; decode over "
          f"{args.decode} tokens ({args.decode_cache} cache); median of {args.reps}; end to end = first token + {OUT_TOKENS - 1} x decode")

    # cache_position is how transformers places new tokens in a StaticCache; pass it where forward takes it
    takes_cache_position = "cache_position" in inspect.signature(model.forward).parameters
    gen = torch.Generator(device=dev).manual_seed(1234)

    def ids(n):
        return torch.randint(0, cfg.vocab_size, (1, n), device=dev, generator=gen)

    def sync_time(fn):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) * 1000, out

    def median_ms(fn, reps):
        fn()  # warm-up
        return statistics.median(sync_time(fn)[0] for _ in range(reps))

    def forward(input_ids, cache, start):
        kw = dict(past_key_values=cache, use_cache=True, logits_to_keep=1)
        pos = torch.arange(start, start + input_ids.shape[1], device=dev)
        kw["position_ids"] = pos.unsqueeze(0)
        if takes_cache_position:
            kw["cache_position"] = pos
        return model(input_ids=input_ids, **kw).logits[:, -1].argmax(-1, keepdim=True)

    def layer_kv(cache, i):
        if hasattr(cache, "layers"):
            return cache.layers[i].keys, cache.layers[i].values
        return cache[i][0], cache[i][1]

    def static_from(dyn, capacity, n):
        """A StaticCache of `capacity` slots holding the first n tokens of the DynamicCache `dyn`."""
        st = StaticCache(config=model.config, max_cache_len=capacity)
        pos = torch.arange(n, device=dev)
        for i in range(cfg.num_hidden_layers):
            k, v = layer_kv(dyn, i)
            st.update(k[..., :n, :], v[..., :n, :], i, {"cache_position": pos})
        return st

    def greedy(cache, first, start, steps):
        tok = first
        out = []
        for s in range(steps):
            tok = forward(tok, cache, start + s)
            out.append(tok)
        return torch.cat(out, dim=1)

    rows = []
    with torch.inference_mode():
        prefix = ids(args.prefix)
        query = ids(args.query)
        for L in lengths:
            row = dict(label=label(L), length=L, contexts=L // args.context)
            rows.append(row)
            n_ctx = args.prefix + L
            try:
                log(f"{row['label']}: prefill of the {n_ctx}-token context into a DynamicCache")
                context = torch.cat([prefix, ids(L)], dim=1)
                full = torch.cat([context, query], dim=1)

                def encode():
                    c = DynamicCache(config=model.config)
                    forward(context, c, 0)
                    return c

                row["encodeMs"] = median_ms(encode, args.reps)
                cache = encode()
                torch.cuda.synchronize()

                def cached_query():
                    tok = forward(query, cache, n_ctx)
                    cache.crop(n_ctx)
                    return tok

                log(f"{row['label']}: {args.query}-token query over the cached context")
                row["cachedFirstMs"] = median_ms(cached_query, args.reps)
                first = forward(query, cache, n_ctx)  # the query stays in the cache for decode
                pos0 = n_ctx + args.query
                log(f"{row['label']}: decode ({args.decode_cache} cache)")
                kind = args.decode_cache
                if kind == "static":
                    try:
                        st = static_from(cache, pos0 + args.decode + 8, pos0)
                        # one step on each cache: layer 0's key of the new token must land at its position
                        greedy(st, first, pos0, 1)
                        greedy(cache, first, pos0, 1)
                        ks, kd = layer_kv(st, 0)[0][..., pos0, :], layer_kv(cache, 0)[0][..., pos0, :]
                        cache.crop(pos0)
                        if not (bool(ks.abs().sum() > 0) and torch.allclose(ks.float(), kd.float(), atol=1e-3, rtol=1e-3)):
                            raise RuntimeError("the StaticCache did not store the new token at its position")
                        dec = lambda: greedy(st, first, pos0, args.decode)  # noqa: E731
                    except Exception as e:  # an API this transformers does not have: decode on the DynamicCache
                        log(f"{row['label']}: StaticCache unusable ({type(e).__name__}: {e}); decoding on the DynamicCache")
                        cache.crop(pos0)
                        st = None
                        kind = "dynamic"
                if kind == "dynamic":
                    def dec():
                        out = greedy(cache, first, pos0, args.decode)
                        cache.crop(pos0)
                        return out
                row["decodeCache"] = kind
                row["decodeMs"] = median_ms(dec, args.reps) / args.decode
                row["cachedEndToEndMs"] = row["cachedFirstMs"] + (OUT_TOKENS - 1) * row["decodeMs"]
                print(f"{row['label']} ({row['contexts']} contexts): encode all (prefill of {n_ctx} tokens) {fmt_ms(row['encodeMs'])}; "
                      f"cached first token ({args.query}-token query) {fmt_ms(row['cachedFirstMs'])}; decode {fmt_tok(row['decodeMs'])} "
                      f"({kind} cache); cached end to end ({OUT_TOKENS} out) {fmt_ms(row['cachedEndToEndMs'])}", flush=True)
                st = dec = None
                del cache
                torch.cuda.empty_cache()
                if L > seq_max:
                    row["seqError"] = "not run"
                else:
                    log(f"{row['label']}: sequential prefill of {full.shape[1]} tokens")
                    row["seqFirstMs"] = median_ms(lambda: forward(full, DynamicCache(config=model.config), 0), args.reps)
                    # decode after a sequential prefill runs over the same cache length: the same figure
                    row["seqDecodeMs"] = row["decodeMs"]
                    row["seqEndToEndMs"] = row["seqFirstMs"] + (OUT_TOKENS - 1) * row["decodeMs"]
                    print(f"{row['label']}: sequential ({full.shape[1]} tokens, causal): first token {fmt_ms(row['seqFirstMs'])}; "
                          f"end to end ({OUT_TOKENS} out) {fmt_ms(row['seqEndToEndMs'])}", flush=True)
            except Exception as e:  # CUDA out of memory or anything else: printed in the row, the next length runs
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
                print(f"{row['label']}: failed: {row['error']}", flush=True)
            finally:
                torch.cuda.empty_cache()
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(dict(peer="torch", torch=torch.__version__, transformers=transformers.__version__, rows=rows), f, indent=2)

    print()
    print("| total context | contexts | encode all (prefill of the context) | cached first token | decode | cached end to end (256 out) "
          "| sequential first token | sequential decode | sequential end to end (256 out) |")
    print("|" + "---|" * 9)
    for r in rows:
        err = f"**{r['error']}**" if "error" in r else None
        if "decodeMs" in r:
            cached = [fmt_ms(r.get("encodeMs")), fmt_ms(r.get("cachedFirstMs")), fmt_tok(r.get("decodeMs")), fmt_ms(r.get("cachedEndToEndMs"))]
        else:
            cached = [err or "-", "", "", ""]
        if "seqFirstMs" in r:
            seq = [fmt_ms(r["seqFirstMs"]), fmt_tok(r["seqDecodeMs"]), fmt_ms(r["seqEndToEndMs"])]
        else:
            seq = [r.get("seqError") or (err if "decodeMs" in r else "") or "-", "", ""]
        print(f"| {r['label']} | {r['contexts']} | " + " | ".join(cached + seq) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
