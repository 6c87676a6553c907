//! The RSA public-key operation `s^e mod n` (RSAVP1, RFC 8017 §5.2.2) with the Montgomery
//! parameters computed once per key, and RSASSA-PKCS1-v1_5 verification on top of it.
//!
//! Why not the `rsa` crate's `verify`: for every signature it recomputes `R² mod n` (a long
//! division), builds a 16-entry window table and runs a generic windowed exponentiation — about
//! 56 Montgomery products plus the division and a dozen allocations, where `e = 65537` needs 17
//! products. Here `n`, `-n⁻¹ mod 2^W` and `R² mod n` are computed when the JWKS is parsed, and
//! verification is square-and-multiply over the bits of `e`.
//!
//! Limbs are `W` = 27 bits in `u32` words, multiplied into `u64`: wasm32 has a native 64-bit
//! multiply but no 64×64→128 one and no add-with-carry. With full 32-bit limbs every step of
//! the product carried two serial chains (`c1`, `c2`), each an add and a shift behind the last;
//! with 27-bit limbs a product is below 2⁵⁴, so a whole column of the Montgomery product (up to
//! `2k` products, `k` ≤ 511 limbs) adds up in one `u64` without any carry, and the carry is
//! settled once per column (product scanning with delayed carries). That alone means more limbs
//! (76 instead of 64 for 2048 bits) and is slower in V8; what pays is that, column by column, the
//! reduction stays fused with the product, so a squaring (16 of the 18 products for e = 65537)
//! takes each cross product once, doubled, with no extra pass (docs/performance.md, "RSA"; a
//! separate squaring pass over 32-bit limbs costs more than the products it saves).
//! Everything here works on public values (key, signature, message digest), so nothing needs to
//! be constant-time. The key's own parameters (`-n⁻¹ mod 2^W`, `R² mod n`) are computed here
//! too, on the same limbs: a general big-integer crate (`rsa` with `num-bigint-dig`) would add
//! ~50 KB to the module for one division per key. The arithmetic is checked against
//! `num-bigint-dig`'s `modpow` over random moduli of every size we accept (and sizes around
//! multiples of `W`), and the verification against the `rsa` crate's, in the tests below.
//!
//! In a wasm module built with `-C target-feature=+simd128` the column sums run on SIMD lanes,
//! four products per step through `i64x2.extmul_{low,high}_i32x4_u` (`dots_lanes`): RS256
//! ~36 % faster in V8 (~96 → ~61 µs). The scalar [`dot_scalar`] stays the fallback of every
//! other build and the reference: this crate's tests run the lane code on a portable twin of
//! the wasm lanes and check it against the scalar sum on every column.

use sha2::Digest;

use crate::ec_arith::less;

/// Bits per limb.
const W: u32 = 27;
/// The low `W` bits.
const MASK: u32 = (1 << W) - 1;
/// Most limbs of a modulus (13 797 bits; key validation accepts up to 8192): a column of the
/// Montgomery product adds at most `2k` products below `2^(2W)` and the carry of the column
/// before (below `2^(64-W)`), all in one `u64`.
const MAX_LIMBS: usize = (1 << (63 - 2 * W)) - 1;
const _: () = assert!(
    2 * (MAX_LIMBS as u128) * ((MASK as u128) * (MASK as u128)) + (1u128 << (64 - W))
        < (1u128 << 64)
);

/// Montgomery form of one RSA public key (a function of the key: equal keys, equal forms).
#[derive(Clone, PartialEq)]
pub(crate) struct MontKey {
    /// The modulus, little-endian `W`-bit limbs (`k` of them; the top one is non-zero).
    n: Vec<u32>,
    /// The same limbs, most significant first (see `mont_mul`).
    n_rev: Vec<u32>,
    /// `-n⁻¹ mod 2^W`.
    n0inv: u32,
    /// `R² mod n` with `R = 2^(Wk)`: multiplying by it enters Montgomery form.
    rr: Vec<u32>,
    /// The public exponent (`key::PublicKey::rsa` bounds it below 2³³).
    e: u64,
    /// Modulus length in bytes: the only accepted signature length.
    size: usize,
    /// Modulus length in bits (EMSA-PSS encodes into `bits - 1` bits).
    bits: usize,
}

impl MontKey {
    /// Precomputes the Montgomery parameters of the key with modulus `n` (big-endian bytes,
    /// leading zeros allowed) and exponent `e`. `None` for an even or zero modulus, one of more
    /// than `MAX_LIMBS` limbs (13 797 bits) or `e = 0` (the caller's validation refuses all
    /// three before).
    pub(crate) fn new(n: &[u8], e: u64) -> Option<MontKey> {
        let limbs = be_to_limbs(n);
        let (&n0, &top) = (limbs.first()?, limbs.last()?);
        if n0 & 1 == 0 || e == 0 || limbs.len() > MAX_LIMBS {
            return None;
        }
        // Newton's iteration for the inverse mod 2³² (so mod 2^W): n0 is its own inverse mod 8
        // (3 bits), and each step doubles the correct low bits (3 → 6 → 12 → 24 → 48).
        let mut inv: u32 = n0;
        for _ in 0..4 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let k = limbs.len();
        let bits = W as usize * k - (top.leading_zeros() - (32 - W)) as usize;
        let mut key = MontKey {
            n_rev: limbs.iter().rev().copied().collect(),
            n: limbs,
            n0inv: inv.wrapping_neg() & MASK,
            rr: Vec::new(),
            e,
            size: bits.div_ceil(8),
            bits,
        };
        key.rr = key.r_squared();
        Some(key)
    }

    /// Modulus length in bits.
    pub(crate) fn bits(&self) -> usize {
        self.bits
    }

