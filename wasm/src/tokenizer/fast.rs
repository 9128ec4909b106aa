//! A fast path for byte-level BPE tokenizers (GPT-2, SmolLM, Llama-3, Qwen2/3 and the GGUF "gpt2"
//! vocabularies): ids only, no per-token strings, hand-written pre-tokenizer scanners, a word
//! cache, and a loader that reads tokenizer.json without building the crate's structures.
//!
//! It is used only when a tokenizer.json has exactly a shape it reproduces (checked field by field
//! in [`FastBpe::from_json`]); everything else goes through the `tokenizers` crate. Every step
//! mirrors the crate's code (added-token matching, normalization, pre-tokenization, BPE merges,
//! ByteLevel decoding) and the tests compare the two on real and random text.
use std::borrow::Cow;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::pretok::{self, Pattern, Scratch};

/// FxHash (rustc's hasher): fast for short keys, fine for a table we build ourselves.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);
const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut b = bytes;
        while b.len() >= 8 {
            let w = u64::from_le_bytes(b[..8].try_into().unwrap());
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
            b = &b[8..];
        }
        if b.len() >= 4 {
            let w = u32::from_le_bytes(b[..4].try_into().unwrap()) as u64;
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
            b = &b[4..];
        }
        for &x in b {
            h = (h.rotate_left(5) ^ x as u64).wrapping_mul(K);
        }
        self.0 = h;
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(K);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    #[inline]
    fn finish(&self) -> u64 {
        // murmur3's fmix64: hashbrown takes buckets from the low bits, which a bare multiply
        // leaves depending on the low input bits only
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}
pub type FxBuild = BuildHasherDefault<Fx>;
pub type FxMap<K, V> = HashMap<K, V, FxBuild>;

fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = Fx::default();
    h.write(b);
    h.finish()
}

/// GPT-2's byte <-> char mapping (the crate's `bytes_char`).
pub fn bytes_char() -> [char; 256] {
    let mut bs: Vec<u32> = Vec::with_capacity(256);
    bs.extend(b'!' as u32..=b'~' as u32);
    bs.extend(0xA1..=0xAC);
    bs.extend(0xAE..=0xFF);
    let mut cs: Vec<u32> = bs.clone();
    let mut n = 0;
    for b in 0..=255u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut out = ['\0'; 256];
    for (b, c) in bs.into_iter().zip(cs) {
        out[b as usize] = char::from_u32(c).unwrap();
    }
    out
}

/// char -> byte for the byte-level alphabet (chars U+0021..U+0143).
fn char_bytes(bc: &[char; 256]) -> Vec<i16> {
    let mut v = vec![-1i16; 0x144];
    for (b, c) in bc.iter().enumerate() {
        v[*c as usize] = b as i16;
    }
    v
}

