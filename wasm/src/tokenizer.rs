//! Hugging Face tokenization (issue 3). See docs/ARCHITECTURE.md and src/tokenizer/ (TS face).
//!
//! Built on Hugging Face's own `tokenizers` crate (fancy-regex backend): every tokenizer.json it
//! loads, loads here. Byte-level BPE tokenizers of a known shape (GPT-2, SmolLM, Llama-3, Qwen2/3)
//! take a fast path ([`fast`]) that reproduces the crate's ids exactly, several times faster and
//! with a fraction of the load time; everything else runs through the crate.
//!
//! Special tokens: `encode(.., allow_special = false)` sets the crate's `encode_special_tokens`, so
//! text such as `<|im_end|>` is tokenized as ordinary text; only the SDK's own templates pass
//! `allow_special = true`. Errors cross to JS as `Error`s (the TS side wraps them in
//! `TokenizerError`); inputs are validated so that nothing here panics, and a panic hook keeps the
//! message should one ever happen (`tokenizerLastPanic`).
pub mod fast;
pub mod gguf;
pub mod pretok;

use std::cell::RefCell;

use serde_json::Value;
use tokenizers::Tokenizer as HfTokenizer;
use wasm_bindgen::prelude::*;

use fast::{Decline, FastBpe};

fn err(msg: impl std::fmt::Display) -> JsError {
    JsError::new(&msg.to_string())
}

thread_local! {
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.to_string();
            LAST_PANIC.with(|p| *p.borrow_mut() = msg);
            prev(info);
        }));
    });
}

/// The message of the last Rust panic (empty if none): read by the TS side after a trap.
#[wasm_bindgen(js_name = tokenizerLastPanic)]
pub fn tokenizer_last_panic() -> String {
    LAST_PANIC.with(|p| p.borrow().clone())
}

/// Current size of the module's linear memory in bytes (for leak tests).
#[wasm_bindgen(js_name = tokenizerMemoryBytes)]
pub fn tokenizer_memory_bytes() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        (core::arch::wasm32::memory_size(0) as f64) * 65536.0
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0.0
    }
}

enum Engine {
    Fast(Box<FastBpe>),
    Hf(Box<HfTokenizer>),
}

/// BOS/EOS as tokenizer_config.json (or GGUF metadata) defines them.
#[derive(Default, Clone, Debug)]
struct SpecialConfig {
    bos: Option<u32>,
    eos: Option<u32>,
    /// `add_bos_token` / `add_eos_token` when the config sets them: they decide whether
    /// `add_special_tokens` puts BOS / EOS at the ends (as transformers' Llama-style tokenizers do);
    /// unset, the tokenizer.json post-processor alone decides.
    add_bos: Option<bool>,
    add_eos: Option<bool>,
}