    /// Modulus length in bytes (the length of every signature; tests only: `public_op` checks it).
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// `R² mod n` = Montgomery form of `2^(Wk)`, without a division: `2^(bits-1)` (below the odd
    /// n) is `2^(bits-1-Wk)·R`; doublings mod n take it to `2·R`, Montgomery form of 2. Then
    /// left to right over the bits of `Wk`: a Montgomery squaring doubles the exponent
    /// (`(2^j·R)²·R⁻¹ = 2^(2j)·R`), a doubling adds one. At most `W + 1` doublings, then
    /// ⌊log₂(Wk)⌋ squarings and at most as many doublings (11 + 1 for 2048 bits: `Wk` = 2052).
    fn r_squared(&self) -> Vec<u32> {
        let k = self.n.len();
        let r_bits = W as usize * k;
        let mut x = vec![0u32; k];
        let top = self.bits - 1;
        if let Some(limb) = x.get_mut(top / W as usize) {
            *limb = 1 << (top % W as usize);
        }
        for _ in 0..(r_bits - top + 1) {
            self.double_mod(&mut x);
        }
        let mut scratch = vec![0u32; 2 * k];
        let mut sq = vec![0u32; k];
        for bit in (0..usize::BITS - 1 - r_bits.leading_zeros()).rev() {
            self.mont_sqr(&mut sq, &x, &mut scratch);
            core::mem::swap(&mut x, &mut sq);
            if (r_bits >> bit) & 1 == 1 {
                self.double_mod(&mut x);
            }
        }
        x
    }

    /// `x = 2x mod n` for `x < n`.
    fn double_mod(&self, x: &mut [u32]) {
        let mut carry = 0u32;
        for limb in x.iter_mut() {
            let v = (*limb << 1) | carry;
            carry = v >> W;
            *limb = v & MASK;
        }
        if carry != 0 || !less(x, &self.n) {
            self.sub_n(x);
        }
    }

    /// `x -= n` on normalised limbs, for `n ≤ x < 2n` (the top limb may hold a bit more, or a
    /// carry out of it be dropped: the result fits `k` limbs either way).
    fn sub_n(&self, x: &mut [u32]) {
        let mut borrow = 0i64;
        for (xj, &nj) in x.iter_mut().zip(&self.n) {
            let d = i64::from(*xj) - i64::from(nj) + borrow;
            *xj = d as u32 & MASK;
            borrow = d >> W;
        }
    }

    /// RSAVP1: `sig^e mod n` as `size` big-endian bytes; `None` when the signature does not
    /// have exactly the modulus length or is not below the modulus (RFC 8017 §5.2.2 step 1).
    pub(crate) fn public_op(&self, sig: &[u8]) -> Option<Vec<u8>> {
        if sig.len() != self.size {
            return None;
        }
        let k = self.n.len();
        let mut x = be_to_limbs(sig);
        if x.len() > k {
            return None;
        }
        x.resize(k, 0);
        if !less(&x, &self.n) {
            return None;
        }
        let top = 63 - self.e.leading_zeros();
        if top == 0 {
            // e = 1 (never accepted as a key, but the arithmetic is total).
            return Some(limbs_to_be(&x, self.size));
        }
        let mut scratch = vec![0u32; 2 * k];
        let mut xm = vec![0u32; k];
        self.mont_mul(&mut xm, &x, &self.rr, &mut scratch);
        let mut acc = xm.clone();
        let mut tmp = vec![0u32; k];
        for bit in (1..top).rev() {
            self.mont_sqr(&mut tmp, &acc, &mut scratch);
            if (self.e >> bit) & 1 == 1 {
                self.mont_mul(&mut acc, &tmp, &xm, &mut scratch);
            } else {
                core::mem::swap(&mut acc, &mut tmp);
            }
        }
        // The last bit leaves Montgomery form on the way: (x^(e−1)·R)·x·R⁻¹ = x^e for an odd e
        // (every RSA exponent), (x^(e−1)·R)·1·R⁻¹ otherwise. One product fewer than converting
        // back at the end.
        self.mont_sqr(&mut tmp, &acc, &mut scratch);
        let last = if self.e & 1 == 1 {
            x
        } else {
            let mut one = vec![0u32; k];
            if let Some(low) = one.first_mut() {
                *low = 1;
            }
            one
        };
        self.mont_mul(&mut acc, &tmp, &last, &mut scratch);
        Some(limbs_to_be(&acc, self.size))
    }

