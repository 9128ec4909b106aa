//! Streaming XXH3-64 (seed 0, default secret) whose inner loop uses wasm simd128.
//!
//! `xxhash-rust` only vectorises when the whole crate is built with `+simd128`; this module enables
//! the feature on its own stripe loop instead (`#[target_feature]`), so the crate's build flags stay
//! as they are. Every runtime apekit supports (Node >= 16.4, Deno, Bun) validates simd128; the
//! module would fail to load at all, never compute a wrong hash, on one that does not.
//! Results are identical to `xxhash_rust::xxh3::xxh3_64` (tested on the host with the scalar loop,
//! and in every runtime against the crate's own scalar build by test/kv_file.test.ts).
//!
//! Structure (XXH3 spec, "long" inputs > 240 bytes): 64-byte stripes accumulate into 8 lanes; after
//! 16 stripes (a 1024-byte block) the lanes are scrambled. A stripe is processed only once at least
//! one byte follows it, because the input's last 64 bytes are accumulated specially at the end.
//! Inputs of at most 240 bytes use the crate's short-input paths on a copy kept in `head`.
use xxhash_rust::xxh3::xxh3_64;

const STRIPE: usize = 64;
const STRIPES_PER_BLOCK: usize = 16;
const MID_SIZE_MAX: usize = 240;
const SECRET_LASTACC_START: usize = 7;
const SECRET_MERGEACCS_START: usize = 11;

const P32_1: u64 = 0x9E37_79B1;
const P32_2: u64 = 0x85EB_CA77;
const P32_3: u64 = 0xC2B2_AE3D;
const P64_1: u64 = 0x9E37_79B1_85EB_CA87;
const P64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P64_3: u64 = 0x1656_67B1_9E37_79F9;
const P64_4: u64 = 0x85EB_CA77_C2B2_AE63;
const P64_5: u64 = 0x27D4_EB2F_1656_67C5;
const INIT_ACC: [u64; 8] = [P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1];

/// XXH3's default 192-byte secret (kSecret).
const SECRET: [u8; 192] = [
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
];
const SCRAMBLE_AT: usize = SECRET.len() - STRIPE;

