//! End-to-end tests of the verifier: RFC vectors, Istio's public tokens, every algorithm, and
//! the hostile inputs. Test tokens are minted here with fixed keys (Istio's published test RSA
//! key, fixed EC scalars, the RFC 8037 Ed25519 seed) so every run is identical.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod algs;
mod hostile;
mod istio;
mod jwks;
mod rfc;

use p256::ecdsa::signature::Signer as _;
use rand_chacha::rand_core::SeedableRng as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::b64;
use super::*;

/// A fixed "now" for minted tokens: 2023-11-14T22:13:20Z.
pub(super) const NOW: u64 = 1_700_000_000;
pub(super) const ISS: &str = "https://issuer.test";

/// Istio's published test private key (tests/common/jwt/key.pem), never a real secret.
/// Parsed once: PEM decoding and key validation are slow in debug builds.
pub(super) fn rsa_key() -> &'static RsaPrivateKey {
    static KEY: std::sync::OnceLock<RsaPrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        RsaPrivateKey::from_pkcs1_pem(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/istio/tests_common_jwt/key.pem"
        )))
        .unwrap()
    })
}

/// A fixed P-256 key: the private scalar of RFC 7515 A.3.
pub(super) fn p256_key() -> p256::ecdsa::SigningKey {
    let d = b64::decode("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI").unwrap();
    p256::ecdsa::SigningKey::from_slice(&d).unwrap()
}

/// A fixed P-384 key (an arbitrary scalar below the group order).
pub(super) fn p384_key() -> p384::ecdsa::SigningKey {
    p384::ecdsa::SigningKey::from_slice(&[0x5a; 48]).unwrap()
}

/// The RFC 8037 A.1 Ed25519 key.
pub(super) fn ed25519_key() -> ed25519_dalek::SigningKey {
    let d = b64::decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap();
    ed25519_dalek::SigningKey::from_bytes(&d.try_into().unwrap())
}

pub(super) fn rsa_jwk(kid: &str) -> Value {
    let public = rsa_key().to_public_key();
    json!({
        "kty": "RSA", "kid": kid, "use": "sig",
        "n": b64::encode(&public.n().to_bytes_be()),
        "e": b64::encode(&public.e().to_bytes_be()),
    })
}

pub(super) fn p256_jwk(kid: &str) -> Value {
    let point = p256_key().verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "kid": kid,
        "x": b64::encode(point.x().unwrap()), "y": b64::encode(point.y().unwrap())})
}

pub(super) fn p384_jwk(kid: &str) -> Value {
    let point = p384_key().verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-384", "kid": kid,
        "x": b64::encode(point.x().unwrap()), "y": b64::encode(point.y().unwrap())})
}

pub(super) fn ed25519_jwk(kid: &str) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
        "x": b64::encode(ed25519_key().verifying_key().as_bytes())})
}

/// A JWKS with one key of each kind: kids "rsa", "p256", "p384", "ed".
pub(super) fn all_keys() -> Jwks {
    jwks(json!({"keys": [rsa_jwk("rsa"), p256_jwk("p256"), p384_jwk("p384"), ed25519_jwk("ed")]}))
}

pub(super) fn jwks(doc: Value) -> Jwks {
    Jwks::parse(doc.to_string().as_bytes()).unwrap()
}

/// Signs `msg` as `alg` with the fixed key of the matching kind.
pub(super) fn sign(alg: Algorithm, msg: &[u8]) -> Vec<u8> {
    let rsa = rsa_key;
    let mut rng = rand_chacha::ChaCha8Rng::from_seed([7; 32]);
    match alg {
        Algorithm::Rs256 => rsa().sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg)),
        Algorithm::Rs384 => rsa().sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg)),
        Algorithm::Rs512 => rsa().sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg)),
        Algorithm::Ps256 => {
            rsa().sign_with_rng(&mut rng, Pss::new::<Sha256>(), &Sha256::digest(msg))
        }
        Algorithm::Ps384 => {
            rsa().sign_with_rng(&mut rng, Pss::new::<Sha384>(), &Sha384::digest(msg))
        }
        Algorithm::Ps512 => {
            rsa().sign_with_rng(&mut rng, Pss::new::<Sha512>(), &Sha512::digest(msg))
        }
        Algorithm::Es256 => {
            let sig: p256::ecdsa::Signature = p256_key().sign(msg);
            Ok(sig.to_bytes().to_vec())
        }
        Algorithm::Es384 => {
            let sig: p384::ecdsa::Signature = p384_key().sign(msg);
            Ok(sig.to_bytes().to_vec())
        }
        Algorithm::EdDsa => Ok(ed25519_dalek::Signer::sign(&ed25519_key(), msg)
            .to_bytes()
            .to_vec()),
    }
    .unwrap()
}

/// The kid of the fixed key that signs `alg` in [`all_keys`].
pub(super) fn kid_for(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Es256 => "p256",
        Algorithm::Es384 => "p384",
        Algorithm::EdDsa => "ed",
        _ => "rsa",
    }
}

/// Encodes header and claims and appends `signer(signing_input)`.
pub(super) fn mint_with(
    header: &Value,
    claims: &Value,
    signer: impl Fn(&[u8]) -> Vec<u8>,
) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = signer(input.as_bytes());
    format!("{input}.{}", b64::encode(&sig))
}

/// A properly signed token for `alg` with the fixed key's kid.
pub(super) fn mint(alg: Algorithm, claims: &Value) -> String {
    let header = json!({"alg": alg.as_str(), "kid": kid_for(alg), "typ": "JWT"});
    mint_with(&header, claims, |m| sign(alg, m))
}

pub(super) fn claims() -> Value {
    json!({"iss": ISS, "sub": "alice", "aud": "api", "iat": NOW, "exp": NOW + 600})
}

pub(super) fn parse(token: &str) -> Result<UnverifiedToken, JoseError> {
    UnverifiedToken::parse(token, &TokenLimits::default())
}

/// Parses and verifies against [`all_keys`] with default validation for [`ISS`] at [`NOW`].
pub(super) fn check(token: &str) -> Result<VerifiedClaims, JoseError> {
    verify(&parse(token)?, &all_keys(), &Validation::new(ISS), NOW)
}
