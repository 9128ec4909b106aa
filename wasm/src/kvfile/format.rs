//! The KV-cache file format: metadata, tensor layout, header writing and strict header parsing.
//! Pure Rust (no wasm-bindgen), so `cargo test` exercises all of it on the host.
//!
//! A file is a safetensors file (8-byte little-endian header length N, N bytes of JSON padded with
//! spaces so that the payload starts at a multiple of 8, then the payload) whose tensors are
//! `k.<layer>` and `v.<layer>`, shape `[kv_heads, tokens, head_dim]`, stored contiguously in the
//! order k.0, v.0, k.1, v.1, ... and whose `__metadata__` holds the keys in [`RESERVED`].
//! Nothing here can panic on any input: lengths are checked before slicing and all arithmetic on
//! values read from a file is checked.
use super::checksum::{self, meta_checksum, parse_hex, to_hex, PLACEHOLDER};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub const FORMAT_NAME: &str = "apekit.kv";
pub const FORMAT_VERSION: u32 = 1;
pub const CHECKSUM_ALGO: &str = "xxh3-64";
/// Largest header accepted: the same limit as the `safetensors` crate (and so Python's reader).
pub const MAX_HEADER_LEN: u64 = 100_000_000;
/// Largest file described: every size must stay an exact JavaScript number.
pub const MAX_FILE_LEN: u64 = (1u64 << 53) - 1;
/// Longest fingerprint / prefix hash accepted.
pub const MAX_ID_LEN: usize = 1024;
/// Largest `layers`, `kv_heads` and `head_dim` accepted (bounds the tensor table's size even when
/// the payload is empty).
pub const MAX_DIM: u32 = 1 << 16;

/// The `__metadata__` keys apekit defines; any other key is a caller's extra (kept, and hashed).
pub const RESERVED: [&str; 16] = [
    "format",
    "format_version",
    "model_fingerprint",
    "tokenizer_fingerprint",
    "kind",
    "token_ids",
    "tokens",
    "first_pos",
    "prefix_hash",
    "dtype",
    "layers",
    "kv_heads",
    "head_dim",
    "checksum_algo",
    "checksum",
    "meta_checksum",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bytes are not a sound KV-cache file.
    Corrupt,
    /// A sound file that this build cannot use (future format version).
    Mismatch,
    /// The caller asked for something invalid (writer input, misuse of a stream).
    Argument,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvError {
    pub kind: ErrorKind,
    pub message: String,
}

impl KvError {
    pub fn corrupt(m: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Corrupt, message: m.into() }
    }
    pub fn mismatch(m: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Mismatch, message: m.into() }
    }
    pub fn argument(m: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Argument, message: m.into() }
    }
    /// The stable code of the matching TypeScript error class.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ErrorKind::Corrupt => "E_CACHE_CORRUPT",
            ErrorKind::Mismatch => "E_CACHE_MISMATCH",
            ErrorKind::Argument => "E_INVALID_ARGUMENT",
        }
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T> = std::result::Result<T, KvError>;

/// A string from a file, quoted and cut short, for error messages.
pub fn show(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F16,
    BF16,
    F32,
}

impl Dtype {
    pub fn size(self) -> u64 {
        match self {
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::F32 => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::F32 => "F32",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "F16" => Some(Dtype::F16),
            "BF16" => Some(Dtype::BF16),
            "F32" => Some(Dtype::F32),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prefix,
    Context,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prefix => "prefix",
            Kind::Context => "context",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "prefix" => Some(Kind::Prefix),
            "context" => Some(Kind::Context),
            _ => None,
        }
    }
}

/// Everything a file says about its block, apart from the checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvMeta {
    pub model_fingerprint: String,
    pub tokenizer_fingerprint: String,
    pub kind: Kind,
    pub token_ids: Vec<u32>,
    pub first_pos: u32,
    pub prefix_hash: String,
    pub dtype: Dtype,
    pub layers: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    /// Caller-defined `__metadata__` entries (keys outside [`RESERVED`]).
    pub extra: BTreeMap<String, String>,
}

