//! Public keys decoded once (at JWKS parse time) and the per-algorithm signature checks.
//!
//! Each key is stored as the crypto crate's own verifying-key object, validated on the way in:
//! RSA moduli of 2048..=8192 bits with an odd public exponent > 1, EC points on their curve,
//! Ed25519 points that decompress and are not of small order. Request-time work is then only
//! the hash and the signature equation.

use core::fmt;

use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::alg::Algorithm;
use super::p256_table::P256Key;
use super::p384_table::P384Key;
use super::rsa_mont::{MontKey, pkcs1v15_verify, pss_verify};

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
    /// Ed25519.
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyKind::P256 => f.write_str("EC P-256"),
            KeyKind::P384 => f.write_str("EC P-384"),
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
    /// The key, and its Montgomery form for the fast PKCS#1 v1.5 path (see `rsa_mont`).
    Rsa(RsaPublicKey, MontKey),
    /// With lazily built precomputed multiples (see `p256_table`).
    P256(P256Key),
    /// With lazily built precomputed multiples (see `p384_table`).
    P384(P384Key),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// An RSA key from the big-endian bytes of `n` and `e`.
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<Self, KeyIssue> {
        let odd = e.last().is_some_and(|low| low & 1 == 1);
        let n = BigUint::from_bytes_be(n);
        let e = BigUint::from_bytes_be(e);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n.bits()) {
            return Err(KeyIssue::RsaModulusSize);
        }
        if !odd || e <= BigUint::from(1u8) {
            return Err(KeyIssue::RsaExponent);
        }
        // Also checks: n odd, e < n, e below 2^33 (rsa's own sanity bounds).
        let key = RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS)
            .map_err(|_| KeyIssue::RsaInvalid)?;
        let mont = MontKey::new(&key).ok_or(KeyIssue::RsaInvalid)?;
        Ok(PublicKey::Rsa(key, mont))
    }

    /// A P-256 key from its affine coordinates (exactly 32 bytes each, RFC 7518 §6.2.1.2).
    pub(crate) fn p256(x: &[u8], y: &[u8]) -> Result<Self, KeyIssue> {
        let point = uncompressed_point(x, y, 32).ok_or(KeyIssue::EcPoint)?;
        // from_sec1_bytes checks the point is on the curve (the identity has no such encoding).
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
            .map(|key| PublicKey::P256(P256Key::new(key)))
            .map_err(|_| KeyIssue::EcPoint)
    }

    /// A P-384 key from its affine coordinates (exactly 48 bytes each).
    pub(crate) fn p384(x: &[u8], y: &[u8]) -> Result<Self, KeyIssue> {
        let point = uncompressed_point(x, y, 48).ok_or(KeyIssue::EcPoint)?;
        p384::ecdsa::VerifyingKey::from_sec1_bytes(&point)
            .map(|key| PublicKey::P384(P384Key::new(key)))
            .map_err(|_| KeyIssue::EcPoint)
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
            PublicKey::Rsa(k, _) => KeyKind::Rsa { bits: k.n().bits() },
            PublicKey::P256(_) => KeyKind::P256,
            PublicKey::P384(_) => KeyKind::P384,
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
            PublicKey::Ed25519(_) => alg == EdDsa,
        }
    }

    /// Verifies `sig` over `msg` with `alg`; false for any mismatch or malformed signature.
    pub(crate) fn verify(&self, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
        use Algorithm::*;
        match (self, alg) {
            (PublicKey::Rsa(k, m), Rs256) => pkcs1(
                k,
                m,
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(msg),
                sig,
            ),
            (PublicKey::Rsa(k, m), Rs384) => pkcs1(
                k,
                m,
                Pkcs1v15Sign::new::<Sha384>(),
                &Sha384::digest(msg),
                sig,
            ),
            (PublicKey::Rsa(k, m), Rs512) => pkcs1(
                k,
                m,
                Pkcs1v15Sign::new::<Sha512>(),
                &Sha512::digest(msg),
                sig,
            ),
            (PublicKey::Rsa(k, m), Ps256) => {
                sig.len() == k.size() && pss_verify::<Sha256>(m, &Sha256::digest(msg), sig)
            }
            (PublicKey::Rsa(k, m), Ps384) => {
                sig.len() == k.size() && pss_verify::<Sha384>(m, &Sha384::digest(msg), sig)
            }
            (PublicKey::Rsa(k, m), Ps512) => {
                sig.len() == k.size() && pss_verify::<Sha512>(m, &Sha512::digest(msg), sig)
            }
            // Raw r||s of exactly 64 bytes; DER or any other length is refused.
            (PublicKey::P256(k), Es256) => k.verify(msg, sig),
            // Raw r||s of exactly 96 bytes.
            (PublicKey::P384(k), Es384) => k.verify(msg, sig),
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

/// RSASSA-PKCS1-v1_5: the signature must be exactly the modulus length (RFC 8017 §8.2.2).
/// Verified with the key's precomputed Montgomery form (`rsa_mont`); the `rsa` crate supplies the
/// DigestInfo prefix of each hash.
fn pkcs1(
    key: &RsaPublicKey,
    mont: &MontKey,
    scheme: Pkcs1v15Sign,
    digest: &[u8],
    sig: &[u8],
) -> bool {
    sig.len() == key.size() && pkcs1v15_verify(mont, &scheme.prefix, digest, sig)
}

/// SEC1 uncompressed encoding `04 || x || y`, only when both coordinates have the full size.
fn uncompressed_point(x: &[u8], y: &[u8], size: usize) -> Option<Vec<u8>> {
    if x.len() != size || y.len() != size {
        return None;
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    Some(point)
}

impl fmt::Debug for PublicKey {
    /// Only the kind: key material stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.kind())
    }
}
