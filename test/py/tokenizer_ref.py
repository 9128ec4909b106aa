#!/usr/bin/env python3
"""Reference ids from Hugging Face's Python `tokenizers` (the Rust implementation), for the
differential tests in test/tokenizer*.test.ts.

stdin: {"tokenizer": path | null, "tokenizer_json": str | null, "texts": [str],
        "cases": [{"add_special": bool, "encode_special": bool}], "decode": bool}
stdout: {"ids": [[[id...] per text] per case], "decoded": [str per text of case 0],
         "decoded_skip": [...], "load_ms": float}
`encode_special` is the tokenizer's encode_special_tokens flag: special tokens written in the text
are encoded as ordinary text (apekit's default, allowSpecial: false).
"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402


def main() -> None:
    req = json.load(sys.stdin)
    t0 = time.perf_counter()
    if req.get("tokenizer"):
        tok = Tokenizer.from_file(req["tokenizer"])
    else:
        tok = Tokenizer.from_str(req["tokenizer_json"])
    load_ms = (time.perf_counter() - t0) * 1000
    tok.no_truncation()
    tok.no_padding()
    texts = req["texts"]
    out = {"ids": [], "load_ms": load_ms}
    for case in req["cases"]:
        tok.encode_special_tokens = bool(case["encode_special"])
        out["ids"].append([tok.encode(t, add_special_tokens=bool(case["add_special"])).ids for t in texts])
    if req.get("decode"):
        first = out["ids"][0]
        out["decoded"] = [tok.decode(ids, skip_special_tokens=False) for ids in first]
        out["decoded_skip"] = [tok.decode(ids, skip_special_tokens=True) for ids in first]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
