//! ES384 verification (ECDSA over P-384 with SHA-384, FIPS 186-5 §6.4.2 / SEC1 §4.1.4) on our own
//! arithmetic (`p384_arith`, `p384_curve`), with precomputed multiples of the generator and of
//! each public key: the method of `p256_table`.
//!
//! Why not the `p384` crate: its unrolled fiat-crypto field code was ~16 % of the wasm module's
//! code; replacing it with these three modules made the module ~112 KB smaller and ES384 3.7×
//! faster in V8 (`docs/performance.md`). The crate stays a dev-dependency: the tests compare
//! every result with it.
//!
//! - each base `B` gets a table of the affine points `(j+1)·2^(w·i)·B` for `j < 2^(w-1)`, built
//!   once and normalised with one field inversion per 16 windows: for `G` with w = 6 on the VM's
//!   first ES384 verification (65 windows × 32 points × 96 bytes ≈ 200 KiB), for a key with
//!   w = 5 on its first use (78 × 16 ≈ 120 KiB);
//! - a scalar is recoded into signed radix-2^w digits; `u1·G + u2·Q` is then one accumulator
//!   and one mixed addition per non-zero digit (at most 65 + 78), no doubling;
//! - `x(R) mod n = r` is checked as `X = r·Z` or `X = (r+n)·Z` (when `r + n < p`) on the
//!   projective result: no field inversion per signature.
//!
//! **Variable time.** Key, signature, message and digest are public, so the code branches and
//! indexes tables on them. It must never be reused for signing or any other secret.

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::OnceLock;

use sha2::{Digest as _, Sha384};

use super::p384_arith::{Limbs, N, P, add_in_place, from_be_bytes, is_zero, less, sub_in_place};
use super::p384_curve::{Affine, Point};

const G_WINDOW_BITS: u32 = 6;
const KEY_WINDOW_BITS: u32 = 5;
/// Bits of a scalar mod n.
const SCALAR_BITS: u32 = 384;
/// Windows normalised per field inversion while a table is built: 16 windows of (at most) 32
/// projective points are 72 KiB of scratch, and `G`'s 5 inversions add ~5 % to its build.
const NORMALISE_WINDOWS: usize = 16;

/// The precomputed affine multiples of one base point, window by window: entry
/// `i·2^(w-1) + j` is `(j+1)·2^(w·i)·B`.
struct Table {
    bits: u32,
    points: Vec<Affine>,
}

impl Table {
    /// Per window 2^(w-1) − 1 additions and w doublings; normalised [`NORMALISE_WINDOWS`]
    /// windows at a time (one inversion each), which bounds the projective scratch space (wasm
    /// linear memory never shrinks). `None` only if an entry were the identity, which cannot
    /// happen: `(j+1)·2^(w·i)` is never a multiple of the prime `n` (an `Option`, not a panic).
    fn new(base: &Affine, bits: u32) -> Option<Table> {
        let bits = bits.clamp(2, 8);
        let per_window = 1usize << (bits - 1);
        let count = windows(bits);
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

    /// `acc + k·B` for `k < 2^384`, variable time.
    fn accumulate(&self, mut acc: Point, k: &Limbs) -> Point {
        let per_window = 1usize << (self.bits - 1);
        for (window, digit) in signed_digits(k, self.bits).into_iter().enumerate() {
            let Some(entry) = (digit.unsigned_abs() as usize)
                .checked_sub(1)
                .and_then(|j| self.points.get(window * per_window + j))
            else {
                continue;
            };
            acc = if digit < 0 {
                acc.add_affine(&entry.neg())
            } else {
                acc.add_affine(entry)
            };
        }
        acc
    }
}

/// Windows of `bits` for a 384-bit scalar, plus one for the final carry of the recoding.
fn windows(bits: u32) -> usize {
    SCALAR_BITS.div_ceil(bits) as usize + 1
}

/// `k` as signed radix-2^w digits in [-(2^(w-1) - 1), 2^(w-1)], least significant first:
/// `k = Σ dᵢ·2^(w·i)`.
fn signed_digits(k: &Limbs, bits: u32) -> Vec<i32> {
    let bit = |i: u32| -> i32 {
        k.get((i / 32) as usize)
            .map_or(0, |limb| ((limb >> (i % 32)) & 1) as i32)
    };
    let half = 1i32 << (bits - 1);
    let mut carry = 0;
    (0..windows(bits) as u32)
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

/// The generator's table, built once per VM on the first ES384 verification.
fn generator_table() -> Option<&'static Table> {
    static TABLE: OnceLock<Option<Table>> = OnceLock::new();
    TABLE
        .get_or_init(|| Table::new(&Affine::generator(), G_WINDOW_BITS))
        .as_ref()
}

/// A validated P-384 public key with its lazily built table. Equal when the points are.
#[derive(Clone)]
pub(crate) struct P384Key {
    point: Affine,
    table: OnceCell<Option<Rc<Table>>>,
}

impl PartialEq for P384Key {
    fn eq(&self, other: &Self) -> bool {
        self.point == other.point
    }
}

impl P384Key {
    /// A key from its big-endian affine coordinates (exactly 48 bytes each); `None` unless both
    /// are below `p` and the point is on the curve (see [`Affine::from_coordinates`]).
    pub(crate) fn from_coordinates(x: &[u8], y: &[u8]) -> Option<Self> {
        Some(P384Key {
            point: Affine::from_coordinates(x, y)?,
            table: OnceCell::new(),
        })
    }

