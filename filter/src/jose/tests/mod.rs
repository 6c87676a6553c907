//! End-to-end tests of the verifier: RFC vectors, Istio's public tokens and every algorithm.
//! Test tokens are minted with the fixed keys of `meshguard-test-support` (Istio's published
//! test RSA key, the RFC 7515 A.3 P-256 key, a fixed P-384 scalar, the RFC 8037 Ed25519 key) so
//! every run is identical. The hostile inputs are in the catalogue, `filter/tests/hostile.rs`.

mod algs;
mod istio;
mod jwks;
mod rfc;
mod wycheproof;

use meshguard_test_support::{self as support, Key};
use serde_json::{Value, json};

use super::b64;
use super::*;

/// A fixed "now" for minted tokens: 2023-11-14T22:13:20Z.
pub(super) const NOW: u64 = support::NOW;
pub(super) const ISS: &str = "https://issuer.test";

pub(super) fn rsa_jwk(kid: &str) -> Value {
    Key::rsa().jwk(kid)
}

pub(super) fn p256_jwk(kid: &str) -> Value {
    Key::p256().jwk(kid)
}

pub(super) fn p384_jwk(kid: &str) -> Value {
    Key::p384().jwk(kid)
}

pub(super) fn ed25519_jwk(kid: &str) -> Value {
    Key::ed25519().jwk(kid)
}

/// A JWKS with one key of each kind: kids "rsa", "p256", "p384", "ed".
pub(super) fn all_keys() -> Jwks {
    jwks(support::jwks())
}

pub(super) fn jwks(doc: Value) -> Jwks {
    Jwks::parse(doc.to_string().as_bytes()).unwrap()
}

/// Signs `msg` as `alg` with the fixed key of the matching kind.
pub(super) fn sign(alg: Algorithm, msg: &[u8]) -> Vec<u8> {
    Key::for_alg(alg.as_str()).sign(alg.as_str(), msg)
}

/// The kid of the fixed key that signs `alg` in [`all_keys`].
pub(super) fn kid_for(alg: Algorithm) -> &'static str {
    support::kid_for(alg.as_str())
}

/// Encodes header and claims and appends `signer(signing_input)`.
pub(super) fn mint_with(
    header: &Value,
    claims: &Value,
    signer: impl Fn(&[u8]) -> Vec<u8>,
) -> String {
    support::mint_with(header, claims, signer)
}

/// A properly signed token for `alg` with the fixed key's kid.
pub(super) fn mint(alg: Algorithm, claims: &Value) -> String {
    support::token(alg.as_str(), claims)
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
