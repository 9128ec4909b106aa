#!/usr/bin/env python3
"""Reads an apekit KV-cache file with Python's `safetensors` (the reference implementation) and
prints what it sees as JSON: the __metadata__ map, the header's data_offsets, and per tensor its
dtype, shape, the sha256 of its bytes and its values as floats (decoded with numpy; F16/F32 are
also loaded through safe_open(framework="numpy") and must agree).

usage: python3 test/py/kv_read.py FILE
"""
import hashlib
import json
import sys

import numpy as np
import safetensors
from safetensors import safe_open


def values(dtype: str, data: bytes) -> np.ndarray:
    if dtype == "F16":
        return np.frombuffer(data, dtype="<f2").astype(np.float64)
    if dtype == "F32":
        return np.frombuffer(data, dtype="<f4").astype(np.float64)
    if dtype == "BF16":
        bits = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).astype(np.float64)
    raise ValueError(f"unexpected dtype {dtype}")


def main(path: str) -> None:
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    out = {
        "safetensors": safetensors.__version__,
        "offsets": {k: v["data_offsets"] for k, v in header.items() if k != "__metadata__"},
        "tensors": {},
    }
    with safe_open(path, framework="numpy") as f:
        out["metadata"] = f.metadata()
        out["keys"] = sorted(f.keys())
        for name, t in safetensors.deserialize(raw):
            data = bytes(t["data"])
            vals = values(t["dtype"], data)
            if t["dtype"] != "BF16":
                arr = f.get_tensor(name)
                assert list(arr.shape) == list(t["shape"]), (name, arr.shape, t["shape"])
                assert np.array_equal(arr.astype(np.float64).ravel(), vals), name
            out["tensors"][name] = {
                "dtype": t["dtype"],
                "shape": t["shape"],
                "sha256": hashlib.sha256(data).hexdigest(),
                "values": vals.tolist(),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
