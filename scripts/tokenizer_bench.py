#!/usr/bin/env python3
"""Python side of `ape bench tokenize`: Hugging Face `tokenizers` (native Rust, one thread).

argv: tokenizer.json, a JSON file holding the list of documents, a tokenizer.json to time loading.
stdout: {"mb_s": float, "tokens": int, "checksum": int, "load_ms": float, "encode_s": float}
"""
import json
import os
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402


def main() -> None:
    tok_path, docs_path, load_path = sys.argv[1:4]
    docs = json.load(open(docs_path, encoding="utf-8"))
    tok = Tokenizer.from_file(tok_path)
    tok.encode_special_tokens = True
    for d in docs[:3]:
        tok.encode(d, add_special_tokens=False)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    t0 = time.perf_counter()
    n = 0
    checksum = 0
    for d in docs:
        ids = tok.encode(d, add_special_tokens=False).ids
        n += len(ids)
        for i in ids[::97]:
            checksum = (checksum * 31 + i) % 1000000007
    dt = time.perf_counter() - t0
    loads = []
    for _ in range(3):
        t1 = time.perf_counter()
        Tokenizer.from_file(load_path)
        loads.append((time.perf_counter() - t1) * 1000)
    json.dump({"mb_s": nbytes / 1e6 / dt, "tokens": n, "checksum": checksum, "load_ms": sorted(loads)[1], "encode_s": dt}, sys.stdout)


if __name__ == "__main__":
    main()
