//! ES256 verification with precomputed multiples of the generator and of each public key.
//!
//! ECDSA verification computes `u1·G + u2·Q` and compares its x coordinate with `r`. The `p256`
//! crate (0.13) computes it as two constant-time scalar multiplications from scratch: about 512
//! point doublings, 128 additions and 128 constant-time table scans per signature, and no
//! precomputation for `G` or for a key that verifies thousands of tokens. Verification handles only
//! public values, so a variable-time fixed-base method is safe, and both bases are fixed:
//!
//! - each base `P` gets a table `T[i][j] = (j+1)·2^(w·i)·P` for `j < 2^(w-1)`, built once: for
//!   `G` with w = 6 on the first ES256 verification of the VM (44 windows × 32 projective points
//!   ≈ 132 KiB), for a key with w = 5 on its first use (53 × 16 ≈ 80 KiB; keys a JWKS lists but
//!   never uses cost nothing);
//! - a scalar is recoded into signed radix-2^w digits, and `k·P` is the sum of one table entry
//!   per window (negated for negative digits): additions only, no doubling.
//!
//! So a verification costs at most 44 + 53 = 97 point additions instead of ~640 point
//! operations (measured in V8: ~5× faster than the crate's verify; `docs/performance.md`). The
//! point arithmetic, scalar arithmetic and encodings are the `p256` crate's (complete formulas,
//! so no special case is ours); the tests compare every result with the crate's own
//! multiplication and verification.

use std::cell::OnceCell;
use std::sync::OnceLock;

use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::ops::{Invert as _, Reduce};
use p256::elliptic_curve::point::AffineCoordinates as _;
use p256::elliptic_curve::{Group, PrimeField};
use p256::{FieldBytes, ProjectivePoint, Scalar, U256};
use sha2::{Digest as _, Sha256};

/// Window width (bits) of the generator's table: one per VM, so it can be larger
/// (44 windows × 32 points × 96 bytes ≈ 132 KiB).
const G_WINDOW_BITS: u32 = 6;
/// Window width of a key's table (53 windows × 16 points ≈ 80 KiB per key in use).
const KEY_WINDOW_BITS: u32 = 5;

/// The precomputed multiples of one base point: window `i` holds `(j+1)·2^(w·i)·B` for
/// `j < 2^(w-1)`.
///
/// Projective points: `p256` 0.13 offers no batch normalisation for P-256 (its field element
/// lacks the `Invert` the generic one needs), one inversion per point would cost more than the
/// table saves, and a projective addition costs about one field multiplication more than a
/// mixed one.
///
/// Generic over the group (P-384 once used it too; it now has its own affine tables, `p384_table`).
pub(crate) struct Table<P> {
    bits: u32,
    windows: Vec<Vec<P>>,
}

impl<P: Group> Table<P> {
    /// Builds the table of `base` with `bits`-wide windows (2..=8): per window 2^(w-1) - 1
    /// additions and w doublings, no inversion.
    pub(crate) fn new(base: &P, bits: u32) -> Self {
        let bits = bits.clamp(2, 8);
        let count = windows(bits, P::Scalar::NUM_BITS);
        let per_window = 1usize << (bits - 1);
        let mut windows = Vec::with_capacity(count);
        let mut window_base = *base;
        for _ in 0..count {
            let mut window = Vec::with_capacity(per_window);
            let mut multiple = window_base;
            for _ in 0..per_window {
                window.push(multiple);
                multiple += window_base;
            }
            windows.push(window);
            for _ in 0..bits {
                window_base = window_base.double();
            }
        }
        Table { bits, windows }
    }

    /// `k·B`, variable time (k is public here).
    pub(crate) fn mul(&self, k: &P::Scalar) -> P {
        let mut acc = P::identity();
        for (digit, window) in signed_digits(k, self.bits).iter().zip(&self.windows) {
            let index = digit.unsigned_abs() as usize;
            let Some(point) = index.checked_sub(1).and_then(|i| window.get(i)) else {
                continue;
            };
            if *digit < 0 {
                acc += -*point;
            } else {
                acc += *point;
            }
        }
        acc
    }
}

/// Windows of `bits` for a scalar of `scalar_bits`, plus one for the final carry of the recoding.
fn windows(bits: u32, scalar_bits: u32) -> usize {
    scalar_bits.div_ceil(bits) as usize + 1
}

/// `k` as signed radix-2^w digits in [-(2^(w-1) - 1), 2^(w-1)], least significant first:
/// `k = Σ dᵢ·2^(w·i)`.
fn signed_digits<S: PrimeField>(k: &S, bits: u32) -> Vec<i32> {
    let repr = k.to_repr();
    let bytes = repr.as_ref(); // big-endian for P-256 and P-384
    let bit = |i: u32| -> i32 {
        let byte = bytes
            .len()
            .checked_sub(1 + (i / 8) as usize)
            .and_then(|b| bytes.get(b));
        byte.map_or(0, |b| i32::from((b >> (i % 8)) & 1))
    };
    let half = 1i32 << (bits - 1);
    let mut carry = 0;
    (0..windows(bits, S::NUM_BITS) as u32)
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

/// The generator's table, built once per VM on the first ES256 verification.
fn generator_table() -> &'static Table<ProjectivePoint> {
    static TABLE: OnceLock<Table<ProjectivePoint>> = OnceLock::new();
    TABLE.get_or_init(|| Table::new(&ProjectivePoint::GENERATOR, G_WINDOW_BITS))
}

/// A P-256 public key with its lazily built table.
#[derive(Clone)]
pub(crate) struct P256Key {
    key: VerifyingKey,
    table: OnceCell<std::rc::Rc<Table<ProjectivePoint>>>,
}

