//! KV-cache files (issue 4): written and verified here, streaming; `src/kv/` is the TypeScript face.
//!
//! # Format, version 1
//! A KV-cache file is a valid safetensors file (Python's `safetensors` opens it):
//! ```text
//! bytes 0..8        N: u64 little-endian, 2 <= N <= 100,000,000 (the safetensors crate's limit)
//! bytes 8..8+N      the header: JSON, ASCII, padded with spaces so that 8 + N is a multiple of 8
//! bytes 8+N..       the payload: tensors k.0, v.0, k.1, v.1, ..., k.{L-1}, v.{L-1}, contiguous, in
//!                   this order, nothing after the last one
//! ```
//! Each tensor entry is `{"dtype": D, "shape": [kv_heads, tokens, head_dim], "data_offsets":
//! [start, end]}` (offsets relative to the payload; D is F16, BF16 or F32, little-endian, keys
//! stored after RoPE). That is exactly the layout of one block in the engine's per-layer K/V pools,
//! so loading a file is one contiguous copy per tensor (`queue.writeBuffer` of a subarray).
//!
//! `__metadata__` (every value a string; numbers in canonical decimal, no sign or leading zeros,
//! below 2^32):
//!
//! | key | value |
//! | --- | --- |
//! | `format`, `format_version` | `apekit.kv`, `1` |
//! | `model_fingerprint` | non-empty; changes when weights, architecture or RoPE settings change |
//! | `tokenizer_fingerprint` | non-empty |
//! | `kind` | `prefix` or `context` |
//! | `token_ids` | the block's token ids, comma-separated (`""` for none) |
//! | `tokens` | their count (= the tensors' middle dimension) |
//! | `first_pos` | position of the first token (first_pos + tokens <= 2^32) |
//! | `prefix_hash` | hash of the prefix the block was encoded after (`""` for none) |
//! | `dtype`, `layers`, `kv_heads`, `head_dim` | the tensors' dtype and shape |
//! | `checksum_algo` | `xxh3-64` |
//! | `checksum` | xxh3-64 (seed 0) of the payload bytes, 16 lowercase hex digits |
//! | `meta_checksum` | xxh3-64 of every other metadata entry, canonically encoded (checksum.rs) |
//! | anything else | the caller's extras (kept, and covered by `meta_checksum`) |
//!
//! # The checksum while streaming
//! The header's size depends only on the metadata, so a writer emits it first with the `checksum`
//! slot holding the placeholder `----------------` (16 characters, never valid hex), hashes the
//! payload as it streams past, and patches those 16 bytes (at `checksumOffset`) at the end: the
//! TypeScript file writer does this with a positional write into a temporary file, then fsyncs and
//! renames it into place. Where every tensor is already in memory (`serializeKv`), the checksum is
//! computed first and the chunks go out in order with nothing to patch (for non-seekable sinks).
//! A file whose writer died before the patch is reported as "never finished" on load.
//!
//! # Validation on load
//! Length field bounds; header starts with `{`, is UTF-8 and well-formed JSON with no duplicate
//! keys and no unknown tensor fields; format name (CacheCorrupt) and version (CacheMismatch for a
//! future version); every metadata field present and well-formed; `meta_checksum`; the tensor
//! table exactly k.0..v.{L-1} with the metadata's dtype and shape, `end - start` = dtype size x
//! shape, contiguous in order (overlaps and gaps named); file length = 8 + N + payload (truncation
//! and trailing bytes named); finally the payload checksum. Fingerprint and shape expectations of
//! the model that loads a file are checked in `src/kv/meta.ts` (CacheMismatchError).
//!
//! # Streaming API (exported to JS)
//! Both directions take chunks of any size through a staging buffer that lives in wasm memory (JS
//! copies a piece in, or reads a file straight into it, then calls `updateStaged`), so a 1 GB cache
//! never has a second full copy in memory and the piece is still in L2 when it is hashed.
//! - Writing: `new KvWriteState(metaJson, tokenIds)` -> `header()` (checksum placeholder) ->
//!   payload bytes in file order -> `finish()` (the checksum) -> `finalHeader()`, or patch the
//!   16 bytes at `checksumOffset()` in place.
//! - Reading: `kvHeaderJsonLength(first 8 bytes)` -> `new KvReadState(header JSON, fileLength?)`
//!   (validates everything but the payload) -> payload bytes -> `finish()` (length + checksum).
//! - `kvCheckFile(bytes)`: a whole small file in one call (tests, fuzzing: it copies the file into
//!   wasm memory, so use the streaming states for large files).
//!
//! Every error crosses to JS as an `Error` whose message is `CODE|text`, CODE being the stable code
//! of the TypeScript error class (src/kv/wasm.ts maps it). No input can make this module panic:
//! slicing is checked (`get`) or provably in bounds, arithmetic on file values is checked, and
//! serde_json's recursion limit bounds nesting.
pub mod checksum;
pub mod format;
pub mod xxh3;

