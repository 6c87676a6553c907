//! Crypto providers: the one interface through which the JOSE layer admits keys and verifies
//! signatures (in the manner of rustls' `CryptoProvider`), and its two implementations:
//!
//! - [`MeshguardCrypto`] (the default): our own RSA, P-256 and P-384 arithmetic, P-521 through
//!   `p521` (all in the crate `meshguard-crypto`, `filter/crypto`), Ed25519 through ed25519-dalek;
//! - [`RustCrypto`] (cargo feature `rustcrypto` of `meshguard`, `make wasm CRYPTO=rustcrypto`):
//!   RustCrypto's current generation, `rsa` 0.10 (PKCS#1 v1.5 and PSS), `p256` / `p384` /
//!   `p521` 0.14 (with `sha2` 0.11), Ed25519 through the same ed25519-dalek.
//!
//! The provider only sees key material that already passed the checks both share
//! ([`super::PublicKey`]: RSA modulus size, exponent bounds, EC coordinate lengths, Ed25519
//! encoding length); what it adds (points on the curve, Ed25519 canonical and not of small
//! order) must give the same answers under both, which the tests compare side by side.
//!
//! The filter uses [`ACTIVE`], fixed at build time. Test builds (and `test-util`, for the
//! differential fuzz target) compile both, and [`with_provider`] picks one per thread.

use super::{KeyIssue, KeyKind};
use crate::jose::Algorithm;

/// Key material after the shared checks, big-endian, leading zeros of `n` removed.
#[derive(Clone, Copy)]
pub(crate) enum Material<'a> {
    /// RSA modulus (2048..=8192 bits, odd) and exponent (odd, 3 ..= 2³³ − 1).
    Rsa { n: &'a [u8], e: u64 },
    /// P-256 affine coordinates, 32 bytes each.
    P256 { x: &'a [u8; 32], y: &'a [u8; 32] },
    /// P-384 affine coordinates, 48 bytes each.
    P384 { x: &'a [u8; 48], y: &'a [u8; 48] },
    /// P-521 affine coordinates, 66 bytes each.
    P521 { x: &'a [u8; 66], y: &'a [u8; 66] },
    /// Ed25519 point encoding.
    Ed25519(&'a [u8; 32]),
}

/// What a signature is over: the JWS signing input, with its SHA-256 when that was already
/// computed (a token's, in the same pass over the text as its cache key: `cache.rs`). The
/// digest is always that of these bytes: it comes only from the [`super::UnverifiedToken`] that
/// hashed them (and from tests that hash them themselves).
#[derive(Clone, Copy)]
pub(crate) struct Signed<'a> {
    bytes: &'a [u8],
    sha256: Option<&'a [u8; 32]>,
}

impl<'a> Signed<'a> {
    /// `bytes`, to be hashed by the verifier.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Signed {
            bytes,
            sha256: None,
        }
    }

    /// `bytes` with `sha256`, which must be SHA-256 of `bytes`.
    pub(crate) fn with_sha256(bytes: &'a [u8], sha256: &'a [u8; 32]) -> Self {
        Signed {
            bytes,
            sha256: Some(sha256),
        }
    }
}

