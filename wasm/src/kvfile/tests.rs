//! Host tests of the format (the wasm-bindgen layer is exercised by test/kv_file*.test.ts).
use super::checksum::{PayloadHasher, PLACEHOLDER};
use super::format::*;
use std::collections::BTreeMap;

fn meta(layers: u32, kv_heads: u32, tokens: u32, head_dim: u32, dtype: Dtype) -> KvMeta {
    let mut extra = BTreeMap::new();
    extra.insert("note".to_string(), "héllo \"quoted\"\n".to_string());
    KvMeta {
        model_fingerprint: "m-0123".to_string(),
        tokenizer_fingerprint: "t-4567".to_string(),
        kind: Kind::Context,
        token_ids: (0..tokens).map(|i| i * 7919 % 151_000).collect(),
        first_pos: 12,
        prefix_hash: "p-89ab".to_string(),
        dtype,
        layers,
        kv_heads,
        head_dim,
        extra,
    }
}

/// Writes a whole file the way the streaming writer does: placeholder header, hash, patch.
fn write(m: &KvMeta, seed: u32) -> (Vec<u8>, Vec<u8>) {
    let mut h = build_header(m, None).unwrap();
    let payload: Vec<u8> = (0..h.layout.payload_len as u32).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 11) as u8).collect();
    let mut ph = PayloadHasher::new();
    for c in payload.chunks(333) {
        ph.update(c);
    }
    h.set_checksum(Some(ph.digest()));
    let mut file = h.bytes.clone();
    file.extend_from_slice(&payload);
    (file, payload)
}

#[test]
fn round_trip() {
    for dtype in [Dtype::F16, Dtype::BF16, Dtype::F32] {
        let m = meta(3, 2, 5, 8, dtype);
        let (file, _) = write(&m, 1);
        let p = check_file(&file).unwrap();
        assert_eq!(p.meta, m);
        assert_eq!(p.layout.data_start % 8, 0);
        assert_eq!(p.layout.tensor_len, 2 * 5 * 8 * dtype.size());
        assert_eq!(p.layout.file_len, file.len() as u64);
    }
}

#[test]
fn zero_tokens_round_trip() {
    let m = meta(2, 2, 0, 4, Dtype::F16);
    let (file, payload) = write(&m, 1);
    assert!(payload.is_empty());
    assert_eq!(check_file(&file).unwrap().meta.token_ids, Vec::<u32>::new());
}

#[test]
fn the_safetensors_crate_reads_our_files() {
    let m = meta(4, 2, 3, 4, Dtype::F32);
    let (file, payload) = write(&m, 9);
    let st = safetensors::SafeTensors::deserialize(&file).unwrap();
    let (_, md) = safetensors::SafeTensors::read_metadata(&file).unwrap();
    let kv = md.metadata().as_ref().unwrap();
    assert_eq!(kv.get("format").unwrap(), "apekit.kv");
    assert_eq!(kv.get("kind").unwrap(), "context");
    let tl = 2 * 3 * 4 * 4;
    for l in 0..4 {
        for (j, kvn) in ["k", "v"].iter().enumerate() {
            let t = st.tensor(&format!("{kvn}.{l}")).unwrap();
            assert_eq!(t.dtype(), safetensors::Dtype::F32);
            assert_eq!(t.shape(), &[2, 3, 4]);
            let off = (2 * l + j) * tl;
            assert_eq!(t.data(), &payload[off..off + tl]);
        }
    }
}

#[test]
fn unfinished_file_is_named() {
    let m = meta(1, 1, 2, 2, Dtype::F16);
    let h = build_header(&m, None).unwrap();
    let mut file = h.bytes.clone();
    file.extend(vec![0u8; h.layout.payload_len as usize]);
    let e = check_file(&file).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Corrupt);
    assert!(e.message.contains("never finished"), "{}", e.message);
    assert_eq!(&file[h.checksum_at..h.checksum_at + 16], PLACEHOLDER.as_bytes());
}

