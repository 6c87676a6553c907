//! Public keys decoded once (at JWKS parse time) and the per-algorithm signature checks.
//!
//! Each key is stored ready to verify, validated on the way in: RSA moduli of 2048..=8192 bits
//! with an odd public exponent > 1 (as our own Montgomery form), EC points on their curve (P-256
//! and P-384 as our own point types, P-521 through RustCrypto's `p521`; all from our
//! `meshguard-crypto` crate, `filter/crypto`),
//! Ed25519 points that decompress and are not of small order (ed25519-dalek's verifying key). Request-time work is then only the hash
//! and the signature equation.

use core::fmt;

use meshguard_crypto::{P256Key, P384Key, P521Key, RsaKey, RsaScheme};

use super::alg::Algorithm;

/// Smallest RSA modulus we accept, in bits (RFC 7518 §3.3 requires 2048).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus we accept, in bits: bounds the cost of one verification.
pub const RSA_MAX_BITS: usize = 8192;

/// What kind of key a JWK holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// ECDSA P-256.
    P256,
    /// ECDSA P-384.
    P384,
    /// ECDSA P-521.
    P521,
    /// Ed25519.
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyKind::P256 => f.write_str("EC P-256"),
            KeyKind::P384 => f.write_str("EC P-384"),
            KeyKind::P521 => f.write_str("EC P-521"),
            KeyKind::Ed25519 => f.write_str("OKP Ed25519"),
        }
    }
}

/// Why key material was refused (becomes a [`super::SkipReason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyIssue {
    RsaModulusSize,
    RsaExponent,
    RsaInvalid,
    EcPoint,
    Ed25519Point,
    Ed25519Weak,
}

