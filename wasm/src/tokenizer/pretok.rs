//! Hand-written scanners for the pre-tokenizer regexes that byte-level BPE models use (GPT-2,
//! Llama-3, Qwen2/3). They produce exactly the splits that the `tokenizers` crate produces with
//! fancy-regex (the same Unicode tables: taken from regex-syntax at start-up), at a fraction of
//! the cost. Any other pattern goes through the crate itself. Tests compare both on random text.
use std::sync::OnceLock;

/// Character classes used by the patterns.
const L: u8 = 1; // \p{L}
const N: u8 = 2; // \p{N}
const S: u8 = 4; // \s (Unicode White_Space)
const W: u8 = 8; // \w (for single_word added tokens)

struct Classes {
    bmp: Vec<u8>,
    /// Sorted, non-overlapping ranges above U+FFFF: (start, end inclusive, flags).
    astral: Vec<(u32, u32, u8)>,
}

fn ranges(pattern: &str) -> Vec<(u32, u32)> {
    use regex_syntax::hir::{Class, HirKind};
    let hir = regex_syntax::parse(pattern).expect("static class pattern");
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)).collect(),
        _ => unreachable!("static class pattern"),
    }
}

fn classes() -> &'static Classes {
    static C: OnceLock<Classes> = OnceLock::new();
    C.get_or_init(|| {
        let mut bmp = vec![0u8; 0x10000];
        let mut astral_points: Vec<(u32, u32, u8)> = Vec::new();
        for (pat, flag) in [(r"[\p{L}]", L), (r"[\p{N}]", N), (r"[\s]", S), (r"[\w]", W)] {
            for (a, b) in ranges(pat) {
                for c in a..=b.min(0xFFFF) {
                    bmp[c as usize] |= flag;
                }
                if b > 0xFFFF {
                    astral_points.push((a.max(0x10000), b, flag));
                }
            }
        }
        // Merge the per-class astral ranges into disjoint pieces carrying combined flags.
        let mut bounds: Vec<u32> = astral_points.iter().flat_map(|&(a, b, _)| [a, b + 1]).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut astral = Vec::new();
        for w in bounds.windows(2) {
            let (a, b) = (w[0], w[1] - 1);
            let f = astral_points.iter().filter(|&&(x, y, _)| x <= a && b <= y).fold(0, |f, &(_, _, g)| f | g);
            if f != 0 {
                astral.push((a, b, f));
            }
        }
        Classes { bmp, astral }
    })
}

#[inline]
fn class_of(c: char) -> u8 {
    let cp = c as u32;
    let t = classes();
    if cp < 0x10000 {
        t.bmp[cp as usize]
    } else {
        match t.astral.binary_search_by(|&(a, b, _)| {
            if b < cp {
                std::cmp::Ordering::Less
            } else if a > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        }) {
            Ok(i) => t.astral[i].2,
            Err(_) => 0,
        }
    }
}

/// Forces the class tables to be built (so the first encode does not pay for it).
pub fn init() {
    classes();
}

pub fn is_whitespace(c: char) -> bool {
    class_of(c) & S != 0
}

pub fn is_word(c: char) -> bool {
    class_of(c) & W != 0
}

/// The split patterns we scan by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    Gpt2,
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    Llama3,
    /// The Llama-3 pattern with `\p{N}` instead of `\p{N}{1,3}` (Qwen2, Qwen2.5, Qwen3).
    Qwen2,
}

pub const GPT2_RE: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
pub const LLAMA3_RE: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub const QWEN2_RE: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

impl Pattern {
    pub fn from_regex(re: &str) -> Option<Pattern> {
        match re {
            GPT2_RE => Some(Pattern::Gpt2),
            LLAMA3_RE => Some(Pattern::Llama3),
            QWEN2_RE => Some(Pattern::Qwen2),
            _ => None,
        }
    }
}

/// A decoded text with random access by char index.
struct Chars<'a> {
    s: &'a str,
    /// (byte offset, char, class) of every char, plus a sentinel at the end.
    v: Vec<(usize, char, u8)>,
}

impl<'a> Chars<'a> {
    fn new(s: &'a str, buf: Vec<(usize, char, u8)>) -> Self {
        let mut v = buf;
        v.clear();
        v.extend(s.char_indices().map(|(i, c)| {
            let k = if (c as u32) < 0x80 { ASCII[c as usize] } else { class_of(c) };
            (i, c, k)
        }));
        Chars { s, v }
    }
    #[inline]
    fn len(&self) -> usize {
        self.v.len()
    }
    #[inline]
    fn c(&self, i: usize) -> char {
        self.v[i].1
    }
    #[inline]
    fn k(&self, i: usize) -> u8 {
        self.v[i].2
    }
    #[inline]
    fn off(&self, i: usize) -> usize {
        if i < self.v.len() {
            self.v[i].0
        } else {
            self.s.len()
        }
    }
}

/// Classes of the ASCII chars (fixed: \p{L} = letters, \p{N} = digits, \s = \t\n\v\f\r and space).
const ASCII: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        let mut f = 0;
        if c.is_ascii_alphabetic() {
            f |= L | W;
        }
        if c.is_ascii_digit() {
            f |= N | W;
        }
        if c == b'_' {
            f |= W;
        }
        if c == b' ' || (c >= 9 && c <= 13) {
            f |= S;
        }
        t[i] = f;
        i += 1;
    }
    t
};

#[inline]
fn is_other(k: u8) -> bool {
    k & (L | N | S) == 0
}

/// Reused scratch space for the scanner.
#[derive(Default)]
pub struct Scratch {
    chars: Vec<(usize, char, u8)>,
}

