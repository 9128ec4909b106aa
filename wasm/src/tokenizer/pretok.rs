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

/// A text scanned by byte offset; chars are decoded on the fly (no per-char buffer, so a
/// 100 MB text costs no extra memory).
struct Text<'a> {
    s: &'a str,
    b: &'a [u8],
}

/// Sentinel class for "past the end": matches no class.
const END: u8 = 0x80;

impl<'a> Text<'a> {
    /// (char, class, byte length) at byte offset `i`; class END past the end.
    #[inline]
    fn at(&self, i: usize) -> (char, u8, usize) {
        if i >= self.b.len() {
            return ('\0', END, 0);
        }
        let x = self.b[i];
        if x < 0x80 {
            return (x as char, ASCII[x as usize], 1);
        }
        let c = self.s[i..].chars().next().unwrap_or('\0');
        (c, class_of(c), c.len_utf8())
    }
    #[inline]
    fn k(&self, i: usize) -> u8 {
        self.at(i).1
    }
    /// End of the run of chars from `i` whose class satisfies `f`.
    #[inline]
    fn run(&self, mut i: usize, f: impl Fn(u8) -> bool) -> usize {
        loop {
            let (_, k, n) = self.at(i);
            if k == END || !f(k) {
                return i;
            }
            i += n;
        }
    }
}

#[inline]
fn is_other(k: u8) -> bool {
    k & (L | N | S | END) == 0
}

/// Reused scratch space for the scanner (none is needed any more; kept for the API).
#[derive(Default)]
pub struct Scratch;

/// Splits `s` like `Split(pattern, Isolated)` would and calls `emit` on every piece in order.
pub fn split<'s>(p: Pattern, s: &'s str, _scratch: &mut Scratch, emit: &mut dyn FnMut(&'s str)) {
    let t = Text { s, b: s.as_bytes() };
    let n = s.len();
    let mut i = 0;
    while i < n {
        let j = match p {
            Pattern::Gpt2 => gpt2_at(&t, i),
            Pattern::Llama3 => llama3_at(&t, i, 3),
            Pattern::Qwen2 => llama3_at(&t, i, 1),
        };
        debug_assert!(j > i);
        emit(&s[i..j]);
        i = j;
    }
}

/// `\s+(?!\S)|\s+` at a whitespace char `i`: the whole run if it reaches the end of the text or
/// is one char long, else the run minus its last char.
#[inline]
fn ws_tail(t: &Text, i: usize) -> usize {
    let mut j = i;
    let mut last = i;
    let mut count = 0;
    loop {
        let (_, k, n) = t.at(j);
        if k == END || k & S == 0 {
            break;
        }
        last = j;
        j += n;
        count += 1;
    }
    if j == t.b.len() || count == 1 {
        j
    } else {
        last
    }
}

/// At an apostrophe `i`: the end of a contraction ('s 't 're 've 'm 'll 'd; `ci`: any case, as
/// the regex crate folds it, so also 'ſ'), or `i` if none.
fn contraction(t: &Text, i: usize, ci: bool) -> usize {
    let fold = |c: char| -> char {
        if !ci {
            return c;
        }
        match c {
            'S' | '\u{17F}' => 's',
            'T' | 'R' | 'E' | 'V' | 'M' | 'L' | 'D' => c.to_ascii_lowercase(),
            _ => c,
        }
    };
    let (c1, k1, n1) = t.at(i + 1);
    if k1 == END {
        return i;
    }
    let j = i + 1 + n1;
    let c2 = || {
        let (c, k, _) = t.at(j);
        if k == END { None } else { Some(fold(c)) }
    };
    match fold(c1) {
        's' | 't' | 'm' | 'd' => j,
        'r' | 'v' if c2() == Some('e') => j + 1,
        'l' if c2() == Some('l') => j + 1,
        _ => i,
    }
}

fn gpt2_at(t: &Text, i: usize) -> usize {
    let (c, k, n) = t.at(i);
    // 's|'t|'re|'ve|'m|'ll|'d
    if c == '\'' {
        let e = contraction(t, i, false);
        if e > i {
            return e;
        }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: the optional space only when the next char
    // starts one of them; otherwise the char at i itself must.
    let (start, k0) = if c == ' ' {
        let k1 = t.k(i + n);
        if k1 & (S | END) == 0 { (i + n, k1) } else { (i, k) }
    } else {
        (i, k)
    };
    if k0 & L != 0 {
        return t.run(start, |k| k & L != 0);
    }
    if k0 & N != 0 {
        return t.run(start, |k| k & N != 0);
    }
    if is_other(k0) {
        return t.run(start, is_other);
    }
    // `\s+(?!\S)|\s+`
    ws_tail(t, i)
}

fn llama3_at(t: &Text, i: usize, max_digits: usize) -> usize {
    let (c, k, n) = t.at(i);
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if c == '\'' {
        let e = contraction(t, i, true);
        if e > i {
            return e;
        }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if k & L != 0 {
        return t.run(i, |k| k & L != 0);
    }
    if k & N == 0 && c != '\r' && c != '\n' && t.k(i + n) & L != 0 {
        return t.run(i + n, |k| k & L != 0);
    }
    // \p{N}{1,max}
    if k & N != 0 {
        let mut j = i;
        for _ in 0..max_digits {
            let (_, kj, nj) = t.at(j);
            if kj & N == 0 || kj == END {
                break;
            }
            j += nj;
        }
        return j;
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    let start = if c == ' ' && is_other(t.k(i + n)) { i + n } else { i };
    if is_other(t.k(start)) {
        let mut j = t.run(start, is_other);
        while j < t.b.len() && matches!(t.b[j], b'\r' | b'\n') {
            j += 1;
        }
        return j;
    }
    // Here c is whitespace. `\s*[\r\n]+`: up to just after the last \r or \n of the run.
    let mut j = i;
    let mut after_nl = None;
    loop {
        let (cj, kj, nj) = t.at(j);
        if kj == END || kj & S == 0 {
            break;
        }
        j += nj;
        if cj == '\r' || cj == '\n' {
            after_nl = Some(j);
        }
    }
    if let Some(e) = after_nl {
        return e;
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