/// A validated public key, ready to verify. Equal when the key material is (the token cache
/// keeps an entry across a JWKS refresh only while its key is still listed).
#[derive(Clone, PartialEq)]
pub(crate) enum PublicKey {
    /// The key in Montgomery form (`meshguard-crypto`).
    Rsa(RsaKey),
    /// Our own P-256 point, with lazily built precomputed multiples (`meshguard-crypto`).
    P256(P256Key),
    /// Our own P-384 point, with lazily built precomputed multiples (`meshguard-crypto`).
    P384(P384Key),
    /// A P-521 point (RustCrypto's `p521`, through `meshguard-crypto`).
    P521(P521Key),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// An RSA key from the big-endian bytes of `n` and `e`.
    ///
    /// The checks, in this order (leading zero bytes of either number are ignored):
    /// 1. `n` has 2048..=8192 bits, else [`KeyIssue::RsaModulusSize`];
    /// 2. `e` is odd and greater than 1, else [`KeyIssue::RsaExponent`];
    /// 3. `n` is odd, `e` ≤ 2³³ − 1 and `e` < `n`, else [`KeyIssue::RsaInvalid`] (the sanity
    ///    bounds of the `rsa` crate, which the tests compare against).
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<Self, KeyIssue> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let n_bits = match n.first() {
            Some(&top) => 8 * n.len() - top.leading_zeros() as usize,
            None => 0,
        };
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n_bits) {
            return Err(KeyIssue::RsaModulusSize);
        }
        let odd = e.last().is_some_and(|low| low & 1 == 1);
        // Odd and not 1 (leading zeros are gone, so a one-byte e is its value).
        if !odd || e == [1] {
            return Err(KeyIssue::RsaExponent);
        }
        // e ≤ 2³³ − 1 fits 5 bytes; below a modulus of ≥ 2048 bits, e < n follows.
        let e = match e.len() {
            0..=5 => e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
            _ => return Err(KeyIssue::RsaInvalid),
        };
        if e > RSA_MAX_EXPONENT || n.last().is_none_or(|low| low & 1 == 0) {
            return Err(KeyIssue::RsaInvalid);
        }
        let mont = RsaKey::new(n, e).ok_or(KeyIssue::RsaInvalid)?;
        Ok(PublicKey::Rsa(mont))
    }

    /// A P-256 key from its affine coordinates (exactly 32 bytes each, RFC 7518 §6.2.1.2): both
    /// below `p` and on the curve (`meshguard-crypto`; the identity has no affine form).
    pub(crate) fn p256(x: &[u8], y: &[u8]) -> Result<Self, KeyIssue> {
        P256Key::from_coordinates(x, y)
            .map(PublicKey::P256)
            .ok_or(KeyIssue::EcPoint)
    }

    /// A P-384 key from its affine coordinates (exactly 48 bytes each): both below `p` and on
    /// the curve (`meshguard-crypto`; the identity has no affine form).
    pub(crate) fn p384(x: &[u8], y: &[u8]) -> Result<Self, KeyIssue> {
        P384Key::from_coordinates(x, y)
            .map(PublicKey::P384)
            .ok_or(KeyIssue::EcPoint)
    }

    /// A P-521 key from its affine coordinates (exactly 66 bytes each): both below `p` and on
    /// the curve.
    pub(crate) fn p521(x: &[u8], y: &[u8]) -> Result<Self, KeyIssue> {
        P521Key::from_coordinates(x, y)
            .map(PublicKey::P521)
            .ok_or(KeyIssue::EcPoint)
    }

    /// An Ed25519 key from its 32-byte encoding; small-order ("weak") points are refused
    /// because a signature by them can be forged for many messages.
    pub(crate) fn ed25519(x: &[u8]) -> Result<Self, KeyIssue> {
        let bytes: &[u8; 32] = x.try_into().map_err(|_| KeyIssue::Ed25519Point)?;
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| KeyIssue::Ed25519Point)?;
        // RFC 8032 §5.1.3: an encoding with y >= p is invalid; the decoder accepts it, so
        // insist on the canonical re-encoding (one key, one spelling).
        if key.to_edwards().compress().as_bytes() != bytes {
            return Err(KeyIssue::Ed25519Point);
        }
        if key.is_weak() {
            return Err(KeyIssue::Ed25519Weak);
        }
        Ok(PublicKey::Ed25519(key))
    }

    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Rsa(k) => KeyKind::Rsa { bits: k.bits() },
            PublicKey::P256(_) => KeyKind::P256,
            PublicKey::P384(_) => KeyKind::P384,
            PublicKey::P521(_) => KeyKind::P521,
            PublicKey::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Whether this kind of key can verify `alg` at all (kty and crv agree with the alg).
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            PublicKey::Rsa(..) => matches!(alg, Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512),
            PublicKey::P256(_) => alg == Es256,
            PublicKey::P384(_) => alg == Es384,
            PublicKey::P521(_) => alg == Es512,
            PublicKey::Ed25519(_) => alg == EdDsa,
        }
    }

    /// Verifies `sig` over `msg` with `alg`; false for any mismatch or malformed signature.
    pub(crate) fn verify(&self, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
        use Algorithm::*;
        match (self, alg) {
            (PublicKey::Rsa(k), Rs256) => k.verify(RsaScheme::Pkcs1Sha256, msg, sig),
            (PublicKey::Rsa(k), Rs384) => k.verify(RsaScheme::Pkcs1Sha384, msg, sig),
            (PublicKey::Rsa(k), Rs512) => k.verify(RsaScheme::Pkcs1Sha512, msg, sig),
            (PublicKey::Rsa(k), Ps256) => k.verify(RsaScheme::PssSha256, msg, sig),
            (PublicKey::Rsa(k), Ps384) => k.verify(RsaScheme::PssSha384, msg, sig),
            (PublicKey::Rsa(k), Ps512) => k.verify(RsaScheme::PssSha512, msg, sig),
            // Raw r||s of exactly 64 bytes; DER or any other length is refused.
            (PublicKey::P256(k), Es256) => k.verify(msg, sig),
            // Raw r||s of exactly 96 bytes.
            (PublicKey::P384(k), Es384) => k.verify(msg, sig),
            // Raw r||s of exactly 132 bytes.
            (PublicKey::P521(k), Es512) => k.verify(msg, sig),
            (PublicKey::Ed25519(k), EdDsa) => match <&[u8; 64]>::try_from(sig) {
                // verify_strict: canonical S, no small-order R or A (no malleability).
                Ok(bytes) => k
                    .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(bytes))
                    .is_ok(),
                Err(_) => false,
            },
            _ => false,
        }
    }
}

