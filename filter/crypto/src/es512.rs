//! ES512 (ECDSA on P-521 with SHA-512, RFC 7518 §3.4) through RustCrypto's `p521` crate: no own
//! arithmetic for a curve that JWKS rarely carry (issue 19: only if measured worth it).

use p521::ecdsa::signature::Verifier as _;
use p521::ecdsa::{Signature, VerifyingKey};

/// Bytes of one P-521 coordinate, and of `r` and of `s` (RFC 7518 §6.2.1.2, §3.4).
pub(crate) const LEN: usize = 66;

/// A validated P-521 public key. Equal when the points are.
#[derive(Clone)]
pub(crate) struct P521Key {
    /// The affine coordinates as given (exactly 66 bytes each, below `p`: canonical).
    coordinates: [u8; 2 * LEN],
    key: VerifyingKey,
}

impl PartialEq for P521Key {
    fn eq(&self, other: &Self) -> bool {
        self.coordinates == other.coordinates
    }
}

impl P521Key {
    /// `None` unless `x` and `y` are exactly 66 bytes each, both below `p`, and the point is on
    /// the curve (the crate's SEC1 decoding checks both; the identity has no affine form).
    pub(crate) fn from_coordinates(x: &[u8], y: &[u8]) -> Option<P521Key> {
        if x.len() != LEN || y.len() != LEN {
            return None;
        }
        let mut coordinates = [0u8; 2 * LEN];
        let (left, right) = coordinates.split_at_mut(LEN);
        left.copy_from_slice(x);
        right.copy_from_slice(y);
        // SEC1 uncompressed: 0x04 || x || y.
        let mut sec1 = [0x04u8; 1 + 2 * LEN];
        if let Some(xy) = sec1.get_mut(1..) {
            xy.copy_from_slice(&coordinates);
        }
        let key = VerifyingKey::from_sec1_bytes(&sec1).ok()?;
        Some(P521Key { coordinates, key })
    }

    /// SHA-512 of `msg`; `sig` raw `r || s` of exactly 132 bytes, both in [1, n−1] (the crate
    /// refuses anything else). High `s` is accepted, as for ES256/ES384 (ECDSA has no low-s rule).
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 2 * LEN {
            return false;
        }
        match Signature::from_slice(sig) {
            Ok(sig) => self.key.verify(msg, &sig).is_ok(),
            Err(_) => false,
        }
    }
}
