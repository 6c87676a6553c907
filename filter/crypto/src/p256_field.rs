//! The field of P-256 for ES256, in the representation its products are fastest in inside V8:
//! nine 29-bit limbs (unsaturated, 261 bits), Montgomery form with `R = 2^261`.
//!
//! Why not the 32-bit limbs of `ec_arith` (which P-384 keeps): wasm32 has a 64-bit multiply but
//! no add-with-carry, so a saturated product spends about as many operations on carries as on
//! multiplies. With 29-bit limbs a limb product is below 2^58 and a whole column of the
//! Montgomery product (at most 9 products of the factors and 9 of the reduction) adds up in one
//! `u64` below 2^63: no carry until the column is done, as `rsa_mont` does for RSA. And since
//! `p ≡ −1 (mod 2^96)`, `−p⁻¹ mod 2^29` is 1: a column's reduction digit is its low 29 bits.
//! The product is written out column by column (the compiler then folds the prime's limbs,
//! three of them 0 or a power of two, into the code); a loop over the columns did not unroll and
//! was no faster than the 32-bit product. In V8 a product takes ~50 ns against ~70 ns
//! (`bench/results/experiments.md`).
//!
//! Elements are always canonical (every limb below 2^29, the value below `p`), so equality of
//! the limbs is equality of the elements. **Variable time**, as the rest of the EC code: public
//! data only.

use super::ec_arith::{Limbs, less};
use super::ec_curve::Field;
use super::es256::P;

/// Limb width.
const W: u32 = 29;
const MASK: u64 = (1 << W) - 1;
// A column sums at most 9 products of the factors and 9 of the reduction, plus the carry in
// (below 2^36): it must fit in a `u64`.
const _: () = assert!(18 * (MASK * MASK) + (1 << 36) < u64::MAX);

/// `p` in 29-bit limbs (the tests check it against `es256::P`).
const P9: [u32; 9] = [
    0x1fff_ffff,
    0x1fff_ffff,
    0x1fff_ffff,
    0x0000_01ff,
    0,
    0,
    0x0004_0000,
    0x1fe0_0000,
    0x00ff_ffff,
];
const P0: u64 = P9[0] as u64;
const P1: u64 = P9[1] as u64;
const P2: u64 = P9[2] as u64;
const P3: u64 = P9[3] as u64;
const P4: u64 = P9[4] as u64;
const P5: u64 = P9[5] as u64;
const P6: u64 = P9[6] as u64;
const P7: u64 = P9[7] as u64;
const P8: u64 = P9[8] as u64;

/// `R² mod p`: a product by it enters Montgomery form.
const RR: Fe256 = Fe256([
    0x0000_0c00,
    0,
    0x1fff_0000,
    0x1fdf_ffff,
    0x1fbf_ffff,
    0x1fff_ffff,
    0x1fff_ffff,
    0x1fff_fffe,
    0x0000_0013,
]);

/// `R mod p`: one in Montgomery form.
const ONE: Fe256 = Fe256([
    0x0000_0020,
    0,
    0,
    0x1fff_c000,
    0x1fff_ffff,
    0x1fff_ffff,
    0x1f7f_ffff,
    0x03ff_ffff,
    0,
]);

/// The curve's `b` in Montgomery form (`b·R mod p`).
pub(crate) const B: Fe256 = Fe256([
    0x1897_bbfb,
    0x1cdf_6229,
    0x0184_86c4,
    0x0173_2821,
    0x1dad_59e0,
    0x0abf_7212,
    0x1a06_d110,
    0x1772_1d20,
    0x0086_00c3,
]);

/// An element of P-256's field in Montgomery form: nine 29-bit limbs, little-endian, canonical.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Fe256([u32; 9]);