impl KvMeta {
    pub fn tokens(&self) -> u64 {
        self.token_ids.len() as u64
    }
}

/// Where everything lies in a file. Offsets of tensors are absolute (from the file's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// N: the JSON header's length (padding included).
    pub header_json_len: u64,
    /// 8 + N: where the payload starts.
    pub data_start: u64,
    /// Bytes of one tensor (all 2 x layers tensors have the same shape).
    pub tensor_len: u64,
    pub payload_len: u64,
    pub file_len: u64,
}

impl Layout {
    /// The absolute offset of tensor `index` (k.l is 2l, v.l is 2l+1).
    pub fn tensor_offset(&self, index: u64) -> u64 {
        // Cannot overflow: index < 2 x layers and the whole file length was checked.
        self.data_start + index * self.tensor_len
    }
}

/// Bytes of one tensor and of the payload, checked against overflow and [`MAX_FILE_LEN`].
fn sizes(meta: &KvMeta) -> Option<(u64, u64)> {
    let tensor = (meta.kv_heads as u64)
        .checked_mul(meta.tokens())?
        .checked_mul(meta.head_dim as u64)?
        .checked_mul(meta.dtype.size())?;
    let payload = tensor.checked_mul(2)?.checked_mul(meta.layers as u64)?;
    (payload <= MAX_FILE_LEN).then_some((tensor, payload))
}

fn tensor_name(index: u64) -> String {
    format!("{}.{}", if index % 2 == 0 { "k" } else { "v" }, index / 2)
}

/// Checks a writer's input; the errors are the caller's (ErrorKind::Argument).
pub fn validate_meta(meta: &KvMeta) -> Result<()> {
    for (name, v, may_be_empty) in [
        ("modelFingerprint", &meta.model_fingerprint, false),
        ("tokenizerFingerprint", &meta.tokenizer_fingerprint, false),
        ("prefixHash", &meta.prefix_hash, true),
    ] {
        if v.is_empty() && !may_be_empty {
            return Err(KvError::argument(format!("{name} must not be empty")));
        }
        if v.len() > MAX_ID_LEN {
            return Err(KvError::argument(format!("{name} is {} bytes long; at most {MAX_ID_LEN} allowed", v.len())));
        }
    }
    for (name, v) in [("layers", meta.layers), ("kvHeads", meta.kv_heads), ("headDim", meta.head_dim)] {
        if v == 0 {
            return Err(KvError::argument(format!("{name} must be at least 1")));
        }
        if v > MAX_DIM {
            return Err(KvError::argument(format!("{name} is {v}; at most {MAX_DIM} allowed")));
        }
    }
    // The token ids are written in the header: refuse early what could never fit in it.
    let ids_len: u64 = meta.token_ids.iter().map(|&id| id.checked_ilog10().unwrap_or(0) as u64 + 2).sum();
    if ids_len > MAX_HEADER_LEN {
        return Err(KvError::argument(format!(
            "{} tokens are too many for one file: their ids alone need {ids_len} header bytes, over the {MAX_HEADER_LEN} a safetensors reader accepts",
            meta.token_ids.len()
        )));
    }
    if meta.token_ids.len() as u64 > u32::MAX as u64 {
        return Err(KvError::argument("too many tokens"));
    }
    if meta.first_pos as u64 + meta.tokens() > 1u64 << 32 {
        return Err(KvError::argument(format!("firstPos {} + {} tokens passes position 2^32", meta.first_pos, meta.tokens())));
    }
    for k in meta.extra.keys() {
        if RESERVED.contains(&k.as_str()) {
            return Err(KvError::argument(format!("extra metadata key {} is reserved by the format", show(k))));
        }
        if k.is_empty() {
            return Err(KvError::argument("extra metadata keys must not be empty"));
        }
        if k == "__metadata__" {
            return Err(KvError::argument("extra metadata key \"__metadata__\" is not allowed"));
        }
    }
    if sizes(meta).is_none() {
        return Err(KvError::argument("the cache is too large: its byte size does not fit in 2^53"));
    }
    Ok(())
}