fn token_name(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

#[wasm_bindgen]
pub struct WasmTokenizer {
    engine: Engine,
    cfg: SpecialConfig,
    out: Vec<u32>,
}

/// State of one streaming decode (see `WasmTokenizer::stream_step`).
#[wasm_bindgen]
#[derive(Default)]
pub struct WasmDecodeStream {
    skip_special: bool,
    /// fast path: bytes not yet emitted (an incomplete UTF-8 sequence)
    pending: Vec<u8>,
    /// crate path: the crate's DecodeStream state
    ids: Vec<u32>,
    prefix: String,
    prefix_index: usize,
}

#[wasm_bindgen]
impl WasmDecodeStream {
    #[wasm_bindgen(constructor)]
    pub fn new(skip_special: bool) -> WasmDecodeStream {
        WasmDecodeStream { skip_special, ..Default::default() }
    }
}

impl WasmTokenizer {
    fn build(json: &[u8], config: Option<&str>, gguf_cfg: Option<SpecialConfig>) -> Result<WasmTokenizer, String> {
        install_panic_hook();
        let engine = match FastBpe::from_json(json) {
            Ok(f) => Engine::Fast(Box::new(f)),
            Err(Decline::Invalid(msg)) => return Err(format!("invalid tokenizer.json: {msg}")),
            Err(Decline::Unsupported(_)) => {
                let mut tok = HfTokenizer::from_bytes(json).map_err(|e| format!("invalid tokenizer.json: {e}"))?;
                tok.with_truncation(None).map_err(|e| e.to_string())?;
                tok.with_padding(None);
                Engine::Hf(Box::new(tok))
            }
        };
        let mut t = WasmTokenizer { engine, cfg: SpecialConfig::default(), out: Vec::new() };
        t.cfg = match gguf_cfg {
            Some(c) => c,
            None => t.parse_config(config)?,
        };
        Ok(t)
    }

    fn build_gguf(meta_json: &str) -> Result<WasmTokenizer, String> {
        install_panic_hook();
        let bad = |e: String| format!("invalid GGUF tokenizer metadata: {e}");
        let meta: gguf::GgufMeta = serde_json::from_str(meta_json).map_err(|e| bad(e.to_string()))?;
        let (json, c) = gguf::to_tokenizer_json(&meta).map_err(bad)?;
        let bytes = serde_json::to_vec(&json).map_err(|e| e.to_string())?;
        let cfg = SpecialConfig { bos: c.bos, eos: c.eos, add_bos: c.add_bos, add_eos: c.add_eos };
        Self::build(&bytes, None, Some(cfg))
    }

    fn parse_config(&self, config: Option<&str>) -> Result<SpecialConfig, String> {
        let mut c = SpecialConfig::default();
        if let Some(text) = config {
            let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid tokenizer_config.json: {e}"))?;
            if !v.is_object() {
                return Err("invalid tokenizer_config.json: not an object".into());
            }
            let lookup = |k: &str| -> Result<Option<u32>, String> {
                match token_name(v.get(k)) {
                    None => Ok(None),
                    Some(name) => match self.token_to_id(&name) {
                        Some(id) => Ok(Some(id)),
                        None => Err(format!("tokenizer_config.json: {k} '{name}' is not a token")),
                    },
                }
            };
            c.bos = lookup("bos_token")?;
            c.eos = lookup("eos_token")?;
            c.add_bos = v.get("add_bos_token").and_then(Value::as_bool);
            c.add_eos = v.get("add_eos_token").and_then(Value::as_bool);
        }
        if c.bos.is_none() {
            // No config: a post-processor that puts one special token first names the BOS.
            if let Engine::Fast(f) = &self.engine {
                if f.post_before.len() == 1 {
                    c.bos = Some(f.post_before[0]);
                }
            }
        }
        Ok(c)
    }

}

impl SpecialConfig {
    fn apply(&self, before: &mut Vec<u32>, after: &mut Vec<u32>) {
        if let Some(add) = self.add_bos {
            if let Some(bos) = self.bos {
                if before.first() == Some(&bos) {
                    before.remove(0);
                }
                if add {
                    before.insert(0, bos);
                }
            }
        }
        if let Some(add) = self.add_eos {
            if let Some(eos) = self.eos {
                if after.last() == Some(&eos) {
                    after.pop();
                }
                if add {
                    after.push(eos);
                }
            }
        }
    }
}

#[wasm_bindgen]
impl WasmTokenizer {
    /// Loads a tokenizer.json (its bytes) and, optionally, the tokenizer_config.json text.
    #[wasm_bindgen(js_name = fromJson)]
    pub fn from_json(json: &[u8], config: Option<String>) -> Result<WasmTokenizer, JsError> {
        Self::build(json, config.as_deref(), None).map_err(err)
    }

    /// Builds a tokenizer from GGUF tokenizer metadata, given as JSON (see `gguf::GgufMeta`).
    #[wasm_bindgen(js_name = fromGguf)]
    pub fn from_gguf(meta_json: &str) -> Result<WasmTokenizer, JsError> {
        Self::build_gguf(meta_json).map_err(err)
    }

    /// "fast" (byte-level fast path) or "hf" (the tokenizers crate).
    #[wasm_bindgen(getter)]
    pub fn engine(&self) -> String {
        match self.engine {
            Engine::Fast(_) => "fast".into(),
            Engine::Hf(_) => "hf".into(),
        }
    }

    /// Text -> ids. `add_special`: the post-processor's special tokens (BOS...), adjusted by the
    /// config's add_bos_token/add_eos_token. `allow_special`: match special added tokens written
    /// in the text (off: they are ordinary text).
    pub fn encode(&mut self, text: &str, add_special: bool, allow_special: bool) -> Result<Vec<u32>, JsError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 8);
        self.encode_into(text, add_special, allow_special, &mut out).map_err(err)?;
        Ok(out)
    }

    /// The number of ids `encode` would return (no copy to JS).
    #[wasm_bindgen(js_name = countTokens)]
    pub fn count_tokens(&mut self, text: &str, add_special: bool, allow_special: bool) -> Result<u32, JsError> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let r = self.encode_into(text, add_special, allow_special, &mut out).map_err(err);
        let n = out.len() as u32;
        if out.capacity() > 1 << 20 {
            out = Vec::new(); // don't keep a huge buffer after a huge text
        }
        self.out = out;
        r.map(|_| n)
    }

    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, JsError> {
        match &self.engine {
            Engine::Fast(f) => {
                let mut b = Vec::new();
                f.decode_bytes(ids, skip_special, &mut b);
                Ok(match String::from_utf8(b) {
                    Ok(s) => s,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                })
            }
            Engine::Hf(t) => t.decode(ids, skip_special).map_err(err),
        }
    }

    /// Feeds one id to a stream; returns the text that became final ("" if none yet). The
    /// text never ends inside a UTF-8 sequence: bytes of an incomplete character wait for the
    /// next ids.
    #[wasm_bindgen(js_name = streamStep)]
    pub fn stream_step(&self, st: &mut WasmDecodeStream, id: u32) -> Result<String, JsError> {
        match &self.engine {
            Engine::Fast(f) => {
                f.decode_bytes(&[id], st.skip_special, &mut st.pending);
                Ok(take_complete_utf8(&mut st.pending, false))
            }
            Engine::Hf(t) => {
                let r = tokenizers::tokenizer::step_decode_stream(
                    t.as_ref(),
                    vec![id],
                    st.skip_special,
                    &mut st.ids,
                    &mut st.prefix,
                    &mut st.prefix_index,
                )
                .map_err(err)?;
                Ok(r.unwrap_or_default())
            }
        }
    }

    /// Ends a stream: whatever is left (an incomplete character becomes U+FFFD, as in `decode`).
    #[wasm_bindgen(js_name = streamFlush)]
    pub fn stream_flush(&self, st: &mut WasmDecodeStream) -> Result<String, JsError> {
        match &self.engine {
            Engine::Fast(_) => Ok(take_complete_utf8(&mut st.pending, true)),
            Engine::Hf(t) => {
                if st.ids.is_empty() {
                    return Ok(String::new());
                }
                let s = t.decode(&st.ids, st.skip_special).map_err(err)?;
                let rest = if s.starts_with(st.prefix.as_str()) { s[st.prefix.len()..].to_owned() } else { String::new() };
                st.ids.clear();
                st.prefix.clear();
                st.prefix_index = 0;
                Ok(rest)
            }
        }
    }

    #[wasm_bindgen(js_name = tokenToId)]
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.engine {
            Engine::Fast(f) => f.token_to_id(token),
            Engine::Hf(t) => t.token_to_id(token),
        }
    }

    #[wasm_bindgen(js_name = idToToken)]
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match &self.engine {
            Engine::Fast(f) => f.id_to_token(id),
            Engine::Hf(t) => t.id_to_token(id),
        }
    }

    /// Number of ids (model vocab + added tokens): one more than the largest id.
    #[wasm_bindgen(js_name = vocabSize)]
    pub fn vocab_size(&self) -> u32 {
        match &self.engine {
            Engine::Fast(f) => f.vocab_size() as u32,
            Engine::Hf(t) => {
                let model = t.get_vocab_size(false) as u32;
                let added = t.get_added_tokens_decoder().keys().copied().max().map_or(0, |m| m + 1);
                model.max(added)
            }
        }
    }

    /// Ids of the special added tokens, ascending.
    #[wasm_bindgen(js_name = specialIds)]
    pub fn special_ids(&self) -> Vec<u32> {
        match &self.engine {
            Engine::Fast(f) => f.special_ids(),
            Engine::Hf(t) => {
                let mut v: Vec<u32> = t.get_added_tokens_decoder().iter().filter(|(_, a)| a.special).map(|(i, _)| *i).collect();
                v.sort_unstable();
                v
            }
        }
    }

    #[wasm_bindgen(getter, js_name = bosId)]
    pub fn bos_id(&self) -> Option<u32> {
        self.cfg.bos
    }

    #[wasm_bindgen(getter, js_name = eosId)]
    pub fn eos_id(&self) -> Option<u32> {
        self.cfg.eos
    }
}