impl PartialEq for P256Key {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl P256Key {
    pub(crate) fn new(key: VerifyingKey) -> Self {
        P256Key {
            key,
            table: OnceCell::new(),
        }
    }

    /// ES256 (RFC 7518 §3.4): `sig` is raw `r || s` (64 bytes), both in [1, n-1].
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 64 {
            return false;
        }
        // from_slice refuses r or s that are zero or not below the group order.
        let Ok(signature) = Signature::from_slice(sig) else {
            return false;
        };
        let (r, s) = signature.split_scalars();
        let digest: FieldBytes = Sha256::digest(msg);
        // bits2field of a 256-bit digest is the digest itself; reduce it mod n.
        let z = <Scalar as Reduce<U256>>::reduce_bytes(&digest);
        let s: Scalar = *s;
        let Some(s_inv) = Option::<Scalar>::from(s.invert_vartime()) else {
            return false;
        };
        let u1 = z * s_inv;
        let u2 = *r * s_inv;
        let table = self.table.get_or_init(|| {
            std::rc::Rc::new(Table::new(
                &ProjectivePoint::from(*self.key.as_affine()),
                KEY_WINDOW_BITS,
            ))
        });
        let point = (generator_table().mul(&u1) + table.mul(&u2)).to_affine();
        if bool::from(point.is_identity()) {
            return false;
        }
        <Scalar as Reduce<U256>>::reduce_bytes(&point.x()) == *r
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::{Signer as _, Verifier as _};

    use super::super::test_rng::Rng;

    #[test]
    fn digits_recombine() {
        let mut rng = Rng(3);
        let mut scalars = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE];
        for _ in 0..100 {
            scalars.push(Scalar::reduce_bytes(&rng.array::<32>().into()));
        }
        for bits in 2..=8u32 {
            let radix = Scalar::from(1u64 << bits);
            let half = 1i32 << (bits - 1);
            for k in &scalars {
                let digits = signed_digits(k, bits);
                assert_eq!(digits.len(), windows(bits, 256));
                let mut sum = Scalar::ZERO;
                for d in digits.iter().rev() {
                    assert!(-half < *d && *d <= half, "digit {d} for w={bits}");
                    sum *= radix;
                    let abs = Scalar::from(u64::from(d.unsigned_abs()));
                    sum += if *d < 0 { -abs } else { abs };
                }
                assert_eq!(sum, *k, "w={bits}");
            }
        }
    }

    #[test]
    fn table_multiplication_matches_the_crate() {
        let mut rng = Rng(11);
        let q = ProjectivePoint::GENERATOR * Scalar::from(0x1234_5678u64);
        let tables = [
            (generator_table(), ProjectivePoint::GENERATOR),
            (&Table::new(&q, 4), q),
            (&Table::new(&q, KEY_WINDOW_BITS), q),
            (&Table::new(&q, 8), q),
        ];
        let mut scalars = vec![
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(8u64),
            -Scalar::from(8u64),
            Scalar::from(32u64),
        ];
        for _ in 0..48 {
            scalars.push(Scalar::reduce_bytes(&rng.array::<32>().into()));
        }
        for (table, base) in tables {
            for k in &scalars {
                assert_eq!(table.mul(k), base * k);
            }
        }
    }

    /// Our ES256 check agrees with the `p256` crate's on genuine signatures of random keys and
    /// messages, on corrupted ones, and on malformed encodings.
    #[test]
    fn verification_matches_the_crate() {
        let mut rng = Rng(99);
        for round in 0..24 {
            let signer = SigningKey::from_slice(&rng.array::<32>()).unwrap();
            let key = P256Key::new(*signer.verifying_key());
            let msg = rng.array::<32>();
            let sig: Signature = signer.sign(&msg[..8 + round]);
            let bytes = sig.to_bytes();
            let agree = |m: &[u8], s: &[u8]| {
                let theirs = Signature::from_slice(s)
                    .is_ok_and(|s| signer.verifying_key().verify(m, &s).is_ok());
                let ours = key.verify(m, s);
                assert_eq!(ours, theirs);
                ours
            };
            assert!(agree(&msg[..8 + round], &bytes));
            assert!(!agree(&msg[..9 + round], &bytes), "other message");
            for bit in (0..512).step_by(37 + round) {
                let mut bad = bytes;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!agree(&msg[..8 + round], &bad));
            }
            // r or s zero, or at least n: refused like the crate.
            let n = hex_order();
            for (offset, value) in [
                (0, [0u8; 32]),
                (32, [0u8; 32]),
                (0, n),
                (32, n),
                (32, [0xff; 32]),
            ] {
                let mut bad = bytes;
                bad[offset..offset + 32].copy_from_slice(&value);
                assert!(!agree(&msg[..8 + round], &bad));
            }
            assert!(!key.verify(&msg, &bytes[..63]));
        }
    }

    /// The group order n, big-endian.
    fn hex_order() -> [u8; 32] {
        let n = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&n[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn a_key_builds_its_table_once() {
        let signer = SigningKey::from_slice(&[7; 32]).unwrap();
        let key = P256Key::new(*signer.verifying_key());
        let sig: Signature = signer.sign(b"m");
        assert!(key.table.get().is_none());
        assert!(key.verify(b"m", &sig.to_bytes()));
        let first = std::rc::Rc::as_ptr(key.table.get().unwrap());
        assert!(key.verify(b"m", &sig.to_bytes()));
        assert_eq!(first, std::rc::Rc::as_ptr(key.table.get().unwrap()));
    }
}
