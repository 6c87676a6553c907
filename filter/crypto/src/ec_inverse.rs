//! `y⁻¹ mod m` for an odd modulus `m`: T. Pornin's optimised binary GCD ("Optimized Binary GCD
//! for Modular Inversion", IACR ePrint 2020/972, Algorithm 2), variable-time form. The inversion
//! of `s` modulo the group order, once per ECDSA verification.
//!
//! Why not the plain binary extended Euclid: it walks the full-size numbers once per bit (about
//! 2·256 rounds of 8-limb shifts, comparisons and subtractions for P-256), ~14 % of an ES256
//! verification in V8. Here each outer round runs 30 steps of the binary GCD on 64-bit
//! approximations of `a` and `b` (their low 30 bits and their top 32), recording the steps as
//! one matrix of small factors, and only then updates the full numbers, and the coefficients
//! modulo `m`, with it: ⌈(2·len(m) − 1)/30⌉ rounds in all (18 for 256 bits). Pornin proves the
//! approximations make the same choices as the exact numbers would, enough of the time for
//! that bound to hold; the tests check the result against the plain algorithm and by
//! multiplication on random and extreme inputs of both curves' moduli.
//!
//! Numbers are held in signed 30-bit limbs (`i64`), so a limb times a factor (|f| + |g| ≤ 2^30)
//! plus a carry stays far inside `i64`, and the division by 2^30 after each round drops a
//! limb. **Variable time**: public data only.

use crate::ec_arith::Limbs;

/// Bits per limb, and binary-GCD steps per round.
const W: u32 = 30;
const MASK: i64 = (1 << W) - 1;
/// Limbs of the largest modulus (384 bits: 13 limbs of 30 bits) plus one for a signed carry.
const MAX_LIMBS: usize = 14;

/// A number of up to [`MAX_LIMBS`] signed 30-bit limbs, little-endian; the functions below take
/// the count in use, `n`.
#[derive(Clone, Copy)]
struct Num {
    limbs: [i64; MAX_LIMBS],
}

impl Num {
    fn zero() -> Num {
        Num {
            limbs: [0; MAX_LIMBS],
        }
    }

    fn from_limbs<const L: usize>(x: &Limbs<L>) -> Num {
        let mut out = Num::zero();
        let (mut acc, mut bits, mut at) = (0u64, 0u32, 0usize);
        for &limb in x {
            acc |= u64::from(limb) << bits;
            bits += 32;
            while bits >= W {
                if let Some(slot) = out.limbs.get_mut(at) {
                    *slot = (acc as i64) & MASK;
                }
                at += 1;
                acc >>= W;
                bits -= W;
            }
        }
        if let Some(slot) = out.limbs.get_mut(at) {
            *slot = acc as i64;
        }
        out
    }

    /// The value as `L` 32-bit limbs (for a value in `[0, 2^(32·L))`).
    fn limbs<const L: usize>(&self) -> Limbs<L> {
        let mut out = [0u32; L];
        let (mut acc, mut bits) = (0u64, 0u32);
        let mut limbs = self.limbs.iter();
        for slot in out.iter_mut() {
            while bits < 32 {
                acc |= (limbs.next().copied().unwrap_or(0) as u64) << bits;
                bits += W;
            }
            *slot = acc as u32;
            acc >>= 32;
            bits -= 32;
        }
        out
    }

    fn get(&self, i: usize) -> i64 {
        self.limbs.get(i).copied().unwrap_or(0)
    }

    /// Bit length of a non-negative value.
    fn bit_len(&self, n: usize) -> u32 {
        for i in (0..n).rev() {
            let limb = self.get(i);
            if limb != 0 {
                return i as u32 * W + (64 - limb.leading_zeros());
            }
        }
        0
    }

    /// Bits `s .. s + 32` of a non-negative value (`s ≥ 0`).
    fn bits32(&self, s: u32) -> u64 {
        let (j, o) = ((s / W) as usize, s % W);
        let low = self.get(j) as u64 | (self.get(j + 1) as u64) << W;
        ((low >> o) | (self.get(j + 2) as u64) << (2 * W - o)) & 0xffff_ffff
    }