/// The `__metadata__` map of `meta`, without `checksum` and `meta_checksum`.
fn entries(meta: &KvMeta) -> BTreeMap<String, String> {
    let mut m = meta.extra.clone();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("format", FORMAT_NAME.to_string());
    put("format_version", FORMAT_VERSION.to_string());
    put("model_fingerprint", meta.model_fingerprint.clone());
    put("tokenizer_fingerprint", meta.tokenizer_fingerprint.clone());
    put("kind", meta.kind.name().to_string());
    let mut ids = String::with_capacity(meta.token_ids.len() * 7);
    for (i, id) in meta.token_ids.iter().enumerate() {
        if i > 0 {
            ids.push(',');
        }
        ids.push_str(&id.to_string());
    }
    put("token_ids", ids);
    put("tokens", meta.tokens().to_string());
    put("first_pos", meta.first_pos.to_string());
    put("prefix_hash", meta.prefix_hash.clone());
    put("dtype", meta.dtype.name().to_string());
    put("layers", meta.layers.to_string());
    put("kv_heads", meta.kv_heads.to_string());
    put("head_dim", meta.head_dim.to_string());
    put("checksum_algo", CHECKSUM_ALGO.to_string());
    m
}

const SKIP: [&str; 2] = ["checksum", "meta_checksum"];

/// A written header: the whole prefix of the file up to the payload.
#[derive(Debug, Clone)]
pub struct Header {
    /// 8-byte length + JSON + padding.
    pub bytes: Vec<u8>,
    /// Absolute offset of the 16 characters of the `checksum` value.
    pub checksum_at: usize,
    pub layout: Layout,
    pub meta_checksum: u64,
}

impl Header {
    /// Writes `value` into the checksum slot.
    pub fn set_checksum(&mut self, value: Option<u64>) {
        let text = value.map(to_hex).unwrap_or_else(|| PLACEHOLDER.to_string());
        if let Some(slot) = self.bytes.get_mut(self.checksum_at..self.checksum_at + checksum::HEX_LEN) {
            slot.copy_from_slice(text.as_bytes());
        }
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// Builds the header for `meta` (validated first). `checksum` None writes the placeholder.
pub fn build_header(meta: &KvMeta, checksum: Option<u64>) -> Result<Header> {
    validate_meta(meta)?;
    let (tensor_len, payload_len) = sizes(meta).ok_or_else(|| KvError::argument("the cache is too large"))?;
    let m = entries(meta);
    let mc = meta_checksum(&m, &SKIP);
    let mut all = m;
    all.insert("checksum".to_string(), PLACEHOLDER.to_string());
    all.insert("meta_checksum".to_string(), to_hex(mc));

    let mut json = String::with_capacity(512 + meta.token_ids.len() * 7 + 64 * meta.layers as usize);
    json.push_str("{\"__metadata__\":{");
    let mut checksum_in_json = 0usize;
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&json_str(k));
        json.push(':');
        if k == "checksum" {
            checksum_in_json = json.len() + 1;
        }
        json.push_str(&json_str(v));
    }
    json.push('}');
    let shape = format!("[{},{},{}]", meta.kv_heads, meta.tokens(), meta.head_dim);
    let n_tensors = 2 * meta.layers as u64;
    for i in 0..n_tensors {
        let start = i * tensor_len;
        json.push_str(&format!(
            ",\"{}\":{{\"dtype\":\"{}\",\"shape\":{},\"data_offsets\":[{},{}]}}",
            tensor_name(i),
            meta.dtype.name(),
            shape,
            start,
            start + tensor_len
        ));
    }
    json.push('}');
    while (8 + json.len()) % 8 != 0 {
        json.push(' ');
    }
    let n = json.len() as u64;
    if n > MAX_HEADER_LEN {
        return Err(KvError::argument(format!(
            "the header would be {n} bytes, over the {MAX_HEADER_LEN} a safetensors reader accepts (too many tokens or extras)"
        )));
    }
    let file_len = (8 + n)
        .checked_add(payload_len)
        .filter(|&f| f <= MAX_FILE_LEN)
        .ok_or_else(|| KvError::argument("the cache is too large"))?;
    let mut bytes = Vec::with_capacity(8 + json.len());
    bytes.extend_from_slice(&n.to_le_bytes());
    bytes.extend_from_slice(json.as_bytes());
    let mut h = Header {
        bytes,
        checksum_at: 8 + checksum_in_json,
        layout: Layout { header_json_len: n, data_start: 8 + n, tensor_len, payload_len, file_len },
        meta_checksum: mc,
    };
    h.set_checksum(checksum);
    Ok(h)
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// One tensor entry as written in the header.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawTensor {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// The header object: `__metadata__` plus tensor entries, in file order, duplicates rejected.
struct RawHeader {
    metadata: Option<BTreeMap<String, String>>,
    tensors: Vec<(String, RawTensor)>,
}

struct StrMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for StrMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("__metadata__ as an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<StrMap, A::Error> {
                let mut m = BTreeMap::new();
                while let Some(k) = map.next_key::<String>()? {
                    let v: String = map
                        .next_value()
                        .map_err(|e| de::Error::custom(format!("__metadata__ {}: {e}", show(&k))))?;
                    if m.contains_key(&k) {
                        return Err(de::Error::custom(format!("duplicate __metadata__ key {}", show(&k))));
                    }
                    m.insert(k, v);
                }
                Ok(StrMap(m))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of tensor entries and __metadata__")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawHeader, A::Error> {
                let mut seen = BTreeSet::new();
                let mut metadata = None;
                let mut tensors = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if !seen.insert(k.clone()) {
                        return Err(de::Error::custom(format!("duplicate key {}", show(&k))));
                    }
                    if k == "__metadata__" {
                        metadata = Some(map.next_value::<StrMap>()?.0);
                    } else {
                        let t: RawTensor = map
                            .next_value()
                            .map_err(|e| de::Error::custom(format!("tensor {}: {e}", show(&k))))?;
                        tensors.push((k, t));
                    }
                }
                Ok(RawHeader { metadata, tensors })
            }
        }
        d.deserialize_map(V)
    }
}

