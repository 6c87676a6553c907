//! ECDSA verification (FIPS 186-5 §6.4.2 / SEC1 §4.1.4) on our own arithmetic (`ec_arith`,
//! `ec_curve`): ES256 (P-256, SHA-256) and ES384 (P-384, SHA-384), one generic implementation
//! monomorphised per curve, with precomputed multiples of the generator and of each public key.
//!
//! Why not the `p256` / `p384` crates: their unrolled fiat-crypto field code is large in the wasm
//! module (~130 KB for P-384 alone, ~24 KB for P-256) and slower in V8 than the loop-based code
//! here (`docs/performance.md`). The crates stay dev-dependencies: the tests compare every result
//! with them.
//!
//! - each base `B` gets a table of the affine points `(j+1)·2^(w·i)·B` for `j < 2^(w-1)`, built
//!   once and normalised with one field inversion per 16 windows: for `G` on the VM's first
//!   verification on the curve (P-384 with w = 6: 65 windows × 32 points × 96 bytes ≈ 200 KiB;
//!   P-256 with w = 8: 33 × 128 × 64 ≈ 264 KiB), for a key on its second use (P-384 with w = 6:
//!   ≈ 200 KiB; P-256 with w = 8: ≈ 264 KiB); a key's first use is one windowed multiplication
//!   without a stored table ([`multiply_once`]);
//! - a scalar is recoded into signed radix-2^w digits; `u1·G + u2·Q` is then one accumulator
//!   and one mixed addition per non-zero digit (at most 65 + 65 for P-384, 33 + 33 for P-256),
//!   no doubling;
//! - `s⁻¹ mod n` by Pornin's optimised binary GCD (`ec_inverse`, through `Modulus::invert`),
//!   not Fermat;
//! - the accumulator is a Jacobian point (`ec_curve::Jacobian`: fewer field additions per
//!   mixed addition than the complete projective formulas the tables are built with);
//! - `x(R) mod n = r` is checked as `X = r·Z²` or `X = (r+n)·Z²` (when `r + n < p`) on the
//!   Jacobian result: no field inversion per signature.
//!
//! **Variable time.** Key, signature, message and digest are public, so the code branches and
//! indexes tables on them. It must never be reused for signing or any other secret.

use std::cell::{Cell, OnceCell};
use std::rc::Rc;

use sha2::Digest;

use super::ec_arith::{Limbs, add_in_place, from_be_bytes, is_zero, less, sub_in_place};
use super::ec_curve::{Affine, Curve, Field, Jacobian, Point};

/// Windows normalised per field inversion while a table is built: 16 windows of 32 projective
/// points are 72 KiB of scratch for P-384 (16 × 128 for P-256: 192 KiB), and the
/// generator's 3 to 5 inversions add ~5 % to its build.
const NORMALISE_WINDOWS: usize = 16;

/// A curve with its ECDSA hash (the JWS pairing, RFC 7518 §3.4) and the home of its generator
/// table (a `static` cannot be generic, so each curve keeps its own).
pub(crate) trait Ecdsa<const L: usize>: Curve<L> {
    /// SHA-256 for P-256, SHA-384 for P-384: the digest is exactly `4·L` bytes, so bits2int is
    /// the digest itself.
    type Hash: Digest;
    /// Window width of a public key's table (built on the key's second use, kept with the key).
    const KEY_WINDOW_BITS: u32;
    /// The generator's table, built once per VM on the first verification on this curve.
    fn generator_table() -> Option<&'static Table<Self, L>>;
}

/// The precomputed affine multiples of one base point, window by window: entry
/// `i·2^(w-1) + j` is `(j+1)·2^(w·i)·B`.
pub(crate) struct Table<C: Curve<L>, const L: usize> {
    bits: u32,
    points: Vec<Affine<C, L>>,
}

