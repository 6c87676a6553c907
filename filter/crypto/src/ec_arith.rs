//! Arithmetic modulo the primes of the NIST curves we verify on (P-256 and P-384), for ECDSA
//! verification (`ec_curve`, `ecdsa`): the group order `n` of each (scalars), P-384's field
//! (`es384::Fe384`), and the inversion P-256's field borrows (its products are
//! `p256_field`'s, on 29-bit limbs).
//!
//! Why our own: the `p384` and `p256` crates' field code (fiat-crypto) is fully unrolled, ~130 KB
//! of the wasm module for P-384 alone (`docs/performance.md`). Here one loop-based Montgomery
//! multiplication serves every modulus: `L` little-endian `u32` limbs (8 for 256 bits, 12 for
//! 384), `u64` products (wasm32 has a 64-bit multiply but no 128-bit one), the multiply and
//! reduce passes fused into one loop (FIOS), as in `rsa_mont`. The limb count is a const
//! generic, so each curve gets its own monomorphised copy with fixed loop bounds, and P-384's
//! field product inlines it on the curve's `static` prime so its limbs are folded in.
//!
//! **Variable time.** Verification handles only public data (key, signature, message digest), so
//! nothing here is constant-time: branches and the inversion's loop depend on values.
//! Do not reuse this code for signing or anything else that touches a secret.

/// A number of `L` little-endian `u32` limbs.
pub(crate) type Limbs<const L: usize> = [u32; L];

/// One odd modulus `m > 2` with its Montgomery constants (`R = 2^(32·L)`).
pub(crate) struct Modulus<const L: usize> {
    /// The modulus `m`.
    pub(crate) m: Limbs<L>,
    /// `-m⁻¹ mod 2³²`.
    inv: u32,
    /// `R² mod m`: multiplying by it enters Montgomery form.
    rr: Limbs<L>,
}

/// `8·L` hex digits (big-endian) as limbs, at compile time. The tests compare every constant with
/// the curve crates' and with `num-bigint-dig`, so a malformed literal (read as 0) cannot pass.
pub(crate) const fn hex<const L: usize>(digits: &str) -> Limbs<L> {
    let mut out = [0u32; L];
    let mut rest = digits;
    let mut limb = L;
    // Most significant limb first: out[L − 1] from the first eight digits.
    while let Some((head, tail)) = rest.split_at_checked(8) {
        if limb == 0 {
            break;
        }
        limb -= 1;
        let value = match u32::from_str_radix(head, 16) {
            Ok(v) => v,
            Err(_) => 0,
        };
        out = set_limb(out, limb, value);
        rest = tail;
    }
    out
}

/// `limbs` with limb `i` replaced (const-friendly, no indexing).
const fn set_limb<const L: usize>(mut limbs: Limbs<L>, i: usize, value: u32) -> Limbs<L> {
    let mut j = 0;
    let mut rest: &mut [u32] = &mut limbs;
    while let Some((first, tail)) = rest.split_first_mut() {
        if j == i {
            *first = value;
        }
        j += 1;
        rest = tail;
    }
    limbs
}

/// The lowest limb (0 for `L = 0`, which no modulus has).
const fn low_limb<const L: usize>(limbs: &Limbs<L>) -> u32 {
    match limbs.first() {
        Some(&v) => v,
        None => 0,
    }
}

