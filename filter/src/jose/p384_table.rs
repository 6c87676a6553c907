//! ES384 verification with precomputed multiples of the generator and of each public key: the
//! method of `p256_table` (same generic [`Table`]) on P-384, whose crate (`p384` 0.13) also
//! computes `u1·G + u2·Q` as two constant-time multiplications from scratch (~7 ms per token in
//! V8 before this). Tables: `G` with w = 6 (65 windows × 32 points × 144 bytes ≈ 300 KiB, built
//! on the VM's first ES384 verification only), a key with w = 5 (78 × 16 ≈ 180 KiB, on its
//! first use).

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::OnceLock;

use p384::ecdsa::{Signature, VerifyingKey};
use p384::elliptic_curve::ops::{Invert as _, Reduce};
use p384::elliptic_curve::point::AffineCoordinates as _;
use p384::{FieldBytes, ProjectivePoint, Scalar, U384};
use sha2::{Digest as _, Sha384};

use super::p256_table::Table;

const G_WINDOW_BITS: u32 = 6;
const KEY_WINDOW_BITS: u32 = 5;

fn generator_table() -> &'static Table<ProjectivePoint> {
    static TABLE: OnceLock<Table<ProjectivePoint>> = OnceLock::new();
    TABLE.get_or_init(|| Table::new(&ProjectivePoint::GENERATOR, G_WINDOW_BITS))
}

/// A P-384 public key with its lazily built table.
#[derive(Clone)]
pub(crate) struct P384Key {
    key: VerifyingKey,
    table: OnceCell<Rc<Table<ProjectivePoint>>>,
}

impl PartialEq for P384Key {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl P384Key {
    pub(crate) fn new(key: VerifyingKey) -> Self {
        P384Key {
            key,
            table: OnceCell::new(),
        }
    }

    /// ES384 (RFC 7518 §3.4): `sig` is raw `r || s` (96 bytes), both in [1, n-1].
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 96 {
            return false;
        }
        let Ok(signature) = Signature::from_slice(sig) else {
            return false;
        };
        let (r, s) = signature.split_scalars();
        let digest: FieldBytes = Sha384::digest(msg);
        // bits2field of a 384-bit digest is the digest itself; reduce it mod n.
        let z = <Scalar as Reduce<U384>>::reduce_bytes(&digest);
        let s: Scalar = *s;
        let Some(s_inv) = Option::<Scalar>::from(s.invert_vartime()) else {
            return false;
        };
        let u1 = z * s_inv;
        let u2 = *r * s_inv;
        let table = self.table.get_or_init(|| {
            Rc::new(Table::new(
                &ProjectivePoint::from(*self.key.as_affine()),
                KEY_WINDOW_BITS,
            ))
        });
        let point = (generator_table().mul(&u1) + table.mul(&u2)).to_affine();
        if bool::from(point.is_identity()) {
            return false;
        }
        <Scalar as Reduce<U384>>::reduce_bytes(&point.x()) == *r
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use p384::ecdsa::SigningKey;
    use p384::ecdsa::signature::{Signer as _, Verifier as _};

    use super::super::test_rng::Rng;

    #[test]
    fn table_multiplication_matches_the_crate() {
        let mut rng = Rng(17);
        let q = ProjectivePoint::GENERATOR * Scalar::from(0xdead_beefu64);
        let tq = Table::new(&q, KEY_WINDOW_BITS);
        let mut scalars = vec![Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(16u64)];
        for _ in 0..24 {
            scalars.push(Scalar::reduce_bytes(&rng.array::<48>().into()));
        }
        for k in &scalars {
            assert_eq!(generator_table().mul(k), ProjectivePoint::GENERATOR * k);
            assert_eq!(tq.mul(k), q * k);
        }
    }

    /// Our ES384 check agrees with the `p384` crate's on genuine, corrupted and malformed
    /// signatures of random keys and messages.
    #[test]
    fn verification_matches_the_crate() {
        let mut rng = Rng(23);
        for round in 0..8 {
            let signer = SigningKey::from_slice(&rng.array::<48>()).unwrap();
            let key = P384Key::new(*signer.verifying_key());
            let msg = rng.array::<48>();
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
            assert!(!agree(&msg[..9 + round], &bytes));
            for bit in (0..768).step_by(53 + round) {
                let mut bad = bytes;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!agree(&msg[..8 + round], &bad));
            }
            for offset in [0, 48] {
                let mut bad = bytes;
                bad[offset..offset + 48].copy_from_slice(&[0u8; 48]);
                assert!(!agree(&msg[..8 + round], &bad));
                bad[offset..offset + 48].copy_from_slice(&[0xff; 48]);
                assert!(!agree(&msg[..8 + round], &bad));
            }
            assert!(!key.verify(&msg, &bytes[..95]));
        }
    }
}