#[inline(always)]
fn read64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// One stripe, scalar (host builds, and the final stripe everywhere).
#[inline(always)]
fn accumulate_512_scalar(acc: &mut [u64; 8], stripe: &[u8], secret: &[u8]) {
    for i in 0..8 {
        let data = read64(stripe, 8 * i);
        let key = data ^ read64(secret, 8 * i);
        acc[i ^ 1] = acc[i ^ 1].wrapping_add(data);
        acc[i] = acc[i].wrapping_add((key & 0xFFFF_FFFF).wrapping_mul(key >> 32));
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn scramble_scalar(acc: &mut [u64; 8]) {
    for (i, a) in acc.iter_mut().enumerate() {
        let key = read64(&SECRET, SCRAMBLE_AT + 8 * i);
        *a = ((*a ^ (*a >> 47)) ^ key).wrapping_mul(P32_1);
    }
}

/// Processes `data.len() / 64` whole stripes starting at stripe `*in_block` of the current block.
#[cfg(not(target_arch = "wasm32"))]
fn process_stripes(acc: &mut [u64; 8], in_block: &mut usize, data: &[u8]) {
    for stripe in data.chunks_exact(STRIPE) {
        accumulate_512_scalar(acc, stripe, &SECRET[*in_block * 8..]);
        *in_block += 1;
        if *in_block == STRIPES_PER_BLOCK {
            scramble_scalar(acc);
            *in_block = 0;
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn process_stripes(acc: &mut [u64; 8], in_block: &mut usize, data: &[u8]) {
    // SAFETY: a module using simd128 only instantiates on an engine that implements it.
    unsafe { process_stripes_simd(acc, in_block, data) }
}

/// The simd128 version of `process_stripes`: the 8 lanes live in 4 v128 registers throughout.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
unsafe fn process_stripes_simd(acc: &mut [u64; 8], in_block: &mut usize, data: &[u8]) {
    use core::arch::wasm32::*;
    let n = data.len() / STRIPE;
    let p = data.as_ptr();
    let s = SECRET.as_ptr();
    let ap = acc.as_mut_ptr() as *mut v128;
    // v128_load/v128_store are unaligned accesses; every pointer below stays inside its slice:
    // stripe k reads data[64k..64k+64] (k < n), the secret reads [8j..8j+64] (j < 16) and
    // [128..192] for the scramble.
    let (mut a0, mut a1, mut a2, mut a3) = (v128_load(ap), v128_load(ap.add(1)), v128_load(ap.add(2)), v128_load(ap.add(3)));
    let prime = u64x2_splat(P32_1);
    let mut j = *in_block;
    // Two 16-byte lanes of a stripe: data d1, d2 with keys at k1, k2 update accumulators x, y.
    macro_rules! pair {
        ($d:expr, $key:expr, $i:expr, $x:ident, $y:ident) => {{
            let d1 = v128_load($d.add($i));
            let d2 = v128_load($d.add($i + 1));
            let k1 = v128_xor(d1, v128_load($key.add($i)));
            let k2 = v128_xor(d2, v128_load($key.add($i + 1)));
            let lo = i32x4_shuffle::<0, 2, 4, 6>(k1, k2);
            let hi = i32x4_shuffle::<1, 3, 5, 7>(k1, k2);
            $x = i64x2_add($x, i64x2_add(u64x2_extmul_low_u32x4(lo, hi), i64x2_shuffle::<1, 0>(d1, d1)));
            $y = i64x2_add($y, i64x2_add(u64x2_extmul_high_u32x4(lo, hi), i64x2_shuffle::<1, 0>(d2, d2)));
        }};
    }
    macro_rules! scramble {
        ($x:ident, $i:expr) => {{
            let m = v128_xor(v128_xor($x, u64x2_shr($x, 47)), v128_load((s.add(SCRAMBLE_AT) as *const v128).add($i)));
            $x = i64x2_mul(m, prime);
        }};
    }
    for k in 0..n {
        let d = p.add(k * STRIPE) as *const v128;
        let key = s.add(j * 8) as *const v128;
        pair!(d, key, 0, a0, a1);
        pair!(d, key, 2, a2, a3);
        j += 1;
        if j == STRIPES_PER_BLOCK {
            scramble!(a0, 0);
            scramble!(a1, 1);
            scramble!(a2, 2);
            scramble!(a3, 3);
            j = 0;
        }
    }
    v128_store(ap, a0);
    v128_store(ap.add(1), a1);
    v128_store(ap.add(2), a2);
    v128_store(ap.add(3), a3);
    *in_block = j;
}

fn mul128_fold64(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 37;
    h = h.wrapping_mul(0x1656_6791_9E37_79F9);
    h ^ (h >> 32)
}

/// Streaming XXH3-64, equal to `xxh3_64` of everything fed, for any chunking.
#[derive(Clone)]
pub struct Xxh3 {
    acc: [u64; 8],
    in_block: usize,
    /// Bytes of the current stripe not yet processed: 1..=64 once anything was fed.
    pending: [u8; STRIPE],
    pending_len: usize,
    /// The last 64 bytes fed (for the final stripe).
    tail: [u8; STRIPE],
    /// The first 240 bytes fed (for short inputs).
    head: [u8; MID_SIZE_MAX],
    total: u64,
}

impl Default for Xxh3 {
    fn default() -> Self {
        Self::new()
    }
}

impl Xxh3 {
    pub fn new() -> Self {
        Self {
            acc: INIT_ACC,
            in_block: 0,
            pending: [0; STRIPE],
            pending_len: 0,
            tail: [0; STRIPE],
            head: [0; MID_SIZE_MAX],
            total: 0,
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn update(&mut self, mut input: &[u8]) {
        if input.is_empty() {
            return;
        }
        if self.total < MID_SIZE_MAX as u64 {
            let at = self.total as usize;
            let take = (MID_SIZE_MAX - at).min(input.len());
            self.head[at..at + take].copy_from_slice(&input[..take]);
        }
        if input.len() >= STRIPE {
            self.tail.copy_from_slice(&input[input.len() - STRIPE..]);
        } else {
            let n = input.len();
            self.tail.copy_within(n.., 0);
            self.tail[STRIPE - n..].copy_from_slice(input);
        }
        self.total = self.total.wrapping_add(input.len() as u64);

        if self.pending_len > 0 {
            let take = (STRIPE - self.pending_len).min(input.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&input[..take]);
            self.pending_len += take;
            input = &input[take..];
            if input.is_empty() {
                return; // a full pending stripe waits until a byte follows it
            }
            let stripe = self.pending;
            process_stripes(&mut self.acc, &mut self.in_block, &stripe);
            self.pending_len = 0;
        }
        // Here input is non-empty: process every stripe that has at least one byte after it.
        let whole = (input.len() - 1) / STRIPE * STRIPE;
        process_stripes(&mut self.acc, &mut self.in_block, &input[..whole]);
        let rest = &input[whole..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    pub fn digest(&self) -> u64 {
        if self.total <= MID_SIZE_MAX as u64 {
            return xxh3_64(&self.head[..self.total as usize]);
        }
        let mut acc = self.acc;
        accumulate_512_scalar(&mut acc, &self.tail, &SECRET[SECRET.len() - STRIPE - SECRET_LASTACC_START..]);
        let mut r = self.total.wrapping_mul(P64_1);
        for i in 0..4 {
            let at = SECRET_MERGEACCS_START + 16 * i;
            r = r.wrapping_add(mul128_fold64(acc[2 * i] ^ read64(&SECRET, at), acc[2 * i + 1] ^ read64(&SECRET, at + 8)));
        }
        avalanche(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n as u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 29) as u8).collect()
    }

    #[test]
    fn equals_the_crate_for_every_length_around_the_boundaries() {
        let d = data(5000);
        let mut lens: Vec<usize> = (0..=300).collect();
        for b in [1024usize, 2048, 3072, 4096] {
            lens.extend(b - 70..b + 70);
        }
        lens.push(5000);
        for n in lens {
            let mut h = Xxh3::new();
            h.update(&d[..n]);
            assert_eq!(h.digest(), xxh3_64(&d[..n]), "len {n}");
        }
    }

    #[test]
    fn equals_the_crate_for_any_chunking() {
        let d = data(70_001);
        let want = xxh3_64(&d);
        for step in [1usize, 3, 63, 64, 65, 127, 128, 240, 241, 1000, 1024, 1025, 4096, 65_536] {
            let mut h = Xxh3::new();
            for c in d.chunks(step) {
                h.update(c);
            }
            assert_eq!(h.digest(), want, "step {step}");
        }
        // Irregular chunks, including empty ones.
        let mut h = Xxh3::new();
        let mut at = 0;
        let mut i = 0usize;
        while at < d.len() {
            let n = ((i * 7919) % 3000).min(d.len() - at);
            h.update(&d[at..at + n]);
            at += n;
            i += 1;
        }
        assert_eq!(h.digest(), want);
    }
}