impl<C: Curve<L>, const L: usize> Table<C, L> {
    /// Per window 2^(w-1) − 1 additions and w doublings; normalised [`NORMALISE_WINDOWS`]
    /// windows at a time (one inversion each), which bounds the projective scratch space (wasm
    /// linear memory never shrinks). `None` only if an entry were the identity, which cannot
    /// happen: `(j+1)·2^(w·i)` is never a multiple of the prime `n` (an `Option`, not a panic).
    pub(crate) fn new(base: &Affine<C, L>, bits: u32) -> Option<Self> {
        let bits = bits.clamp(2, 8);
        let per_window = 1usize << (bits - 1);
        let count = windows::<L>(bits);
        let mut points = Vec::with_capacity(count * per_window);
        let mut projective = Vec::with_capacity(NORMALISE_WINDOWS * per_window);
        let mut window_base = Point::from(base);
        for window in 0..count {
            let mut multiple = window_base;
            for _ in 0..per_window {
                projective.push(multiple);
                multiple = multiple.add(&window_base);
            }
            for _ in 0..bits {
                window_base = window_base.double();
            }
            if (window + 1) % NORMALISE_WINDOWS == 0 || window + 1 == count {
                points.extend(Point::batch_to_affine(&projective)?);
                projective.clear();
            }
        }
        Some(Table { bits, points })
    }

    /// `acc + k·B` for `k < 2^(32·L)`, variable time.
    pub(crate) fn accumulate(&self, mut acc: Jacobian<C, L>, k: &Limbs<L>) -> Jacobian<C, L> {
        let per_window = 1usize << (self.bits - 1);
        for (window, digit) in signed_digits(k, self.bits).into_iter().enumerate() {
            let window_points = self.points.get(window * per_window..).unwrap_or_default();
            acc = add_digit(acc, digit, window_points);
        }
        acc
    }
}

/// `acc + digit·B` where `multiples[j]` is `(j+1)·B` (a digit of 0, or beyond the multiples,
/// adds nothing).
fn add_digit<C: Curve<L>, const L: usize>(
    acc: Jacobian<C, L>,
    digit: i32,
    multiples: &[Affine<C, L>],
) -> Jacobian<C, L> {
    let Some(entry) = (digit.unsigned_abs() as usize)
        .checked_sub(1)
        .and_then(|j| multiples.get(j))
    else {
        return acc;
    };
    if digit < 0 {
        acc.add_affine(&entry.neg())
    } else {
        acc.add_affine(entry)
    }
}

/// `k·B` without a stored table, variable time: the odd and even multiples `1·B … 2^(w-1)·B`
/// (one inversion to make them affine), then the signed radix-2^w digits of `k` from the most
/// significant, `w` doublings and at most one mixed addition each.
pub(crate) fn multiply_once<C: Curve<L>, const L: usize>(
    base: &Affine<C, L>,
    k: &Limbs<L>,
) -> Jacobian<C, L> {
    let bits = ONE_SHOT_WINDOW_BITS;
    let b = Point::from(base);
    let mut multiples = Vec::with_capacity(1 << (bits - 1));
    let mut multiple = b;
    for _ in 0..1usize << (bits - 1) {
        multiples.push(multiple);
        multiple = multiple.add(&b);
    }
    // `None` only if a multiple were the identity: `j·B` for `j < 2^(w-1) < n` never is.
    let Some(multiples) = Point::batch_to_affine(&multiples) else {
        return Jacobian::identity();
    };
    let mut acc = Jacobian::identity();
    for digit in signed_digits(k, bits).into_iter().rev() {
        for _ in 0..bits {
            acc = acc.double();
        }
        acc = add_digit(acc, digit, &multiples);
    }
    acc
}

/// Windows of `bits` for a `32·L`-bit scalar, plus one for the final carry of the recoding.
pub(crate) fn windows<const L: usize>(bits: u32) -> usize {
    (32 * L as u32).div_ceil(bits) as usize + 1
}

/// `k` as signed radix-2^w digits in [-(2^(w-1) - 1), 2^(w-1)], least significant first:
/// `k = Σ dᵢ·2^(w·i)`.
pub(crate) fn signed_digits<const L: usize>(k: &Limbs<L>, bits: u32) -> Vec<i32> {
    let bit = |i: u32| -> i32 {
        k.get((i / 32) as usize)
            .map_or(0, |limb| ((limb >> (i % 32)) & 1) as i32)
    };
    let half = 1i32 << (bits - 1);
    let mut carry = 0;
    (0..windows::<L>(bits) as u32)
        .map(|w| {
            let raw = (0..bits).fold(0i32, |acc, j| acc | (bit(w * bits + j) << j));
            let mut d = raw + carry;
            carry = 0;
            if d > half {
                d -= 1 << bits;
                carry = 1;
            }
            d
        })
        .collect()
}

/// Window width of the one-shot multiplication `u2·Q` (a key's first use): 16 affine multiples
/// of `Q`, then one doubling per bit and one mixed addition per 5 bits.
const ONE_SHOT_WINDOW_BITS: u32 = 5;