impl Fe256 {
    /// `a·b·R⁻¹ mod p`: the 17 column sums of the product `a·b` (product scanning), each
    /// `Σ aⱼ·b_{i−j}`, reduced by [`Fe256::reduce`].
    #[rustfmt::skip]
    #[inline(never)]
    fn product(a: &Fe256, b: &Fe256) -> Fe256 {
        let [a0, a1, a2, a3, a4, a5, a6, a7, a8] = a.0.map(u64::from);
        let [b0, b1, b2, b3, b4, b5, b6, b7, b8] = b.0.map(u64::from);
        Fe256::reduce([
            a0 * b0,
            a0 * b1 + a1 * b0,
            a0 * b2 + a1 * b1 + a2 * b0,
            a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0,
            a0 * b4 + a1 * b3 + a2 * b2 + a3 * b1 + a4 * b0,
            a0 * b5 + a1 * b4 + a2 * b3 + a3 * b2 + a4 * b1 + a5 * b0,
            a0 * b6 + a1 * b5 + a2 * b4 + a3 * b3 + a4 * b2 + a5 * b1 + a6 * b0,
            a0 * b7 + a1 * b6 + a2 * b5 + a3 * b4 + a4 * b3 + a5 * b2 + a6 * b1 + a7 * b0,
            a0 * b8 + a1 * b7 + a2 * b6 + a3 * b5 + a4 * b4 + a5 * b3 + a6 * b2 + a7 * b1 + a8 * b0,
            a1 * b8 + a2 * b7 + a3 * b6 + a4 * b5 + a5 * b4 + a6 * b3 + a7 * b2 + a8 * b1,
            a2 * b8 + a3 * b7 + a4 * b6 + a5 * b5 + a6 * b4 + a7 * b3 + a8 * b2,
            a3 * b8 + a4 * b7 + a5 * b6 + a6 * b5 + a7 * b4 + a8 * b3,
            a4 * b8 + a5 * b7 + a6 * b6 + a7 * b5 + a8 * b4,
            a5 * b8 + a6 * b7 + a7 * b6 + a8 * b5,
            a6 * b8 + a7 * b7 + a8 * b6,
            a7 * b8 + a8 * b7,
            a8 * b8,
        ])
    }

    /// `a²·R⁻¹ mod p`: [`Fe256::product`] of `a` by itself, each cross product `aⱼ·aₖ`
    /// (`j < k`) once and doubled (45 limb products instead of 81; a column's sum is the same
    /// number). Three of a mixed addition's eleven products are squares.
    #[rustfmt::skip]
    #[inline(never)]
    fn product_square(a: &Fe256) -> Fe256 {
        let [a0, a1, a2, a3, a4, a5, a6, a7, a8] = a.0.map(u64::from);
        Fe256::reduce([
            a0 * a0,
            2 * a0 * a1,
            2 * a0 * a2 + a1 * a1,
            2 * (a0 * a3 + a1 * a2),
            2 * (a0 * a4 + a1 * a3) + a2 * a2,
            2 * (a0 * a5 + a1 * a4 + a2 * a3),
            2 * (a0 * a6 + a1 * a5 + a2 * a4) + a3 * a3,
            2 * (a0 * a7 + a1 * a6 + a2 * a5 + a3 * a4),
            2 * (a0 * a8 + a1 * a7 + a2 * a6 + a3 * a5) + a4 * a4,
            2 * (a1 * a8 + a2 * a7 + a3 * a6 + a4 * a5),
            2 * (a2 * a8 + a3 * a7 + a4 * a6) + a5 * a5,
            2 * (a3 * a8 + a4 * a7 + a5 * a6),
            2 * (a4 * a8 + a5 * a7) + a6 * a6,
            2 * (a5 * a8 + a6 * a7),
            2 * a6 * a8 + a7 * a7,
            2 * a7 * a8,
            a8 * a8,
        ])
    }

