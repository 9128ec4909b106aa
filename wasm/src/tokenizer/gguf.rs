//! GGUF tokenizer metadata (`tokenizer.ggml.*`) -> an equivalent Hugging Face tokenizer.json, so a
//! GGUF model needs no separate tokenizer file. This mirrors what Hugging Face's converters produce
//! for the same models (transformers' GGUF integration, and the tokenizer.json files that
//! llama.cpp's convert script read in the first place):
//!
//! - `gpt2` (byte-level BPE: GPT-2, SmolLM, Llama-3, Qwen2/3, ...): vocab = tokens, merges, a
//!   pre-tokenizer chosen by `tokenizer.ggml.pre` (llama.cpp's names), ByteLevel decoder.
//! - `llama` (SentencePiece BPE with byte fallback: Llama-2, Mistral, TinyLlama, ...): vocab =
//!   tokens; merges rebuilt from the scores (as transformers does); the "legacy" normalizer
//!   (prepend U+2581, spaces -> U+2581) and the matching decoder.
//!
//! Token types: 3 (control) become special added tokens and 4 (user-defined) non-special added
//! tokens, as llama.cpp treats them (control tokens are parsed from text only when asked).
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::pretok::{LLAMA3_RE, QWEN2_RE};

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct GgufMeta {
    /// tokenizer.ggml.model
    pub model: String,
    /// tokenizer.ggml.pre
    #[serde(default)]
    pub pre: Option<String>,
    /// tokenizer.ggml.tokens
    pub tokens: Vec<String>,
    /// tokenizer.ggml.merges ("a b")
    #[serde(default)]
    pub merges: Option<Vec<String>>,
    /// tokenizer.ggml.token_type
    #[serde(default)]
    pub token_types: Option<Vec<i64>>,
    /// tokenizer.ggml.scores
    #[serde(default)]
    pub scores: Option<Vec<f64>>,
    #[serde(default)]
    pub bos_id: Option<u32>,
    #[serde(default)]
    pub eos_id: Option<u32>,
    #[serde(default)]
    pub unk_id: Option<u32>,
    #[serde(default)]
    pub add_bos_token: Option<bool>,
    #[serde(default)]
    pub add_eos_token: Option<bool>,
    #[serde(default)]
    pub add_space_prefix: Option<bool>,
}

/// BOS/EOS facts that go with the converted tokenizer.
pub struct GgufSpecials {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
}

const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;
const UNKNOWN: i64 = 2;

/// llama.cpp's `tokenizer.ggml.pre` names -> the Hugging Face pre-tokenizer of those models.
fn byte_level_pre(pre: &str) -> Result<(Value, bool), String> {
    let split = |re: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
        ]})
    };
    let gpt2 = || json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    // (pre-tokenizer, ignore_merges)
    Ok(match pre {
        "default" | "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "jina-v2-es" | "jina-v2-de" | "jina-v2-code"
        | "roberta-bpe" | "gigachat" | "mpt" | "olmo" | "jais" | "trillion" => (gpt2(), false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" => (split(LLAMA3_RE), true),
        "qwen2" | "deepseek-r1-qwen" | "megrez" | "qwen35" => (split(QWEN2_RE), false),
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => (
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
            ]}),
            false,
        ),
        _ => return Err(format!("pre-tokenizer '{pre}' (tokenizer.ggml.pre) is not supported")),
    })
}

fn added_tokens(meta: &GgufMeta) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    if let Some(types) = &meta.token_types {
        if types.len() != meta.tokens.len() {
            return Err(format!("{} token types for {} tokens", types.len(), meta.tokens.len()));
        }
        for (id, (tok, ty)) in meta.tokens.iter().zip(types).enumerate() {
            let special = match *ty {
                CONTROL | UNKNOWN => true,
                USER_DEFINED => false,
                _ => continue,
            };
            if tok.is_empty() {
                continue;
            }
            out.push(json!({"id": id, "content": tok, "single_word": false, "lstrip": false, "rstrip": false,
                            "normalized": false, "special": special}));
        }
    }
    Ok(out)
}

fn vocab_map(tokens: &[String]) -> serde_json::Map<String, Value> {
    let mut v = serde_json::Map::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        // a repeated string keeps its first id
        v.entry(t.clone()).or_insert(json!(i));
    }
    v
}

