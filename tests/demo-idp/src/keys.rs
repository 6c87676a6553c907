//! Signing keys (ES256, RS256, EdDSA), their public JWKs, and JWT minting.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand_core::{OsRng, RngCore};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
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

enum Secret {
    Es(p256::ecdsa::SigningKey),
    Rs(
        Box<rsa::pkcs1v15::SigningKey<sha2::Sha256>>,
        rsa::RsaPublicKey,
    ),
    Ed(ed25519_dalek::SigningKey),
}

/// One signing key with its `kid`.
pub struct KeyPair {
    pub kid: String,
    pub alg: Alg,
    secret: Secret,
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
            Alg::Es256 => Secret::Es(p256::ecdsa::SigningKey::random(&mut OsRng)),
            Alg::Rs256 => {
                let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048)
                    .map_err(|e| KeyError(format!("RSA keygen: {e}")))?;
                let public = key.to_public_key();
                Secret::Rs(
                    Box::new(rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key)),
                    public,
                )
            }
            Alg::EdDsa => Secret::Ed(ed25519_dalek::SigningKey::generate(&mut OsRng)),
        };
        Ok(KeyPair { kid, alg, secret })
    }

    /// The public JWK (with `kid`, `alg`, `use`).
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.secret {
            Secret::Es(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                let x = point.x().map(|x| B64.encode(x)).unwrap_or_default();
                let y = point.y().map(|y| B64.encode(y)).unwrap_or_default();
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})
            }
            Secret::Rs(_, public) => json!({
                "kty": "RSA",
                "n": B64.encode(public.n().to_bytes_be()),
                "e": B64.encode(public.e().to_bytes_be()),
            }),
            Secret::Ed(k) => json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": B64.encode(k.verifying_key().to_bytes()),
            }),
        };
        if let Some(obj) = jwk.as_object_mut() {
            obj.insert("kid".into(), Value::String(self.kid.clone()));
            obj.insert("alg".into(), Value::String(self.alg.name().into()));
            obj.insert("use".into(), Value::String("sig".into()));
        }
        jwk
    }

    /// The JWS signature of `msg` in JOSE form (ES256: r‖s, 64 bytes).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match &self.secret {
            Secret::Es(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.to_bytes().to_vec()
            }
            Secret::Rs(k, _) => k.sign(msg).to_vec(),
            Secret::Ed(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(msg).to_bytes().to_vec()
            }
        }
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
        let signing_input = format!(
            "{}.{}",
            B64.encode(Value::Object(header).to_string()),
            B64.encode(Value::Object(claims.clone()).to_string())
        );
        let sig = self.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(sig))
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