    /// Montgomery reduction of a product given by its column sums (each below 9·2^58): column
    /// `i < 9` adds the reduction's `mⱼ·p_{i−j}` and picks `mᵢ` (its low 29 bits, as
    /// `−p⁻¹ ≡ 1`) so that adding `mᵢ·p₀` clears them; columns 9..17 are the limbs of
    /// `(a·b + m·p) / R`, below `2p` for `a, b < p`, so one conditional subtraction ends it.
    /// Inlined into both products.
    #[rustfmt::skip]
    #[inline(always)]
    fn reduce(columns: [u64; 17]) -> Fe256 {
        let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16] = columns;
        // Column 0: its reduction digit m0.
        let mut acc = c0;
        let m0 = acc & MASK;
        acc = (acc + m0 * P0) >> W;
        // Column 1: its reduction digit m1.
        acc += c1 + m0 * P1;
        let m1 = acc & MASK;
        acc = (acc + m1 * P0) >> W;
        // Column 2: its reduction digit m2.
        acc += c2 + m0 * P2 + m1 * P1;
        let m2 = acc & MASK;
        acc = (acc + m2 * P0) >> W;
        // Column 3: its reduction digit m3.
        acc += c3 + m0 * P3 + m1 * P2 + m2 * P1;
        let m3 = acc & MASK;
        acc = (acc + m3 * P0) >> W;
        // Column 4: its reduction digit m4.
        acc += c4 + m0 * P4 + m1 * P3 + m2 * P2 + m3 * P1;
        let m4 = acc & MASK;
        acc = (acc + m4 * P0) >> W;
        // Column 5: its reduction digit m5.
        acc += c5 + m0 * P5 + m1 * P4 + m2 * P3 + m3 * P2 + m4 * P1;
        let m5 = acc & MASK;
        acc = (acc + m5 * P0) >> W;
        // Column 6: its reduction digit m6.
        acc += c6 + m0 * P6 + m1 * P5 + m2 * P4 + m3 * P3 + m4 * P2 + m5 * P1;
        let m6 = acc & MASK;
        acc = (acc + m6 * P0) >> W;
        // Column 7: its reduction digit m7.
        acc += c7 + m0 * P7 + m1 * P6 + m2 * P5 + m3 * P4 + m4 * P3 + m5 * P2 + m6 * P1;
        let m7 = acc & MASK;
        acc = (acc + m7 * P0) >> W;
        // Column 8: its reduction digit m8.
        acc += c8 + m0 * P8 + m1 * P7 + m2 * P6 + m3 * P5 + m4 * P4 + m5 * P3 + m6 * P2 + m7 * P1;
        let m8 = acc & MASK;
        acc = (acc + m8 * P0) >> W;
        // Column 9: limb 0 of the result.
        acc += c9 + m1 * P8 + m2 * P7 + m3 * P6 + m4 * P5 + m5 * P4 + m6 * P3 + m7 * P2 + m8 * P1;
        let r0 = acc & MASK;
        acc >>= W;
        // Column 10: limb 1 of the result.
        acc += c10 + m2 * P8 + m3 * P7 + m4 * P6 + m5 * P5 + m6 * P4 + m7 * P3 + m8 * P2;
        let r1 = acc & MASK;
        acc >>= W;
        // Column 11: limb 2 of the result.
        acc += c11 + m3 * P8 + m4 * P7 + m5 * P6 + m6 * P5 + m7 * P4 + m8 * P3;
        let r2 = acc & MASK;
        acc >>= W;
        // Column 12: limb 3 of the result.
        acc += c12 + m4 * P8 + m5 * P7 + m6 * P6 + m7 * P5 + m8 * P4;
        let r3 = acc & MASK;
        acc >>= W;
        // Column 13: limb 4 of the result.
        acc += c13 + m5 * P8 + m6 * P7 + m7 * P6 + m8 * P5;
        let r4 = acc & MASK;
        acc >>= W;
        // Column 14: limb 5 of the result.
        acc += c14 + m6 * P8 + m7 * P7 + m8 * P6;
        let r5 = acc & MASK;
        acc >>= W;
        // Column 15: limb 6 of the result.
        acc += c15 + m7 * P8 + m8 * P7;
        let r6 = acc & MASK;
        acc >>= W;
        // Column 16: limb 7 of the result.
        acc += c16 + m8 * P8;
        let r7 = acc & MASK;
        acc >>= W;
        // Column 17: the result's top limb (the result is below 2p < 2^258).
        Fe256([r0, r1, r2, r3, r4, r5, r6, r7, acc].map(|limb| limb as u32)).reduced_once()
    }

    /// `self − p` when `self ≥ p` (for values below `2p`).
    #[inline(always)]
    fn reduced_once(mut self) -> Fe256 {
        if !less(&self.0, &P9) {
            sub_limbs(&mut self.0, &P9);
        }
        self
    }
}