    /// `out = a·b·R⁻¹ mod n`: Montgomery multiplication by columns (product scanning), the
    /// multiply and reduce products of one column summed in one `u64` (no carry between them,
    /// see `MAX_LIMBS`). Column `i < k` chooses the reduction limb `m[i]` that clears its low `W`
    /// bits; columns `k..2k` are the limbs of the result `(a·b + m·n) / R`, below `2n` for `a`,
    /// `b` < n, so one conditional subtraction ends it. `a`, `b` < n with normalised limbs, all
    /// of `k` limbs; `scratch` has `2k` (`m`, and `b` reversed so that both factors of a column
    /// run forwards, as `n_rev` does for `n`).
    fn mont_mul(&self, out: &mut [u32], a: &[u32], b: &[u32], scratch: &mut [u32]) {
        let n_rev = self.n_rev.as_slice();
        let k = n_rev.len();
        let (m, b_rev) = scratch.split_at_mut(k);
        for (r, &bj) in b_rev.iter_mut().zip(b.iter().rev()) {
            *r = bj;
        }
        let b_rev = &*b_rev;
        let (Some(&n0), Some(&b0)) = (n_rev.last(), b.first()) else {
            return;
        };
        let (n0, b0) = (u64::from(n0), u64::from(b0));
        let dots = Dots::new();
        let mut acc = 0u64;
        for i in 0..k {
            // Column i: a[j]·b[i−j] + m[j]·n[i−j] for j < i, b[i−j] = b_rev[k−1−i+j].
            let from = k - 1 - i;
            let (Some(&ai), Some(a_lo), Some(b_hi), Some(m_lo), Some(n_hi)) = (
                a.get(i),
                a.get(..i),
                b_rev.get(from..k - 1),
                m.get(..i),
                n_rev.get(from..k - 1),
            ) else {
                return;
            };
            acc += dots.sum::<1>(a_lo, b_hi, m_lo, n_hi) + u64::from(ai) * b0;
            let mi = (acc as u32).wrapping_mul(self.n0inv) & MASK;
            acc += u64::from(mi) * n0;
            if let Some(slot) = m.get_mut(i) {
                *slot = mi;
            }
            acc >>= W;
        }
        for (i, o) in out.iter_mut().enumerate().take(k) {
            // Column k+i: j from i+1 to k−1, b[k+i−j] = b_rev[j−i−1].
            let (lo, len) = (i + 1, k - 1 - i);
            let (Some(a_hi), Some(b_lo), Some(m_hi), Some(n_lo)) =
                (a.get(lo..), b_rev.get(..len), m.get(lo..), n_rev.get(..len))
            else {
                return;
            };
            acc += dots.sum::<1>(a_hi, b_lo, m_hi, n_lo);
            *o = acc as u32 & MASK;
            acc >>= W;
        }
        // The result's bits from W·k on (at most one: it is below 2n < 2^(Wk+1)).
        if acc != 0 || !less(out, &self.n) {
            self.sub_n(out);
        }
    }

    /// `out = a²·R⁻¹ mod n`: [`Self::mont_mul`] with `b = a`, where each column's products
    /// `a[j]·a[i−j]` come in equal pairs: half of them, doubled, plus the middle square. The
    /// column sums are the same numbers, so the same bound holds. `scratch` has `2k`.
    fn mont_sqr(&self, out: &mut [u32], a: &[u32], scratch: &mut [u32]) {
        let n_rev = self.n_rev.as_slice();
        let k = n_rev.len();
        let (m, a_rev) = scratch.split_at_mut(k);
        for (r, &aj) in a_rev.iter_mut().zip(a.iter().rev()) {
            *r = aj;
        }
        let a_rev = &*a_rev;
        let Some(&n0) = n_rev.last() else {
            return;
        };
        let n0 = u64::from(n0);
        let dots = Dots::new();
        let mut acc = 0u64;
        for i in 0..k {
            // Column i: 2·a[j]·a[i−j] for j < i − j, a[i/2]² for an even i, m[j]·n[i−j] for j < i.
            let (from, half) = (k - 1 - i, i.div_ceil(2));
            let (Some(a_lo), Some(a_hi), Some(m_lo), Some(n_hi)) = (
                a.get(..half),
                a_rev.get(from..from + half),
                m.get(..i),
                n_rev.get(from..k - 1),
            ) else {
                return;
            };
            acc += dots.sum::<2>(a_lo, a_hi, m_lo, n_hi) + middle_square(a, i);
            let mi = (acc as u32).wrapping_mul(self.n0inv) & MASK;
            acc += u64::from(mi) * n0;
            if let Some(slot) = m.get_mut(i) {
                *slot = mi;
            }
            acc >>= W;
        }
        for (i, o) in out.iter_mut().enumerate().take(k) {
            // Column c = k+i: j from i+1 while j < c − j, a[c−j] = a_rev[j−i−1].
            let c = k + i;
            let (lo, len) = (i + 1, k - 1 - i);
            let half = c.div_ceil(2).saturating_sub(lo);
            let (Some(a_lo), Some(a_hi), Some(m_hi), Some(n_lo)) = (
                a.get(lo..lo + half),
                a_rev.get(..half),
                m.get(lo..),
                n_rev.get(..len),
            ) else {
                return;
            };
            acc += dots.sum::<2>(a_lo, a_hi, m_hi, n_lo) + middle_square(a, c);
            *o = acc as u32 & MASK;
            acc >>= W;
        }
        if acc != 0 || !less(out, &self.n) {
            self.sub_n(out);
        }
    }
}

/// The two sums of limb products of one Montgomery column, `F·Σ a[j]·b[j] + Σ c[j]·d[j]` (`F` is
/// 1, or 2 for the paired products of a squaring; each pair of slices of one length): on wasm
/// SIMD128 lanes (`dots_lanes`) in a module built with `-C target-feature=+simd128`, scalar
/// ([`dot_scalar`]) everywhere else. Made once per product: on SIMD it holds the opaque zero
/// that `lanes::load` needs.
#[derive(Clone, Copy)]
struct Dots {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    z: lanes::U32x4,
}

impl Dots {
    #[inline(always)]
    fn new() -> Dots {
        Dots {
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            z: lanes::opaque_zero(),
        }
    }

    /// `F·Σ a·b + Σ c·d`: `dots_lanes` on SIMD, [`dot_scalar`] otherwise; in this crate's
    /// tests both, checked against each other on every column (`tests::dots_checked`).
    #[inline(always)]
    fn sum<const F: u64>(self, a: &[u32], b: &[u32], c: &[u32], d: &[u32]) -> u64 {
        #[cfg(test)]
        {
            let _ = self;
            tests::dots_checked::<F>(a, b, c, d)
        }
        #[cfg(all(not(test), target_arch = "wasm32", target_feature = "simd128"))]
        {
            dots_lanes::<F>(self.z, a, b, c, d)
        }
        #[cfg(all(
            not(test),
            not(all(target_arch = "wasm32", target_feature = "simd128"))
        ))]
        {
            let _ = self;
            F * dot_scalar(a, b) + dot_scalar(c, d)
        }
    }
}