/// A parsed, validated header.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub meta: KvMeta,
    pub checksum: u64,
    pub meta_checksum: u64,
    pub layout: Layout,
}

impl Parsed {
    pub fn tensor_count(&self) -> u64 {
        2 * self.meta.layers as u64
    }
}

/// Reads the 8-byte header length from the first bytes of a file and checks it against the
/// format's bounds and (when known) the file's length. Returns N, the JSON header's length.
pub fn header_json_len(prefix: &[u8], file_len: Option<u64>) -> Result<u64> {
    let Some(first) = prefix.get(..8) else {
        return Err(KvError::corrupt(format!(
            "file is too short: {} bytes, a safetensors file starts with an 8-byte header length",
            file_len.unwrap_or(prefix.len() as u64)
        )));
    };
    let mut b = [0u8; 8];
    b.copy_from_slice(first);
    let n = u64::from_le_bytes(b);
    if n > MAX_HEADER_LEN {
        return Err(KvError::corrupt(format!(
            "header length field says {n} bytes, over the {MAX_HEADER_LEN} allowed (not a safetensors file, or a damaged length)"
        )));
    }
    if n < 2 {
        return Err(KvError::corrupt(format!("header length field says {n} bytes: too small for a JSON header")));
    }
    if let Some(len) = file_len {
        if 8 + n > len {
            return Err(KvError::corrupt(format!(
                "header length field says {n} bytes but the file has only {} bytes after it (truncated, or a damaged length)",
                len.saturating_sub(8)
            )));
        }
    }
    Ok(n)
}

fn need<'a>(m: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str> {
    m.get(key)
        .map(String::as_str)
        .ok_or_else(|| KvError::corrupt(format!("__metadata__ has no '{key}'")))
}

