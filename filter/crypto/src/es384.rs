//! P-384 (FIPS 186-5 / SP 800-186 §3.2.1.4, SEC 2 `secp384r1`) for ES384: the curve's constants
//! on the generic code of `ec_arith`, `ec_curve` and `ecdsa` (12 limbs, SHA-384).

use std::sync::OnceLock;

use sha2::Sha384;

use super::ec_arith::{Modulus, hex};
use super::ec_curve::{Affine, Curve};
use super::ecdsa::{Ecdsa, EcdsaKey, Table};

/// The field prime `p = 2^384 − 2^128 − 2^96 + 2^32 − 1` (FIPS 186-5 / SP 800-186 §3.2.1.4).
pub(crate) static P: Modulus<12> = Modulus::new(
    hex(
        "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    ),
    hex(
        "000000000000000000000000000000010000000200000000fffffffe000000000000000200000000fffffffe00000001",
    ),
);

/// The group order `n` of P-384.
pub(crate) static N: Modulus<12> = Modulus::new(
    hex(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    ),
    hex(
        "0c84ee012b39bf213fb05b7a28266895d40d49174aab1cc5bc3e483afcb82947ff3d81e5df1aa4192d319b2419b409a9",
    ),
);

/// Window width of P-384's generator table (65 windows × 32 points × 96 bytes ≈ 200 KiB once per
/// VM).
const G_WINDOW_BITS: u32 = 6;

/// Window width of a P-384 key's table: 6 bits (65 × 32 × 96 bytes ≈ 200 KiB per key, built on
/// its first use), 65 mixed additions per signature instead of 78 with 5 bits: ES384 ~7 % faster
/// in V8; 7 bits would be ~344 KiB per key for 5 % more (`docs/performance.md`).
const KEY_WINDOW_BITS: u32 = 6;

/// P-384 as a type for the generic code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct P384;

impl Curve<12> for P384 {
    const P: &'static Modulus<12> = &P;
    const N: &'static Modulus<12> = &N;
    /// `b·2^384 mod p` (the tests check it against `b = b3312fa7…d3ec2aef` of FIPS 186-5 /
    /// SP 800-186 §3.2.1.4).
    const B: [u32; 12] = hex(
        "cd08114b604fbff9b62b21f41f022094e3374bee94938ae277f2209b1920022ef729add87a4c32ec081188719d412dcc",
    );
    const GX: [u32; 12] = hex(
        "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
    );
    const GY: [u32; 12] = hex(
        "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
    );
}

impl Ecdsa<12> for P384 {
    const KEY_WINDOW_BITS: u32 = KEY_WINDOW_BITS;
    type Hash = Sha384;

    fn generator_table() -> Option<&'static Table<P384, 12>> {
        static TABLE: OnceLock<Option<Table<P384, 12>>> = OnceLock::new();
        TABLE
            .get_or_init(|| Table::new(&Affine::generator(), G_WINDOW_BITS))
            .as_ref()
    }
}