/// A crypto provider: key admission and signature verification.
pub(crate) trait Provider {
    /// A validated key, ready to verify. Equal when the key material is.
    type Key: Clone + PartialEq;
    /// Admits `material` or says why not.
    fn key(material: Material<'_>) -> Result<Self::Key, KeyIssue>;
    /// What kind of key this is.
    fn kind(key: &Self::Key) -> KeyKind;
    /// Verifies `sig` over `msg` with `alg` (the caller checked that the key kind fits `alg`);
    /// false for any mismatch or malformed signature.
    fn verify(key: &Self::Key, alg: Algorithm, msg: Signed<'_>, sig: &[u8]) -> bool;
}

/// Which provider.
#[cfg_attr(feature = "rustcrypto", allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProviderId {
    /// [`MeshguardCrypto`].
    MeshguardCrypto,
    /// [`RustCrypto`].
    #[cfg(any(test, feature = "rustcrypto-provider"))]
    RustCrypto,
}

/// The provider the filter verifies with, chosen at build time.
#[cfg(not(feature = "rustcrypto"))]
pub(crate) const ACTIVE: ProviderId = ProviderId::MeshguardCrypto;
/// The provider the filter verifies with, chosen at build time.
#[cfg(feature = "rustcrypto")]
pub(crate) const ACTIVE: ProviderId = ProviderId::RustCrypto;

#[cfg(any(test, feature = "test-util"))]
std::thread_local! {
    static SELECTED: core::cell::Cell<ProviderId> = const { core::cell::Cell::new(ACTIVE) };
}

/// The provider that keys built now on this thread use.
pub(crate) fn selected() -> ProviderId {
    #[cfg(any(test, feature = "test-util"))]
    {
        SELECTED.with(core::cell::Cell::get)
    }
    #[cfg(not(any(test, feature = "test-util")))]
    {
        ACTIVE
    }
}

/// Runs `f` with keys built on this thread by `provider` (tests and the differential fuzz target).
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn with_provider<R>(provider: ProviderId, f: impl FnOnce() -> R) -> R {
    let before = SELECTED.with(|s| s.replace(provider));
    let result = f();
    SELECTED.with(|s| s.set(before));
    result
}

/// Ed25519 admission, the same for both providers (both use ed25519-dalek 3): the encoding
/// decompresses, is canonical (RFC 8032 §5.1.3: y < p; one key, one spelling) and is not of
/// small order (a signature by a weak key can be forged for many messages).
fn ed25519_key(bytes: &[u8; 32]) -> Result<ed25519_dalek::VerifyingKey, KeyIssue> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| KeyIssue::Ed25519Point)?;
    if key.to_edwards().compress().as_bytes() != bytes {
        return Err(KeyIssue::Ed25519Point);
    }
    if key.is_weak() {
        return Err(KeyIssue::Ed25519Weak);
    }
    Ok(key)
}

/// EdDSA: `sig` exactly 64 bytes; `verify_strict` (canonical S, no small-order R or A).
fn ed25519_verify(key: &ed25519_dalek::VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    match <&[u8; 64]>::try_from(sig) {
        Ok(bytes) => key
            .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(bytes))
            .is_ok(),
        Err(_) => false,
    }
}

pub(crate) use own::MeshguardCrypto;
#[cfg(any(test, feature = "rustcrypto-provider"))]
pub(crate) use rustcrypto::RustCrypto;

mod own {
    use meshguard_crypto::{P256Key, P384Key, P521Key, RsaKey, RsaScheme};

    use super::{
        Algorithm, KeyIssue, KeyKind, Material, Provider, Signed, ed25519_key, ed25519_verify,
    };

    /// meshguard's own arithmetic (`meshguard-crypto`).
    pub(crate) struct MeshguardCrypto;

    /// A key of [`MeshguardCrypto`].
    #[derive(Clone, PartialEq)]
    pub(crate) enum Key {
        /// The key in Montgomery form.
        Rsa(RsaKey),
        /// Our own P-256 point, with lazily built precomputed multiples.
        P256(P256Key),
        /// Our own P-384 point, with lazily built precomputed multiples.
        P384(P384Key),
        /// A P-521 point (RustCrypto's `p521` 0.14, through `meshguard-crypto`).
        P521(P521Key),
        Ed25519(ed25519_dalek::VerifyingKey),
    }

    impl Provider for MeshguardCrypto {
        type Key = Key;

        fn key(material: Material<'_>) -> Result<Key, KeyIssue> {
            match material {
                Material::Rsa { n, e } => {
                    RsaKey::new(n, e).map(Key::Rsa).ok_or(KeyIssue::RsaInvalid)
                }
                Material::P256 { x, y } => P256Key::from_coordinates(x, y)
                    .map(Key::P256)
                    .ok_or(KeyIssue::EcPoint),
                Material::P384 { x, y } => P384Key::from_coordinates(x, y)
                    .map(Key::P384)
                    .ok_or(KeyIssue::EcPoint),
                Material::P521 { x, y } => P521Key::from_coordinates(x, y)
                    .map(Key::P521)
                    .ok_or(KeyIssue::EcPoint),
                Material::Ed25519(x) => ed25519_key(x).map(Key::Ed25519),
            }
        }

