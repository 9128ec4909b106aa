#!/usr/bin/env python3
"""Reads a GGUF file's tokenizer metadata with the `gguf` package and prints it as JSON, together
with the Hugging Face tokenizer.json of that model family (SmolLM2: the StarCoder-style byte-level
BPE: Digits(individual) + ByteLevel pre-tokenizer), for the GGUF differential test.

argv: model.gguf
stdout: {"meta": {model, pre, tokens, merges, tokenTypes, bosId, eosId, unkId, addBosToken},
         "tokenizer_json": str}
"""
import json
import sys

from gguf import GGUFReader


def field(r, name):
    f = r.fields.get(name)
    if f is None:
        return None
    if f.types[0].name == "ARRAY":
        if f.types[-1].name == "STRING":
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    v = f.parts[f.data[0]]
    if f.types[0].name == "STRING":
        return bytes(v).decode("utf-8")
    return v.tolist()[0]


def main() -> None:
    r = GGUFReader(sys.argv[1])
    meta = {
        "model": field(r, "tokenizer.ggml.model"),
        "pre": field(r, "tokenizer.ggml.pre"),
        "tokens": field(r, "tokenizer.ggml.tokens"),
        "merges": field(r, "tokenizer.ggml.merges"),
        "tokenTypes": field(r, "tokenizer.ggml.token_type"),
        "bosId": field(r, "tokenizer.ggml.bos_token_id"),
        "eosId": field(r, "tokenizer.ggml.eos_token_id"),
        "unkId": field(r, "tokenizer.ggml.unknown_token_id"),
        "addBosToken": field(r, "tokenizer.ggml.add_bos_token"),
    }
    if meta["addBosToken"] is not None:
        meta["addBosToken"] = bool(meta["addBosToken"])
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i, (t, ty) in enumerate(zip(meta["tokens"], meta["tokenTypes"]))
        if ty == 3
    ]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            ],
        },
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": {t: i for i, t in reversed(list(enumerate(meta["tokens"])))},
            "merges": meta["merges"],
        },
    }
    json.dump({"meta": meta, "tokenizer_json": json.dumps(tok)}, sys.stdout)


if __name__ == "__main__":
    main()