fn check_id(name: &str, id: Option<u32>, n: usize) -> Result<(), String> {
    match id {
        Some(i) if i as usize >= n => Err(format!("{name} {i} is out of range (vocab of {n})")),
        _ => Ok(()),
    }
}

pub fn to_tokenizer_json(meta: &GgufMeta) -> Result<(Value, GgufSpecials), String> {
    let n = meta.tokens.len();
    if n == 0 {
        return Err("no tokens".into());
    }
    check_id("bos id", meta.bos_id, n)?;
    check_id("eos id", meta.eos_id, n)?;
    check_id("unknown token id", meta.unk_id, n)?;
    let specials = GgufSpecials { bos: meta.bos_id, eos: meta.eos_id, add_bos: meta.add_bos_token, add_eos: meta.add_eos_token };
    match meta.model.as_str() {
        "gpt2" => {
            let Some(merges) = &meta.merges else { return Err("gpt2 tokenizer without merges".into()) };
            let (pre, ignore_merges) = byte_level_pre(meta.pre.as_deref().unwrap_or("default"))?;
            let json = json!({
                "version": "1.0", "truncation": null, "padding": null,
                "added_tokens": added_tokens(meta)?,
                "normalizer": null,
                "pre_tokenizer": pre,
                "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
                "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
                "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                          "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                          "ignore_merges": ignore_merges, "vocab": vocab_map(&meta.tokens), "merges": merges}
            });
            Ok((json, specials))
        }
        "llama" => {
            let Some(scores) = &meta.scores else { return Err("llama tokenizer without scores".into()) };
            if scores.len() != n {
                return Err(format!("{} scores for {} tokens", scores.len(), n));
            }
            let merges = match &meta.merges {
                Some(m) if !m.is_empty() => m.iter().map(|s| json!(s)).collect::<Vec<_>>(),
                _ => spm_merges(&meta.tokens, scores).into_iter().map(|(a, b)| json!([a, b])).collect(),
            };
            let unk = meta.unk_id.map(|i| meta.tokens[i as usize].clone());
            let space_prefix = meta.add_space_prefix.unwrap_or(true);
            let replace = json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"});
            let normalizer = if space_prefix {
                json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u{2581}"}, replace]})
            } else {
                replace
            };
            let mut decoders = vec![
                json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
                json!({"type": "ByteFallback"}),
                json!({"type": "Fuse"}),
            ];
            if space_prefix {
                decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
            }
            let specials = GgufSpecials { add_bos: Some(meta.add_bos_token.unwrap_or(true)), ..specials };
            let json = json!({
                "version": "1.0", "truncation": null, "padding": null,
                "added_tokens": added_tokens(meta)?,
                "normalizer": normalizer,
                "pre_tokenizer": null,
                "post_processor": null,
                "decoder": {"type": "Sequence", "decoders": decoders},
                "model": {"type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
                          "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
                          "ignore_merges": false, "vocab": vocab_map(&meta.tokens), "merges": merges}
            });
            Ok((json, specials))
        }
        other => Err(format!("tokenizer model '{other}' (tokenizer.ggml.model) is not supported")),
    }
}

/// SentencePiece merges from scores, as transformers builds them for GGUF llama vocabularies:
/// every split of every token into two tokens, ordered by the merged token's score (highest
/// first), then by the pieces' ids.
pub fn spm_merges(tokens: &[String], scores: &[f64]) -> Vec<(String, String)> {
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        ids.entry(t.as_str()).or_insert(i);
    }
    let mut merges: Vec<(f64, usize, usize, usize)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if ids.get(t.as_str()) != Some(&i) {
            continue;
        }
        for (k, _) in t.char_indices().skip(1) {
            let (l, r) = (&t[..k], &t[k..]);
            if let (Some(&a), Some(&b)) = (ids.get(l), ids.get(r)) {
                merges.push((scores[i], i, a, b));
            }
        }
    }
    // score descending; stable within a token: by left id, then right id
    merges.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)).then(x.3.cmp(&y.3)));
    merges.into_iter().map(|(_, _, a, b)| (tokens[a].clone(), tokens[b].clone())).collect()
}