impl WasmTokenizer {
    fn encode_into(&mut self, text: &str, add_special: bool, allow_special: bool, out: &mut Vec<u32>) -> Result<(), String> {
        let cfg = &self.cfg;
        let configured = cfg.add_bos.is_some() || cfg.add_eos.is_some();
        match &mut self.engine {
            Engine::Fast(f) => {
                if !add_special {
                    f.encode(text, !allow_special, out);
                    return Ok(());
                }
                let (mut before, mut after) = (f.post_before.clone(), f.post_after.clone());
                f.encode(text, !allow_special, out);
                cfg.apply(&mut before, &mut after);
                out.splice(0..0, before);
                out.extend(after);
                Ok(())
            }
            Engine::Hf(t) => {
                t.set_encode_special_tokens(!allow_special);
                if !add_special || !configured {
                    let enc = t.encode_fast(text, add_special).map_err(|e| e.to_string())?;
                    out.extend_from_slice(enc.get_ids());
                    return Ok(());
                }
                let raw = t.encode_fast(text, false).map_err(|e| e.to_string())?;
                let enc = t.post_process(raw, None, true).map_err(|e| e.to_string())?;
                let (ids, seq) = (enc.get_ids(), enc.get_sequence_ids());
                let first = seq.iter().position(|s| s.is_some()).unwrap_or(ids.len());
                let last = seq.iter().rposition(|s| s.is_some()).map_or(first, |p| p + 1);
                let mut before = ids[..first].to_vec();
                let mut after = ids[last..].to_vec();
                let body = ids[first..last].to_vec();
                cfg.apply(&mut before, &mut after);
                out.extend(before);
                out.extend(body);
                out.extend(after);
                Ok(())
            }
        }
    }
}

/// Removes and returns the longest prefix of `buf` that is complete UTF-8 (invalid bytes become
/// U+FFFD exactly as `String::from_utf8_lossy` does). With `flush`, everything.
fn take_complete_utf8(buf: &mut Vec<u8>, flush: bool) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < buf.len() {
        match std::str::from_utf8(&buf[i..]) {
            Ok(s) => {
                out.push_str(s);
                i = buf.len();
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&buf[i..i + good]).unwrap_or_default());
                i += good;
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        i += n;
                    }
                    None => {
                        // incomplete sequence at the end
                        if flush {
                            out.push('\u{FFFD}');
                            i = buf.len();
                        }
                        break;
                    }
                }
            }
        }
    }
    buf.drain(..i);
    out
}

#[cfg(test)]
mod tests;
