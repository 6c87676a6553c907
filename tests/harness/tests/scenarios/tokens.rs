//! Test tokens minted natively with fixed keys (deterministic: RFC 6979 ECDSA, Ed25519, PKCS#1
//! v1.5, and PSS with a seeded RNG). The RSA key is Istio's public test key
//! (tests/fixtures/istio/key.pem).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::Mac;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

pub const ISSUER: &str = "https://idp.example.com";
pub const AUDIENCE: &str = "api.example.com";
pub const RSA_KID: &str = "DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ";
pub const EC256_KID: &str = "ec256";
pub const EC384_KID: &str = "ec384";
pub const ED_KID: &str = "ed25519";

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/istio")
        .join(name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

pub fn istio(name: &str) -> String {
    fixture(name)
}

fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs1_pem(&fixture("key.pem")).expect("Istio key.pem")
}

fn ec256() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap()
}

fn ec384() -> p384::ecdsa::SigningKey {
    p384::ecdsa::SigningKey::from_slice(&[0x22; 48]).unwrap()
}

/// A second P-256 key, for rotation / unknown-kid cases.
pub fn ec256_other() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x33; 32]).unwrap()
}

fn ed() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[0x44; 32])
}

/// A seeded xorshift RNG: PSS salts without OS randomness, so runs are reproducible.
struct SeededRng(u64);
impl rand_core::RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for SeededRng {}

fn ec_jwk(kid: &str, crv: &str, x: &[u8], y: &[u8]) -> Value {
    json!({"kty": "EC", "crv": crv, "kid": kid, "x": B64.encode(x), "y": B64.encode(y)})
}

pub fn ec256_jwk(kid: &str, key: &p256::ecdsa::SigningKey) -> Value {
    let p = key.verifying_key().to_encoded_point(false);
    ec_jwk(kid, "P-256", p.x().unwrap(), p.y().unwrap())
}

/// The RSA JWK of Istio's jwks.json.
pub fn rsa_jwk() -> Value {
    let jwks: Value = serde_json::from_str(&fixture("jwks.json")).unwrap();
    jwks["keys"][0].clone()
}

/// Every test key: Istio's RSA key, P-256, P-384, Ed25519.
pub fn jwks() -> String {
    let p384 = ec384().verifying_key().to_encoded_point(false);
    let keys = vec![
        rsa_jwk(),
        ec256_jwk(EC256_KID, &ec256()),
        ec_jwk(EC384_KID, "P-384", p384.x().unwrap(), p384.y().unwrap()),
        json!({"kty": "OKP", "crv": "Ed25519", "kid": ED_KID,
               "x": B64.encode(ed().verifying_key().to_bytes())}),
    ];
    json!({ "keys": keys }).to_string()
}

/// A JWKS with the given keys.
pub fn jwks_of(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

pub fn kid_for(alg: &str) -> &'static str {
    match alg {
        "ES256" => EC256_KID,
        "ES384" => EC384_KID,
        "EdDSA" => ED_KID,
        _ => RSA_KID,
    }
}

/// Standard valid claims at Unix time `now`.
pub fn claims(now: u64) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now, "exp": now + 3600})
}

/// Signs `header` + `claims` with the test key of `alg` (or HMAC with `secret` for HS256).
pub fn sign(header: &Value, claims: &Value) -> String {
    let alg = header["alg"].as_str().unwrap_or("none").to_string();
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let msg = input.as_bytes();
    let mut rng = SeededRng(0x9e37_79b9_7f4a_7c15);
    let sig: Vec<u8> = match alg.as_str() {
        "RS256" => rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa_key())
            .sign(msg)
            .to_vec(),
        "RS384" => rsa::pkcs1v15::SigningKey::<Sha384>::new(rsa_key())
            .sign(msg)
            .to_vec(),
        "RS512" => rsa::pkcs1v15::SigningKey::<Sha512>::new(rsa_key())
            .sign(msg)
            .to_vec(),
        "PS256" => rsa::pss::SigningKey::<Sha256>::new(rsa_key())
            .sign_with_rng(&mut rng, msg)
            .to_vec(),
        "PS384" => rsa::pss::SigningKey::<Sha384>::new(rsa_key())
            .sign_with_rng(&mut rng, msg)
            .to_vec(),
        "PS512" => rsa::pss::SigningKey::<Sha512>::new(rsa_key())
            .sign_with_rng(&mut rng, msg)
            .to_vec(),
        "ES256" => {
            let s: p256::ecdsa::Signature = ec256().sign(msg);
            s.to_bytes().to_vec()
        }
        "ES384" => {
            let s: p384::ecdsa::Signature = ec384().sign(msg);
            s.to_bytes().to_vec()
        }
        "EdDSA" => ed25519_dalek::Signer::sign(&ed(), msg).to_bytes().to_vec(),
        "HS256" => {
            // The classic confusion attack: HMAC keyed with the public key's bytes.
            let secret = rsa_jwk()["n"].as_str().unwrap().to_string();
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(msg);
            mac.finalize().into_bytes().to_vec()
        }
        _ => Vec::new(),
    };
    format!("{input}.{}", B64.encode(sig))
}

/// Signs with another P-256 key under `kid`.
pub fn sign_ec256_with(key: &p256::ecdsa::SigningKey, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let s: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(s.to_bytes()))
}

/// A valid token of `alg` at `now`.
pub fn token(alg: &str, now: u64) -> String {
    mint(alg, &claims(now))
}

pub fn mint(alg: &str, claims: &Value) -> String {
    sign(
        &json!({"alg": alg, "typ": "JWT", "kid": kid_for(alg)}),
        claims,
    )
}