    fn is_negative(&self, n: usize) -> bool {
        self.get(n - 1) < 0
    }

    /// `−self`, limbs normalised.
    fn negate(&mut self, n: usize) {
        let mut carry = 0i64;
        for limb in self.limbs.iter_mut().take(n) {
            let v = carry - *limb;
            *limb = v & MASK;
            carry = v >> W;
        }
        if let Some(top) = self.limbs.get_mut(n - 1) {
            *top += carry << W;
        }
    }

    /// `(x·f + y·g + q·m) / 2^30` for an exactly divisible sum, limbs normalised, the signed
    /// carry in the top limb.
    fn combine(x: &Num, y: &Num, f: i64, g: i64, m: &Num, q: i64, n: usize) -> Num {
        let mut out = Num::zero();
        let mut acc = 0i64;
        for i in 0..n {
            acc += x.get(i) * f + y.get(i) * g + q * m.get(i);
            if let Some(slot) = i.checked_sub(1).and_then(|j| out.limbs.get_mut(j)) {
                *slot = acc & MASK;
            }
            acc >>= W;
        }
        if let Some(slot) = out.limbs.get_mut(n - 1) {
            *slot = acc;
        }
        out
    }

    /// `self + sign·m` (sign ±1), limbs normalised.
    fn add_signed(&mut self, m: &Num, sign: i64, n: usize) {
        let mut carry = 0i64;
        for (i, limb) in self.limbs.iter_mut().enumerate().take(n) {
            let v = *limb + sign * m.get(i) + carry;
            if i + 1 == n {
                *limb = v;
            } else {
                *limb = v & MASK;
                carry = v >> W;
            }
        }
    }

    /// `self ≥ m` for non-negative normalised values.
    fn at_least(&self, m: &Num, n: usize) -> bool {
        for i in (0..n).rev() {
            if self.get(i) != m.get(i) {
                return self.get(i) > m.get(i);
            }
        }
        true
    }

    fn is_one(&self, n: usize) -> bool {
        self.get(0) == 1 && (1..n).all(|i| self.get(i) == 0)
    }
}