/// [`Dots::sum`] four products per step in two `u64` lanes: `u64x2_extmul_low_u32x4` and
/// `_high` multiply limbs 0, 1 and 2, 3 of two 4-limb vectors into two 64-bit lanes each. Both
/// sums go into one pair of lanes (the first doubled before the second is added), each lane
/// holding a part of the column's sum (below 2⁶⁴, see `MAX_LIMBS`, so no part can overflow);
/// the lanes are added once at the end, the last `len mod 4` products of each sum scalar.
/// Written against `lanes`, whose portable twin lets the native tests run this same code.
/// `z` is `lanes::opaque_zero`.
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn dots_lanes<const F: u64>(z: lanes::U32x4, a: &[u32], b: &[u32], c: &[u32], d: &[u32]) -> u64 {
    const { assert!(F == 1 || F == 2) };
    let (mut acc, mut tail) = dot_lanes(lanes::zero(), z, a, b);
    if F == 2 {
        acc = lanes::add(acc, acc);
        tail *= 2;
    }
    let (acc, tail_cd) = dot_lanes(acc, z, c, d);
    lanes::sum(acc) + tail + tail_cd
}

/// `Σ a[j]·b[j]` as lanes added to `acc` (the whole 4-limb chunks) and a scalar sum (the rest).
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn dot_lanes(mut acc: lanes::U64x2, z: lanes::U32x4, a: &[u32], b: &[u32]) -> (lanes::U64x2, u64) {
    let (a4, a1) = a.as_chunks::<4>();
    let (b4, b1) = b.as_chunks::<4>();
    for (x, y) in a4.iter().zip(b4) {
        let (x, y) = (lanes::load(x, z), lanes::load(y, z));
        acc = lanes::add(acc, lanes::add(lanes::mul_low(x, y), lanes::mul_high(x, y)));
    }
    let mut tail = 0u64;
    for (&x, &y) in a1.iter().zip(b1) {
        tail += u64::from(x) * u64::from(y);
    }
    (acc, tail)
}

/// The few wasm SIMD128 operations `dot_lanes` uses: `core::arch::wasm32` in a module built
/// with `+simd128`, otherwise (native tests) arrays with the same lane semantics.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use core::arch::wasm32::{
        i32x4_add, u32x4, u32x4_splat, u64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4,
        u64x2_extract_lane, u64x2_splat, v128,
    };
    /// Four `u32` lanes.
    pub(super) type U32x4 = v128;
    /// Two `u64` lanes.
    pub(super) type U64x2 = v128;
    #[inline(always)]
    pub(super) fn zero() -> U64x2 {
        u64x2_splat(0)
    }
    /// Zero in every lane, which the compiler cannot see is zero (see `load`).
    #[inline(always)]
    pub(super) fn opaque_zero() -> U32x4 {
        u32x4_splat(core::hint::black_box(0))
    }
    /// Four limbs, plus `z` (zero): without the add, LLVM folds the zero extension of
    /// `extmul` into the loads (`v128.load32x2_u`) and multiplies with `i64x2.mul`, which V8
    /// emulates with three `pmuludq` and shifts on x64: RS256 12 % slower than scalar code.
    #[inline(always)]
    pub(super) fn load(&[x0, x1, x2, x3]: &[u32; 4], z: U32x4) -> U32x4 {
        i32x4_add(u32x4(x0, x1, x2, x3), z)
    }
    /// Lanes 0, 1 of `x`, `y` multiplied into 64 bits.
    #[inline(always)]
    pub(super) fn mul_low(x: U32x4, y: U32x4) -> U64x2 {
        u64x2_extmul_low_u32x4(x, y)
    }
    /// Lanes 2, 3 of `x`, `y` multiplied into 64 bits.
    #[inline(always)]
    pub(super) fn mul_high(x: U32x4, y: U32x4) -> U64x2 {
        u64x2_extmul_high_u32x4(x, y)
    }
    /// Lane-wise (wrapping) sum.
    #[inline(always)]
    pub(super) fn add(x: U64x2, y: U64x2) -> U64x2 {
        u64x2_add(x, y)
    }
    /// The sum of both lanes.
    #[inline(always)]
    pub(super) fn sum(x: U64x2) -> u64 {
        u64x2_extract_lane::<0>(x).wrapping_add(u64x2_extract_lane::<1>(x))
    }
}

/// The portable twin of the wasm `lanes` (same names, same lane semantics), for the tests.
#[cfg(all(test, not(all(target_arch = "wasm32", target_feature = "simd128"))))]
mod lanes {
    pub(super) type U32x4 = [u32; 4];
    pub(super) type U64x2 = [u64; 2];
    pub(super) fn zero() -> U64x2 {
        [0; 2]
    }
    pub(super) fn opaque_zero() -> U32x4 {
        [0; 4]
    }
    pub(super) fn load(x: &[u32; 4], [z0, z1, z2, z3]: U32x4) -> U32x4 {
        let [x0, x1, x2, x3] = *x;
        [
            x0.wrapping_add(z0),
            x1.wrapping_add(z1),
            x2.wrapping_add(z2),
            x3.wrapping_add(z3),
        ]
    }
    pub(super) fn mul_low([x0, x1, _, _]: U32x4, [y0, y1, _, _]: U32x4) -> U64x2 {
        [u64::from(x0) * u64::from(y0), u64::from(x1) * u64::from(y1)]
    }
    pub(super) fn mul_high([_, _, x2, x3]: U32x4, [_, _, y2, y3]: U32x4) -> U64x2 {
        [u64::from(x2) * u64::from(y2), u64::from(x3) * u64::from(y3)]
    }
    pub(super) fn add([x0, x1]: U64x2, [y0, y1]: U64x2) -> U64x2 {
        [x0.wrapping_add(y0), x1.wrapping_add(y1)]
    }
    pub(super) fn sum([x0, x1]: U64x2) -> u64 {
        x0.wrapping_add(x1)
    }
}