use checksum::PayloadHasher;
use format::{Dtype, Kind, KvError, KvMeta, Layout, Parsed};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;

/// Size of each state's staging buffer: small enough to stay in L2 between the copy and the hash.
pub const STAGING_LEN: usize = 1 << 18;

fn js(e: KvError) -> JsError {
    JsError::new(&format!("{}|{}", e.code(), e.message))
}

fn len_arg(x: Option<f64>) -> Result<Option<u64>, KvError> {
    match x {
        None => Ok(None),
        Some(v) if v >= 0.0 && v <= format::MAX_FILE_LEN as f64 && v.fract() == 0.0 => Ok(Some(v as u64)),
        Some(v) => Err(KvError::argument(format!("file length {v} is not a byte count"))),
    }
}

/// The JSON description handed to JS (token ids travel separately, as a Uint32Array).
fn describe(meta: &KvMeta, checksum: Option<u64>, meta_checksum: u64, layout: &Layout) -> String {
    let shape = [meta.kv_heads as u64, meta.tokens(), meta.head_dim as u64];
    let tensors: Vec<serde_json::Value> = (0..2 * meta.layers as u64)
        .map(|i| {
            json!({
                "name": format!("{}.{}", if i % 2 == 0 { "k" } else { "v" }, i / 2),
                "layer": i / 2,
                "kv": if i % 2 == 0 { "k" } else { "v" },
                "dtype": meta.dtype.name(),
                "shape": shape,
                "offset": layout.tensor_offset(i),
                "byteLength": layout.tensor_len,
            })
        })
        .collect();
    json!({
        "meta": {
            "format": format::FORMAT_NAME,
            "formatVersion": format::FORMAT_VERSION,
            "modelFingerprint": meta.model_fingerprint,
            "tokenizerFingerprint": meta.tokenizer_fingerprint,
            "kind": meta.kind.name(),
            "firstPos": meta.first_pos,
            "prefixHash": meta.prefix_hash,
            "dtype": meta.dtype.name(),
            "layers": meta.layers,
            "kvHeads": meta.kv_heads,
            "headDim": meta.head_dim,
            "tokens": meta.tokens(),
            "checksum": checksum.map(checksum::to_hex),
            "metaChecksum": checksum::to_hex(meta_checksum),
            "extra": meta.extra,
        },
        "layout": {
            "headerLength": layout.data_start,
            "payloadLength": layout.payload_len,
            "byteLength": layout.file_len,
            "tensorByteLength": layout.tensor_len,
        },
        "tensors": tensors,
    })
    .to_string()
}

fn describe_parsed(p: &Parsed) -> String {
    describe(&p.meta, Some(p.checksum), p.meta_checksum, &p.layout)
}

/// The wasm module's memory, so JS can view the staging buffers.
#[wasm_bindgen(js_name = kvMemory)]
pub fn kv_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// xxh3-64 of `bytes`, as 16 lowercase hex digits (for fingerprints and prefix hashes).
#[wasm_bindgen(js_name = kvHashHex)]
pub fn kv_hash_hex(bytes: &[u8]) -> String {
    checksum::hash_hex(bytes)
}

/// Streaming xxh3-64 of any amount of data (fingerprints of large inputs), fed through staging.
#[wasm_bindgen]
pub struct Xxh3Hasher {
    stream: Stream,
}

#[wasm_bindgen]
impl Xxh3Hasher {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Xxh3Hasher {
        Xxh3Hasher { stream: Stream::new(u64::MAX) }
    }

    pub fn staging(&mut self) -> u32 {
        self.stream.staging_ptr()
    }

    #[wasm_bindgen(js_name = stagingLength)]
    pub fn staging_length(&self) -> u32 {
        STAGING_LEN as u32
    }

    #[wasm_bindgen(js_name = updateStaged)]
    pub fn update_staged(&mut self, len: u32) -> Result<(), JsError> {
        self.stream.update(len, |_| KvError::argument("too much data")).map_err(js)
    }

    /// The hash of everything fed so far, as 16 lowercase hex digits.
    #[wasm_bindgen(js_name = digestHex)]
    pub fn digest_hex(&self) -> String {
        checksum::to_hex(self.stream.hasher.digest())
    }
}

