//! Arithmetic modulo the two 384-bit primes of P-384: the field prime `p` and the group order
//! `n`, for ES384 verification (`p384_curve`, `p384_table`).
//!
//! Why our own: the `p384` crate's field code (fiat-crypto) is fully unrolled and was ~130 KB of
//! the wasm module (`docs/performance.md`). Here one loop-based Montgomery multiplication serves
//! both moduli: 12 little-endian `u32` limbs, `u64` products (wasm32 has a 64-bit multiply but no
//! 128-bit one), the multiply and reduce passes fused into one loop (FIOS), as in `rsa_mont`.
//!
//! **Variable time.** Verification handles only public data (key, signature, message digest), so
//! nothing here is constant-time: branches and the inversion's exponent scan depend on values.
//! Do not reuse this code for signing or anything else that touches a secret.

/// Limbs of a 384-bit number.
pub(crate) const LIMBS: usize = 12;

/// A 384-bit number, little-endian `u32` limbs.
pub(crate) type Limbs = [u32; LIMBS];

/// One odd modulus with its Montgomery constants (`R = 2^384`).
pub(crate) struct Modulus {
    /// The modulus `m`.
    pub(crate) m: Limbs,
    /// `-m⁻¹ mod 2³²`.
    inv: u32,
    /// `R² mod m`: multiplying by it enters Montgomery form.
    rr: Limbs,
    /// `m - 2`, the Fermat inversion exponent.
    m_minus_2: Limbs,
}