impl<const L: usize> Modulus<L> {
    /// The constants of `m` from `m` and `R² mod m` (typed in; the tests recompute it).
    pub(crate) const fn new(m: Limbs<L>, rr: Limbs<L>) -> Modulus<L> {
        // Newton's iteration for m⁻¹ mod 2³²: each step doubles the number of correct low bits.
        let m0 = low_limb(&m);
        let mut inv: u32 = 1;
        let mut step = 0;
        while step < 5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(m0.wrapping_mul(inv)));
            step += 1;
        }
        Modulus {
            m,
            inv: inv.wrapping_neg(),
            rr,
        }
    }

    /// `a·b·R⁻¹ mod m` for `a, b < m`; the result is fully reduced.
    ///
    /// FIOS: per limb `bᵢ` of `b`, `t = (t + a·bᵢ + q·m) / 2³²` with `q` chosen so the division
    /// is exact. Invariant `t < 2m` after each step, so `t` needs one limb more plus a carry
    /// word, and one final conditional subtraction reduces it.
    ///
    /// Never inlined: the verification path calls it out of line anyway, and inlined, `Table::new`
    /// would hold a copy per call site (~32 KB of the module).
    #[inline(never)]
    pub(crate) fn mul(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        self.mul_inline(a, b)
    }

    /// [`Modulus::mul`] inlined into the caller: called on a `static` modulus (a curve's field
    /// prime, `ec_curve`), the compiler folds the prime's limbs into the code.
    #[inline(always)]
    pub(crate) fn mul_inline(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        let mut t = [0u32; L];
        let mut top: u64 = 0; // limbs L and (as a carry) L + 1 of t
        let (Some((&a0, a_rest)), Some((&m0, m_rest))) = (a.split_first(), self.m.split_first())
        else {
            return t;
        };
        let (a0, m0) = (u64::from(a0), u64::from(m0));
        for &bi in b {
            let bi = u64::from(bi);
            let (first, rest) = t.split_at_mut(1);
            let mut prev = first.first_mut();
            let t0 = prev.as_deref().copied().unwrap_or(0);
            let u = u64::from(t0) + a0 * bi;
            let q = u64::from((u as u32).wrapping_mul(self.inv));
            let mut c1 = u >> 32;
            let mut c2 = (u64::from(u as u32) + q * m0) >> 32;
            for ((tj, &aj), &mj) in rest.iter_mut().zip(a_rest).zip(m_rest) {
                let s1 = u64::from(*tj) + u64::from(aj) * bi + c1;
                c1 = s1 >> 32;
                let s2 = u64::from(s1 as u32) + q * u64::from(mj) + c2;
                c2 = s2 >> 32;
                if let Some(p) = prev {
                    *p = s2 as u32;
                }
                prev = Some(tj);
            }
            let s1 = (top & 0xffff_ffff) + c1;
            let s2 = u64::from(s1 as u32) + c2;
            if let Some(p) = prev {
                *p = s2 as u32;
            }
            top = (top >> 32) + (s1 >> 32) + (s2 >> 32);
        }
        if top != 0 || !less(&t, &self.m) {
            sub_in_place(&mut t, &self.m);
        }
        t
    }

    /// Montgomery form of a reduced `a`: `a·R mod m`.
    pub(crate) fn to_mont(&self, a: &Limbs<L>) -> Limbs<L> {
        self.mul(a, &self.rr)
    }

    /// Leaves Montgomery form: `a·R⁻¹ mod m` (verification never needs to: see `ecdsa`).
    #[cfg(test)]
    pub(crate) fn out_of_mont(&self, a: &Limbs<L>) -> Limbs<L> {
        self.mul(a, &one())
    }

    /// `R mod m`: one in Montgomery form.
    pub(crate) fn one_mont(&self) -> Limbs<L> {
        self.to_mont(&one())
    }

    /// `(a + b) mod m` for reduced `a`, `b` (any form: addition commutes with it).
    #[inline(always)]
    pub(crate) fn add(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        let mut sum = *a;
        // `less` compares from the top limb, so it is mostly decided there; the subtraction
        // runs only when the sum is at least `m`.
        if add_in_place(&mut sum, b) || !less(&sum, &self.m) {
            sub_in_place(&mut sum, &self.m);
        }
        sum
    }

    /// `(a − b) mod m` for reduced `a`, `b`.
    #[inline(always)]
    pub(crate) fn sub(&self, a: &Limbs<L>, b: &Limbs<L>) -> Limbs<L> {
        let mut out = *a;
        if sub_in_place(&mut out, b) {
            add_in_place(&mut out, &self.m);
        }
        out
    }

    /// `−a mod m`.
    pub(crate) fn neg(&self, a: &Limbs<L>) -> Limbs<L> {
        self.sub(&[0; L], a)
    }

    /// `a⁻¹` in Montgomery form, for `a` in Montgomery form (`a·R ↦ a⁻¹·R`); `a = 0` gives 0,
    /// callers exclude it. The inverse of the plain value `a·R` ([`Self::invert_plain`]) is
    /// `a⁻¹·R⁻¹`; two Montgomery products by `R²` then make it `a⁻¹·R`.
    ///
    /// Why not Fermat (`a^(m−2)`): that is `32·L` squarings and `8·L` more products, ~20 % of an
    /// ES256 verification in V8 for the one inversion mod `n` per signature; the binary GCD is
    /// shifts, subtractions and small products (`docs/performance.md`). Variable time: public
    /// data only.
    pub(crate) fn invert(&self, a: &Limbs<L>) -> Limbs<L> {
        let plain = self.invert_plain(a);
        self.mul(&self.mul(&plain, &self.rr), &self.rr)
    }

    /// `a⁻¹ mod m` for a reduced `a` (no Montgomery form), 0 for `a = 0` and for an unreduced
    /// `a ≥ m` (which callers never pass). Pornin's optimised binary GCD (`ec_inverse`): an
    /// ES256 verification ~6 µs (9 %) faster in V8 than with the plain binary algorithm
    /// ([`Self::invert_binary`], kept as the tests' reference).
    pub(crate) fn invert_plain(&self, a: &Limbs<L>) -> Limbs<L> {
        if is_zero(a) || !less(a, &self.m) {
            return [0; L];
        }
        super::ec_inverse::invert(a, &self.m)
    }

    /// The plain binary extended Euclidean algorithm: the tests' reference for
    /// [`Self::invert_plain`]; 0 for `a = 0` and an unreduced `a ≥ m` (refusing it keeps the
    /// loop finite, as it is for every `0 < a < m` with `m` an odd prime).
    ///
    /// Invariants (Guide to Elliptic Curve Cryptography, Algorithm 2.22): `x1·a ≡ u` and
    /// `x2·a ≡ v (mod m)`, `u, v > 0`; each round strips `u`'s or `v`'s trailing zeros or
    /// subtracts the smaller from the larger, so it ends with `u = 1` or `v = 1`. The zeros go up
    /// to 31 at a time: `u` shifted once, its `x` divided by `2^k` in one pass ([`Self::div_pow2`])
    /// instead of `k` halvings (~2 µs less per ES256 signature in V8; the subtractions, which
    /// stay one per round, are most of what is left).
    #[cfg(test)]
    pub(crate) fn invert_binary(&self, a: &Limbs<L>) -> Limbs<L> {
        if is_zero(a) || !less(a, &self.m) {
            return [0; L];
        }
        let one = one::<L>();
        let (mut u, mut v) = (*a, self.m);
        let (mut x1, mut x2) = (one, [0u32; L]);
        while u != one && v != one {
            self.strip_twos(&mut u, &mut x1);
            self.strip_twos(&mut v, &mut x2);
            if less(&u, &v) {
                sub_in_place(&mut v, &u);
                x2 = self.sub(&x2, &x1);
            } else {
                sub_in_place(&mut u, &v);
                x1 = self.sub(&x1, &x2);
            }
        }
        if u == one { x1 } else { x2 }
    }

    /// Divides a non-zero `u` by its largest power of two `2^k`, and `x` by `2^k mod m`.
    #[cfg(test)]
    fn strip_twos(&self, u: &mut Limbs<L>, x: &mut Limbs<L>) {
        if is_zero(u) {
            return;
        }
        loop {
            let zeros = low_limb(u).trailing_zeros().min(31);
            if zeros == 0 {
                return;
            }
            shr(u, zeros);
            self.div_pow2(x, zeros);
        }
    }

    /// `x·2⁻ᵏ mod m` for a reduced `x` and `1 ≤ k ≤ 31`: `x + q·m` with `q = −x·m⁻¹ mod 2^k`
    /// is a multiple of `2^k` below `2^k·m`, so shifted right by `k` it is reduced.
    #[cfg(test)]
    fn div_pow2(&self, x: &mut Limbs<L>, k: u32) {
        let q = u64::from(low_limb(x).wrapping_mul(self.inv) & ((1u32 << k) - 1));
        let mut carry = 0u64;
        for (limb, m) in x.iter_mut().zip(&self.m) {
            let t = u64::from(*limb) + q * u64::from(*m) + carry;
            *limb = t as u32;
            carry = t >> 32;
        }
        // `carry` (< 2^31) is the limb above `x + q·m`.
        shr(x, k);
        if let Some(top) = x.last_mut() {
            *top |= (carry as u32) << (32 - k);
        }
    }
}