/// `Σ a[j]·b[j]` over slices of one length, four steps at a time: the products are independent
/// and their sum is one add away from the column's. The reference and the fallback of
/// `dot_lanes`.
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128"),
    allow(dead_code)
)]
#[inline(always)]
fn dot_scalar(a: &[u32], b: &[u32]) -> u64 {
    let p = |x: u32, y: u32| u64::from(x) * u64::from(y);
    let (a4, a1) = a.as_chunks::<4>();
    let (b4, b1) = b.as_chunks::<4>();
    let mut acc = 0u64;
    for ([a0, a1, a2, a3], [b0, b1, b2, b3]) in a4.iter().zip(b4) {
        acc += (p(*a0, *b0) + p(*a1, *b1)) + (p(*a2, *b2) + p(*a3, *b3));
    }
    for (&x, &y) in a1.iter().zip(b1) {
        acc += p(x, y);
    }
    acc
}

/// Verifies RSASSA-PKCS1-v1_5 (RFC 8017 §8.2.2) for a digest `hashed` whose DigestInfo prefix is
/// `prefix`: `sig^e mod n` must be exactly `00 01 FF…FF 00 || prefix || hashed`.
pub(crate) fn pkcs1v15_verify(key: &MontKey, prefix: &[u8], hashed: &[u8], sig: &[u8]) -> bool {
    let t_len = prefix.len() + hashed.len();
    if key.size < t_len + 11 {
        return false;
    }
    let Some(em) = key.public_op(sig) else {
        return false;
    };
    let ps_len = key.size - t_len - 3;
    let expected = [0x00u8, 0x01]
        .iter()
        .chain(core::iter::repeat_n(&0xffu8, ps_len))
        .chain(core::iter::once(&0x00u8))
        .chain(prefix)
        .chain(hashed);
    em.len() == key.size && em.iter().eq(expected)
}

/// Verifies RSASSA-PSS (RFC 8017 §8.1.2, EMSA-PSS-VERIFY §9.1.2) with MGF1 over the same hash and
/// a salt as long as the hash (RFC 7518 §3.5), for the digest `m_hash` of the message.
pub(crate) fn pss_verify<D: Digest>(key: &MontKey, m_hash: &[u8], sig: &[u8]) -> bool {
    pss_verify_with(
        key,
        hash_parts::<D>,
        <D as Digest>::output_size(),
        m_hash,
        sig,
    )
}

/// A hash function over the concatenation of its arguments (SHA-256, -384 or -512).
type HashParts = fn(&[&[u8]]) -> Vec<u8>;

/// `D` over the concatenation of `parts`.
fn hash_parts<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut hasher = D::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// [`pss_verify`] with the hash as a function pointer: one copy of EMSA-PSS and MGF1 in the
/// module instead of one per hash (~6 KB), for the cost of a few indirect calls and small
/// allocations per verification (MGF1 hashes ⌈emLen / hLen⌉ blocks), nothing next to the modular
/// exponentiation.
/// `h_len` is the output length of `hash`.
fn pss_verify_with(
    key: &MontKey,
    hash: HashParts,
    h_len: usize,
    m_hash: &[u8],
    sig: &[u8],
) -> bool {
    let s_len = h_len;
    let em_bits = key.bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    if m_hash.len() != h_len || em_len < h_len + s_len + 2 {
        return false;
    }
    let Some(m) = key.public_op(sig) else {
        return false;
    };
    // I2OSP(m, emLen): m has ceil(bits/8) bytes, one more than emLen when bits ≡ 1 (mod 8).
    let Some((lead, em)) = m.split_at_checked(m.len().saturating_sub(em_len)) else {
        return false;
    };
    if lead.iter().any(|&b| b != 0) || em.len() != em_len {
        return false;
    }
    let Some((&0xbc, rest)) = em.split_last() else {
        return false;
    };
    let db_len = em_len - h_len - 1;
    let Some((masked_db, h)) = rest.split_at_checked(db_len) else {
        return false;
    };
    // The leftmost 8·emLen − emBits bits of maskedDB must be zero.
    let top_mask = 0xffu8 >> (8 * em_len - em_bits);
    if masked_db.first().is_some_and(|&b| b & !top_mask != 0) {
        return false;
    }
    let mut db: Vec<u8> = masked_db
        .iter()
        .zip(mgf1(hash, h, db_len))
        .map(|(m, k)| m ^ k)
        .collect();
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    // DB = PS (zeros) || 0x01 || salt.
    let ps_len = db_len - s_len - 1;
    let Some((ps, tail)) = db.split_at_checked(ps_len) else {
        return false;
    };
    let Some((&0x01, salt)) = tail.split_first() else {
        return false;
    };
    if ps.iter().any(|&b| b != 0) {
        return false;
    }
    let expected = hash(&[&[0u8; 8], m_hash, salt]);
    expected == *h
}