/// Decodes a byte-level token string into its bytes; None if a char is not in the alphabet.
fn token_bytes(s: &str, cb: &[i16], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    for c in s.chars() {
        let i = c as usize;
        if i < cb.len() && cb[i] >= 0 {
            out.push(cb[i] as u8);
        } else {
            out.truncate(start);
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Loading

/// A vocab read without building a map: (token, id) in file order.
struct VocabList<'a>(Vec<(Cow<'a, str>, u32)>);

impl<'de: 'a, 'a> Deserialize<'de> for VocabList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = VocabList<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a vocab object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(1 << 16));
                while let Some(k) = m.next_key::<Cow<'a, str>>()? {
                    let id: u32 = m.next_value()?;
                    v.push((k, id));
                }
                Ok(VocabList(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Cow<str> that borrows when the JSON string has no escapes.
struct S<'a>(Cow<'a, str>);
impl<'de: 'a, 'a> Deserialize<'de> for S<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = S<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(S(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(S(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(S(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// One merge: "a b" (legacy) or ["a", "b"].
struct Merge<'a>(Cow<'a, str>, Cow<'a, str>);
impl<'de: 'a, 'a> Deserialize<'de> for Merge<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        fn legacy<'a, E: de::Error>(s: Cow<'a, str>) -> Result<Merge<'a>, E> {
            let bad = || E::custom(format!("merges: '{s}' is not two tokens separated by one space"));
            let mut it = s.split(' ');
            let (a, b) = (it.next().ok_or_else(bad)?, it.next().ok_or_else(bad)?);
            if it.next().is_some() {
                return Err(bad());
            }
            Ok(Merge(Cow::Owned(a.to_owned()), Cow::Owned(b.to_owned())))
        }
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Merge<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a merge: \"a b\" or [\"a\", \"b\"]")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                let bad = || E::custom(format!("merges: '{v}' is not two tokens separated by one space"));
                let mut it = v.split(' ');
                let (a, b) = (it.next().ok_or_else(bad)?, it.next().ok_or_else(bad)?);
                if it.next().is_some() {
                    return Err(bad());
                }
                Ok(Merge(Cow::Borrowed(a), Cow::Borrowed(b)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                legacy(Cow::Owned(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let a: S<'a> = s.next_element()?.ok_or_else(|| de::Error::custom("merges: empty pair"))?;
                let b: S<'a> = s.next_element()?.ok_or_else(|| de::Error::custom("merges: pair of one"))?;
                if s.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("merges: more than two tokens in a pair"));
                }
                Ok(Merge(a.0, b.0))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct ModelJson<'a> {
    #[serde(rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    dropout: Option<f64>,
    #[serde(default)]
    unk_token: Option<String>,
    #[serde(default)]
    continuing_subword_prefix: Option<String>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
    #[serde(default)]
    byte_fallback: Option<bool>,
    #[serde(default)]
    ignore_merges: Option<bool>,
    #[serde(borrow)]
    vocab: VocabList<'a>,
    #[serde(borrow)]
    merges: Vec<Merge<'a>>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct AddedJson {
    #[serde(default)]
    pub id: u32,
    pub content: String,
    #[serde(default)]
    pub single_word: bool,
    #[serde(default)]
    pub lstrip: bool,
    #[serde(default)]
    pub rstrip: bool,
    #[serde(default = "yes")]
    pub normalized: bool,
    #[serde(default)]
    pub special: bool,
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct TokJson<'a> {
    #[serde(default)]
    added_tokens: Vec<AddedJson>,
    #[serde(default)]
    normalizer: Option<Value>,
    #[serde(default)]
    pre_tokenizer: Option<Value>,
    #[serde(default)]
    post_processor: Option<Value>,
    #[serde(default)]
    decoder: Option<Value>,
    #[serde(borrow)]
    model: ModelJson<'a>,
}

/// Why the fast path declined (the crate takes over), or a real error in the file.
pub enum Decline {
    /// Not a shape the fast path reproduces: use the crate.
    Unsupported(String),
    /// The file is broken in a way the crate would reject too (e.g. a merge naming an unknown token).
    Invalid(String),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Norm {
    None,
    Nfc,
}

#[derive(Clone, Debug)]
enum Stage {
    Split(Pattern),
    Digits(bool),
}

// ---------------------------------------------------------------------------------------------
// Added tokens

#[derive(Clone, Debug)]
struct AddedTok {
    id: u32,
    pattern: String,
    single_word: bool,
    lstrip: bool,
    rstrip: bool,
    special: bool,
}

/// Leftmost-longest, non-overlapping search over a set of literal patterns (the crate uses a
/// daachorse automaton with MatchKind::LeftmostLongest; with a handful to a few hundred patterns a
/// first-byte filter plus direct comparison is as fast and much cheaper to build).
struct Matcher {
    first: [bool; 256],
    /// patterns by first byte, longest first
    by_first: Vec<Vec<usize>>,
    toks: Vec<AddedTok>,
}

impl Matcher {
    fn new(toks: Vec<AddedTok>) -> Matcher {
        let mut m = Matcher { first: [false; 256], by_first: vec![Vec::new(); 256], toks };
        for (i, t) in m.toks.iter().enumerate() {
            let b = t.pattern.as_bytes()[0] as usize;
            m.first[b] = true;
            m.by_first[b].push(i);
        }
        for v in m.by_first.iter_mut() {
            let toks = &m.toks;
            v.sort_by(|&a, &b| toks[b].pattern.len().cmp(&toks[a].pattern.len()));
        }
        m
    }

    fn is_empty(&self) -> bool {
        self.toks.is_empty()
    }

    /// The crate's `find_matches`: splits `s` into (Some(id) | None, range) covering all of it.
    fn split(&self, s: &str, encode_special: bool, out: &mut Vec<(Option<u32>, usize, usize)>) {
        out.clear();
        if self.toks.is_empty() || s.is_empty() {
            out.push((None, 0, s.len()));
            return;
        }
        let b = s.as_bytes();
        let mut start_offset = 0;
        let mut i = 0;
        while i < b.len() {
            if !self.first[b[i] as usize] {
                i += 1;
                continue;
            }
            let mut hit = None;
            for &k in &self.by_first[b[i] as usize] {
                let p = self.toks[k].pattern.as_bytes();
                if b.len() - i >= p.len() && &b[i..i + p.len()] == p {
                    hit = Some(k);
                    break;
                }
            }
            let Some(k) = hit else {
                i += 1;
                continue;
            };
            let t = &self.toks[k];
            let (mut start, mut stop) = (i, i + t.pattern.len());
            i = stop; // the automaton goes on after this match, whether it is kept or not
            if encode_special && t.special {
                continue;
            }
            if t.single_word {
                let start_space = start == 0 || !s[..start].chars().next_back().is_some_and(pretok::is_word);
                let stop_space = stop == s.len() || !s[stop..].chars().next().is_some_and(pretok::is_word);
                if !stop_space || !start_space {
                    continue;
                }
            }
            if t.lstrip {
                let mut ns = start;
                for (j, c) in s[..start].char_indices().rev() {
                    if pretok::is_whitespace(c) {
                        ns = j;
                    } else {
                        break;
                    }
                }
                start = ns.max(start_offset);
            }
            if t.rstrip {
                for c in s[stop..].chars() {
                    if pretok::is_whitespace(c) {
                        stop += c.len_utf8();
                    } else {
                        break;
                    }
                }
            }
            if start_offset < start {
                out.push((None, start_offset, start));
            }
            let start = start.max(start_offset);
            out.push((Some(t.id), start, stop.max(start)));
            start_offset = stop.max(start);
        }
        if start_offset < b.len() {
            out.push((None, start_offset, b.len()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The model

const NONE: u32 = u32::MAX;
const CACHE_CAPACITY: usize = 10_000;
const CACHE_MAX_WORD: usize = 256;

const F_PRESENT: u8 = 1;
const F_BYTELEVEL: u8 = 2;
const F_SPECIAL: u8 = 4;
const F_ADDED: u8 = 8;

pub struct FastBpe {
    /// Bytes each id decodes to (ByteLevel decoder), concatenated; `off[id]..off[id+1]`.
    bytes: Vec<u8>,
    off: Vec<u32>,
    flags: Vec<u8>,
    /// Open-addressing table over the model's byte-level tokens, keyed by their bytes.
    table: Vec<u32>,
    mask: usize,
    /// Model tokens that are not byte-level strings (looked up by string only).
    other_vocab: HashMap<String, u32>,
    /// Added tokens: content -> id, id -> content.
    added_by_content: HashMap<String, u32>,
    added_by_id: HashMap<u32, String>,
    byte_ids: [u32; 256],
    merges: FxMap<u64, u64>,
    ignore_merges: bool,
    norm: Norm,
    stages: Vec<Stage>,
    final_regex: bool,
    added_raw: Matcher,
    added_norm: Matcher,
    /// Special tokens the post-processor puts around a single sequence.
    pub post_before: Vec<u32>,
    pub post_after: Vec<u32>,
    cache: FxMap<Box<[u8]>, Box<[u32]>>,
    scratch: Scratch,
    splits: Vec<(Option<u32>, usize, usize)>,
    splits2: Vec<(Option<u32>, usize, usize)>,
    syms: Vec<u32>,
    bc: [char; 256],
}

fn unsupported<T>(why: impl Into<String>) -> Result<T, Decline> {
    Err(Decline::Unsupported(why.into()))
}

fn parse_stage(v: &Value, stages: &mut Vec<Stage>, final_regex: &mut Option<bool>) -> Result<(), Decline> {
    if final_regex.is_some() {
        return unsupported("ByteLevel is not the last pre-tokenizer");
    }
    match v.get("type").and_then(Value::as_str) {
        Some("Sequence") => {
            let Some(list) = v.get("pretokenizers").and_then(Value::as_array) else {
                return unsupported("pre_tokenizer Sequence without list");
            };
            for p in list {
                parse_stage(p, stages, final_regex)?;
            }
            Ok(())
        }
        Some("ByteLevel") => {
            if v.get("add_prefix_space").and_then(Value::as_bool).unwrap_or(true) {
                return unsupported("ByteLevel add_prefix_space");
            }
            *final_regex = Some(v.get("use_regex").and_then(Value::as_bool).unwrap_or(true));
            Ok(())
        }
        Some("Split") => {
            let re = v.get("pattern").and_then(|p| p.get("Regex")).and_then(Value::as_str);
            let behavior = v.get("behavior").and_then(Value::as_str);
            let invert = v.get("invert").and_then(Value::as_bool).unwrap_or(false);
            match (re.and_then(Pattern::from_regex), behavior, invert) {
                (Some(p), Some("Isolated"), false) => {
                    stages.push(Stage::Split(p));
                    Ok(())
                }
                _ => unsupported("Split pattern"),
            }
        }
        Some("Digits") => {
            stages.push(Stage::Digits(v.get("individual_digits").and_then(Value::as_bool).unwrap_or(false)));
            Ok(())
        }
        _ => unsupported("pre_tokenizer type"),
    }
}

/// Post-processor -> ids before / after the sequence, for `add_special_tokens`.
fn parse_post(v: &Value, before: &mut Vec<u32>, after: &mut Vec<u32>) -> Result<(), Decline> {
    match v.get("type").and_then(Value::as_str) {
        Some("ByteLevel") => Ok(()),
        Some("Sequence") => {
            let Some(list) = v.get("processors").and_then(Value::as_array) else {
                return unsupported("post_processor Sequence without list");
            };
            for p in list {
                parse_post(p, before, after)?;
            }
            Ok(())
        }
        Some("TemplateProcessing") => {
            let Some(single) = v.get("single").and_then(Value::as_array) else {
                return unsupported("TemplateProcessing without single");
            };
            let specials = v.get("special_tokens");
            let mut seen_a = false;
            for piece in single {
                if let Some(sp) = piece.get("SpecialToken") {
                    let name = sp.get("id").and_then(Value::as_str).unwrap_or("");
                    let Some(ids) = specials.and_then(|s| s.get(name)).and_then(|t| t.get("ids")).and_then(Value::as_array)
                    else {
                        return unsupported("TemplateProcessing special token without ids");
                    };
                    for id in ids {
                        let Some(id) = id.as_u64() else { return unsupported("template id") };
                        if seen_a { after.push(id as u32) } else { before.push(id as u32) }
                    }
                } else if piece.get("Sequence").and_then(|s| s.get("id")).and_then(Value::as_str) == Some("A") {
                    if seen_a {
                        return unsupported("template repeats $A");
                    }
                    seen_a = true;
                } else {
                    return unsupported("template piece");
                }
            }
            if !seen_a {
                return unsupported("template without $A");
            }
            Ok(())
        }
        Some("RobertaProcessing") | Some("BertProcessing") => {
            let id = |k: &str| v.get(k).and_then(Value::as_array).and_then(|a| a.get(1)).and_then(Value::as_u64);
            match (id("cls"), id("sep")) {
                (Some(c), Some(s)) => {
                    before.push(c as u32);
                    after.push(s as u32);
                    Ok(())
                }
                _ => unsupported("cls/sep"),
            }
        }
        _ => unsupported("post_processor type"),
    }
}

impl FastBpe {
    pub fn from_json(json: &[u8]) -> Result<FastBpe, Decline> {
        let t: TokJson = match serde_json::from_slice(json) {
            Ok(t) => t,
            Err(e) => return unsupported(format!("fast parse: {e}")),
        };
        let m = &t.model;
        if m.ty.as_deref() != Some("BPE") {
            return unsupported("model is not BPE");
        }
        if m.dropout.is_some_and(|d| d != 0.0)
            || m.byte_fallback == Some(true)
            || m.continuing_subword_prefix.as_deref().is_some_and(|s| !s.is_empty())
            || m.end_of_word_suffix.as_deref().is_some_and(|s| !s.is_empty())
        {
            return unsupported("BPE options");
        }
        let norm = match &t.normalizer {
            None | Some(Value::Null) => Norm::None,
            Some(v) if v.get("type").and_then(Value::as_str) == Some("NFC") => Norm::Nfc,
            _ => return unsupported("normalizer"),
        };
        let mut stages = Vec::new();
        let mut final_regex = None;
        match &t.pre_tokenizer {
            Some(v) if !v.is_null() => parse_stage(v, &mut stages, &mut final_regex)?,
            _ => return unsupported("no pre_tokenizer"),
        }
        let Some(final_regex) = final_regex else { return unsupported("no ByteLevel pre-tokenizer") };
        match &t.decoder {
            Some(v) if v.get("type").and_then(Value::as_str) == Some("ByteLevel") => {}
            _ => return unsupported("decoder"),
        }
        let (mut post_before, mut post_after) = (Vec::new(), Vec::new());
        match &t.post_processor {
            None | Some(Value::Null) => {}
            Some(v) => parse_post(v, &mut post_before, &mut post_after)?,
        }
        pretok::init();

        // Vocab: string -> id (for merges), and the byte tables.
        let bc = bytes_char();
        let cb = char_bytes(&bc);
        let vocab = &m.vocab.0;
        let mut by_str: FxMap<&str, u32> = FxMap::with_capacity_and_hasher(vocab.len() * 2, Default::default());
        let mut max_id = 0u32;
        for (s, id) in vocab {
            by_str.insert(s.as_ref(), *id);
            max_id = max_id.max(*id);
        }
        let vocab_len = by_str.len() as u32; // the crate's get_vocab_size()

        // Added tokens, ids assigned as the crate does (model id if the content is in the vocab,
        // else the next free id after the vocab).
        let mut added: Vec<AddedJson> = Vec::new();
        let mut added_by_content: HashMap<String, u32> = HashMap::new();
        let mut added_by_id: HashMap<u32, AddedJson> = HashMap::new();
        let mut next_id = vocab_len;
        for a in &t.added_tokens {
            if a.content.is_empty() {
                continue;
            }
            if let Some(id) = added_by_content.get(&a.content) {
                let same = added_by_id.get(id).is_some_and(|b| {
                    (b.single_word, b.lstrip, b.rstrip, b.normalized, b.special)
                        == (a.single_word, a.lstrip, a.rstrip, a.normalized, a.special)
                });
                if same {
                    continue;
                }
            }
            let id = match added_by_content.get(&a.content).copied().or_else(|| by_str.get(a.content.as_str()).copied()) {
                Some(id) => id,
                None => {
                    next_id += 1;
                    next_id - 1
                }
            };
            added_by_content.insert(a.content.clone(), id);
            let mut a2 = a.clone();
            a2.id = id;
            added_by_id.insert(id, a2);
            added.push(a.clone());
            max_id = max_id.max(id);
        }
        if max_id as usize > 50_000_000 {
            return Err(Decline::Invalid(format!("token id {max_id} is too large")));
        }
        let n = max_id as usize + 1;
        let mut model_ids: Vec<u32> = vocab.iter().map(|(_, id)| *id).collect();
        model_ids.sort_unstable();
        for (id, a) in &added_by_id {
            if model_ids.binary_search(id).is_ok() && by_str.get(a.content.as_str()) != Some(id) {
                return unsupported("an added token shares its id with another model token");
            }
        }

        // Per-id bytes and flags.
        let mut model_str: Vec<Option<&str>> = vec![None; n];
        for (s, id) in vocab {
            model_str[*id as usize] = Some(s.as_ref());
        }
        let special_contents: HashSet<&str> =
            added_by_id.values().filter(|a| a.special).map(|a| a.content.as_str()).collect();
        let mut bytes = Vec::with_capacity(json.len() / 3);
        let mut off = Vec::with_capacity(n + 1);
        let mut flags = vec![0u8; n];
        let mut other_vocab = HashMap::new();
        for id in 0..n {
            off.push(bytes.len() as u32);
            let (s, is_added) = match added_by_id.get(&(id as u32)) {
                Some(a) => (Some(a.content.as_str()), true),
                None => (model_str[id], false),
            };
            let Some(s) = s else { continue };
            let mut f = F_PRESENT;
            if is_added {
                f |= F_ADDED;
            }
            if special_contents.contains(s) {
                f |= F_SPECIAL;
            }
            if token_bytes(s, &cb, &mut bytes) {
                f |= F_BYTELEVEL;
            } else {
                bytes.extend_from_slice(s.as_bytes());
            }
            flags[id] = f;
        }
        off.push(bytes.len() as u32);
        // NFC-normalized added tokens decode to their normalized form (the crate's normalized_cache).
        // With Norm::Nfc and a `normalized` added token whose content changes under NFC we decline.
        if norm == Norm::Nfc
            && added_by_id.values().any(|a| a.normalized && !unicode_normalization_alignments::is_nfc(&a.content))
        {
            return unsupported("added token changed by NFC");
        }

        // Model tokens by bytes (only byte-level strings: others can never match an encoded piece).
        let mut cap = 16usize;
        while cap < vocab.len() * 2 {
            cap *= 2;
        }
        let mask = cap - 1;
        let mut table = vec![NONE; cap];
        let mut mbytes: Vec<u8> = Vec::new();
        for (s, id) in vocab {
            mbytes.clear();
            if token_bytes(s, &cb, &mut mbytes) {
                let mut h = hash_bytes(&mbytes) as usize & mask;
                loop {
                    let cur = table[h];
                    if cur == NONE {
                        table[h] = *id;
                        break;
                    }
                    h = (h + 1) & mask;
                }
            } else {
                other_vocab.insert(s.to_string(), *id);
            }
        }
        // (An added token that reuses a model id has that token's content, so the bytes agree.)
        let mut byte_ids = [NONE; 256];
        for b in 0..256 {
            let mut buf = [0u8; 4];
            let s = bc[b].encode_utf8(&mut buf);
            match by_str.get(&*s) {
                Some(id) => byte_ids[b] = *id,
                // The crate drops a char that is not in the vocab when there is no unk token (SmolLM2
                // lacks a few control bytes): we do the same; with an unk token, the crate decides.
                None if m.unk_token.is_none() => {}
                None => return unsupported("vocab lacks a byte-level char and has an unk token"),
            }
        }

        // Merges: (a, b) -> (rank, merged id); later duplicates win, as in the crate.
        let mut merges: FxMap<u64, u64> = FxMap::with_capacity_and_hasher(m.merges.len(), Default::default());
        let mut buf = String::new();
        for (rank, Merge(a, b)) in m.merges.iter().enumerate() {
            let unknown = |x: &str| Decline::Invalid(format!("merge token `{x}` is not in the vocabulary"));
            let ia = *by_str.get(a.as_ref()).ok_or_else(|| unknown(a))?;
            let ib = *by_str.get(b.as_ref()).ok_or_else(|| unknown(b))?;
            buf.clear();
            buf.push_str(a);
            buf.push_str(b);
            let im = *by_str.get(buf.as_str()).ok_or_else(|| unknown(&buf))?;
            merges.insert(((ia as u64) << 32) | ib as u64, ((rank as u64) << 32) | im as u64);
        }

        // Added-token matchers: non-normalized tokens on the raw text, normalized ones on the
        // normalized pieces.
        let mut raw = Vec::new();
        let mut normed = Vec::new();
        let mut ids: Vec<&u32> = added_by_id.keys().collect();
        ids.sort();
        for id in ids {
            let a = &added_by_id[id];
            let t = AddedTok {
                id: *id,
                pattern: a.content.clone(),
                single_word: a.single_word,
                lstrip: a.lstrip,
                rstrip: a.rstrip,
                special: a.special,
            };
            if a.normalized {
                normed.push(t)
            } else {
                raw.push(t)
            }
        }

        Ok(FastBpe {
            bytes,
            off,
            flags,
            table,
            mask,
            other_vocab,
            added_by_content,
            added_by_id: added_by_id.into_iter().map(|(k, v)| (k, v.content)).collect(),
            byte_ids,
            merges,
            ignore_merges: m.ignore_merges.unwrap_or(false),
            norm,
            stages,
            final_regex,
            added_raw: Matcher::new(raw),
            added_norm: Matcher::new(normed),
            post_before,
            post_after,
            cache: FxMap::default(),
            scratch: Scratch::default(),
            splits: Vec::new(),
            splits2: Vec::new(),
            syms: Vec::new(),
            bc,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.off.len() - 1
    }

    fn id_bytes(&self, id: u32) -> &[u8] {
        &self.bytes[self.off[id as usize] as usize..self.off[id as usize + 1] as usize]
    }

    /// Model token whose (byte-level) bytes are `b`.
    #[inline]
    fn lookup(&self, b: &[u8]) -> Option<u32> {
        let mut h = hash_bytes(b) as usize & self.mask;
        loop {
            let id = self.table[h];
            if id == NONE {
                return None;
            }
            if self.id_bytes(id) == b {
                return Some(id);
            }
            h = (h + 1) & self.mask;
        }
    }

    pub fn token_to_id(&self, s: &str) -> Option<u32> {
        if let Some(id) = self.added_by_content.get(s) {
            return Some(*id);
        }
        if let Some(id) = self.other_vocab.get(s) {
            return Some(*id);
        }
        let cb = char_bytes(&self.bc);
        let mut b = Vec::new();
        if token_bytes(s, &cb, &mut b) {
            self.lookup(&b)
        } else {
            None
        }
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        if let Some(s) = self.added_by_id.get(&id) {
            return Some(s.clone());
        }
        let f = *self.flags.get(id as usize)?;
        if f & F_PRESENT == 0 {
            return None;
        }
        let b = self.id_bytes(id);
        if f & F_BYTELEVEL != 0 {
            Some(b.iter().map(|&x| self.bc[x as usize]).collect())
        } else {
            Some(String::from_utf8_lossy(b).into_owned())
        }
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.flags.get(id as usize).is_some_and(|f| f & F_SPECIAL != 0)
    }

    pub fn special_ids(&self) -> Vec<u32> {
        (0..self.flags.len() as u32).filter(|&i| self.is_special(i)).collect()
    }

    /// Appends the bytes of `ids` (ByteLevel decoder), skipping unknown ids and, if asked,
    /// special tokens. `String::from_utf8_lossy` of the result is the crate's `decode`.
    pub fn decode_bytes(&self, ids: &[u32], skip_special: bool, out: &mut Vec<u8>) {
        for &id in ids {
            let Some(&f) = self.flags.get(id as usize) else { continue };
            if f & F_PRESENT == 0 || (skip_special && f & F_SPECIAL != 0) {
                continue;
            }
            out.extend_from_slice(self.id_bytes(id));
        }
    }

    /// Encodes `text` (no post-processing); `encode_special` = the crate's encode_special_tokens
    /// (special added tokens are not matched in the text).
    pub fn encode(&mut self, text: &str, encode_special: bool, out: &mut Vec<u32>) {
        let mut splits = std::mem::take(&mut self.splits);
        let mut splits2 = std::mem::take(&mut self.splits2);
        self.added_raw.split(text, encode_special, &mut splits);
        for &(id, a, b) in &splits {
            if let Some(id) = id {
                out.push(id);
                continue;
            }
            let piece = &text[a..b];
            let normalized: Cow<str> = match self.norm {
                Norm::None => Cow::Borrowed(piece),
                Norm::Nfc => nfc(piece),
            };
            if self.added_norm.is_empty() {
                self.pre_and_bpe(&normalized, out);
            } else {
                self.added_norm.split(&normalized, encode_special, &mut splits2);
                for &(id2, c, d) in &splits2 {
                    match id2 {
                        Some(id2) => out.push(id2),
                        None => self.pre_and_bpe(&normalized[c..d], out),
                    }
                }
            }
        }
        self.splits = splits;
        self.splits2 = splits2;
    }

    fn pre_and_bpe(&mut self, s: &str, out: &mut Vec<u32>) {
        let stages = std::mem::take(&mut self.stages);
        self.run_stage(&stages, 0, s, out);
        self.stages = stages;
    }

    fn run_stage(&mut self, stages: &[Stage], k: usize, s: &str, out: &mut Vec<u32>) {
        if s.is_empty() {
            return;
        }
        if k == stages.len() {
            if self.final_regex {
                let mut scratch = std::mem::take(&mut self.scratch);
                pretok::split(Pattern::Gpt2, s, &mut scratch, &mut |p| self.bpe(p.as_bytes(), out));
                self.scratch = scratch;
            } else {
                self.bpe(s.as_bytes(), out);
            }
            return;
        }
        match stages[k] {
            Stage::Split(p) => {
                if k + 1 == stages.len() && !self.final_regex {
                    let mut scratch = std::mem::take(&mut self.scratch);
                    pretok::split(p, s, &mut scratch, &mut |piece| self.bpe(piece.as_bytes(), out));
                    self.scratch = scratch;
                } else {
                    let mut pieces = Vec::new();
                    let mut scratch = Scratch::default();
                    pretok::split(p, s, &mut scratch, &mut |piece| pieces.push(piece));
                    for piece in pieces {
                        self.run_stage(stages, k + 1, piece, out);
                    }
                }
            }
            Stage::Digits(individual) => {
                let mut pieces = Vec::new();
                pretok::split_digits(s, individual, &mut |piece| pieces.push(piece));
                for piece in pieces {
                    self.run_stage(stages, k + 1, piece, out);
                }
            }
        }
    }

    /// BPE on one pre-token (its raw bytes).
    fn bpe(&mut self, w: &[u8], out: &mut Vec<u32>) {
        if w.is_empty() {
            return;
        }
        if w.len() == 1 {
            let id = self.byte_ids[w[0] as usize];
            if id != NONE {
                out.push(id);
            }
            return;
        }
        if self.ignore_merges {
            if let Some(id) = self.lookup(w) {
                out.push(id);
                return;
            }
        }
        if let Some(ids) = self.cache.get(w) {
            out.extend_from_slice(ids);
            return;
        }
        let mut syms = std::mem::take(&mut self.syms);
        syms.clear();
        syms.extend(w.iter().map(|&b| self.byte_ids[b as usize]).filter(|&id| id != NONE));
        if syms.len() <= 48 {
            merge_scan(&mut syms, &self.merges);
        } else {
            merge_heap(&mut syms, &self.merges);
        }
        out.extend_from_slice(&syms);
        if w.len() < CACHE_MAX_WORD && self.cache.len() < CACHE_CAPACITY {
            self.cache.insert(w.into(), syms.as_slice().into());
        }
        self.syms = syms;
    }
}

fn nfc(s: &str) -> Cow<'_, str> {
    use unicode_normalization_alignments::{is_nfc_quick, IsNormalized};
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        return Cow::Borrowed(s);
    }
    // The crate's own NFC, so the result is exactly the crate's.
    use tokenizers::{NormalizedString, Normalizer};
    let mut n = NormalizedString::from(s);
    let _ = tokenizers::normalizers::unicode::NFC.normalize(&mut n);
    Cow::Owned(n.get().to_owned())
}

#[inline]
fn pair(m: &FxMap<u64, u64>, a: u32, b: u32) -> Option<(u32, u32)> {
    m.get(&(((a as u64) << 32) | b as u64)).map(|&v| ((v >> 32) as u32, v as u32))
}

/// Repeatedly merges the lowest-ranked adjacent pair (leftmost on ties): the result of the
/// crate's heap-based `merge_all`, quadratic but fastest on short words.
pub fn merge_scan(s: &mut Vec<u32>, m: &FxMap<u64, u64>) {
    // ranks[i] = rank and result of (s[i], s[i+1])
    let mut ranks: Vec<(u32, u32)> = (0..s.len().saturating_sub(1))
        .map(|i| pair(m, s[i], s[i + 1]).unwrap_or((u32::MAX, 0)))
        .collect();
    loop {
        let mut best = u32::MAX;
        let mut at = usize::MAX;
        for (i, &(r, _)) in ranks.iter().enumerate() {
            if r < best {
                best = r;
                at = i;
            }
        }
        if at == usize::MAX {
            break;
        }
        let new_id = ranks[at].1;
        s[at] = new_id;
        s.remove(at + 1);
        ranks.remove(at);
        if at > 0 {
            ranks[at - 1] = pair(m, s[at - 1], s[at]).unwrap_or((u32::MAX, 0));
        }
        if at < ranks.len() {
            ranks[at] = pair(m, s[at], s[at + 1]).unwrap_or((u32::MAX, 0));
        }
    }
}

/// The crate's `Word::merge_all` (without dropout), for long words.
pub fn merge_heap(s: &mut Vec<u32>, m: &FxMap<u64, u64>) {
    #[derive(Clone, Copy)]
    struct Sym {
        c: u32,
        prev: isize,
        next: isize,
        alive: bool,
    }
    #[derive(PartialEq, Eq)]
    struct E {
        rank: u32,
        pos: usize,
        new_id: u32,
    }
    impl Ord for E {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            o.rank.cmp(&self.rank).then(o.pos.cmp(&self.pos))
        }
    }
    impl PartialOrd for E {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    let n = s.len();
    let mut sy: Vec<Sym> = (0..n)
        .map(|i| Sym { c: s[i], prev: i as isize - 1, next: if i + 1 < n { i as isize + 1 } else { -1 }, alive: true })
        .collect();
    let mut q = BinaryHeap::with_capacity(n);
    for i in 0..n.saturating_sub(1) {
        if let Some((rank, new_id)) = pair(m, s[i], s[i + 1]) {
            q.push(E { rank, pos: i, new_id });
        }
    }
    while let Some(top) = q.pop() {
        let p = top.pos;
        if !sy[p].alive || sy[p].next == -1 {
            continue;
        }
        let nx = sy[p].next as usize;
        match pair(m, sy[p].c, sy[nx].c) {
            Some((_, id)) if id == top.new_id => {}
            _ => continue,
        }
        sy[p].c = top.new_id;
        sy[p].next = sy[nx].next;
        sy[nx].alive = false;
        if sy[nx].next >= 0 {
            let nn = sy[nx].next as usize;
            sy[nn].prev = p as isize;
        }
        if sy[p].prev >= 0 {
            let pv = sy[p].prev as usize;
            if let Some((rank, new_id)) = pair(m, sy[pv].c, sy[p].c) {
                q.push(E { rank, pos: pv, new_id });
            }
        }
        if sy[p].next >= 0 {
            let nn = sy[p].next as usize;
            if let Some((rank, new_id)) = pair(m, sy[p].c, sy[nn].c) {
                q.push(E { rank, pos: p, new_id });
            }
        }
    }
    s.clear();
    s.extend(sy.iter().filter(|x| x.alive).map(|x| x.c));
}