/// A validated public key with its lazily built table. Equal when the points are.
///
/// The table is built on the key's **second** verification: a key verified once (a DPoP
/// proof's `jwk`, new with every request) costs one windowed multiplication (~4× the tabled
/// one) instead of a table (~2.5 ms in V8) it would never use again; a JWKS key, verified
/// again and again, gets its table on its second token.
#[derive(Clone)]
pub(crate) struct EcdsaKey<C: Curve<L>, const L: usize> {
    pub(crate) point: Affine<C, L>,
    pub(crate) table: OnceCell<Option<Rc<Table<C, L>>>>,
    used: Cell<bool>,
}

impl<C: Ecdsa<L>, const L: usize> PartialEq for EcdsaKey<C, L> {
    fn eq(&self, other: &Self) -> bool {
        self.point == other.point
    }
}

impl<C: Ecdsa<L>, const L: usize> EcdsaKey<C, L> {
    /// A key from its big-endian affine coordinates (exactly `4·L` bytes each); `None` unless
    /// both are below `p` and the point is on the curve (see [`Affine::from_coordinates`]).
    pub(crate) fn from_coordinates(x: &[u8], y: &[u8]) -> Option<Self> {
        Some(EcdsaKey {
            point: Affine::from_coordinates(x, y)?,
            table: OnceCell::new(),
            used: Cell::new(false),
        })
    }

    /// ES256 / ES384 (RFC 7518 §3.4): `sig` is raw `r || s` (`2·4·L` bytes), both in [1, n−1].
    /// High-s signatures are accepted, as by the `p256`/`p384` crates and Envoy's `jwt_authn`
    /// (ECDSA itself has no low-s rule; a second valid signature of the same token grants
    /// nothing new).
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.verify_digest(&C::Hash::digest(msg), sig)
    }

    /// The signature check for a digest of the message (`4·L` bytes).
    pub(crate) fn verify_digest(&self, digest: &[u8], sig: &[u8]) -> bool {
        let Some((r, s)) = sig.split_at_checked(4 * L).filter(|_| sig.len() == 8 * L) else {
            return false;
        };
        let (Some(r), Some(s)) = (from_be_bytes::<L>(r), from_be_bytes::<L>(s)) else {
            return false;
        };
        let n = C::N;
        let in_range = |v: &Limbs<L>| !is_zero(v) && less(v, &n.m);
        if !in_range(&r) || !in_range(&s) {
            return false;
        }
        // e: the leftmost 32·L bits of the digest, i.e. all of it, reduced mod n (2^(32·L) < 2n
        // for both curves, so one subtraction).
        let Some(mut e) = from_be_bytes::<L>(digest) else {
            return false;
        };
        if !less(&e, &n.m) {
            sub_in_place(&mut e, &n.m);
        }
        // s⁻¹ in Montgomery form (s⁻¹·R): a Montgomery product with a plain value is then plain.
        let s_inv = n.invert(&n.to_mont(&s));
        let u1 = n.mul(&e, &s_inv);
        let u2 = n.mul(&r, &s_inv);
        let Some(g_table) = C::generator_table() else {
            return false;
        };
        let key_part = if self.table.get().is_none() && !self.used.replace(true) {
            multiply_once(&self.point, &u2)
        } else {
            let Some(key_table) = self
                .table
                .get_or_init(|| Table::new(&self.point, C::KEY_WINDOW_BITS).map(Rc::new))
            else {
                return false;
            };
            key_table.accumulate(Jacobian::identity(), &u2)
        };
        let point = g_table.accumulate(key_part, &u1);
        if point.is_identity() {
            return false;
        }
        x_matches(&point, &r)
    }
}

/// Whether `x(point) mod n = r` for a point that is not the identity and `r < n`. As `x < p < 2n`,
/// that is `x = r` or `x = r + n` (only possible when `r + n < p`), checked without inversion
/// as `X = r'·Z²` in Montgomery form.
pub(crate) fn x_matches<C: Curve<L>, const L: usize>(point: &Jacobian<C, L>, r: &Limbs<L>) -> bool {
    let zz = point.z.square();
    let matches = |candidate: &Limbs<L>| C::Fe::from_limbs(candidate).mul(&zz) == point.x;
    if matches(r) {
        return true;
    }
    let mut r_plus_n = *r;
    let carry = add_in_place(&mut r_plus_n, &C::N.m);
    !carry && less(&r_plus_n, &C::P.m) && matches(&r_plus_n)
}