#[test]
fn writer_rejects_bad_input() {
    let mut m = meta(1, 1, 2, 2, Dtype::F16);
    m.model_fingerprint.clear();
    assert_eq!(build_header(&m, None).unwrap_err().kind, ErrorKind::Argument);
    let mut m = meta(1, 1, 2, 2, Dtype::F16);
    m.extra.insert("checksum".into(), "x".into());
    assert!(build_header(&m, None).unwrap_err().message.contains("reserved"));
    let mut m = meta(0, 1, 2, 2, Dtype::F16);
    assert!(build_header(&m, None).unwrap_err().message.contains("layers"));
    m = meta(65_536, 65_536, 300, 65_536, Dtype::F32);
    assert!(build_header(&m, None).unwrap_err().message.contains("too large"));
    m = meta(1 << 17, 1, 0, 1, Dtype::F32);
    assert!(build_header(&m, None).unwrap_err().message.contains("at most 65536"));
    m = meta(1, 1, 0, 1, Dtype::F32);
    m.token_ids = vec![4_000_000_000; 9_100_000];
    assert!(build_header(&m, None).unwrap_err().message.contains("too many for one file"));
    let mut m = meta(1, 1, 2, 2, Dtype::F16);
    m.first_pos = u32::MAX;
    assert!(build_header(&m, None).unwrap_err().message.contains("2^32"));
}

/// Replaces `from` by `to` in the header JSON, fixing the length field (not the checksums).
fn edit(file: &[u8], from: &str, to: &str) -> Vec<u8> {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let json = std::str::from_utf8(&file[8..8 + n]).unwrap();
    assert!(json.contains(from), "{from} not in header");
    let json = json.replacen(from, to, 1);
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(&file[8 + n..]);
    out
}

fn err(file: &[u8]) -> KvError {
    check_file(file).unwrap_err()
}

#[test]
fn corruption_messages_name_the_problem() {
    let m = meta(2, 2, 3, 4, Dtype::F16);
    let (file, _) = write(&m, 3);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (file[..5].to_vec(), "too short"),
        (file[..20].to_vec(), "truncated"),
        ({ let mut f = file.clone(); f[..8].copy_from_slice(&(200_000_000u64).to_le_bytes()); f }, "over the 100000000"),
        ({ let mut f = file.clone(); f[..8].copy_from_slice(&(1u64).to_le_bytes()); f }, "too small"),
        (file[..file.len() - 1].to_vec(), "truncated"),
        ({ let mut f = file.clone(); f.push(0); f }, "unexpected bytes after"),
        ({ let mut f = file.clone(); let l = f.len(); f[l - 1] ^= 1; f }, "payload checksum mismatch"),
        ({ let mut f = file.clone(); f[8] = b'['; f }, "does not start with '{'"),
        ({ let mut f = file.clone(); f[9] = 0xff; f }, "UTF-8"),
        (edit(&file, "\"__metadata__\"", "\"__metadata_x\""), "tensor \"__metadata_x\""),
        (edit(&file, "\"kind\":\"context\"", "\"kind\":\"contexx\""), "kind"),
        (edit(&file, "\"format_version\":\"1\"", "\"format_version\":\"2\""), "unsupported KV-cache format version 2"),
        (edit(&file, "\"format\":\"apekit.kv\"", "\"format\":\"other\""), "not an apekit KV-cache file"),
        (edit(&file, "\"dtype\":\"F16\",\"shape\"", "\"dtype\":\"F32\",\"shape\""), "has dtype \"F32\""),
        (edit(&file, "\"shape\":[2,3,4]", "\"shape\":[2,4,3]"), "has shape [2,4,3]"),
        (edit(&file, "\"data_offsets\":[0,48]", "\"data_offsets\":[0,47]"), "span 47 bytes"),
        (edit(&file, "\"data_offsets\":[48,96]", "\"data_offsets\":[40,88]"), "overlapping"),
        (edit(&file, "\"data_offsets\":[48,96]", "\"data_offsets\":[50,98]"), "leaving a gap"),
        (edit(&file, "\"data_offsets\":[48,96]", "\"data_offsets\":[96,48]"), "end before they start"),
        (edit(&file, "\"v.1\":", "\"w.1\":"), "tensor 'v.1' is missing"),
        (edit(&file, "\"layers\":\"2\"", "\"layers\":\"1\""), "metadata checksum mismatch"),
        (edit(&file, "\"tokens\":\"3\"", "\"tokens\":\"4\""), "tokens is 4 but token_ids lists 3"),
        (edit(&file, "\"tokens\":\"3\"", "\"tokens\":\"03\""), "tokens"),
        (edit(&file, "\"model_fingerprint\":\"m-0123\"", "\"model_fingerprint\":\"m-0124\""), "metadata checksum mismatch"),
        (edit(&file, "\"token_ids\":\"0,", "\"token_ids\":\"x,"), "item 0"),
        (edit(&file, "\"checksum_algo\":\"xxh3-64\"", "\"checksum_algo\":\"crc32\""), "checksum_algo"),
        (edit(&file, "{\"__metadata__\":{", "{\"__metadata__\":{\"kind\":\"prefix\","), "duplicate __metadata__ key \"kind\""),
        (edit(&file, ",\"v.1\":", ",\"k.0\":{},\"v.1\":"), "duplicate key \"k.0\""),
        (edit(&file, "\"dtype\":\"F16\",\"shape\"", "\"dtype\":\"F16\",\"strides\":[1],\"shape\""), "unknown field `strides`"),
        (edit(&file, "\"k.0\":{", "\"extra\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,0]},\"k.0\":{"), "unexpected tensor \"extra\""),
        (edit(&file, "}}", "}"), "not well-formed"),
    ];
    for (f, want) in cases {
        let e = err(&f);
        assert!(e.message.contains(want), "wanted {want:?}, got {:?}", e.message);
        let expected_kind = if want.starts_with("unsupported") { ErrorKind::Mismatch } else { ErrorKind::Corrupt };
        assert_eq!(e.kind, expected_kind, "{}", e.message);
    }
}