/// Splits `s` like `Split(pattern, Isolated)` would and calls `emit` on every piece in order.
pub fn split<'s>(p: Pattern, s: &'s str, scratch: &mut Scratch, emit: &mut dyn FnMut(&'s str)) {
    if s.is_empty() {
        return;
    }
    // Fast check for pure-ASCII-letter words is not needed: the scanner below is linear.
    let buf = std::mem::take(&mut scratch.chars);
    let t = Chars::new(s, buf);
    let n = t.len();
    let mut i = 0;
    while i < n {
        let j = match p {
            Pattern::Gpt2 => gpt2_at(&t, i),
            Pattern::Llama3 => llama3_at(&t, i, 3),
            Pattern::Qwen2 => llama3_at(&t, i, 1),
        };
        debug_assert!(j > i);
        emit(&s[t.off(i)..t.off(j)]);
        i = j;
    }
    scratch.chars = t.v;
}

/// End (exclusive, in chars) of the run of chars from `i` that satisfy `f`.
#[inline]
fn run(t: &Chars, mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    let n = t.len();
    while i < n && f(t.k(i)) {
        i += 1;
    }
    i
}

/// `\s+(?!\S)|\s+` at a whitespace char `i`: the whole run if it reaches the end of the text or
/// is one char long, else the run minus its last char.
#[inline]
fn ws_tail(t: &Chars, i: usize) -> usize {
    let j = run(t, i, |k| k & S != 0);
    if j == t.len() || j - i == 1 {
        j
    } else {
        j - 1
    }
}

fn contraction(t: &Chars, i: usize, ci: bool) -> usize {
    // i is at '\''. Returns the end of the contraction or i if none.
    let n = t.len();
    let lower = |k: usize| -> Option<char> {
        if k >= n {
            return None;
        }
        let c = t.c(k);
        if ci {
            match c {
                'S' | '\u{17F}' => Some('s'),
                'T' | 'R' | 'E' | 'V' | 'M' | 'L' | 'D' => Some(c.to_ascii_lowercase()),
                _ => Some(c),
            }
        } else {
            Some(c)
        }
    };
    match lower(i + 1) {
        Some('s') | Some('t') | Some('m') | Some('d') => i + 2,
        Some('r') if lower(i + 2) == Some('e') => i + 3,
        Some('v') if lower(i + 2) == Some('e') => i + 3,
        Some('l') if lower(i + 2) == Some('l') => i + 3,
        _ => i,
    }
}

fn gpt2_at(t: &Chars, i: usize) -> usize {
    let n = t.len();
    let c = t.c(i);
    let k = t.k(i);
    // 's|'t|'re|'ve|'m|'ll|'d
    if c == '\'' {
        let e = contraction(t, i, false);
        if e > i {
            return e;
        }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: the optional space only when the next char
    // starts one of them; otherwise the char at i itself must.
    let start = if c == ' ' && i + 1 < n && t.k(i + 1) & S == 0 { i + 1 } else { i };
    let k0 = t.k(start);
    if k0 & L != 0 {
        return run(t, start, |k| k & L != 0);
    }
    if k0 & N != 0 {
        return run(t, start, |k| k & N != 0);
    }
    if is_other(k0) {
        return run(t, start, is_other);
    }
    debug_assert!(k & S != 0);
    // `\s+(?!\S)|\s+`
    ws_tail(t, i)
}

fn llama3_at(t: &Chars, i: usize, max_digits: usize) -> usize {
    let n = t.len();
    let c = t.c(i);
    let k = t.k(i);
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if c == '\'' {
        let e = contraction(t, i, true);
        if e > i {
            return e;
        }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if k & L != 0 {
        return run(t, i, |k| k & L != 0);
    }
    if k & N == 0 && c != '\r' && c != '\n' && i + 1 < n && t.k(i + 1) & L != 0 {
        return run(t, i + 1, |k| k & L != 0);
    }
    // \p{N}{1,max}
    if k & N != 0 {
        let mut j = i;
        while j < n && j - i < max_digits && t.k(j) & N != 0 {
            j += 1;
        }
        return j;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    let start = if c == ' ' && i + 1 < n && is_other(t.k(i + 1)) { i + 1 } else { i };
    if is_other(t.k(start)) {
        let mut j = run(t, start, is_other);
        while j < n && matches!(t.c(j), '\r' | '\n') {
            j += 1;
        }
        return j;
    }
    // Here c is whitespace. `\s*[\r\n]+`: up to just after the last \r or \n of the run.
    let j = run(t, i, |k| k & S != 0);
    let mut last_nl = None;
    for m in i..j {
        if matches!(t.c(m), '\r' | '\n') {
            last_nl = Some(m);
        }
    }
    if let Some(m) = last_nl {
        return m + 1;
    }
    // `\s+(?!\S)|\s+`
    ws_tail(t, i)
}

/// `Digits` pre-tokenizer: splits off numeric chars (char::is_numeric), one per piece when
/// `individual`, else runs of them.
pub fn split_digits<'s>(s: &'s str, individual: bool, emit: &mut dyn FnMut(&'s str)) {
    let mut start = 0;
    let mut in_digits = false;
    for (i, c) in s.char_indices() {
        let d = c.is_numeric();
        if d && individual {
            if start < i {
                emit(&s[start..i]);
            }
            let e = i + c.len_utf8();
            emit(&s[i..e]);
            start = e;
        } else if d != in_digits {
            if start < i {
                emit(&s[start..i]);
            }
            start = i;
        }
        in_digits = d && !individual;
    }
    if start < s.len() {
        emit(&s[start..]);
    }
}