        fn kind(key: &Key) -> KeyKind {
            match key {
                Key::Rsa(k) => KeyKind::Rsa { bits: k.bits() },
                Key::P256(_) => KeyKind::P256,
                Key::P384(_) => KeyKind::P384,
                Key::P521(_) => KeyKind::P521,
                Key::Ed25519(_) => KeyKind::Ed25519,
            }
        }

        /// RS256, PS256 and ES256 take the signing input's SHA-256 when the caller has it.
        fn verify(key: &Key, alg: Algorithm, msg: Signed<'_>, sig: &[u8]) -> bool {
            use Algorithm::*;
            let rsa = |k: &RsaKey, scheme| match msg.sha256 {
                Some(digest) => k.verify_sha256(scheme, digest, sig),
                None => k.verify(scheme, msg.bytes, sig),
            };
            match (key, alg) {
                (Key::Rsa(k), Rs256) => rsa(k, RsaScheme::Pkcs1Sha256),
                (Key::Rsa(k), Rs384) => k.verify(RsaScheme::Pkcs1Sha384, msg.bytes, sig),
                (Key::Rsa(k), Rs512) => k.verify(RsaScheme::Pkcs1Sha512, msg.bytes, sig),
                (Key::Rsa(k), Ps256) => rsa(k, RsaScheme::PssSha256),
                (Key::Rsa(k), Ps384) => k.verify(RsaScheme::PssSha384, msg.bytes, sig),
                (Key::Rsa(k), Ps512) => k.verify(RsaScheme::PssSha512, msg.bytes, sig),
                // Raw r||s of exactly 64 / 96 / 132 bytes; DER or any other length is refused.
                (Key::P256(k), Es256) => match msg.sha256 {
                    Some(digest) => k.verify_sha256(digest, sig),
                    None => k.verify(msg.bytes, sig),
                },
                (Key::P384(k), Es384) => k.verify(msg.bytes, sig),
                (Key::P521(k), Es512) => k.verify(msg.bytes, sig),
                (Key::Ed25519(k), EdDsa) => ed25519_verify(k, msg.bytes, sig),
                _ => false,
            }
        }
    }
}

#[cfg(any(test, feature = "rustcrypto-provider"))]
mod rustcrypto {
    use p256::ecdsa::signature::Verifier as _;
    use rsa_rc::{BoxedUint, PublicKey as RsaPublicKey, pkcs1v15, pss};
    use sha2::{Sha256, Sha384, Sha512};

    use super::super::RSA_MAX_BITS;
    use super::{
        Algorithm, KeyIssue, KeyKind, Material, Provider, Signed, ed25519_key, ed25519_verify,
    };

    /// RustCrypto's crates.
    pub(crate) struct RustCrypto;

    /// A key of [`RustCrypto`].
    #[derive(Clone, PartialEq)]
    pub(crate) enum Key {
        Rsa(RsaPublicKey, usize),
        P256(p256::ecdsa::VerifyingKey),
        P384(p384::ecdsa::VerifyingKey),
        P521(p521::ecdsa::VerifyingKey),
        Ed25519(ed25519_dalek::VerifyingKey),
    }