    /// ES384 (RFC 7518 §3.4): `sig` is raw `r || s` (96 bytes), both in [1, n−1]. High-s
    /// signatures are accepted, as by the `p384` crate and Envoy's `jwt_authn` (ECDSA itself
    /// has no low-s rule; a second valid signature of the same token grants nothing new).
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.verify_digest(&Sha384::digest(msg), sig)
    }

    /// The signature check for a SHA-384 `digest` of the message.
    fn verify_digest(&self, digest: &[u8], sig: &[u8]) -> bool {
        let Some((r, s)) = sig.split_at_checked(48).filter(|_| sig.len() == 96) else {
            return false;
        };
        let (Some(r), Some(s)) = (from_be_bytes(r), from_be_bytes(s)) else {
            return false;
        };
        let in_range = |v: &Limbs| !is_zero(v) && less(v, &N.m);
        if !in_range(&r) || !in_range(&s) {
            return false;
        }
        // e: the leftmost 384 bits of the SHA-384 digest, i.e. all of it, reduced mod n
        // (2^384 < 2n, so one subtraction).
        let Some(mut e) = from_be_bytes(digest) else {
            return false;
        };
        if !less(&e, &N.m) {
            sub_in_place(&mut e, &N.m);
        }
        // s⁻¹ in Montgomery form (s⁻¹·R): a Montgomery product with a plain value is then plain.
        let s_inv = N.invert(&N.to_mont(&s));
        let u1 = N.mul(&e, &s_inv);
        let u2 = N.mul(&r, &s_inv);
        let Some(key_table) = self
            .table
            .get_or_init(|| Table::new(&self.point, KEY_WINDOW_BITS).map(Rc::new))
        else {
            return false;
        };
        let Some(g_table) = generator_table() else {
            return false;
        };
        let point = key_table.accumulate(g_table.accumulate(Point::identity(), &u1), &u2);
        if point.is_identity() {
            return false;
        }
        x_matches(&point, &r)
    }
}