/// `a −= b` over 29-bit limbs; the borrow out.
#[inline(always)]
fn sub_limbs(a: &mut [u32; 9], b: &[u32; 9]) -> bool {
    let mut borrow = 0i64;
    for (x, &y) in a.iter_mut().zip(b) {
        let d = i64::from(*x) - i64::from(y) + borrow;
        *x = (d as u64 & MASK) as u32;
        borrow = d >> W;
    }
    borrow != 0
}

/// `a += b` over 29-bit limbs (the sum of two values below `p` fits in the nine limbs).
#[inline(always)]
fn add_limbs(a: &mut [u32; 9], b: &[u32; 9]) {
    let mut carry = 0u32;
    for (x, &y) in a.iter_mut().zip(b) {
        let s = *x + y + carry;
        *x = s & MASK as u32;
        carry = s >> W;
    }
}

/// `input`'s bits regrouped from limbs of `from` bits into limbs of `to` bits (both at most 32),
/// little-endian; bits beyond the output are dropped (callers size it to hold them).
fn repack<const I: usize, const O: usize>(input: &[u32; I], from: u32, to: u32) -> [u32; O] {
    let mut out = [0u32; O];
    let mut source = input.iter();
    let (mut buffer, mut held) = (0u64, 0u32);
    for limb in &mut out {
        // `held < to ≤ 32` here, so adding `from ≤ 32` bits stays below 64.
        while held < to {
            let Some(&next) = source.next() else { break };
            buffer |= u64::from(next) << held;
            held += from;
        }
        *limb = (buffer & ((1u64 << to) - 1)) as u32;
        buffer >>= to;
        held = held.saturating_sub(to);
    }
    out
}

impl Field<8> for Fe256 {
    fn from_limbs(a: &Limbs<8>) -> Self {
        Fe256::product(&Fe256(repack(a, 32, W)), &RR)
    }

    fn to_limbs(&self) -> Limbs<8> {
        // A product by plain 1 leaves Montgomery form.
        repack(
            &Fe256::product(self, &Fe256([1, 0, 0, 0, 0, 0, 0, 0, 0])).0,
            W,
            32,
        )
    }

    fn zero() -> Self {
        Fe256([0; 9])
    }

    fn one() -> Self {
        ONE
    }

    fn mul(&self, other: &Self) -> Self {
        Fe256::product(self, other)
    }

    fn square(&self) -> Self {
        Fe256::product_square(self)
    }

    #[inline(never)]
    fn add(&self, other: &Self) -> Self {
        let mut sum = *self;
        add_limbs(&mut sum.0, &other.0);
        sum.reduced_once()
    }

    #[inline(never)]
    fn sub(&self, other: &Self) -> Self {
        let mut difference = *self;
        if sub_limbs(&mut difference.0, &other.0) {
            add_limbs(&mut difference.0, &P9);
        }
        difference
    }

    fn neg(&self) -> Self {
        Fe256::zero().sub(self)
    }

    fn is_zero(&self) -> bool {
        self.0 == [0; 9]
    }