#[test]
fn semantically_equal_header_edits_load() {
    let m = meta(1, 1, 2, 2, Dtype::F16);
    let (file, _) = write(&m, 3);
    // Escaped spelling of a tensor name and extra whitespace: same header, still sound.
    let f = edit(&file, "\"k.0\":", "\"k\\u002e0\" : ");
    assert_eq!(check_file(&f).unwrap().meta, m);
}

/// xorshift, for deterministic mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutations_never_panic_and_never_load_wrong_data() {
    let m = meta(2, 2, 3, 4, Dtype::BF16);
    let (file, _) = write(&m, 5);
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut loaded = 0;
    for _ in 0..20_000 {
        let mut f = file.clone();
        for _ in 0..1 + rng.below(3) {
            match rng.below(6) {
                0 => {
                    let i = rng.below(f.len());
                    if let Some(b) = f.get_mut(i) {
                        *b ^= 1 << rng.below(8);
                    }
                }
                1 => f.truncate(rng.below(f.len() + 1)),
                2 => {
                    let i = rng.below(8);
                    if let Some(b) = f.get_mut(i) {
                        *b = rng.next() as u8;
                    }
                }
                3 => {
                    let i = rng.below(f.len());
                    f.insert(i, b"{}[],:\"0 "[rng.below(9)]);
                }
                4 => {
                    let i = rng.below(f.len());
                    if i < f.len() {
                        f.remove(i);
                    }
                }
                _ => f.extend(std::iter::repeat_n(0u8, rng.below(20))),
            }
        }
        if let Ok(p) = check_file(&f) {
            loaded += 1;
            assert_eq!(p.meta, m);
            assert_eq!(&f[p.layout.data_start as usize..], &file[file.len() - p.layout.payload_len as usize..]);
        }
    }
    assert!(loaded < 2_000, "{loaded}");
}

#[test]
fn header_length_bounds() {
    assert!(header_json_len(&[], None).unwrap_err().message.contains("too short"));
    assert!(header_json_len(&u64::MAX.to_le_bytes(), None).unwrap_err().message.contains("over the"));
    assert_eq!(header_json_len(&16u64.to_le_bytes(), None).unwrap(), 16);
    assert!(header_json_len(&16u64.to_le_bytes(), Some(20)).unwrap_err().message.contains("only 12 bytes"));
}

#[test]
fn meta_json_input() {
    let j = r#"{"modelFingerprint":"m","tokenizerFingerprint":"t","kind":"prefix","firstPos":0,"prefixHash":"","dtype":"F16","layers":1,"kvHeads":1,"headDim":2}"#;
    let m = super::meta_from_json(j, &[1, 2]).unwrap();
    assert_eq!(m.kind, Kind::Prefix);
    assert_eq!(m.token_ids, vec![1, 2]);
    let e = super::meta_from_json(&j.replace("F16", "F8"), &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Argument);
    assert!(super::meta_from_json(&j.replace("\"layers\"", "\"layerz\""), &[]).unwrap_err().message.contains("layerz"));
}