/// Whether `x(point) mod n = r` for a point that is not the identity and `r < n`. As `x < p < 2n`,
/// that is `x = r` or `x = r + n` (only possible when `r + n < p`), checked without inversion
/// as `X = r'·Z` in Montgomery form.
fn x_matches(point: &Point, r: &Limbs) -> bool {
    let matches = |candidate: &Limbs| P.mul(&P.to_mont(candidate), &point.z) == point.x;
    if matches(r) {
        return true;
    }
    let mut r_plus_n = *r;
    let carry = add_in_place(&mut r_plus_n, &N.m);
    !carry && less(&r_plus_n, &P.m) && matches(&r_plus_n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::jose::p384_arith::to_be_bytes;
    use crate::jose::p384_curve::tests::{encode, ours, theirs};
    use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
    use p384::ecdsa::signature::{Signer as _, Verifier as _};
    use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
    use p384::elliptic_curve::ops::Reduce as _;
    use p384::elliptic_curve::sec1::ToEncodedPoint as _;
    use p384::{ProjectivePoint, Scalar};

    use super::super::test_rng::Rng;

    fn key_of(verifying: &VerifyingKey) -> P384Key {
        let point = verifying.to_encoded_point(false);
        P384Key::from_coordinates(point.x().unwrap(), point.y().unwrap()).unwrap()
    }

    fn scalar(k: &Scalar) -> Limbs {
        from_be_bytes(&k.to_bytes()).unwrap()
    }

    #[test]
    fn digits_recombine() {
        let mut rng = Rng(3);
        let n = num_bigint_dig::BigUint::from_bytes_be(&to_be_bytes(&N.m));
        let mut scalars = vec![[0; 12], crate::jose::p384_arith::one(), [u32::MAX; 12], N.m];
        for _ in 0..60 {
            scalars.push(from_be_bytes(&rng.array::<48>()).unwrap());
        }
        for bits in 2..=8u32 {
            let half = 1i32 << (bits - 1);
            for k in &scalars {
                let digits = signed_digits(k, bits);
                assert_eq!(digits.len(), windows(bits));
                let mut sum = num_bigint_dig::BigInt::from(0);
                for d in digits.iter().rev() {
                    assert!(-half < *d && *d <= half, "digit {d} for w={bits}");
                    sum = (sum << bits as usize) + num_bigint_dig::BigInt::from(*d);
                }
                let want = num_bigint_dig::BigUint::from_bytes_be(&to_be_bytes(k));
                assert_eq!(sum, num_bigint_dig::BigInt::from(want), "w={bits}");
            }
        }
        assert!(n > num_bigint_dig::BigUint::from(0u32));
    }

    #[test]
    fn table_multiplication_matches_the_crate() {
        let mut rng = Rng(17);
        let q = ProjectivePoint::GENERATOR * Scalar::from(0xdead_beefu64);
        let q_affine = Point::batch_to_affine(&[ours(&q)]).unwrap()[0];
        let tables = [
            (generator_table().unwrap(), ProjectivePoint::GENERATOR),
            (&Table::new(&q_affine, KEY_WINDOW_BITS).unwrap(), q),
            (&Table::new(&q_affine, 3).unwrap(), q),
        ];
        let mut scalars = vec![
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(16u64),
            -Scalar::from(32u64),
        ];
        for _ in 0..16 {
            scalars.push(Scalar::reduce_bytes(&rng.array::<48>().into()));
        }
        for (table, base) in tables {
            for k in &scalars {
                let ours = table.accumulate(Point::identity(), &scalar(k));
                assert_eq!(encode(&ours), theirs(&(base * k)));
            }
        }
    }

    /// `n` big-endian, and `n − 1`.
    fn order() -> ([u8; 48], [u8; 48]) {
        let n = to_be_bytes(&N.m);
        let mut n1 = N.m;
        n1[0] -= 1;
        (n, to_be_bytes(&n1))
    }

    /// Our ES384 check agrees with the `p384` crate's on genuine, corrupted and malformed
    /// signatures of random keys and messages.
    #[test]
    fn verification_matches_the_crate() {
        let mut rng = Rng(23);
        let (n, n_minus_1) = order();
        for round in 0..12 {
            let signer = SigningKey::from_slice(&rng.array::<48>()).unwrap();
            let verifying = *signer.verifying_key();
            let key = key_of(&verifying);
            let msg = rng.bytes(1 + 13 * round);
            let sig: Signature = signer.sign(&msg);
            let bytes = sig.to_bytes();
            let agree = |m: &[u8], s: &[u8]| {
                let theirs =
                    Signature::from_slice(s).is_ok_and(|s| verifying.verify(m, &s).is_ok());
                let ours = key.verify(m, s);
                assert_eq!(ours, theirs, "round {round}");
                ours
            };
            assert!(agree(&msg, &bytes));
            // Another message, and the message with one bit flipped.
            assert!(!agree(&[msg.as_slice(), b"x"].concat(), &bytes));
            let mut flipped = msg.clone();
            flipped[round % msg.len()] ^= 1 << (round % 8);
            assert!(!agree(&flipped, &bytes));
            // Bits flipped in r and in s.
            for bit in (round..768).step_by(41) {
                let mut bad = bytes;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!agree(&msg, &bad));
            }
            // r or s zero, n, n − 1, all ones, or 1.
            let mut one = [0u8; 48];
            one[47] = 1;
            for offset in [0, 48] {
                for value in [[0u8; 48], n, n_minus_1, [0xff; 48], one] {
                    let mut bad = bytes;
                    bad[offset..offset + 48].copy_from_slice(&value);
                    assert!(!agree(&msg, &bad));
                }
            }
            // r + n (still < 2^384): the same residue, refused as out of range.
            let mut r_plus_n = [0u8; 96];
            let mut r = from_be_bytes(&bytes[..48]).unwrap();
            if !add_in_place(&mut r, &N.m) {
                r_plus_n[..48].copy_from_slice(&to_be_bytes(&r));
                r_plus_n[48..].copy_from_slice(&bytes[48..]);
                assert!(!agree(&msg, &r_plus_n));
            }
            // High s (n − s): valid ECDSA, accepted by the crate and by us.
            let high: Signature = Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
            assert!(agree(&msg, &high.to_bytes()));
            // Wrong lengths.
            assert!(!key.verify(&msg, &bytes[..95]));
            assert!(!key.verify(&msg, &[&bytes[..], &[0]].concat()));
            assert!(!key.verify(&msg, &[]));
            // Another key.
            let other = key_of(
                SigningKey::from_slice(&[round as u8 + 1; 48])
                    .unwrap()
                    .verifying_key(),
            );
            assert!(!other.verify(&msg, &bytes));
        }
    }

    /// Signatures built directly from chosen `u1`, `u2` (no private key needed for verifying
    /// edge cases): `R = u1·G + u2·Q`, `r = x(R) mod n`, `s = r/u2`, `e = u1·s`.
    #[test]
    fn edge_signatures_match_the_crate() {
        let d = Scalar::from(0x0123_4567_89ab_cdefu64);
        let q = ProjectivePoint::GENERATOR * d;
        let verifying = VerifyingKey::from_affine(q.to_affine()).unwrap();
        let key = key_of(&verifying);
        let cases = [
            (Scalar::ONE, Scalar::ONE),
            (-Scalar::ONE, Scalar::ONE),
            (Scalar::ZERO, Scalar::from(5u64)), // e = 0 (digest ≡ 0 mod n cannot be typed)
            (Scalar::from(3u64), -Scalar::from(3u64)),
        ];
        for (u1, u2) in cases {
            let point = (ProjectivePoint::GENERATOR * u1 + q * u2).to_affine();
            let x = point.to_encoded_point(false);
            let r = Scalar::reduce_bytes(x.x().unwrap());
            let s = r * u2.invert().unwrap();
            let e = u1 * s;
            let sig = Signature::from_scalars(r, s).unwrap();
            // Verify the prehash through our internals: our verify takes messages, so compare the
            // crate's prehash verification with ours on the same (e, r, s).
            let crate_ok = verifying.verify_prehash(&e.to_bytes(), &sig).is_ok();
            assert!(crate_ok);
            let s_inv = N.invert(&N.to_mont(&scalar(&s)));
            let ou1 = N.mul(&scalar(&e), &s_inv);
            let ou2 = N.mul(&scalar(&r), &s_inv);
            let table = Table::new(&key.point, KEY_WINDOW_BITS).unwrap();
            let sum = table.accumulate(
                generator_table()
                    .unwrap()
                    .accumulate(Point::identity(), &ou1),
                &ou2,
            );
            assert!(x_matches(&sum, &scalar(&r)));
            let mut wrong = scalar(&r);
            wrong[0] ^= 1;
            assert!(!x_matches(&sum, &wrong));
        }
        // u1·G + u2·Q = identity (u2 = −u1/d): refused by the identity check.
        let u1 = Scalar::from(9u64);
        let u2 = -(u1 * d.invert().unwrap());
        let table = Table::new(&key.point, KEY_WINDOW_BITS).unwrap();
        let sum = table.accumulate(
            generator_table()
                .unwrap()
                .accumulate(Point::identity(), &scalar(&u1)),
            &scalar(&u2),
        );
        assert!(sum.is_identity());
    }

    /// Digests at or above n are reduced (e = digest − n), as by the crate: digests of n − 1,
    /// n, n + 1 and all ones, signed with the crate's prehash signer.
    #[test]
    fn large_digests_are_reduced_mod_n() {
        use p384::ecdsa::signature::hazmat::PrehashSigner as _;
        let signer = SigningKey::from_slice(&[0x3c; 48]).unwrap();
        let verifying = *signer.verifying_key();
        let key = key_of(&verifying);
        let (n, n_minus_1) = order();
        let mut n_plus_1 = N.m;
        n_plus_1[0] += 1;
        for digest in [n_minus_1, n, to_be_bytes(&n_plus_1), [0xff; 48]] {
            let sig: Signature = signer.sign_prehash(&digest).unwrap();
            assert!(verifying.verify_prehash(&digest, &sig).is_ok());
            assert!(key.verify_digest(&digest, &sig.to_bytes()));
            let mut other = digest;
            other[0] ^= 0x80;
            assert!(!key.verify_digest(&other, &sig.to_bytes()));
        }
        // e = n reduces to 0, the same as a zero digest.
        let sig: Signature = signer.sign_prehash(&[0; 48]).unwrap();
        assert!(key.verify_digest(&n, &sig.to_bytes()));
    }

    /// The rare branch `x(R) = r + n` (only for `r < p − n`, about 2^-190 of signatures, so no
    /// genuine signature reaches it): checked on the comparison itself with a chosen `Z`.
    #[test]
    fn x_equal_to_r_plus_n_matches() {
        let z = P.to_mont(&from_be_bytes(&[0x5e; 48]).unwrap());
        let mut r = [0u32; 12];
        r[0] = 12345;
        r[5] = 0x1234_5678; // r < p − n ≈ 0x389c_b27e · 2^160
        let mut r_plus_n = r;
        assert!(!add_in_place(&mut r_plus_n, &N.m));
        assert!(less(&r_plus_n, &P.m));
        let x = P.mul(&P.to_mont(&r_plus_n), &z);
        assert!(x_matches(&Point { x, y: z, z }, &r));
        // r itself as x matches too; a different r does not.
        let x = P.mul(&P.to_mont(&r), &z);
        assert!(x_matches(&Point { x, y: z, z }, &r));
        let mut other = r;
        other[0] += 1;
        assert!(!x_matches(&Point { x, y: z, z }, &other));
        // r ≥ p − n: r + n is not a field element, so only x = r can match.
        let (_, n_minus_1) = order();
        let big_r = from_be_bytes(&n_minus_1).unwrap();
        let mut wrapped = big_r;
        add_in_place(&mut wrapped, &N.m); // ≡ r + n mod 2^384: meaningless, must not match
        let x = P.mul(&P.to_mont(&wrapped), &z);
        assert!(!x_matches(&Point { x, y: z, z }, &big_r));
    }

    /// RFC 6979 A.2.6: the P-384 key and its deterministic SHA-384 signatures of "sample" and
    /// "test", typed from the RFC, as verification vectors.
    #[test]
    fn rfc6979_a26_vectors() {
        let hex = |h: &str| -> Vec<u8> {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        };
        let ux = hex(
            "EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64DEF8F0EA9055866064A254515480BC13",
        );
        let uy = hex(
            "8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1288B231C3AE0D4FE7344FD2533264720",
        );
        let key = P384Key::from_coordinates(&ux, &uy).unwrap();
        let vectors = [
            (
                "sample",
                "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46",
                "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8",
            ),
            (
                "test",
                "8203B63D3C853E8D77227FB377BCF7B7B772E97892A80F36AB775D509D7A5FEB0542A7F0812998DA8F1DD3CA3CF023DB",
                "DDD0760448D42D8A43AF45AF836FCE4DE8BE06B485E9B61B827C2F13173923E06A739F040649A667BF3B828246BAA5A5",
            ),
        ];
        for (msg, r, s) in vectors {
            let sig = [hex(r), hex(s)].concat();
            assert!(key.verify(msg.as_bytes(), &sig), "{msg}");
            assert!(!key.verify(b"other", &sig), "{msg}");
        }
        // The private key x of A.2.6 gives the same public key in the crate.
        let d = hex(
            "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5",
        );
        let signer = SigningKey::from_slice(&d).unwrap();
        assert!(key == key_of(signer.verifying_key()));
    }

    #[test]
    fn a_key_builds_its_table_once() {
        let signer = SigningKey::from_slice(&[7; 48]).unwrap();
        let key = key_of(signer.verifying_key());
        let sig: Signature = signer.sign(b"m");
        assert!(key.table.get().is_none());
        assert!(key.verify(b"m", &sig.to_bytes()));
        let first = Rc::as_ptr(key.table.get().unwrap().as_ref().unwrap());
        assert!(key.verify(b"m", &sig.to_bytes()));
        assert_eq!(
            first,
            Rc::as_ptr(key.table.get().unwrap().as_ref().unwrap())
        );
    }
}