    /// SEC1 uncompressed encoding `04 || x || y`.
    fn sec1(x: &[u8], y: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + x.len() + y.len());
        out.push(4);
        out.extend_from_slice(x);
        out.extend_from_slice(y);
        out
    }

    /// The whole-byte precision of a big-endian number for `BoxedUint` (a multiple of 64 bits).
    fn uint(bytes: &[u8]) -> Option<BoxedUint> {
        let bits = u32::try_from(bytes.len().max(8).next_multiple_of(8) * 8).ok()?;
        BoxedUint::from_be_slice(bytes, bits).ok()
    }

    impl Provider for RustCrypto {
        type Key = Key;

        fn key(material: Material<'_>) -> Result<Key, KeyIssue> {
            match material {
                Material::Rsa { n, e } => {
                    let bits = n
                        .first()
                        .map_or(0, |&top| 8 * n.len() - top.leading_zeros() as usize);
                    let n = uint(n).ok_or(KeyIssue::RsaInvalid)?;
                    let e = uint(&e.to_be_bytes()).ok_or(KeyIssue::RsaInvalid)?;
                    RsaPublicKey::new_with_size_limits(
                        n,
                        e,
                        super::super::RSA_MIN_BITS..=RSA_MAX_BITS,
                    )
                    .map(|k| Key::Rsa(k, bits))
                    .map_err(|_| KeyIssue::RsaInvalid)
                }
                Material::P256 { x, y } => p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(x, y))
                    .map(Key::P256)
                    .map_err(|_| KeyIssue::EcPoint),
                Material::P384 { x, y } => p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(x, y))
                    .map(Key::P384)
                    .map_err(|_| KeyIssue::EcPoint),
                Material::P521 { x, y } => p521::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(x, y))
                    .map(Key::P521)
                    .map_err(|_| KeyIssue::EcPoint),
                Material::Ed25519(x) => ed25519_key(x).map(Key::Ed25519),
            }
        }

        fn kind(key: &Key) -> KeyKind {
            match key {
                Key::Rsa(_, bits) => KeyKind::Rsa { bits: *bits },
                Key::P256(_) => KeyKind::P256,
                Key::P384(_) => KeyKind::P384,
                Key::P521(_) => KeyKind::P521,
                Key::Ed25519(_) => KeyKind::Ed25519,
            }
        }

        /// Always hashes the bytes itself (a digest the caller has is not used): the reference
        /// the own provider's digest path is compared with.
        fn verify(key: &Key, alg: Algorithm, msg: Signed<'_>, sig: &[u8]) -> bool {
            use Algorithm::*;
            let msg = msg.bytes;
            match (key, alg) {
                (Key::Rsa(k, bits), Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512) => {
                    // A signature is exactly the modulus' length (RFC 8017 §8.2.2 step 1).
                    if sig.len() != bits.div_ceil(8) {
                        return false;
                    }
                    let k = k.clone();
                    match alg {
                        Rs256 => pkcs1v15::Signature::try_from(sig).is_ok_and(|s| {
                            pkcs1v15::VerifyingKey::<Sha256>::new(k)
                                .verify(msg, &s)
                                .is_ok()
                        }),
                        Rs384 => pkcs1v15::Signature::try_from(sig).is_ok_and(|s| {
                            pkcs1v15::VerifyingKey::<Sha384>::new(k)
                                .verify(msg, &s)
                                .is_ok()
                        }),
                        Rs512 => pkcs1v15::Signature::try_from(sig).is_ok_and(|s| {
                            pkcs1v15::VerifyingKey::<Sha512>::new(k)
                                .verify(msg, &s)
                                .is_ok()
                        }),
                        // JWS: MGF1 with the same hash, salt as long as the hash (RFC 7518 §3.5).
                        Ps256 => pss::Signature::try_from(sig).is_ok_and(|s| {
                            pss::VerifyingKey::<Sha256>::new(k).verify(msg, &s).is_ok()
                        }),
                        Ps384 => pss::Signature::try_from(sig).is_ok_and(|s| {
                            pss::VerifyingKey::<Sha384>::new(k).verify(msg, &s).is_ok()
                        }),
                        _ => pss::Signature::try_from(sig).is_ok_and(|s| {
                            pss::VerifyingKey::<Sha512>::new(k).verify(msg, &s).is_ok()
                        }),
                    }
                }
                (Key::P256(k), Es256) => {
                    p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
                }
                (Key::P384(k), Es384) => {
                    p384::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
                }
                (Key::P521(k), Es512) => {
                    p521::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
                }
                (Key::Ed25519(k), EdDsa) => ed25519_verify(k, msg, sig),
                _ => false,
            }
        }
    }
}