/// MGF1 (RFC 8017 B.2.1) with `hash`: `len` bytes from `seed`.
fn mgf1(hash: HashParts, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend_from_slice(&hash(&[seed, &counter.to_be_bytes()]));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// The square in the middle of column `c` of `a²`: `a[c/2]²` for an even `c`, else none.
fn middle_square(a: &[u32], c: usize) -> u64 {
    if c.is_multiple_of(2) {
        a.get(c / 2).map_or(0, |&x| u64::from(x) * u64::from(x))
    } else {
        0
    }
}

/// Big-endian bytes → little-endian `W`-bit limbs, without leading zero limbs.
fn be_to_limbs(bytes: &[u8]) -> Vec<u32> {
    let mut limbs = Vec::with_capacity(bytes.len() * 8 / W as usize + 1);
    let (mut acc, mut held) = (0u64, 0u32);
    for &byte in bytes.iter().rev() {
        acc |= u64::from(byte) << held;
        held += 8;
        if held >= W {
            limbs.push(acc as u32 & MASK);
            acc >>= W;
            held -= W;
        }
    }
    if held > 0 {
        limbs.push(acc as u32);
    }
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    limbs
}

/// Little-endian `W`-bit limbs → exactly `size` big-endian bytes (the value fits: it is below n).
fn limbs_to_be(limbs: &[u32], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 4);
    let (mut acc, mut held) = (0u64, 0u32);
    for &limb in limbs {
        acc |= u64::from(limb) << held;
        held += W;
        while held >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            held -= 8;
        }
    }
    if held > 0 {
        out.push(acc as u8);
    }
    out.resize(size, 0);
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::BigUint;
    use rsa::traits::PublicKeyParts as _;

    /// [`Dots::sum`] in tests: the SIMD path's logic (`dots_lanes`, natively on the portable
    /// `lanes`) must give the scalar reference's sum on every column of every product.
    pub(super) fn dots_checked<const F: u64>(a: &[u32], b: &[u32], c: &[u32], d: &[u32]) -> u64 {
        let sum = F * dot_scalar(a, b) + dot_scalar(c, d);
        let lanes = dots_lanes::<F>(lanes::opaque_zero(), a, b, c, d);
        assert_eq!(
            lanes,
            sum,
            "dots_lanes differs, lengths {} and {}",
            a.len(),
            c.len()
        );
        sum
    }

    #[test]
    fn dots_lanes_match_dot_scalar_for_every_length() {
        let mut rng = Rng(0x51d1);
        let mut limbs =
            |len: usize| -> Vec<u32> { (0..len).map(|_| rng.next() as u32 & MASK).collect() };
        // A column adds at most `2k` products (`k` ≤ MAX_LIMBS); in a squaring the doubled
        // pairs run over half the length of the reduction's.
        for len in 0..=MAX_LIMBS {
            let other = (len * 7 + 3) % (MAX_LIMBS + 1);
            let (a, b, c, d) = (limbs(len), limbs(len), limbs(other), limbs(other));
            let (half, other_half) = (len / 2, other / 2);
            dots_checked::<1>(&a, &b, &c, &d);
            dots_checked::<2>(&a[..half], &b[..half], &c, &d);
            dots_checked::<2>(&c[..other_half], &d[..other_half], &a, &b);
            // The largest column sums (all limbs MASK): no lane may lose a carry.
            let ones = vec![MASK; len];
            let max = u64::from(MASK) * u64::from(MASK);
            assert_eq!(
                dots_checked::<1>(&ones, &ones, &ones, &ones),
                2 * len as u64 * max
            );
            assert_eq!(
                dots_checked::<2>(&ones[..half], &ones[..half], &ones, &ones),
                (2 * half + len) as u64 * max
            );
        }
    }

    use super::super::test_rng::Rng;

    /// A random odd modulus of exactly `bits` bits (not a real RSA modulus: the Montgomery
    /// arithmetic does not care, and `RsaPublicKey::new_unchecked` does not check primality).
    fn modulus(rng: &mut Rng, bits: usize) -> BigUint {
        let mut bytes = rng.bytes(bits.div_ceil(8));
        let extra = bytes.len() * 8 - bits;
        bytes[0] &= 0xff >> extra;
        bytes[0] |= 0x80 >> extra;
        *bytes.last_mut().unwrap() |= 1;
        BigUint::from_bytes_be(&bytes)
    }

    #[test]
    fn public_op_matches_modpow_for_every_size_and_exponent() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        // Around multiples of W too (2052 = 76·27, 2079 = 77·27, 8181 = 303·27): a top limb
        // full, with one bit, or one bit short, and a signature length whose 8·size bits exceed
        // W·k (2052 bits: 257 bytes).
        for bits in [
            2048, 2050, 2051, 2052, 2053, 2079, 3072, 4096, 4100, 8181, 8182, 8192,
        ] {
            // 1 and even exponents too: the arithmetic must be total, and the last bit has two paths.
            for e in [1u64, 2, 3, 17, 65_536, 65_537, (1 << 32) + 1, (1 << 33) - 1] {
                let n = modulus(&mut rng, bits);
                let mont = MontKey::new(&n.to_bytes_be(), e).unwrap();
                let size = bits.div_ceil(8);
                assert_eq!((mont.bits(), mont.size()), (bits, size));
                // The parameters, against num-bigint-dig.
                let k = mont.n.len();
                let r = BigUint::from(1u8) << (W as usize * k);
                assert_eq!(
                    limbs_to_big(&mont.rr),
                    (&r * &r) % &n,
                    "R² mod n, {bits} bits"
                );
                let n0 = u64::from(mont.n[0]);
                assert_eq!(
                    (n0 * u64::from(mont.n0inv)) as u32 & MASK,
                    MASK,
                    "-n⁻¹ mod 2^W"
                );
                for case in 0..4 {
                    let x = match case {
                        0 => BigUint::from(0u8),
                        1 => BigUint::from(1u8),
                        2 => &n - 1u8,
                        _ => BigUint::from_bytes_be(&rng.bytes(size)) % &n,
                    };
                    let mut sig = x.to_bytes_be();
                    while sig.len() < size {
                        sig.insert(0, 0);
                    }
                    let want = x.modpow(&BigUint::from(e), &n).to_bytes_be();
                    let got = mont.public_op(&sig).unwrap();
                    assert_eq!(got.len(), size);
                    assert_eq!(
                        BigUint::from_bytes_be(&got).to_bytes_be(),
                        want,
                        "{bits} bits, e={e}, case {case}"
                    );
                }
                // Out of range or of the wrong length: refused.
                let mut at_n = n.to_bytes_be();
                while at_n.len() < size {
                    at_n.insert(0, 0);
                }
                assert!(mont.public_op(&at_n).is_none(), "s = n");
                assert!(mont.public_op(&vec![0xff; size]).is_none(), "s > n");
                assert!(mont.public_op(&vec![0; size - 1]).is_none(), "short");
                assert!(mont.public_op(&vec![0; size + 1]).is_none(), "long");
            }
        }
    }

    /// Every product at its largest: moduli of all-ones limbs (`2^bits − 1`, bits around
    /// multiples of W, up to the `MAX_LIMBS` bound where a column's sum comes closest to 2⁶⁴)
    /// raised from values with all-ones limbs, n − 1 and n − 2. One limb more is refused.
    #[test]
    fn all_ones_limbs_and_the_largest_modulus() {
        let max_bits = W as usize * MAX_LIMBS;
        for bits in [2052, 2053, 2079, 8181, 8192, max_bits - 1, max_bits] {
            let n = (BigUint::from(1u8) << bits) - 1u8;
            let size = bits.div_ceil(8);
            for e in [3u64, 65_537] {
                let mont = MontKey::new(&n.to_bytes_be(), e).unwrap();
                let (top, below) = mont.n.split_last().unwrap();
                assert!(below.iter().all(|&l| l == MASK), "{bits} bits");
                assert_eq!(*top, MASK >> (W as usize * mont.n.len() - bits));
                let r = BigUint::from(1u8) << (W as usize * mont.n.len());
                assert_eq!(limbs_to_big(&mont.rr), (&r * &r) % &n, "R², {bits} bits");
                let ones = |limbs: usize| (BigUint::from(1u8) << (W as usize * limbs)) - 1u8;
                let k = mont.n.len();
                for x in [&n - 1u8, &n - 2u8, ones(k - 1), ones(k / 2), &n >> 1] {
                    let mut sig = x.to_bytes_be();
                    while sig.len() < size {
                        sig.insert(0, 0);
                    }
                    let got = BigUint::from_bytes_be(&mont.public_op(&sig).unwrap());
                    assert_eq!(got, x.modpow(&BigUint::from(e), &n), "{bits} bits, e={e}");
                }
            }
        }
        let too_long = (BigUint::from(1u8) << (max_bits + 1)) - 1u8;
        assert!(MontKey::new(&too_long.to_bytes_be(), 3).is_none());
        let longest = (BigUint::from(1u8) << max_bits) - 1u8;
        assert!(MontKey::new(&longest.to_bytes_be(), 3).is_some());
    }

    /// Limb conversions, both ways, at every alignment of bytes to W-bit limbs.
    #[test]
    fn limbs_round_trip() {
        let mut rng = Rng(2718);
        for len in 0..=40 {
            let bytes = rng.bytes(len);
            let limbs = be_to_limbs(&bytes);
            assert!(limbs.iter().all(|&l| l <= MASK));
            assert!(limbs.last().is_none_or(|&l| l != 0));
            assert_eq!(limbs_to_be(&limbs, len), bytes);
            assert_eq!(limbs_to_big(&limbs), BigUint::from_bytes_be(&bytes));
        }
    }

    /// Istio's public test key (tests/fixtures/istio): a real-world 2048-bit key.
    fn istio_private_key() -> rsa::RsaPrivateKey {
        meshguard_test_support::istio_rsa_key().clone()
    }

    /// The fast PKCS#1 v1.5 check agrees with the `rsa` crate's on genuine signatures, on every
    /// single-bit corruption of one, on out-of-range values and on the wrong hash prefix.
    #[test]
    fn pkcs1v15_agrees_with_the_rsa_crate() {
        use rsa::Pkcs1v15Sign;
        use sha2_ref::{Digest as _, Sha256, Sha384};
        let private = istio_private_key();
        let public = private.to_public_key();
        let mont = mont_of(&public);
        let agree = |prefix: Pkcs1v15Sign, digest: &[u8], sig: &[u8]| {
            let theirs = public.verify(prefix.clone(), digest, sig).is_ok();
            let ours = pkcs1v15_verify(&mont, &prefix.prefix, digest, sig);
            assert_eq!(ours, theirs, "sig {:02x?}…", &sig[..sig.len().min(4)]);
            ours
        };
        let mut rng = Rng(77);
        for round in 0..6 {
            let digest = Sha256::digest(rng.bytes(40 + round));
            let sig = private
                .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
                .unwrap();
            assert!(agree(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig));
            // The same signature is not one over SHA-384 DigestInfo.
            let d384 = Sha384::digest(digest);
            assert!(!agree(Pkcs1v15Sign::new::<Sha384>(), &d384, &sig));
            // Another digest.
            let mut other = digest;
            other[round] ^= 1;
            assert!(!agree(Pkcs1v15Sign::new::<Sha256>(), &other, &sig));
            for bit in (0..sig.len() * 8).step_by(97 + round) {
                let mut bad = sig.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!agree(Pkcs1v15Sign::new::<Sha256>(), &digest, &bad));
            }
        }
        let digest = Sha256::digest(b"x");
        let size = public.size();
        for sig in [
            vec![0u8; size],
            vec![0xff; size],
            public.n().to_bytes_be(),
            vec![1; size - 1],
        ] {
            assert!(!agree(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig));
        }
    }

    /// The PSS check agrees with the `rsa` crate's for SHA-256/384/512 on genuine signatures
    /// (random salts), corrupted ones, other digests and salts of another length.
    #[test]
    fn pss_agrees_with_the_rsa_crate() {
        use rand_chacha::rand_core::SeedableRng as _;
        use rsa::Pss;
        // The reference is typed on the sha2 generation `rsa` 0.9 takes (`sha2_ref`); ours on the
        // one the module uses. The digests are the same bytes.
        use sha2_ref::{Digest as _, Sha256, Sha384, Sha512};
        let private = istio_private_key();
        let public = private.to_public_key();
        let mont = mont_of(&public);
        let mut csprng = rand_chacha::ChaCha8Rng::from_seed([5; 32]);
        let mut rng = Rng(1234);
        fn check<
            D: Digest,
            R: sha2_ref::Digest + sha2_ref::digest::DynDigest + Send + Sync + 'static,
        >(
            public: &rsa::RsaPublicKey,
            mont: &MontKey,
            digest: &[u8],
            sig: &[u8],
        ) -> bool {
            let theirs = public.verify(Pss::new::<R>(), digest, sig).is_ok();
            let ours = pss_verify::<D>(mont, digest, sig);
            assert_eq!(ours, theirs);
            ours
        }
        for round in 0..4 {
            let msg = rng.bytes(30 + round);
            let d256 = Sha256::digest(&msg);
            let d384 = Sha384::digest(&msg);
            let d512 = Sha512::digest(&msg);
            let s256 = private
                .sign_with_rng(&mut csprng, Pss::new::<Sha256>(), &d256)
                .unwrap();
            let s384 = private
                .sign_with_rng(&mut csprng, Pss::new::<Sha384>(), &d384)
                .unwrap();
            let s512 = private
                .sign_with_rng(&mut csprng, Pss::new::<Sha512>(), &d512)
                .unwrap();
            assert!(check::<sha2::Sha256, Sha256>(&public, &mont, &d256, &s256));
            assert!(check::<sha2::Sha384, Sha384>(&public, &mont, &d384, &s384));
            assert!(check::<sha2::Sha512, Sha512>(&public, &mont, &d512, &s512));
            assert!(!check::<sha2::Sha256, Sha256>(
                &public,
                &mont,
                &Sha256::digest(b"other"),
                &s256
            ));
            assert!(!check::<sha2::Sha384, Sha384>(&public, &mont, &d384, &s256));
            for bit in (0..s256.len() * 8).step_by(89 + round) {
                let mut bad = s256.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!check::<sha2::Sha256, Sha256>(&public, &mont, &d256, &bad));
            }
            // A salt of another length is not RFC 7518's PS256.
            let short = private
                .sign_with_rng(&mut csprng, Pss::new_with_salt::<Sha256>(20), &d256)
                .unwrap();
            assert!(!pss_verify::<sha2::Sha256>(&mont, &d256, &short));
            // A PKCS#1 v1.5 signature is not a PSS one.
            let v15 = private
                .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &d256)
                .unwrap();
            assert!(!check::<sha2::Sha256, Sha256>(&public, &mont, &d256, &v15));
        }
    }

    fn limbs_to_big(limbs: &[u32]) -> BigUint {
        BigUint::from_bytes_be(&limbs_to_be(limbs, (W as usize * limbs.len()).div_ceil(8)))
    }

    fn mont_of(public: &rsa::RsaPublicKey) -> MontKey {
        let e = public.e().to_bytes_be();
        let e = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        MontKey::new(&public.n().to_bytes_be(), e).unwrap()
    }

    #[test]
    fn even_zero_or_empty_modulus_has_no_montgomery_form() {
        let even = (BigUint::from(1u8) << 2048).to_bytes_be();
        assert!(MontKey::new(&even, 3).is_none());
        assert!(MontKey::new(&[], 3).is_none());
        assert!(MontKey::new(&[0, 0, 0, 0, 0], 3).is_none());
        let mut odd = even.clone();
        *odd.last_mut().unwrap() |= 1;
        assert!(MontKey::new(&odd, 0).is_none());
        // n = 1 (odd, never a valid key): total, no panic.
        let one = MontKey::new(&[1], 3).unwrap();
        assert_eq!(one.public_op(&[0]), Some(vec![0]));
        assert!(one.public_op(&[1]).is_none());
        // Leading zero bytes do not change the key.
        let mut padded = vec![0, 0, 0];
        padded.extend_from_slice(&odd);
        assert!(MontKey::new(&padded, 3).unwrap() == MontKey::new(&odd, 3).unwrap());
    }

    /// Small moduli too (one or two limbs, top limb with few bits): the R² computation has no
    /// size assumption of its own.
    #[test]
    fn r_squared_matches_num_bigint_for_small_moduli() {
        let mut rng = Rng(99);
        for bits in (2..=100).chain([127, 128, 129, 160, 255, 256, 257, 1000]) {
            let n = modulus(&mut rng, bits);
            let mont = MontKey::new(&n.to_bytes_be(), 3).unwrap();
            let k = mont.n.len();
            let r = BigUint::from(1u8) << (W as usize * k);
            assert_eq!(limbs_to_big(&mont.rr), (&r * &r) % &n, "{bits} bits");
            assert_eq!(mont.bits(), bits);
        }
    }
}