impl Default for Xxh3Hasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads N, the JSON header's length, from a file's first 8 (or more) bytes, and checks it.
#[wasm_bindgen(js_name = kvHeaderJsonLength)]
pub fn kv_header_json_length(prefix: &[u8], file_len: Option<f64>) -> Result<f64, JsError> {
    let n = format::header_json_len(prefix, len_arg(file_len).map_err(js)?).map_err(js)?;
    Ok(n as f64)
}

/// Checks a whole file held in memory (header, layout, checksum); returns its description.
#[wasm_bindgen(js_name = kvCheckFile)]
pub fn kv_check_file(bytes: &[u8]) -> Result<String, JsError> {
    format::check_file(bytes).map(|p| describe_parsed(&p)).map_err(js)
}

/// A reusable staging buffer plus the payload hash and the byte count.
struct Stream {
    staging: Vec<u8>,
    hasher: PayloadHasher,
    expected: u64,
}

impl Stream {
    fn new(expected: u64) -> Self {
        Self { staging: Vec::new(), hasher: PayloadHasher::new(), expected }
    }

    fn staging_ptr(&mut self) -> u32 {
        if self.staging.is_empty() {
            self.staging = vec![0u8; STAGING_LEN];
        }
        self.staging.as_ptr() as usize as u32
    }

    /// Hashes the first `len` staged bytes; `too_long` is the error when they pass the payload.
    fn update(&mut self, len: u32, too_long: impl Fn(u64) -> KvError) -> Result<(), KvError> {
        let piece = self
            .staging
            .get(..len as usize)
            .ok_or_else(|| KvError::argument(format!("updateStaged({len}): the staging buffer holds {}", self.staging.len())))?;
        let total = self.hasher.bytes().saturating_add(len as u64);
        if total > self.expected {
            return Err(too_long(self.expected));
        }
        self.hasher.update(piece);
        Ok(())
    }

    fn check_complete(&self, short: impl Fn(u64, u64) -> KvError) -> Result<(), KvError> {
        if self.hasher.bytes() != self.expected {
            return Err(short(self.hasher.bytes(), self.expected));
        }
        Ok(())
    }
}

/// Streaming reader: validates the header at construction, then hashes the payload as it arrives.
#[wasm_bindgen]
pub struct KvReadState {
    parsed: Parsed,
    stream: Stream,
}

#[wasm_bindgen]
impl KvReadState {
    /// `header_json`: the N bytes after the 8-byte length; `file_len`: the file's length if known.
    #[wasm_bindgen(constructor)]
    pub fn new(header_json: &[u8], file_len: Option<f64>) -> Result<KvReadState, JsError> {
        let parsed = format::parse_header(header_json, len_arg(file_len).map_err(js)?).map_err(js)?;
        let expected = parsed.layout.payload_len;
        Ok(KvReadState { parsed, stream: Stream::new(expected) })
    }

    pub fn describe(&self) -> String {
        describe_parsed(&self.parsed)
    }

    #[wasm_bindgen(js_name = tokenIds)]
    pub fn token_ids(&self) -> Vec<u32> {
        self.parsed.meta.token_ids.clone()
    }

    /// Pointer to the staging buffer in wasm memory (allocated on first call: views taken before
    /// it may be detached). Its length is `stagingLength()`.
    pub fn staging(&mut self) -> u32 {
        self.stream.staging_ptr()
    }

    #[wasm_bindgen(js_name = stagingLength)]
    pub fn staging_length(&self) -> u32 {
        STAGING_LEN as u32
    }

    /// Hashes the first `len` bytes of the staging buffer as the next payload bytes.
    #[wasm_bindgen(js_name = updateStaged)]
    pub fn update_staged(&mut self, len: u32) -> Result<(), JsError> {
        self.stream
            .update(len, |p| {
                KvError::corrupt(format!("file is longer than its header describes: more than {p} payload bytes"))
            })
            .map_err(js)
    }

    /// Payload bytes hashed so far.
    pub fn received(&self) -> f64 {
        self.stream.hasher.bytes() as f64
    }

    /// Checks that the whole payload arrived and that its checksum matches the header's.
    pub fn finish(&self) -> Result<(), JsError> {
        self.stream
            .check_complete(|got, want| {
                KvError::corrupt(format!(
                    "file is truncated: its payload has {got} of the {want} bytes its header describes"
                ))
            })
            .map_err(js)?;
        format::verify_digest(&self.parsed, self.stream.hasher.digest()).map_err(js)
    }
}