/// `a >> k` for `1 ≤ k ≤ 31`.
#[cfg(test)]
fn shr<const L: usize>(a: &mut Limbs<L>, k: u32) {
    let mut incoming = 0u32;
    for limb in a.iter_mut().rev() {
        let outgoing = *limb;
        *limb = (*limb >> k) | (incoming << (32 - k));
        incoming = outgoing;
    }
}

/// The number 1.
pub(crate) const fn one<const L: usize>() -> Limbs<L> {
    set_limb([0u32; L], 0, 1)
}

/// `a < b` for equal-length little-endian limb sequences (any limb width: `rsa_mont` uses it
/// on its 27-bit limbs too).
pub(crate) fn less(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a += b`; the carry out.
pub(crate) fn add_in_place<const L: usize>(a: &mut Limbs<L>, b: &Limbs<L>) -> bool {
    let mut carry = 0u64;
    for (x, &y) in a.iter_mut().zip(b) {
        let s = u64::from(*x) + u64::from(y) + carry;
        *x = s as u32;
        carry = s >> 32;
    }
    carry != 0
}

/// `a -= b`; the borrow out.
pub(crate) fn sub_in_place<const L: usize>(a: &mut Limbs<L>, b: &Limbs<L>) -> bool {
    let mut borrow = 0i64;
    for (x, &y) in a.iter_mut().zip(b) {
        let d = i64::from(*x) - i64::from(y) + borrow;
        *x = d as u32;
        borrow = d >> 32;
    }
    borrow != 0
}

/// `4·L` big-endian bytes as limbs; `None` for any other length.
pub(crate) fn from_be_bytes<const L: usize>(bytes: &[u8]) -> Option<Limbs<L>> {
    if bytes.len() != 4 * L {
        return None;
    }
    let mut out = [0u32; L];
    for (limb, chunk) in out.iter_mut().zip(bytes.rchunks_exact(4)) {
        *limb = chunk
            .iter()
            .fold(0u32, |acc, &byte| (acc << 8) | u32::from(byte));
    }
    Some(out)
}

/// Limbs as `B = 4·L` big-endian bytes (tests only; `B` is inferred at the call).
#[cfg(test)]
pub(crate) fn to_be_bytes<const L: usize, const B: usize>(a: &Limbs<L>) -> [u8; B] {
    assert_eq!(B, 4 * L, "B = 4·L");
    let mut out = [0u8; B];
    for (chunk, limb) in out.rchunks_exact_mut(4).zip(a) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    out
}

/// Whether all limbs are zero.
pub(crate) fn is_zero<const L: usize>(a: &Limbs<L>) -> bool {
    a.iter().all(|&x| x == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint_dig::BigUint;

    use super::super::test_rng::Rng;
    use super::super::{es256 as p256, es384 as p384};

    fn big<const L: usize>(a: &Limbs<L>) -> BigUint {
        let bytes: Vec<u8> = a.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
        BigUint::from_bytes_be(&bytes)
    }

    fn limbs<const L: usize>(a: &BigUint) -> Limbs<L> {
        let bytes = a.to_bytes_be();
        let mut padded = vec![0u8; 4 * L];
        padded[4 * L - bytes.len()..].copy_from_slice(&bytes);
        from_be_bytes(&padded).unwrap()
    }

    /// Edge values below `m`, and random ones (some with many all-ones or zero limbs).
    fn samples<const L: usize>(m: &Modulus<L>, rng: &mut Rng) -> Vec<Limbs<L>> {
        let modulus = big(&m.m);
        let bits = 32 * L;
        let mut out = vec![
            [0; L],
            one(),
            limbs(&(&modulus - 1u32)),
            limbs(&(&modulus - 2u32)),
        ];
        out.push(limbs(&(&modulus >> 1)));
        out.push(limbs(&((BigUint::from(1u32) << (bits - 1)) % &modulus)));
        out.push(limbs(&((BigUint::from(1u32) << (bits - 32)) - 1u32)));
        for round in 0..200 {
            // As `Rng::array::<{4·L}>` (the same draws the 384-bit version of this test made).
            let mut bytes = vec![0u8; 4 * L];
            for chunk in bytes.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
            }
            if round % 5 == 0 {
                bytes[..2 * L].fill(0xff);
            }
            if round % 7 == 0 {
                bytes[2 * L..].fill(0);
            }
            out.push(limbs(&(BigUint::from_bytes_be(&bytes) % &modulus)));
        }
        out
    }

    fn check_constants<const L: usize>(moduli: [&Modulus<L>; 2]) {
        for m in moduli {
            let modulus = big(&m.m);
            let r = BigUint::from(1u32) << (32 * L);
            assert_eq!(big(&m.rr), (&r * &r) % &modulus);
            assert_eq!(m.m[0].wrapping_mul(m.inv), u32::MAX, "m·inv ≡ −1");
        }
    }

    #[test]
    fn constants_match_their_definitions() {
        check_constants([&p384::P, &p384::N]);
        let p = (BigUint::from(1u32) << 384)
            - (BigUint::from(1u32) << 128)
            - (BigUint::from(1u32) << 96)
            + (BigUint::from(1u32) << 32)
            - 1u32;
        assert_eq!(big(&p384::P.m), p);
        // The order as the `p384` crate defines it: its scalar −1 is n − 1.
        let minus_one = (-::p384::Scalar::ONE).to_bytes();
        assert_eq!(big(&p384::N.m) - 1u32, BigUint::from_bytes_be(&minus_one));
    }

    /// P-256: `p = 2^256 − 2^224 + 2^192 + 2^96 − 1` (FIPS 186-5 / SP 800-186 §3.2.1.3), and the
    /// order as the `p256` crate defines it.
    #[test]
    fn p256_constants_match_their_definitions() {
        check_constants([&p256::P, &p256::N]);
        let p = (BigUint::from(1u32) << 256) - (BigUint::from(1u32) << 224)
            + (BigUint::from(1u32) << 192)
            + (BigUint::from(1u32) << 96)
            - 1u32;
        assert_eq!(big(&p256::P.m), p);
        let minus_one = (-::p256::Scalar::ONE).to_bytes();
        assert_eq!(big(&p256::N.m) - 1u32, BigUint::from_bytes_be(&minus_one));
    }

    fn check_arithmetic<const L: usize>(moduli: [&Modulus<L>; 2], rng: &mut Rng) {
        for m in moduli {
            let modulus = big(&m.m);
            let r_inv = (BigUint::from(1u32) << (32 * L)).modpow(&(&modulus - 2u32), &modulus);
            let xs = samples(m, rng);
            for (i, a) in xs.iter().enumerate() {
                let b = &xs[(i * 7 + 3) % xs.len()];
                let (ba, bb) = (big(a), big(b));
                assert_eq!(big(&m.mul(a, b)), (&ba * &bb * &r_inv) % &modulus);
                assert_eq!(big(&m.add(a, b)), (&ba + &bb) % &modulus);
                assert_eq!(big(&m.sub(a, b)), (&ba + &modulus - &bb) % &modulus);
                assert_eq!(big(&m.neg(a)), (&modulus - &ba) % &modulus);
                assert_eq!(m.out_of_mont(&m.to_mont(a)), *a);
                let am = m.to_mont(a);
                let inv = m.out_of_mont(&m.invert(&am));
                let plain = m.invert_plain(a);
                if ba == BigUint::from(0u32) {
                    assert_eq!(inv, [0; L]);
                    assert_eq!(plain, [0; L]);
                } else {
                    assert_eq!((big(&inv) * &ba) % &modulus, BigUint::from(1u32));
                    assert_eq!(plain, inv, "the same inverse");
                }
            }
        }
    }

    #[test]
    fn arithmetic_matches_bigint() {
        check_arithmetic([&p384::P, &p384::N], &mut Rng(384));
    }

    #[test]
    fn p256_arithmetic_matches_bigint() {
        check_arithmetic([&p256::P, &p256::N], &mut Rng(256));
    }

    #[test]
    fn byte_conversions_round_trip() {
        let mut rng = Rng(5);
        for _ in 0..20 {
            let bytes = rng.array::<48>();
            assert_eq!(to_be_bytes(&from_be_bytes::<12>(&bytes).unwrap()), bytes);
            let bytes = rng.array::<32>();
            assert_eq!(to_be_bytes(&from_be_bytes::<8>(&bytes).unwrap()), bytes);
        }
        assert!(from_be_bytes::<12>(&[0; 47]).is_none());
        assert!(from_be_bytes::<12>(&[0; 49]).is_none());
        assert!(from_be_bytes::<8>(&[0; 31]).is_none());
        assert!(from_be_bytes::<8>(&[0; 33]).is_none());
        assert!(from_be_bytes::<8>(&[0; 48]).is_none());
        assert!(less(&[0; 12], &one::<12>()) && !less(&one::<12>(), &one::<12>()));
    }
}
