//! Signing keys (ES256, RS256, EdDSA), their public JWKs, and JWT minting. The keys are
//! generated here, at run time (and again on every rotation); their JWKs, signatures and the
//! compact serialization are `meshguard-test-support`'s, the same code as every test's tokens.

use meshguard_test_support::{Key, compact};
use rand_core::{OsRng, RngCore};
use serde_json::{Map, Value, json};
use std::fmt;

/// The algorithms the demo IdP signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Rs256,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::Es256, Alg::Rs256, Alg::EdDsa];

    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key error: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

/// One signing key with its `kid`.
pub struct KeyPair {
    pub kid: String,
    pub alg: Alg,
    secret: Key,
}

/// A random lowercase hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl KeyPair {
    /// Generates a fresh key (RSA: 2048 bits) with a random `kid` such as `es256-1a2b3c4d5e6f7081`.
    pub fn generate(alg: Alg) -> Result<KeyPair, KeyError> {
        let kid = format!("{}-{}", alg.name().to_ascii_lowercase(), random_hex(8));
        let secret = match alg {
            Alg::Es256 => Key::from(p256::ecdsa::SigningKey::random(&mut OsRng)),
            Alg::Rs256 => Key::from(
                rsa::RsaPrivateKey::new(&mut OsRng, 2048)
                    .map_err(|e| KeyError(format!("RSA keygen: {e}")))?,
            ),
            Alg::EdDsa => Key::from(ed25519_dalek::SigningKey::generate(&mut OsRng)),
        };
        Ok(KeyPair { kid, alg, secret })
    }

    /// The public JWK (with `kid`, `alg`, `use`).
    pub fn jwk(&self) -> Value {
        let mut jwk = self.secret.jwk(&self.kid);
        if let Some(obj) = jwk.as_object_mut() {
            obj.insert("alg".into(), Value::String(self.alg.name().into()));
            obj.insert("use".into(), Value::String("sig".into()));
        }
        jwk
    }

    /// The JWS signature of `msg` in JOSE form (ES256: r‖s, 64 bytes).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.secret.sign(self.alg.name(), msg)
    }

    /// A compact JWS: `header.payload.signature`. `header_extra` is merged into the protected
    /// header (`alg` and `kid` come from the key unless overridden there).
    pub fn mint(&self, claims: &Map<String, Value>, header_extra: &Map<String, Value>) -> String {
        let mut header = Map::new();
        header.insert("alg".into(), Value::String(self.alg.name().into()));
        header.insert("typ".into(), Value::String("JWT".into()));
        header.insert("kid".into(), Value::String(self.kid.clone()));
        for (k, v) in header_extra {
            header.insert(k.clone(), v.clone());
        }
        compact(
            Value::Object(header).to_string().as_bytes(),
            Value::Object(claims.clone()).to_string().as_bytes(),
            |input| self.sign(input),
        )
    }
}

/// One key per algorithm.
pub struct KeySet {
    pub keys: Vec<KeyPair>,
}

impl KeySet {
    pub fn generate() -> Result<KeySet, KeyError> {
        let keys = Alg::ALL
            .into_iter()
            .map(KeyPair::generate)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeySet { keys })
    }

    pub fn get(&self, alg: Alg) -> Option<&KeyPair> {
        self.keys.iter().find(|k| k.alg == alg)
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": self.keys.iter().map(KeyPair::jwk).collect::<Vec<_>>()})
    }

    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }
}