/// A canonical decimal (no sign, no leading zeros) that fits in u32.
fn dec_u32(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    s.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok())
}

fn field_dim(m: &BTreeMap<String, String>, key: &str) -> Result<u32> {
    let v = field_u32(m, key, 1)?;
    if v > MAX_DIM {
        return Err(KvError::corrupt(format!("__metadata__.{key} is {v}; at most {MAX_DIM} allowed")));
    }
    Ok(v)
}

fn field_u32(m: &BTreeMap<String, String>, key: &str, min: u32) -> Result<u32> {
    let s = need(m, key)?;
    let v = dec_u32(s).ok_or_else(|| {
        KvError::corrupt(format!("__metadata__.{key} {} is not a decimal number below 2^32", show(s)))
    })?;
    if v < min {
        return Err(KvError::corrupt(format!("__metadata__.{key} is {v}; it must be at least {min}")));
    }
    Ok(v)
}

fn field_hex(m: &BTreeMap<String, String>, key: &str) -> Result<u64> {
    let s = need(m, key)?;
    if s == PLACEHOLDER {
        return Err(KvError::corrupt(format!(
            "__metadata__.{key} is the writer's placeholder: the file was never finished (the writer was interrupted)"
        )));
    }
    parse_hex(s).ok_or_else(|| KvError::corrupt(format!("__metadata__.{key} {} is not 16 lowercase hex digits", show(s))))
}

fn field_id(m: &BTreeMap<String, String>, key: &str, may_be_empty: bool) -> Result<String> {
    let s = need(m, key)?;
    if s.is_empty() && !may_be_empty {
        return Err(KvError::corrupt(format!("__metadata__.{key} is empty")));
    }
    if s.len() > MAX_ID_LEN {
        return Err(KvError::corrupt(format!("__metadata__.{key} is {} bytes long; at most {MAX_ID_LEN} allowed", s.len())));
    }
    Ok(s.to_string())
}

fn parse_token_ids(s: &str) -> Result<Vec<u32>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (i, part) in s.split(',').enumerate() {
        let id = dec_u32(part).ok_or_else(|| {
            KvError::corrupt(format!("__metadata__.token_ids: item {i} ({}) is not a token id", show(part)))
        })?;
        out.push(id);
    }
    Ok(out)
}