/// The field prime `p = 2^384 − 2^128 − 2^96 + 2^32 − 1` (FIPS 186-5 / SP 800-186 §3.2.1.4).
pub(crate) static P: Modulus = Modulus::new(
    hex(
        "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    ),
    hex(
        "000000000000000000000000000000010000000200000000fffffffe000000000000000200000000fffffffe00000001",
    ),
);

/// The group order `n` of P-384.
pub(crate) static N: Modulus = Modulus::new(
    hex(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    ),
    hex(
        "0c84ee012b39bf213fb05b7a28266895d40d49174aab1cc5bc3e483afcb82947ff3d81e5df1aa4192d319b2419b409a9",
    ),
);

/// 96 hex digits (big-endian) as limbs, at compile time. The tests compare every constant with
/// the `p384` crate's and with `num-bigint-dig`, so a malformed literal (read as 0) cannot pass.
pub(crate) const fn hex(digits: &str) -> Limbs {
    let mut out = [0u32; LIMBS];
    let mut rest = digits;
    let mut limb = LIMBS;
    // Most significant limb first: out[11] from the first eight digits.
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
const fn set_limb(mut limbs: Limbs, i: usize, value: u32) -> Limbs {
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

impl Modulus {
    const fn new(m: Limbs, rr: Limbs) -> Modulus {
        // Newton's iteration for m⁻¹ mod 2³²: each step doubles the number of correct low bits.
        let m0 = m[0];
        let mut inv: u32 = 1;
        let mut step = 0;
        while step < 5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(m0.wrapping_mul(inv)));
            step += 1;
        }
        // m is odd and > 2, so m - 2 only borrows out of limb 0 if m[0] < 2, which P and N are not.
        let m_minus_2 = set_limb(m, 0, m0.wrapping_sub(2));
        Modulus {
            m,
            inv: inv.wrapping_neg(),
            rr,
            m_minus_2,
        }
    }

    /// `a·b·R⁻¹ mod m` for `a, b < m`; the result is fully reduced.
    ///
    /// FIOS: per limb `bᵢ` of `b`, `t = (t + a·bᵢ + q·m) / 2³²` with `q` chosen so the division
    /// is exact. Invariant `t < 2m` after each step, so `t` needs one limb more plus a carry
    /// word, and one final conditional subtraction reduces it.
    ///
    /// Never inlined: the verification path calls it out of line anyway, and `Table::new`
    /// inlined a copy per call site (its ~32 KB in the module, `docs/performance.md`).
    #[inline(never)]
    pub(crate) fn mul(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let mut t = [0u32; LIMBS];
        let mut top: u64 = 0; // limbs 12 and (as a carry) 13 of t
        let (a0, m0) = (u64::from(a[0]), u64::from(self.m[0]));
        for &bi in b {
            let bi = u64::from(bi);
            let u = u64::from(t[0]) + a0 * bi;
            let q = u64::from((u as u32).wrapping_mul(self.inv));
            let mut c1 = u >> 32;
            let mut c2 = (u64::from(u as u32) + q * m0) >> 32;
            let (first, rest) = t.split_at_mut(1);
            let mut prev = first.first_mut();
            for ((tj, &aj), &mj) in rest.iter_mut().zip(&a[1..]).zip(&self.m[1..]) {
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
    pub(crate) fn to_mont(&self, a: &Limbs) -> Limbs {
        self.mul(a, &self.rr)
    }

    /// Leaves Montgomery form: `a·R⁻¹ mod m` (verification never needs to: see `p384_table`).
    #[cfg(test)]
    pub(crate) fn out_of_mont(&self, a: &Limbs) -> Limbs {
        self.mul(a, &one())
    }

    /// `R mod m`: one in Montgomery form.
    pub(crate) fn one_mont(&self) -> Limbs {
        self.to_mont(&one())
    }

    /// `(a + b) mod m` for reduced `a`, `b` (any form: addition commutes with it).
    pub(crate) fn add(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let mut out = *a;
        let carry = add_in_place(&mut out, b);
        if carry || !less(&out, &self.m) {
            sub_in_place(&mut out, &self.m);
        }
        out
    }

    /// `(a − b) mod m` for reduced `a`, `b`. Never inlined, like [`Modulus::mul`].
    #[inline(never)]
    pub(crate) fn sub(&self, a: &Limbs, b: &Limbs) -> Limbs {
        let mut out = *a;
        if sub_in_place(&mut out, b) {
            add_in_place(&mut out, &self.m);
        }
        out
    }

    /// `−a mod m`.
    pub(crate) fn neg(&self, a: &Limbs) -> Limbs {
        self.sub(&[0; LIMBS], a)
    }

    /// `a⁻¹` in Montgomery form, for `a` in Montgomery form (Fermat: `a^(m−2)`, m prime), with a
    /// fixed 4-bit window: 384 squarings and 96 multiplications. `a = 0` gives 0; callers exclude it.
    pub(crate) fn invert(&self, a: &Limbs) -> Limbs {
        let mut powers = [self.one_mont(); 16];
        let mut acc = *a;
        for slot in powers.iter_mut().skip(1) {
            *slot = acc;
            acc = self.mul(&acc, a);
        }
        let mut acc = self.one_mont();
        for &limb in self.m_minus_2.iter().rev() {
            for nibble in (0..8).rev() {
                for _ in 0..4 {
                    acc = self.mul(&acc, &acc);
                }
                let digit = (limb >> (4 * nibble)) & 0xf;
                if let Some(power) = powers.get(digit as usize).filter(|_| digit != 0) {
                    acc = self.mul(&acc, power);
                }
            }
        }
        acc
    }
}

/// The number 1.
pub(crate) const fn one() -> Limbs {
    let mut out = [0u32; LIMBS];
    out[0] = 1;
    out
}

/// `a < b`.
pub(crate) fn less(a: &Limbs, b: &Limbs) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a += b`; the carry out.
pub(crate) fn add_in_place(a: &mut Limbs, b: &Limbs) -> bool {
    let mut carry = 0u64;
    for (x, &y) in a.iter_mut().zip(b) {
        let s = u64::from(*x) + u64::from(y) + carry;
        *x = s as u32;
        carry = s >> 32;
    }
    carry != 0
}

/// `a -= b`; the borrow out.
pub(crate) fn sub_in_place(a: &mut Limbs, b: &Limbs) -> bool {
    let mut borrow = 0i64;
    for (x, &y) in a.iter_mut().zip(b) {
        let d = i64::from(*x) - i64::from(y) + borrow;
        *x = d as u32;
        borrow = d >> 32;
    }
    borrow != 0
}

/// 48 big-endian bytes as limbs; `None` for any other length.
pub(crate) fn from_be_bytes(bytes: &[u8]) -> Option<Limbs> {
    if bytes.len() != 4 * LIMBS {
        return None;
    }
    let mut out = [0u32; LIMBS];
    for (limb, chunk) in out.iter_mut().zip(bytes.rchunks_exact(4)) {
        *limb = chunk
            .iter()
            .fold(0u32, |acc, &byte| (acc << 8) | u32::from(byte));
    }
    Some(out)
}

/// Limbs as 48 big-endian bytes.
#[cfg(test)]
pub(crate) fn to_be_bytes(a: &Limbs) -> [u8; 48] {
    let mut out = [0u8; 48];
    for (chunk, limb) in out.rchunks_exact_mut(4).zip(a) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    out
}

/// Whether all limbs are zero.
pub(crate) fn is_zero(a: &Limbs) -> bool {
    a.iter().all(|&x| x == 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use num_bigint_dig::BigUint;

    use super::super::test_rng::Rng;

    fn big(a: &Limbs) -> BigUint {
        BigUint::from_bytes_be(&to_be_bytes(a))
    }

    fn limbs(a: &BigUint) -> Limbs {
        let bytes = a.to_bytes_be();
        let mut padded = [0u8; 48];
        padded[48 - bytes.len()..].copy_from_slice(&bytes);
        from_be_bytes(&padded).unwrap()
    }

    /// Edge values below `m`, and random ones (some with many all-ones or zero limbs).
    fn samples(m: &Modulus, rng: &mut Rng) -> Vec<Limbs> {
        let modulus = big(&m.m);
        let mut out = vec![
            [0; LIMBS],
            one(),
            limbs(&(&modulus - 1u32)),
            limbs(&(&modulus - 2u32)),
        ];
        out.push(limbs(&(&modulus >> 1)));
        out.push(limbs(&((BigUint::from(1u32) << 383) % &modulus)));
        out.push(limbs(&((BigUint::from(1u32) << 352) - 1u32)));
        for round in 0..200 {
            let mut bytes = rng.array::<48>();
            if round % 5 == 0 {
                bytes[..24].fill(0xff);
            }
            if round % 7 == 0 {
                bytes[24..].fill(0);
            }
            out.push(limbs(&(BigUint::from_bytes_be(&bytes) % &modulus)));
        }
        out
    }

    #[test]
    fn constants_match_their_definitions() {
        for m in [&P, &N] {
            let modulus = big(&m.m);
            let r = BigUint::from(1u32) << 384;
            assert_eq!(big(&m.rr), (&r * &r) % &modulus);
            assert_eq!(m.m[0].wrapping_mul(m.inv), u32::MAX, "m·inv ≡ −1");
            assert_eq!(big(&m.m_minus_2), &modulus - 2u32);
        }
        let p = (BigUint::from(1u32) << 384)
            - (BigUint::from(1u32) << 128)
            - (BigUint::from(1u32) << 96)
            + (BigUint::from(1u32) << 32)
            - 1u32;
        assert_eq!(big(&P.m), p);
        // The order as the `p384` crate defines it: its scalar −1 is n − 1.
        let minus_one = (-p384::Scalar::ONE).to_bytes();
        assert_eq!(big(&N.m) - 1u32, BigUint::from_bytes_be(&minus_one));
    }

    #[test]
    fn arithmetic_matches_bigint() {
        let mut rng = Rng(384);
        for m in [&P, &N] {
            let modulus = big(&m.m);
            let r_inv = (BigUint::from(1u32) << 384).modpow(&(&modulus - 2u32), &modulus);
            let xs = samples(m, &mut rng);
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
                if ba == BigUint::from(0u32) {
                    assert_eq!(inv, [0; LIMBS]);
                } else {
                    assert_eq!((big(&inv) * &ba) % &modulus, BigUint::from(1u32));
                }
            }
        }
    }

    #[test]
    fn byte_conversions_round_trip() {
        let mut rng = Rng(5);
        for _ in 0..20 {
            let bytes = rng.array::<48>();
            assert_eq!(to_be_bytes(&from_be_bytes(&bytes).unwrap()), bytes);
        }
        assert!(from_be_bytes(&[0; 47]).is_none());
        assert!(from_be_bytes(&[0; 49]).is_none());
        assert!(less(&[0; LIMBS], &one()) && !less(&one(), &one()));
    }
}
