//! Checksums of KV-cache files: xxh3-64 (seed 0, default secret), written as 16 lowercase hex digits.
//!
//! Two values guard a file (the format: the module comment of wasm/src/kvfile.rs):
//! - `checksum`: xxh3-64 over the payload bytes (everything after the header), fed in file order.
//!   This is exactly `xxh3_64(file[8 + N..])`, so any xxh3 implementation can check it.
//! - `meta_checksum`: xxh3-64 over a canonical encoding of every `__metadata__` entry except
//!   `checksum` and `meta_checksum` themselves: for each entry in ascending byte order of its key,
//!   `u64le(len(key)) key u64le(len(value)) value`. The tensor table is not hashed: the loader
//!   requires it to be exactly the one the metadata implies (names, order, dtype, shape, offsets).
use std::collections::BTreeMap;
use super::xxh3::Xxh3;
use xxhash_rust::xxh3::{xxh3_64, Xxh3Default};

/// Width of a checksum in the header: 16 lowercase hex digits.
pub const HEX_LEN: usize = 16;

/// What the writer puts in `checksum` until the payload has been hashed; never valid hex, so a file
/// whose writer was interrupted before patching it is recognised as unfinished.
pub const PLACEHOLDER: &str = "----------------";

/// Streaming xxh3-64 over the payload, fed in file order in chunks of any size (simd128 in wasm).
#[derive(Clone)]
pub struct PayloadHasher {
    state: Xxh3,
}

impl Default for PayloadHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PayloadHasher {
    pub fn new() -> Self {
        Self { state: Xxh3::new() }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.state.update(chunk);
    }

    /// Bytes hashed so far.
    pub fn bytes(&self) -> u64 {
        self.state.total()
    }

    pub fn digest(&self) -> u64 {
        self.state.digest()
    }
}

/// 16 lowercase hex digits.
pub fn to_hex(v: u64) -> String {
    format!("{v:016x}")
}

/// Parses exactly 16 lowercase hex digits (the only spelling a writer produces).
pub fn parse_hex(s: &str) -> Option<u64> {
    if s.len() != HEX_LEN || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// xxh3-64 of arbitrary bytes as hex (exported to JS for fingerprints and prefix hashes).
pub fn hash_hex(bytes: &[u8]) -> String {
    to_hex(xxh3_64(bytes))
}

/// The metadata checksum: see the module comment. `skip` names the keys left out.
pub fn meta_checksum(entries: &BTreeMap<String, String>, skip: &[&str]) -> u64 {
    let mut h = Xxh3Default::new();
    for (k, v) in entries {
        if skip.contains(&k.as_str()) {
            continue;
        }
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_one_shot_for_any_chunking() {
        let data: Vec<u8> = (0..100_003u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let want = xxh3_64(&data);
        for step in [1usize, 7, 64, 255, 256, 1000, 4096, 65536, 200_000] {
            let mut h = PayloadHasher::new();
            for c in data.chunks(step) {
                h.update(c);
            }
            assert_eq!(h.digest(), want, "chunk size {step}");
            assert_eq!(h.bytes(), data.len() as u64);
        }
    }

    #[test]
    fn known_vectors() {
        // Reference values of XXH3_64bits (seed 0) from the xxHash project.
        assert_eq!(xxh3_64(b""), 0x2d06800538d394c2);
        assert_eq!(PayloadHasher::new().digest(), 0x2d06800538d394c2);
    }

    #[test]
    fn hex_round_trip_and_strictness() {
        for v in [0u64, 1, 0xdeadbeef, u64::MAX] {
            assert_eq!(parse_hex(&to_hex(v)), Some(v));
        }
        assert_eq!(parse_hex("DEADBEEFDEADBEEF"), None);
        assert_eq!(parse_hex("+eadbeefdeadbeef"), None);
        assert_eq!(parse_hex("123"), None);
        assert_eq!(parse_hex(PLACEHOLDER), None);
        assert_eq!(parse_hex("ééééééé12"), None);
    }

    #[test]
    fn meta_checksum_is_injective_on_boundaries() {
        let mut a = BTreeMap::new();
        a.insert("ab".to_string(), "c".to_string());
        let mut b = BTreeMap::new();
        b.insert("a".to_string(), "bc".to_string());
        assert_ne!(meta_checksum(&a, &[]), meta_checksum(&b, &[]));
        let mut c = a.clone();
        c.insert("checksum".to_string(), "x".to_string());
        assert_eq!(meta_checksum(&a, &["checksum"]), meta_checksum(&c, &["checksum"]));
    }
}
