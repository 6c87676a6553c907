//! The scenarios' issuer, audience and claims, over `meshguard-test-support`'s fixed keys and
//! minting (deterministic: RFC 6979 ECDSA, Ed25519, PKCS#1 v1.5, and PSS with a seeded RNG; the
//! RSA key is Istio's public test key, tests/fixtures/istio/tests_common_jwt/key.pem).

use meshguard_test_support::{self as support, Key};
use serde_json::{Value, json};

pub use support::{P256_KID as EC256_KID, RSA_KID, istio, mint as sign};

pub const ISSUER: &str = "https://idp.example.com";
pub const AUDIENCE: &str = "api.example.com";

/// A second P-256 key, for rotation / unknown-kid cases.
pub fn ec256_other() -> Key {
    Key::from(support::p256_key_from(0x33))
}

/// Every fixed test key: Istio's RSA key, P-256, P-384, Ed25519.
pub fn jwks() -> String {
    support::jwks().to_string()
}

/// A JWKS with the given keys.
pub fn jwks_of(keys: &[Value]) -> String {
    support::jwks_of(keys.iter().cloned()).to_string()
}

/// Standard valid claims at Unix time `now`.
pub fn claims(now: u64) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now, "exp": now + 3600})
}

/// Signs with another P-256 key under `kid`.
pub fn sign_ec256_with(key: &Key, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    support::mint_with(&header, claims, |m| key.sign("ES256", m))
}

/// A valid token of `alg` at `now`.
pub fn token(alg: &str, now: u64) -> String {
    mint(alg, &claims(now))
}

/// A token of `alg` by its fixed key, with that key's kid.
pub fn mint(alg: &str, claims: &Value) -> String {
    support::token(alg, claims)
}
