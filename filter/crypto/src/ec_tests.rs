//! The tests that P-256 and P-384 share, written once: `curve_tests!` expands, inside a curve's
//! file (`es256.rs`, `es384.rs`), to that curve's `curve_tests` (points against the reference
//! crate, key validation) and `tests` (ECDSA against the reference crate, the edge cases of
//! verification, the RFC 6979 vectors) modules. The reference crates `p256` and `p384` have the
//! same API, so the curve's crate is a parameter like its types and limb count; the byte length
//! of a coordinate or scalar is `4·L`. What is the curve's own is passed in: `b` as FIPS 186-5
//! writes it, the limb that puts an `r` below `p − n`, and the RFC 6979 key and signatures.

/// The shared tests of one curve, expanded in the curve's module (`use super::*` reaches its
/// types). Parameters:
/// - `curve`, `key`: our curve type and its `EcdsaKey` alias; `limbs`: its `L`;
/// - `reference`: the crate the tests compare with (`p256` or `p384`);
/// - `fips_b`: `b` in hex as FIPS 186-5 / SP 800-186 gives it (checked against `Curve::B`);
/// - `rare_r_limb`: the top limb of an `r` below `p − n`, for the `x(R) = r + n` branch;
/// - `rfc6979`: the test's doc and name, the public key `(ux, uy)`, the private key `x` and the
///   signatures `(r, s)` of "sample" and "test" as the RFC prints them.
macro_rules! curve_tests {
    (
        curve: $curve:ident,
        key: $key:ident,
        limbs: $limbs:literal,
        reference: $reference:ident,
        fips_b: $fips_b:literal,
        rare_r_limb: $rare_r_limb:literal,
        rfc6979: {
            $(#[$rfc_meta:meta])*
            fn $rfc_name:ident;
            ux: $ux:literal,
            uy: $uy:literal,
            x: $x:literal,
            sample: ($sample_r:literal, $sample_s:literal $(,)?),
            test: ($test_r:literal, $test_s:literal $(,)?) $(,)?
        } $(,)?
    ) => {
        // The cfg again (the macro call has it): clippy counts code as a test by its own item's
        // attribute (clippy.toml, allow-*-in-tests).
        #[cfg(test)]
        pub(crate) mod curve_tests {
            use super::*;
            use crate::ec_arith::{Modulus, from_be_bytes, hex};

            /// Bytes of a coordinate or a scalar.
            const BYTES: usize = 4 * $limbs;
            type Limbs = crate::ec_arith::Limbs<$limbs>;
            type Point = crate::ec_curve::Point<$curve, $limbs>;
            type Affine = crate::ec_curve::Affine<$curve, $limbs>;
            type Jacobian = crate::ec_curve::Jacobian<$curve, $limbs>;
            const P: &Modulus<$limbs> = <$curve as Curve<$limbs>>::P;
            type Fe = <$curve as Curve<$limbs>>::Fe;
            use crate::ec_curve::Field;
            const B: Fe = <$curve as Curve<$limbs>>::B;

            fn to_be_bytes(a: &Limbs) -> [u8; BYTES] {
                crate::ec_arith::to_be_bytes(a)
            }
            use $reference::elliptic_curve::Group as _;
            use $reference::elliptic_curve::sec1::ToEncodedPoint as _;
            use $reference::{ProjectivePoint, Scalar};

            use crate::test_rng::Rng;

            /// Our point as the crate's SEC1 encoding (`[0]` for the identity).
            pub(crate) fn encode(point: &Point) -> Vec<u8> {
                let Some(affine) = Point::batch_to_affine(&[*point]) else {
                    return vec![0];
                };
                let mut out = vec![4];
                out.extend_from_slice(&to_be_bytes(&affine[0].x.to_limbs()));
                out.extend_from_slice(&to_be_bytes(&affine[0].y.to_limbs()));
                out
            }

            pub(crate) fn theirs(point: &ProjectivePoint) -> Vec<u8> {
                point
                    .to_affine()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec()
            }

            /// The crate's point as ours.
            pub(crate) fn ours(point: &ProjectivePoint) -> Point {
                let encoded = point.to_affine().to_encoded_point(false);
                match (encoded.x(), encoded.y()) {
                    (Some(x), Some(y)) => Point::from(&Affine::from_coordinates(x, y).unwrap()),
                    _ => Point::identity(),
                }
            }

            #[test]
            fn constants_match_the_crate() {
                let g = Point::from(&Affine::generator());
                assert_eq!(encode(&g), theirs(&ProjectivePoint::GENERATOR));
                assert!(Affine::generator().is_on_curve());
                assert_eq!(B.to_limbs(), hex($fips_b));
            }

            #[test]
            fn addition_and_doubling_match_the_crate() {
                let mut rng = Rng(41);
                let mut points = vec![ProjectivePoint::IDENTITY, ProjectivePoint::GENERATOR];
                points.push(-ProjectivePoint::GENERATOR);
                for _ in 0..12 {
                    let k = Scalar::from(rng.next());
                    points.push(ProjectivePoint::GENERATOR * k);
                }
                for (i, a) in points.iter().enumerate() {
                    let pa = ours(a);
                    assert_eq!(encode(&pa.double()), theirs(&a.double()));
                    let ja = jacobian(&pa, i);
                    assert_eq!(encode(&ja.double().projective()), theirs(&a.double()));
                    for b in &points[i..] {
                        let pb = ours(b);
                        let sum = theirs(&(a + b));
                        assert_eq!(encode(&pa.add(&pb)), sum);
                        assert_eq!(encode(&pa.add(&pa)), theirs(&a.double()), "add P + P");
                        if let Some(affine) = Point::batch_to_affine(&[pb]) {
                            // Jacobian + affine: every pair, P + P and P + (−P) among them.
                            assert_eq!(encode(&ja.add_affine(&affine[0]).projective()), sum);
                            assert_eq!(
                                encode(&ja.add_affine(&affine[0].neg()).projective()),
                                theirs(&(a - b))
                            );
                        }
                    }
                }
                // Projective inputs with Z ≠ 1 (scaled), and P + (−P).
                let g = Point::from(&Affine::generator());
                let g3 = g.double().add(&g);
                let minus = Point::from(&Point::batch_to_affine(&[g3]).unwrap()[0].neg());
                assert!(g3.add(&minus).is_identity());
                assert!(Point::identity().double().is_identity());
                assert!(Jacobian::identity().double().is_identity());
                let g3_affine = Point::batch_to_affine(&[g3]).unwrap()[0];
                let j3 = jacobian(&g3, 5);
                assert!(j3.add_affine(&g3_affine.neg()).is_identity());
                assert_eq!(
                    encode(&j3.add_affine(&g3_affine).projective()),
                    encode(&g3.double())
                );
            }

            /// `p` as a Jacobian point with `Z = λ` for a `λ` that depends on `seed` (≠ 1, so the
            /// formulas meet general `Z`), or the identity.
            fn jacobian(p: &Point, seed: usize) -> Jacobian {
                let Some(affine) = Point::batch_to_affine(&[*p]) else {
                    return Jacobian::identity();
                };
                let mut lambda = [0u32; $limbs];
                lambda[0] = 3 + seed as u32;
                lambda[$limbs - 1] = 0x0123_4567;
                let l = Fe::from_limbs(&lambda);
                let l2 = l.mul(&l);
                let l3 = l2.mul(&l);
                Jacobian::new(affine[0].x.mul(&l2), affine[0].y.mul(&l3), l)
            }

            #[test]
            fn key_validation() {
                let point = (ProjectivePoint::GENERATOR * Scalar::from(77u64)).to_affine();
                let encoded = point.to_encoded_point(false);
                let (x, y) = (encoded.x().unwrap().to_vec(), encoded.y().unwrap().to_vec());
                assert!(Affine::from_coordinates(&x, &y).is_some());
                // Off the curve: y with its low bit flipped.
                let mut y1 = y.clone();
                y1[BYTES - 1] ^= 1;
                assert!(Affine::from_coordinates(&x, &y1).is_none());
                // Wrong lengths.
                assert!(Affine::from_coordinates(&x[1..], &y).is_none());
                assert!(Affine::from_coordinates(&x, &[y.clone(), vec![0]].concat()).is_none());
                // (0, 0): the usual spelling of the identity, not on the curve.
                assert!(Affine::from_coordinates(&[0; BYTES], &[0; BYTES]).is_none());
                // Coordinates ≥ p: x + p or y + p would be the same point mod p; refused.
                let p = to_be_bytes(&P.m);
                assert!(Affine::from_coordinates(&p, &y).is_none());
                assert!(Affine::from_coordinates(&x, &p).is_none());
                assert!(Affine::from_coordinates(&[0xff; BYTES], &y).is_none());
                // (x, p − y) is −P: valid.
                let neg = to_be_bytes(&P.sub(&P.m, &from_be_bytes(&y).unwrap()));
                assert!(Affine::from_coordinates(&x, &neg).is_some());
            }
        }

        #[cfg(test)]
        mod tests {
            use super::curve_tests::{encode, ours, theirs};
            use super::*;
            use std::rc::Rc;

            use crate::ec_arith::{Modulus, add_in_place, from_be_bytes, less, sub_in_place};
            use crate::ecdsa::{signed_digits, x_matches};

            /// Bytes of a coordinate or a scalar; a raw signature `r || s` has twice as many.
            const BYTES: usize = 4 * $limbs;
            type Limbs = crate::ec_arith::Limbs<$limbs>;
            type Point = crate::ec_curve::Point<$curve, $limbs>;
            type Table = crate::ecdsa::Table<$curve, $limbs>;
            type Jacobian = crate::ec_curve::Jacobian<$curve, $limbs>;
            type Fe = <$curve as Curve<$limbs>>::Fe;
            use crate::ec_curve::Field;
            const P: &Modulus<$limbs> = <$curve as Curve<$limbs>>::P;
            const N: &Modulus<$limbs> = <$curve as Curve<$limbs>>::N;

            fn to_be_bytes(a: &Limbs) -> [u8; BYTES] {
                crate::ec_arith::to_be_bytes(a)
            }

            fn generator_table() -> Option<&'static Table> {
                $curve::generator_table()
            }

            fn windows(bits: u32) -> usize {
                crate::ecdsa::windows::<$limbs>(bits)
            }
            use $reference::ecdsa::signature::hazmat::PrehashVerifier as _;
            use $reference::ecdsa::signature::{Signer as _, Verifier as _};
            use $reference::ecdsa::{Signature, SigningKey, VerifyingKey};
            use $reference::elliptic_curve::ops::Reduce as _;
            use $reference::elliptic_curve::sec1::ToEncodedPoint as _;
            use $reference::{ProjectivePoint, Scalar};

            use crate::test_rng::Rng;

            fn key_of(verifying: &VerifyingKey) -> $key {
                let point = verifying.to_encoded_point(false);
                $key::from_coordinates(point.x().unwrap(), point.y().unwrap()).unwrap()
            }

            fn scalar(k: &Scalar) -> Limbs {
                from_be_bytes(&k.to_bytes()).unwrap()
            }

            #[test]
            fn digits_recombine() {
                let mut rng = Rng(3);
                let n = num_bigint_dig::BigUint::from_bytes_be(&to_be_bytes(&N.m));
                let mut scalars = vec![
                    [0; $limbs],
                    crate::ec_arith::one(),
                    [u32::MAX; $limbs],
                    N.m,
                ];
                for _ in 0..60 {
                    scalars.push(from_be_bytes(&rng.array::<BYTES>()).unwrap());
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
                    (&Table::new(&q_affine, $curve::KEY_WINDOW_BITS).unwrap(), q),
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
                    scalars.push(Scalar::reduce_bytes(&rng.array::<BYTES>().into()));
                }
                for (table, base) in tables {
                    for k in &scalars {
                        let ours = table.accumulate(Jacobian::identity(), &scalar(k));
                        assert_eq!(encode(&ours.projective()), theirs(&(base * k)));
                    }
                }
                for k in &scalars {
                    let ours = crate::ecdsa::multiply_once(&q_affine, &scalar(k));
                    assert_eq!(encode(&ours.projective()), theirs(&(q * k)));
                }
            }

            /// `n` big-endian, and `n − 1`.
            fn order() -> ([u8; BYTES], [u8; BYTES]) {
                let n = to_be_bytes(&N.m);
                let mut n1 = N.m;
                n1[0] -= 1;
                (n, to_be_bytes(&n1))
            }

            /// Our ECDSA check agrees with the reference crate's on genuine, corrupted and
            /// malformed signatures of random keys and messages.
            #[test]
            fn verification_matches_the_crate() {
                let mut rng = Rng(23);
                let (n, n_minus_1) = order();
                for round in 0..12 {
                    let signer = SigningKey::from_slice(&rng.array::<BYTES>()).unwrap();
                    let verifying = *signer.verifying_key();
                    let key = key_of(&verifying);
                    let msg = rng.bytes(1 + 13 * round);
                    let sig: Signature = signer.sign(&msg);
                    let bytes = sig.to_bytes();
                    let agree = |m: &[u8], s: &[u8]| {
                        let theirs = Signature::from_slice(s)
                            .is_ok_and(|s| verifying.verify(m, &s).is_ok());
                        let ours = key.verify(m, s);
                        assert_eq!(ours, theirs, "round {round}");
                        // A fresh key verifies without its table (the one-shot path).
                        let fresh = key_of(&verifying);
                        assert_eq!(fresh.verify(m, s), theirs, "round {round}, first use");
                        ours
                    };
                    assert!(agree(&msg, &bytes));
                    // Another message, and the message with one bit flipped.
                    assert!(!agree(&[msg.as_slice(), b"x"].concat(), &bytes));
                    let mut flipped = msg.clone();
                    flipped[round % msg.len()] ^= 1 << (round % 8);
                    assert!(!agree(&flipped, &bytes));
                    // Bits flipped in r and in s.
                    for bit in (round..2 * 8 * BYTES).step_by(41) {
                        let mut bad = bytes;
                        bad[bit / 8] ^= 1 << (bit % 8);
                        assert!(!agree(&msg, &bad));
                    }
                    // r or s zero, n, n − 1, all ones, or 1.
                    let mut one = [0u8; BYTES];
                    one[BYTES - 1] = 1;
                    for offset in [0, BYTES] {
                        for value in [[0u8; BYTES], n, n_minus_1, [0xff; BYTES], one] {
                            let mut bad = bytes;
                            bad[offset..offset + BYTES].copy_from_slice(&value);
                            assert!(!agree(&msg, &bad));
                        }
                    }
                    // r + n (when still below 2^(8·BYTES)): the same residue, refused as out
                    // of range.
                    let mut r_plus_n = [0u8; 2 * BYTES];
                    let mut r = from_be_bytes(&bytes[..BYTES]).unwrap();
                    if !add_in_place(&mut r, &N.m) {
                        r_plus_n[..BYTES].copy_from_slice(&to_be_bytes(&r));
                        r_plus_n[BYTES..].copy_from_slice(&bytes[BYTES..]);
                        assert!(!agree(&msg, &r_plus_n));
                    }
                    // High s (n − s): valid ECDSA, accepted by the crate and by us.
                    let high: Signature = Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
                    assert!(agree(&msg, &high.to_bytes()));
                    // Wrong lengths.
                    assert!(!key.verify(&msg, &bytes[..2 * BYTES - 1]));
                    assert!(!key.verify(&msg, &[&bytes[..], &[0]].concat()));
                    assert!(!key.verify(&msg, &[]));
                    // Another key.
                    let other = key_of(
                        SigningKey::from_slice(&[round as u8 + 1; BYTES])
                            .unwrap()
                            .verifying_key(),
                    );
                    assert!(!other.verify(&msg, &bytes));
                }
            }

            /// Signatures built directly from chosen `u1`, `u2` (no private key needed for
            /// verifying edge cases): `R = u1·G + u2·Q`, `r = x(R) mod n`, `s = r/u2`,
            /// `e = u1·s`.
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
                    // Verify the prehash through our internals: our verify takes messages, so
                    // compare the crate's prehash verification with ours on the same (e, r, s).
                    let crate_ok = verifying.verify_prehash(&e.to_bytes(), &sig).is_ok();
                    assert!(crate_ok);
                    let s_inv = N.invert(&N.to_mont(&scalar(&s)));
                    let ou1 = N.mul(&scalar(&e), &s_inv);
                    let ou2 = N.mul(&scalar(&r), &s_inv);
                    let table = Table::new(&key.point, $curve::KEY_WINDOW_BITS).unwrap();
                    let sum = table.accumulate(
                        generator_table()
                            .unwrap()
                            .accumulate(Jacobian::identity(), &ou1),
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
                let table = Table::new(&key.point, $curve::KEY_WINDOW_BITS).unwrap();
                let sum = table.accumulate(
                    generator_table()
                        .unwrap()
                        .accumulate(Jacobian::identity(), &scalar(&u1)),
                    &scalar(&u2),
                );
                assert!(sum.is_identity());
            }

            /// Digests at or above n are reduced (e = digest − n), as by the crate: digests of
            /// n − 1, n, n + 1 and all ones, signed with the crate's prehash signer.
            #[test]
            fn large_digests_are_reduced_mod_n() {
                use $reference::ecdsa::signature::hazmat::PrehashSigner as _;
                let signer = SigningKey::from_slice(&[0x3c; BYTES]).unwrap();
                let verifying = *signer.verifying_key();
                let key = key_of(&verifying);
                let (n, n_minus_1) = order();
                let mut n_plus_1 = N.m;
                n_plus_1[0] += 1;
                for digest in [n_minus_1, n, to_be_bytes(&n_plus_1), [0xff; BYTES]] {
                    let sig: Signature = signer.sign_prehash(&digest).unwrap();
                    assert!(verifying.verify_prehash(&digest, &sig).is_ok());
                    assert!(key.verify_digest(&digest, &sig.to_bytes()));
                    let mut other = digest;
                    other[0] ^= 0x80;
                    assert!(!key.verify_digest(&other, &sig.to_bytes()));
                }
                // e = n reduces to 0, the same as a zero digest.
                let sig: Signature = signer.sign_prehash(&[0; BYTES]).unwrap();
                assert!(key.verify_digest(&n, &sig.to_bytes()));
            }

            /// The rare branch `x(R) = r + n` (only for `r < p − n`: a fraction of about
            /// `(p − n)/p` of signatures, 2^-130 on P-256 and 2^-194 on P-384, so no genuine
            /// signature reaches it): checked on the comparison itself with a chosen `Z`.
            #[test]
            fn x_equal_to_r_plus_n_matches() {
                let z = Fe::from_limbs(&from_be_bytes(&[0x5e; BYTES]).unwrap());
                // X = x·Z² of a Jacobian point with this Z.
                let zz = z.mul(&z);
                let mut r = [0u32; $limbs];
                r[0] = 12345;
                r[$rare_r_limb] = 0x1234_5678; // r < p − n (asserted next)
                let mut r_plus_n = r;
                assert!(!add_in_place(&mut r_plus_n, &N.m));
                assert!(less(&r_plus_n, &P.m));
                let x = Fe::from_limbs(&r_plus_n).mul(&zz);
                assert!(x_matches(&Jacobian::new(x, z, z), &r));
                // r itself as x matches too; a different r does not.
                let x = Fe::from_limbs(&r).mul(&zz);
                assert!(x_matches(&Jacobian::new(x, z, z), &r));
                let mut other = r;
                other[0] += 1;
                assert!(!x_matches(&Jacobian::new(x, z, z), &other));
                // r ≥ p − n: r + n is not a field element, so only x = r can match.
                let (_, n_minus_1) = order();
                let big_r = from_be_bytes(&n_minus_1).unwrap();
                let mut wrapped = big_r;
                // ≡ r + n mod 2^(8·BYTES): meaningless, must not match.
                add_in_place(&mut wrapped, &N.m);
                let x = Fe::from_limbs(&wrapped).mul(&zz);
                assert!(!x_matches(&Jacobian::new(x, z, z), &big_r));
                // p − n ≤ r < 2^(32·L) − n: r + n fits in the limbs but is not below p, so it is
                // no field element; the element it would alias, x0 = r + n − p, must not match
                // (x0 mod n = x0 ≠ r). Only the `r + n < p` check refuses it.
                let mut x0 = [0u32; $limbs];
                x0[0] = 777;
                let mut r = x0;
                assert!(!add_in_place(&mut r, &P.m));
                assert!(!sub_in_place(&mut r, &N.m));
                assert!(less(&r, &N.m), "r = x0 + p − n is a valid r");
                let mut r_plus_n = r;
                assert!(!add_in_place(&mut r_plus_n, &N.m));
                assert!(!less(&r_plus_n, &P.m));
                let x = Fe::from_limbs(&x0).mul(&zz);
                assert!(!x_matches(&Jacobian::new(x, z, z), &r));
                // x0 itself as r still matches (the check refuses nothing it should accept).
                assert!(x_matches(&Jacobian::new(x, z, z), &x0));
            }

            $(#[$rfc_meta])*
            #[test]
            fn $rfc_name() {
                let hex = |h: &str| -> Vec<u8> {
                    (0..h.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                        .collect()
                };
                let key = $key::from_coordinates(&hex($ux), &hex($uy)).unwrap();
                let vectors = [
                    ("sample", $sample_r, $sample_s),
                    ("test", $test_r, $test_s),
                ];
                for (msg, r, s) in vectors {
                    let sig = [hex(r), hex(s)].concat();
                    assert!(key.verify(msg.as_bytes(), &sig), "{msg}");
                    assert!(!key.verify(b"other", &sig), "{msg}");
                }
                // The private key x of the RFC gives the same public key in the crate.
                let signer = SigningKey::from_slice(&hex($x)).unwrap();
                assert!(key == key_of(signer.verifying_key()));
            }

            #[test]
            fn a_key_builds_its_table_once_on_its_second_use() {
                let signer = SigningKey::from_slice(&[7; BYTES]).unwrap();
                let key = key_of(signer.verifying_key());
                let sig: Signature = signer.sign(b"m");
                assert!(key.table.get().is_none());
                // The first verification multiplies without a table; the second builds it.
                assert!(key.verify(b"m", &sig.to_bytes()));
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
    };
}

pub(crate) use curve_tests;