    /// Through the plain value and `ec_arith`'s inversion (binary GCD on 32-bit limbs): once
    /// per verification and per batch of table points, so the conversions cost nothing
    /// measurable.
    fn invert(&self) -> Self {
        Fe256::from_limbs(&P.invert_plain(&self.to_limbs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec_arith::from_be_bytes;
    use crate::test_rng::Rng;
    use num_bigint_dig::BigUint;

    fn big(limbs: &[u32], width: u32) -> BigUint {
        limbs
            .iter()
            .rev()
            .fold(BigUint::from(0u32), |acc, &l| (acc << width as usize) + l)
    }

    fn p() -> BigUint {
        big(&P.m, 32)
    }

    /// `x` (below 2^256) as 32-bit limbs.
    fn limbs(x: &BigUint) -> Limbs<8> {
        let bytes = x.to_bytes_be();
        let mut padded = vec![0u8; 32 - bytes.len()];
        padded.extend_from_slice(&bytes);
        from_be_bytes(&padded).unwrap()
    }

    /// The plain value of an element, checked canonical on the way.
    fn value(a: &Fe256) -> BigUint {
        assert!(
            a.0.iter().all(|&l| u64::from(l) <= MASK),
            "limbs of 29 bits: {a:?}"
        );
        let montgomery = big(&a.0, W);
        assert!(montgomery < p(), "reduced: {a:?}");
        let r_inv = (BigUint::from(1u32) << 261).modpow(&(p() - 2u32), &p());
        montgomery * r_inv % p()
    }

    /// Edge values and random ones below `p`, some with runs of all-ones or zero limbs.
    fn samples() -> Vec<BigUint> {
        let p = p();
        let mut out = vec![
            BigUint::from(0u32),
            BigUint::from(1u32),
            &p - 1u32,
            &p - 2u32,
            &p >> 1,
            (BigUint::from(1u32) << 255) % &p,
            (BigUint::from(1u32) << 232) - 1u32,
            (BigUint::from(1u32) << 29) - 1u32,
        ];
        let mut rng = Rng(2561);
        for round in 0..300 {
            let mut bytes = rng.array::<32>();
            if round % 5 == 0 {
                bytes[..12].fill(0xff);
            }
            if round % 7 == 0 {
                bytes[16..].fill(0);
            }
            out.push(BigUint::from_bytes_be(&bytes) % &p);
        }
        out
    }

    #[test]
    fn constants_match_their_definitions() {
        let p = p();
        let r = BigUint::from(1u32) << 261;
        assert_eq!(big(&P9, W), p);
        assert_eq!(big(&RR.0, W), &r * &r % &p);
        assert_eq!(big(&ONE.0, W), &r % &p);
        assert_eq!(value(&ONE), BigUint::from(1u32));
        // −p⁻¹ ≡ 1 (mod 2^29): the reduction digit is a column's low bits.
        assert_eq!((&p + 1u32) % (1u32 << W), BigUint::from(0u32));
    }

    #[test]
    fn arithmetic_matches_bigint() {
        let p = p();
        let xs = samples();
        for (i, a) in xs.iter().enumerate() {
            let b = &xs[(i * 7 + 3) % xs.len()];
            let (fa, fb) = (Fe256::from_limbs(&limbs(a)), Fe256::from_limbs(&limbs(b)));
            assert_eq!(value(&fa), *a);
            assert_eq!(fa.to_limbs(), limbs(a));
            assert_eq!(value(&fa.mul(&fb)), a * b % &p);
            assert_eq!(value(&fa.square()), a * a % &p);
            assert_eq!(value(&fa.add(&fb)), (a + b) % &p);
            assert_eq!(value(&fa.sub(&fb)), (a + &p - b) % &p);
            assert_eq!(value(&fa.neg()), (&p - a) % &p);
            assert_eq!(fa.is_zero(), *a == BigUint::from(0u32));
            let inverse = fa.invert();
            if fa.is_zero() {
                assert!(inverse.is_zero());
            } else {
                assert_eq!(value(&inverse.mul(&fa)), BigUint::from(1u32));
            }
        }
    }

    #[test]
    fn from_limbs_reduces_any_256_bit_value() {
        let p = p();
        for x in [p.clone(), &p + 5u32, (BigUint::from(1u32) << 256) - 1u32] {
            assert_eq!(value(&Fe256::from_limbs(&limbs(&x))), &x % &p);
        }
    }

    #[test]
    fn repack_round_trips() {
        let mut rng = Rng(29);
        for _ in 0..50 {
            let a: Limbs<8> = from_be_bytes(&rng.array::<32>()).unwrap();
            let nine: [u32; 9] = repack(&a, 32, W);
            assert_eq!(big(&nine, W), big(&a, 32));
            assert_eq!(repack::<9, 8>(&nine, W, 32), a);
        }
    }
}