/// Validates `__metadata__` and returns the block's metadata and both checksums.
fn parse_meta(m: &BTreeMap<String, String>) -> Result<(KvMeta, u64, u64)> {
    let format = m.get("format").ok_or_else(|| {
        KvError::corrupt("not an apekit KV-cache file: __metadata__ has no 'format'".to_string())
    })?;
    if format != FORMAT_NAME {
        return Err(KvError::corrupt(format!(
            "not an apekit KV-cache file: __metadata__.format is {} (expected '{FORMAT_NAME}')",
            show(format)
        )));
    }
    let version = need(m, "format_version")?;
    let v = dec_u32(version)
        .ok_or_else(|| KvError::corrupt(format!("__metadata__.format_version {} is not a number", show(version))))?;
    if v != FORMAT_VERSION {
        return Err(KvError::mismatch(format!(
            "unsupported KV-cache format version {v}: this apekit reads version {FORMAT_VERSION}"
        )));
    }
    let algo = need(m, "checksum_algo")?;
    if algo != CHECKSUM_ALGO {
        return Err(KvError::corrupt(format!(
            "__metadata__.checksum_algo is {} (expected '{CHECKSUM_ALGO}')",
            show(algo)
        )));
    }
    let checksum = field_hex(m, "checksum")?;
    let stated_mc = field_hex(m, "meta_checksum")?;
    let kind_s = need(m, "kind")?;
    let kind = Kind::parse(kind_s).ok_or_else(|| {
        KvError::corrupt(format!("__metadata__.kind is {} (expected 'prefix' or 'context')", show(kind_s)))
    })?;
    let dtype_s = need(m, "dtype")?;
    let dtype = Dtype::parse(dtype_s).ok_or_else(|| {
        KvError::corrupt(format!("__metadata__.dtype is {} (expected F16, BF16 or F32)", show(dtype_s)))
    })?;
    let token_ids = parse_token_ids(need(m, "token_ids")?)?;
    let tokens = field_u32(m, "tokens", 0)?;
    if tokens as u64 != token_ids.len() as u64 {
        return Err(KvError::corrupt(format!(
            "__metadata__.tokens is {tokens} but token_ids lists {} ids",
            token_ids.len()
        )));
    }
    let first_pos = field_u32(m, "first_pos", 0)?;
    if first_pos as u64 + tokens as u64 > 1u64 << 32 {
        return Err(KvError::corrupt("__metadata__.first_pos + tokens passes position 2^32".to_string()));
    }
    let meta = KvMeta {
        model_fingerprint: field_id(m, "model_fingerprint", false)?,
        tokenizer_fingerprint: field_id(m, "tokenizer_fingerprint", false)?,
        kind,
        token_ids,
        first_pos,
        prefix_hash: field_id(m, "prefix_hash", true)?,
        dtype,
        layers: field_dim(m, "layers")?,
        kv_heads: field_dim(m, "kv_heads")?,
        head_dim: field_dim(m, "head_dim")?,
        extra: m
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let mc = meta_checksum(m, &SKIP);
    if mc != stated_mc {
        return Err(KvError::corrupt(format!(
            "metadata checksum mismatch: meta_checksum says {} but the metadata hashes to {} (the header was altered or damaged)",
            to_hex(stated_mc),
            to_hex(mc)
        )));
    }
    Ok((meta, checksum, stated_mc))
}

fn shape_str(s: &[u64]) -> String {
    let parts: Vec<String> = s.iter().take(8).map(u64::to_string).collect();
    format!("[{}{}]", parts.join(","), if s.len() > 8 { ",…" } else { "" })
}

/// Parses and validates a header: `json` is the N bytes after the 8-byte length; `file_len`, when
/// known, is the whole file's length (checked against the layout the header describes).
pub fn parse_header(json: &[u8], file_len: Option<u64>) -> Result<Parsed> {
    let n = json.len() as u64;
    if n > MAX_HEADER_LEN {
        return Err(KvError::corrupt(format!("header is {n} bytes, over the {MAX_HEADER_LEN} allowed")));
    }
    if json.first() != Some(&b'{') {
        return Err(KvError::corrupt(
            "header does not start with '{': not a safetensors file, or a damaged header".to_string(),
        ));
    }
    let text = std::str::from_utf8(json)
        .map_err(|e| KvError::corrupt(format!("header is not valid UTF-8 (at byte {})", e.valid_up_to())))?;
    let raw: RawHeader = serde_json::from_str(text)
        .map_err(|e| KvError::corrupt(format!("header is not well-formed: {e}")))?;
    let m = raw.metadata.ok_or_else(|| {
        KvError::corrupt("not an apekit KV-cache file: the header has no __metadata__".to_string())
    })?;
    let (meta, checksum, meta_checksum) = parse_meta(&m)?;
    let (tensor_len, payload_len) = sizes(&meta).ok_or_else(|| {
        KvError::corrupt("the metadata describes a cache too large to address (over 2^53 bytes)".to_string())
    })?;

    // The tensor table must be exactly the one the metadata implies.
    let count = 2 * meta.layers as u64;
    let mut by_name: BTreeMap<&str, &RawTensor> = BTreeMap::new();
    for (name, t) in &raw.tensors {
        by_name.insert(name.as_str(), t);
    }
    let want_shape = [meta.kv_heads as u64, meta.tokens(), meta.head_dim as u64];
    let mut pos = 0u64;
    for i in 0..count {
        let name = tensor_name(i);
        let t = by_name.get(name.as_str()).ok_or_else(|| {
            KvError::corrupt(format!("tensor '{name}' is missing (the metadata says {} layers)", meta.layers))
        })?;
        if t.dtype != meta.dtype.name() {
            return Err(KvError::corrupt(format!(
                "tensor '{name}' has dtype {} but __metadata__.dtype is {}",
                show(&t.dtype),
                meta.dtype.name()
            )));
        }
        if t.shape != want_shape {
            return Err(KvError::corrupt(format!(
                "tensor '{name}' has shape {} but the metadata implies [kv_heads, tokens, head_dim] = {}",
                shape_str(&t.shape),
                shape_str(&want_shape)
            )));
        }
        let (s, e) = t.data_offsets;
        if e < s {
            return Err(KvError::corrupt(format!("tensor '{name}' has data_offsets [{s}, {e}] that end before they start")));
        }
        if e - s != tensor_len {
            return Err(KvError::corrupt(format!(
                "tensor '{name}': data_offsets [{s}, {e}] span {} bytes but {} x {} needs {tensor_len}",
                e - s,
                meta.dtype.name(),
                shape_str(&want_shape)
            )));
        }
        if s < pos {
            return Err(KvError::corrupt(format!(
                "tensor '{name}' starts at payload byte {s}, overlapping the tensor before it (which ends at {pos})"
            )));
        }
        if s > pos {
            return Err(KvError::corrupt(format!(
                "tensor '{name}' starts at payload byte {s}, leaving a gap after byte {pos} (tensors must be contiguous, in the order k.0, v.0, k.1, v.1, ...)"
            )));
        }
        pos = e;
    }
    if raw.tensors.len() as u64 != count {
        let stray = raw
            .tensors
            .iter()
            .map(|(n, _)| n.as_str())
            .find(|n| {
                !(n.starts_with("k.") || n.starts_with("v."))
                    || dec_u32(n.get(2..).unwrap_or("")).is_none_or(|l| l >= meta.layers)
            })
            .unwrap_or("?");
        return Err(KvError::corrupt(format!(
            "unexpected tensor {} (a KV-cache file with {} layers holds exactly k.0..k.{last} and v.0..v.{last})",
            show(stray),
            meta.layers,
            last = meta.layers - 1
        )));
    }
    let data_start = 8 + n;
    let want_len = data_start.checked_add(payload_len).filter(|&f| f <= MAX_FILE_LEN).ok_or_else(|| {
        KvError::corrupt("the header describes a file too large to address (over 2^53 bytes)".to_string())
    })?;
    if let Some(len) = file_len {
        if len < want_len {
            return Err(KvError::corrupt(format!(
                "file is truncated: it has {len} bytes but its header describes {want_len} (8 + {n} header + {payload_len} payload)"
            )));
        }
        if len > want_len {
            return Err(KvError::corrupt(format!(
                "file has {} unexpected bytes after the last tensor (header describes {want_len} bytes, file has {len})",
                len - want_len
            )));
        }
    }
    Ok(Parsed {
        meta,
        checksum,
        meta_checksum,
        layout: Layout { header_json_len: n, data_start, tensor_len, payload_len, file_len: want_len },
    })
}

/// Checks a whole file held in memory: header, layout and payload checksum.
pub fn check_file(bytes: &[u8]) -> Result<Parsed> {
    let len = bytes.len() as u64;
    let n = header_json_len(bytes, Some(len))?;
    let json = bytes
        .get(8..8 + n as usize)
        .ok_or_else(|| KvError::corrupt("header runs past the end of the file".to_string()))?;
    let p = parse_header(json, Some(len))?;
    let payload = bytes
        .get(p.layout.data_start as usize..)
        .ok_or_else(|| KvError::corrupt("payload runs past the end of the file".to_string()))?;
    let mut h = checksum::PayloadHasher::new();
    h.update(payload);
    verify_digest(&p, h.digest())?;
    Ok(p)
}

/// Compares a computed payload hash with the header's.
pub fn verify_digest(p: &Parsed, got: u64) -> Result<()> {
    if got != p.checksum {
        return Err(KvError::corrupt(format!(
            "payload checksum mismatch: the header says {} but the payload hashes to {} (the tensor data is damaged)",
            to_hex(p.checksum),
            to_hex(got)
        )));
    }
    Ok(())
}