/// `y⁻¹ mod m` for an odd `m ≥ 3` and `0 < y < m` with `gcd(y, m) = 1`; 0 when `y` has no
/// inverse (callers exclude 0 and unreduced values before).
pub(crate) fn invert<const L: usize>(y: &Limbs<L>, m: &Limbs<L>) -> Limbs<L> {
    let n = ((32 * L) as u32).div_ceil(W) as usize + 1;
    if n > MAX_LIMBS {
        return [0; L];
    }
    let modulus = Num::from_limbs(m);
    // −m⁻¹ mod 2^30 (Newton: m is its own inverse mod 8, each step doubles the correct bits).
    let m0 = modulus.get(0);
    let mut inv = m0;
    for _ in 0..4 {
        inv = inv.wrapping_mul(2 - m0.wrapping_mul(inv)) & MASK;
    }
    let minus_inv = (-inv) & MASK;

    let (mut a, mut b) = (Num::from_limbs(y), modulus);
    let (mut u, mut v) = (Num::zero(), Num::zero());
    if let Some(one) = u.limbs.first_mut() {
        *one = 1;
    }
    // Pornin's bound, ⌈(2·len(m) − 1)/30⌉ rounds, plus one as a margin (a round after `a`
    // reached 0 changes nothing); done as soon as `a` is 0, as it is for most inputs earlier.
    let rounds = (2 * 32 * L as u32 - 1).div_ceil(W) + 1;
    for _ in 0..rounds {
        let a_len = a.bit_len(n);
        if a_len == 0 {
            break;
        }
        // 64-bit approximations: the low 30 bits and the top 32 bits of the longer number.
        let len = a_len.max(b.bit_len(n)).max(2 * W + 2);
        let approx = |x: &Num| (x.get(0) & MASK) as u64 | x.bits32(len - 32) << W;
        let (mut a_, mut b_) = (approx(&a), approx(&b));
        // (f0, g0, f1, g1): a·f0 + b·g0 and a·f1 + b·g1 are 2^30 times the new a and b.
        let (mut f0, mut g0, mut f1, mut g1) = (1i64, 0i64, 0i64, 1i64);
        for _ in 0..W {
            if a_ & 1 == 1 {
                if a_ < b_ {
                    core::mem::swap(&mut a_, &mut b_);
                    core::mem::swap(&mut f0, &mut f1);
                    core::mem::swap(&mut g0, &mut g1);
                }
                a_ -= b_;
                f0 -= f1;
                g0 -= g1;
            }
            a_ >>= 1;
            f1 <<= 1;
            g1 <<= 1;
        }
        let mut new_a = Num::combine(&a, &b, f0, g0, &Num::zero(), 0, n);
        let mut new_b = Num::combine(&a, &b, f1, g1, &Num::zero(), 0, n);
        if new_a.is_negative(n) {
            new_a.negate(n);
            (f0, g0) = (-f0, -g0);
        }
        if new_b.is_negative(n) {
            new_b.negate(n);
            (f1, g1) = (-f1, -g1);
        }
        // u, v ← (u·f + v·g)/2^30 mod m: q·m makes the sum divisible by 2^30.
        let update = |f: i64, g: i64| {
            let low = (u.get(0) * f + v.get(0) * g) & MASK;
            let q = (low * minus_inv) & MASK;
            let mut r = Num::combine(&u, &v, f, g, &modulus, q, n);
            // r is in (−m, 2m).
            if r.is_negative(n) {
                r.add_signed(&modulus, 1, n);
            } else if r.at_least(&modulus, n) {
                r.add_signed(&modulus, -1, n);
            }
            r
        };
        let (new_u, new_v) = (update(f0, g0), update(f1, g1));
        (a, b, u, v) = (new_a, new_b, new_u, new_v);
    }
    if b.is_one(n) { v.limbs() } else { [0; L] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec_arith::{Modulus, less, sub_in_place};
    use crate::test_rng::Rng;

    fn check<const L: usize>(m: &Modulus<L>, name: &str) {
        let mut samples: Vec<Limbs<L>> = Vec::new();
        let mut small = [0u32; L];
        for k in [1u32, 2, 3, 0x8000_0000, 0xffff_ffff] {
            small[0] = k;
            samples.push(small);
        }
        let mut top = m.m;
        for k in 1..4u32 {
            top[0] = m.m[0] - k; // m − 1, m − 2, m − 3
            samples.push(top);
        }
        for bit in [31usize, 32, 100, 32 * L - 33, 32 * L - 2] {
            let mut power = [0u32; L];
            power[bit / 32] = 1 << (bit % 32);
            if less(&power, &m.m) {
                samples.push(power);
            }
        }
        let mut rng = Rng(99);
        while samples.len() < 2000 {
            let mut x: Limbs<L> = core::array::from_fn(|_| rng.next() as u32);
            // Sometimes short numbers: the approximations then hold them whole.
            if samples.len().is_multiple_of(5) {
                for limb in x.iter_mut().skip(2) {
                    *limb = 0;
                }
            }
            while !less(&x, &m.m) {
                sub_in_place(&mut x, &m.m);
            }
            if x.iter().any(|&l| l != 0) {
                samples.push(x);
            }
        }
        let one_mont = m.one_mont();
        for y in &samples {
            let inverse = invert(y, &m.m);
            assert_eq!(inverse, m.invert_binary(y), "{name}: 1/{y:x?}");
            // y · y⁻¹ = 1: in Montgomery form (y·R)·(y⁻¹·R)·R⁻¹ = R.
            assert_eq!(
                m.mul(&m.to_mont(y), &m.to_mont(&inverse)),
                one_mont,
                "{name}: y·y⁻¹ for {y:x?}"
            );
        }
    }

    #[test]
    fn inverses_match_the_binary_algorithm_and_multiply_to_one() {
        check(&crate::es256::N, "P-256 n");
        check(&crate::es256::P, "P-256 p");
        check(&crate::es384::N, "P-384 n");
        check(&crate::es384::P, "P-384 p");
    }
}