/// The writer's metadata as JS passes it (token ids travel separately).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetaInput {
    model_fingerprint: String,
    tokenizer_fingerprint: String,
    kind: String,
    first_pos: u32,
    prefix_hash: String,
    dtype: String,
    layers: u32,
    kv_heads: u32,
    head_dim: u32,
    #[serde(default)]
    extra: BTreeMap<String, String>,
}

/// Builds a writer's metadata from JSON (see `MetaInput`) and token ids.
pub fn meta_from_json(meta_json: &str, token_ids: &[u32]) -> Result<KvMeta, KvError> {
    let m: MetaInput =
        serde_json::from_str(meta_json).map_err(|e| KvError::argument(format!("invalid KV metadata: {e}")))?;
    Ok(KvMeta {
        model_fingerprint: m.model_fingerprint,
        tokenizer_fingerprint: m.tokenizer_fingerprint,
        kind: Kind::parse(&m.kind)
            .ok_or_else(|| KvError::argument(format!("kind must be 'prefix' or 'context', not {}", format::show(&m.kind))))?,
        token_ids: token_ids.to_vec(),
        first_pos: m.first_pos,
        prefix_hash: m.prefix_hash,
        dtype: Dtype::parse(&m.dtype)
            .ok_or_else(|| KvError::argument(format!("dtype must be F16, BF16 or F32, not {}", format::show(&m.dtype))))?,
        layers: m.layers,
        kv_heads: m.kv_heads,
        head_dim: m.head_dim,
        extra: m.extra,
    })
}

/// Streaming writer: knows the layout up front, hashes the payload as the caller produces it.
#[wasm_bindgen]
pub struct KvWriteState {
    meta: KvMeta,
    header: format::Header,
    stream: Stream,
    checksum: Option<u64>,
}

#[wasm_bindgen]
impl KvWriteState {
    #[wasm_bindgen(constructor)]
    pub fn new(meta_json: &str, token_ids: &[u32]) -> Result<KvWriteState, JsError> {
        let meta = meta_from_json(meta_json, token_ids).map_err(js)?;
        let header = format::build_header(&meta, None).map_err(js)?;
        let expected = header.layout.payload_len;
        Ok(KvWriteState { meta, header, stream: Stream::new(expected), checksum: None })
    }

    /// The header as first written: the checksum slot holds a placeholder until `finish()`.
    pub fn header(&self) -> Vec<u8> {
        let mut h = self.header.clone();
        h.set_checksum(None);
        h.bytes
    }

    /// Absolute offset of the 16 ASCII hex digits of the checksum (patch them after `finish()`).
    #[wasm_bindgen(js_name = checksumOffset)]
    pub fn checksum_offset(&self) -> f64 {
        self.header.checksum_at as f64
    }

    pub fn describe(&self) -> String {
        describe(&self.meta, self.checksum, self.header.meta_checksum, &self.header.layout)
    }

    pub fn staging(&mut self) -> u32 {
        self.stream.staging_ptr()
    }

    #[wasm_bindgen(js_name = stagingLength)]
    pub fn staging_length(&self) -> u32 {
        STAGING_LEN as u32
    }

    /// Hashes the first `len` staged bytes as the next payload bytes (file order).
    #[wasm_bindgen(js_name = updateStaged)]
    pub fn update_staged(&mut self, len: u32) -> Result<(), JsError> {
        if self.checksum.is_some() {
            return Err(js(KvError::argument("the KV writer is already finished")));
        }
        self.stream
            .update(len, |p| KvError::argument(format!("more payload written than the {p} bytes the metadata describes")))
            .map_err(js)
    }

    pub fn written(&self) -> f64 {
        self.stream.hasher.bytes() as f64
    }

    /// Ends the payload; returns the checksum as 16 hex digits (the bytes to patch in).
    pub fn finish(&mut self) -> Result<String, JsError> {
        self.stream
            .check_complete(|got, want| {
                KvError::argument(format!("only {got} of the {want} payload bytes were written"))
            })
            .map_err(js)?;
        let c = self.stream.hasher.digest();
        self.checksum = Some(c);
        self.header.set_checksum(Some(c));
        Ok(checksum::to_hex(c))
    }

    /// The header with the real checksum (after `finish()`).
    #[wasm_bindgen(js_name = finalHeader)]
    pub fn final_header(&self) -> Result<Vec<u8>, JsError> {
        if self.checksum.is_none() {
            return Err(js(KvError::argument("finalHeader() before finish()")));
        }
        Ok(self.header.bytes.clone())
    }
}

#[cfg(test)]
mod tests;