/// A validated P-384 public key with its lazily built table (ES384).
pub(crate) type P384Key = EcdsaKey<P384, 12>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod curve_tests {
    use super::*;
    use crate::ec_arith::{Modulus, from_be_bytes, hex};

    type Limbs = crate::ec_arith::Limbs<12>;
    type Point = crate::ec_curve::Point<P384, 12>;
    type Affine = crate::ec_curve::Affine<P384, 12>;
    const P: &Modulus<12> = <P384 as Curve<12>>::P;
    const B: Limbs = <P384 as Curve<12>>::B;

    fn to_be_bytes(a: &Limbs) -> [u8; 48] {
        crate::ec_arith::to_be_bytes(a)
    }
    use p384::elliptic_curve::Group as _;
    use p384::elliptic_curve::sec1::ToEncodedPoint as _;
    use p384::{ProjectivePoint, Scalar};

    use super::super::test_rng::Rng;

    /// Our point as the crate's SEC1 encoding (`[0]` for the identity).
    pub(crate) fn encode(point: &Point) -> Vec<u8> {
        let Some(affine) = Point::batch_to_affine(&[*point]) else {
            return vec![0];
        };
        let mut out = vec![4];
        out.extend_from_slice(&to_be_bytes(&P.out_of_mont(&affine[0].x)));
        out.extend_from_slice(&to_be_bytes(&P.out_of_mont(&affine[0].y)));
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
        let b = "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef";
        assert_eq!(P.out_of_mont(&B), hex(b));
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
            for b in &points[i..] {
                let pb = ours(b);
                let sum = theirs(&(a + b));
                assert_eq!(encode(&pa.add(&pb)), sum);
                assert_eq!(encode(&pa.add(&pa)), theirs(&a.double()), "add P + P");
                if let Some(affine) = Point::batch_to_affine(&[pb]) {
                    assert_eq!(encode(&pa.add_affine(&affine[0])), sum);
                    assert_eq!(encode(&pa.add_affine(&affine[0].neg())), theirs(&(a - b)));
                }
            }
        }
        // Projective inputs with Z ≠ 1 (scaled), and P + (−P).
        let g = Point::from(&Affine::generator());
        let g3 = g.double().add(&g);
        let minus = Point::from(&Point::batch_to_affine(&[g3]).unwrap()[0].neg());
        assert!(g3.add(&minus).is_identity());
        assert!(
            g3.add_affine(&Point::batch_to_affine(&[minus]).unwrap()[0])
                .is_identity()
        );
        assert!(Point::identity().double().is_identity());
    }

    #[test]
    fn key_validation() {
        let point = (ProjectivePoint::GENERATOR * Scalar::from(77u64)).to_affine();
        let encoded = point.to_encoded_point(false);
        let (x, y) = (encoded.x().unwrap().to_vec(), encoded.y().unwrap().to_vec());
        assert!(Affine::from_coordinates(&x, &y).is_some());
        // Off the curve: y with its low bit flipped.
        let mut y1 = y.clone();
        y1[47] ^= 1;
        assert!(Affine::from_coordinates(&x, &y1).is_none());
        // Wrong lengths.
        assert!(Affine::from_coordinates(&x[1..], &y).is_none());
        assert!(Affine::from_coordinates(&x, &[y.clone(), vec![0]].concat()).is_none());
        // (0, 0): the usual spelling of the identity, not on the curve.
        assert!(Affine::from_coordinates(&[0; 48], &[0; 48]).is_none());
        // Coordinates ≥ p: x + p or y + p would be the same point mod p; refused.
        let p = to_be_bytes(&P.m);
        assert!(Affine::from_coordinates(&p, &y).is_none());
        assert!(Affine::from_coordinates(&x, &p).is_none());
        assert!(Affine::from_coordinates(&[0xff; 48], &y).is_none());
        // (x, p − y) is −P: valid.
        let neg = to_be_bytes(&P.sub(&P.m, &from_be_bytes(&y).unwrap()));
        assert!(Affine::from_coordinates(&x, &neg).is_some());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::curve_tests::{encode, ours, theirs};
    use super::*;
    use std::rc::Rc;

    use crate::ec_arith::{Modulus, add_in_place, from_be_bytes, less};
    use crate::ecdsa::{signed_digits, x_matches};

    type Limbs = crate::ec_arith::Limbs<12>;
    type Point = crate::ec_curve::Point<P384, 12>;
    type Table = crate::ecdsa::Table<P384, 12>;
    const P: &Modulus<12> = <P384 as Curve<12>>::P;
    const N: &Modulus<12> = <P384 as Curve<12>>::N;

    fn to_be_bytes(a: &Limbs) -> [u8; 48] {
        crate::ec_arith::to_be_bytes(a)
    }

    fn generator_table() -> Option<&'static Table> {
        P384::generator_table()
    }

    fn windows(bits: u32) -> usize {
        crate::ecdsa::windows::<12>(bits)
    }
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
        let mut scalars = vec![[0; 12], crate::ec_arith::one(), [u32::MAX; 12], N.m];
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
            (&Table::new(&q_affine, P384::KEY_WINDOW_BITS).unwrap(), q),
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
            let table = Table::new(&key.point, P384::KEY_WINDOW_BITS).unwrap();
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
        let table = Table::new(&key.point, P384::KEY_WINDOW_BITS).unwrap();
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
        assert!(x_matches(&Point::new(x, z, z), &r));
        // r itself as x matches too; a different r does not.
        let x = P.mul(&P.to_mont(&r), &z);
        assert!(x_matches(&Point::new(x, z, z), &r));
        let mut other = r;
        other[0] += 1;
        assert!(!x_matches(&Point::new(x, z, z), &other));
        // r ≥ p − n: r + n is not a field element, so only x = r can match.
        let (_, n_minus_1) = order();
        let big_r = from_be_bytes(&n_minus_1).unwrap();
        let mut wrapped = big_r;
        add_in_place(&mut wrapped, &N.m); // ≡ r + n mod 2^384: meaningless, must not match
        let x = P.mul(&P.to_mont(&wrapped), &z);
        assert!(!x_matches(&Point::new(x, z, z), &big_r));
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