/// Largest public exponent accepted, 2³³ − 1 (the `rsa` crate's bound, kept so that the keys we
/// accept did not change when we stopped using it).
const RSA_MAX_EXPONENT: u64 = (1 << 33) - 1;

/// `bytes` without its leading zero bytes.
fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

impl fmt::Debug for PublicKey {
    /// Only the kind: key material stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::BigUint;

    /// The reference: the `rsa` crate's validation (`RsaPublicKey::new_with_max_size`) after the
    /// size and exponent checks of ours.
    fn reference(n: &[u8], e: &[u8]) -> Result<usize, KeyIssue> {
        let odd = e.last().is_some_and(|low| low & 1 == 1);
        let n = BigUint::from_bytes_be(n);
        let e = BigUint::from_bytes_be(e);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n.bits()) {
            return Err(KeyIssue::RsaModulusSize);
        }
        if !odd || e <= BigUint::from(1u8) {
            return Err(KeyIssue::RsaExponent);
        }
        let bits = n.bits();
        rsa::RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS)
            .map(|_| bits)
            .map_err(|_| KeyIssue::RsaInvalid)
    }

    /// Every accept/refuse decision (and its reason) equals the `rsa` crate's, over moduli and
    /// exponents at and around each bound.
    #[test]
    fn rsa_validation_matches_the_rsa_crate() {
        let modulus = |bits: usize, odd: bool, pad: usize| {
            let mut n = vec![0u8; pad];
            let len = bits.div_ceil(8);
            let mut body = vec![0x5au8; len];
            if len > 0 {
                body[0] = 0x80u8 >> ((8 * len - bits) as u32);
                let low = body.len() - 1;
                body[low] = if odd { 0x5b } else { 0x5a };
            }
            n.extend(body);
            n
        };
        let mut moduli = vec![vec![], vec![0], vec![0; 300], vec![1], vec![0xff; 256]];
        for bits in [2047, 2048, 2049, 3071, 4096, 8191, 8192, 8193] {
            for odd in [true, false] {
                for pad in [0, 1, 5] {
                    moduli.push(modulus(bits, odd, pad));
                }
            }
        }
        let big = |v: u64| v.to_be_bytes().to_vec();
        let mut exponents: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![1],
            vec![0, 1],
            vec![2],
            vec![3],
            vec![0, 0, 3],
            vec![1, 0, 1],
            vec![0xff; 9],
            vec![0x01; 9],
            vec![0xff; 300],
        ];
        for v in [
            (1u64 << 32) + 1,
            (1 << 33) - 1,
            (1 << 33) + 1,
            (1 << 33) - 2,
            (1 << 40) + 1,
            u64::MAX,
        ] {
            exponents.push(big(v));
        }
        let mut accepted = 0;
        for n in &moduli {
            for e in &exponents {
                let ours = PublicKey::rsa(n, e).map(|k| match k.kind() {
                    KeyKind::Rsa { bits } => bits,
                    _ => 0,
                });
                assert_eq!(ours, reference(n, e), "n {} bytes, e {e:02x?}", n.len());
                accepted += usize::from(ours.is_ok());
            }
        }
        assert!(
            accepted > 20,
            "the cases include accepted keys ({accepted})"
        );
        // e = n: refused as the rsa crate refuses e ≥ n (a 5-byte e is far below any n we take).
        assert!(reference(&modulus(2048, true, 0), &modulus(2048, true, 0)).is_err());
        assert!(PublicKey::rsa(&modulus(2048, true, 0), &modulus(2048, true, 0)).is_err());
    }
}
