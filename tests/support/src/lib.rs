//! One source for what meshguard's tests, fuzz targets and benchmarks need to make tokens: the
//! fixed test keys, `mint` (header + claims → compact JWS), JWK and JWKS documents, and the
//! loaders of Istio's fixtures (`tests/fixtures/`).
//!
//! It never depends on `meshguard`: a dev-dependency cycle would give the filter's own unit tests
//! a second copy of its types. Algorithms are therefore named by their JOSE `alg` text and
//! documents are `serde_json::Value`s. It is only ever a dev-dependency of the filter's crates (or
//! a dependency of native tools: the fuzz targets, the micro benchmark's runner, the demo IdP), so
//! it never reaches the wasm32 build.
//!
//! Everything is deterministic: fixed private keys (Istio's published RSA test keys, the
//! RFC 7515 A.3 P-256 and RFC 8037 A.1 Ed25519 keys, fixed P-384 and P-521 scalars), RFC 6979
//! ECDSA, Ed25519, PKCS#1 v1.5, and PSS and P-521 ECDSA with a seeded RNG: every run mints the
//! same bytes.
// Clippy's allow-*-in-tests (clippy.toml) does not cover a library: a panic here fails a test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_chacha::rand_core::SeedableRng as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

pub use {ed25519_dalek, p256, p384, p521, rsa};

/// The fixed "now" of the deterministic tests: 2023-11-14T22:13:20Z (Istio's fixtures expire
/// in 2082 and later).
pub const NOW: u64 = 1_700_000_000;

// --- base64url ----------------------------------------------------------------------------------

/// Unpadded base64url (RFC 7515 §2).
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url; panics on anything else.
pub fn b64_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("base64url {text:?}: {e}"))
}

// --- fixtures -----------------------------------------------------------------------------------

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/<rel>` (Istio's tokens and keys under `istio/`, its CRD schemas under
/// `istio-crds/`).
pub fn fixture_path(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// The text of `tests/fixtures/istio/<rel>`, trimmed (the `.jwt` files end with a newline).
pub fn istio(rel: &str) -> String {
    let path = fixture_path("istio").join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// `tests/fixtures/istio/<rel>` parsed as JSON.
pub fn istio_json(rel: &str) -> Value {
    serde_json::from_str(&istio(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Istio's samples JWKS (`security/tools/jwt/samples/jwks.json`): the key of `demo.jwt` and
/// `groups-scope.jwt`, kid [`ISTIO_SAMPLES_KID`], issuer `testing@secure.istio.io`.
pub const ISTIO_SAMPLES_JWKS: &str = include_str!("../../fixtures/istio/jwks.json");
/// The kid of [`ISTIO_SAMPLES_JWKS`]'s key.
pub const ISTIO_SAMPLES_KID: &str = "DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ";
/// Istio's `demo.jwt` (RS256, `testing@secure.istio.io`, expires in 2118), trimmed.
pub const ISTIO_DEMO_JWT: &str = include_str!("../../fixtures/istio/demo.jwt").trim_ascii();
/// The JWKS of Istio's end-to-end token set (`tests/common/jwt/jwks.json`, issuers
/// `test-issuer-{1,2,3}@istio.io`): the public half of [`istio_rsa_key`].
pub const ISTIO_COMMON_JWKS: &str = include_str!("../../fixtures/istio/tests_common_jwt/jwks.json");

// --- keys ---------------------------------------------------------------------------------------

fn parse_rsa(pem: &str) -> Arc<RsaPrivateKey> {
    Arc::new(RsaPrivateKey::from_pkcs1_pem(pem).expect("Istio's PKCS#1 test key"))
}

fn istio_rsa() -> &'static Arc<RsaPrivateKey> {
    static KEY: OnceLock<Arc<RsaPrivateKey>> = OnceLock::new();
    KEY.get_or_init(|| {
        parse_rsa(include_str!(
            "../../fixtures/istio/tests_common_jwt/key.pem"
        ))
    })
}

fn istio_samples_rsa() -> &'static Arc<RsaPrivateKey> {
    static KEY: OnceLock<Arc<RsaPrivateKey>> = OnceLock::new();
    KEY.get_or_init(|| parse_rsa(include_str!("../../fixtures/istio/key.pem")))
}

/// Istio's published 2048-bit RSA test key of its end-to-end set (`tests/common/jwt/key.pem`;
/// public key in [`ISTIO_COMMON_JWKS`]), never a real secret. Parsed once: PEM decoding and key
/// validation are slow in debug builds.
pub fn istio_rsa_key() -> &'static RsaPrivateKey {
    istio_rsa()
}

/// Istio's samples RSA key (`security/tools/jwt/samples/key.pem`), the signer of `demo.jwt`;
/// public key in [`ISTIO_SAMPLES_JWKS`].
pub fn istio_samples_rsa_key() -> &'static RsaPrivateKey {
    istio_samples_rsa()
}

/// The P-256 key of RFC 7515 A.3.
pub fn p256_key() -> p256::ecdsa::SigningKey {
    let d = b64_decode("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
    p256::ecdsa::SigningKey::from_slice(&d).unwrap()
}

/// Another P-256 key: the scalar with every byte `byte` (rotated, unknown or attacker keys).
pub fn p256_key_from(byte: u8) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[byte; 32]).unwrap()
}

/// The fixed P-384 key (an arbitrary scalar below the group order).
pub fn p384_key() -> p384::ecdsa::SigningKey {
    p384_key_from(0x5a)
}

/// Another P-384 key: the scalar with every byte `byte`.
pub fn p384_key_from(byte: u8) -> p384::ecdsa::SigningKey {
    p384::ecdsa::SigningKey::from_slice(&[byte; 48]).unwrap()
}

/// The fixed P-521 key: the scalar 0x01 followed by 65 bytes 0x5a (below the group order).
pub fn p521_key() -> p521::ecdsa::SigningKey {
    let mut scalar = [0x5a; 66];
    scalar[0] = 0x01;
    p521::ecdsa::SigningKey::from_slice(&scalar).unwrap()
}

/// The RFC 8037 A.1 Ed25519 key.
pub fn ed25519_key() -> ed25519_dalek::SigningKey {
    let seed = b64_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    ed25519_dalek::SigningKey::from_bytes(&seed.try_into().unwrap())
}

/// The seed of the fuzz targets' Ed25519 key (kid `fuzz-ed`): it signs the claims of the `policy`
/// target and the token seeds of fuzz/corpus, which the harness replays through the module. It
/// was meant to be RFC 8037's and differs from it after its 22nd byte; the corpus is signed with
/// it, so it stays.
pub const FUZZ_ED25519_SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x70, 0x3b, 0x7e, 0xc6, 0x2c, 0xae, 0xc8, 0x05, 0x5b,
];

/// The fuzz targets' Ed25519 key ([`FUZZ_ED25519_SEED`]).
pub fn fuzz_ed25519_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&FUZZ_ED25519_SEED)
}

/// Another Ed25519 key: the seed with every byte `byte`.
pub fn ed25519_key_from(byte: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[byte; 32])
}

/// A signing key of one of the kinds meshguard verifies.
#[derive(Clone)]
pub enum Key {
    Rsa(Arc<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl From<RsaPrivateKey> for Key {
    fn from(key: RsaPrivateKey) -> Key {
        Key::Rsa(Arc::new(key))
    }
}

impl From<p256::ecdsa::SigningKey> for Key {
    fn from(key: p256::ecdsa::SigningKey) -> Key {
        Key::P256(key)
    }
}

impl From<p384::ecdsa::SigningKey> for Key {
    fn from(key: p384::ecdsa::SigningKey) -> Key {
        Key::P384(key)
    }
}

impl From<ed25519_dalek::SigningKey> for Key {
    fn from(key: ed25519_dalek::SigningKey) -> Key {
        Key::Ed25519(key)
    }
}

impl Key {
    /// [`istio_rsa_key`].
    pub fn rsa() -> Key {
        Key::Rsa(Arc::clone(istio_rsa()))
    }

    /// [`istio_samples_rsa_key`].
    pub fn rsa_istio_samples() -> Key {
        Key::Rsa(Arc::clone(istio_samples_rsa()))
    }

    /// [`p256_key`].
    pub fn p256() -> Key {
        Key::P256(p256_key())
    }

    /// [`p384_key`].
    pub fn p384() -> Key {
        Key::P384(p384_key())
    }

    /// [`p521_key`].
    pub fn p521() -> Key {
        Key::P521(p521_key())
    }

    /// [`ed25519_key`].
    pub fn ed25519() -> Key {
        Key::Ed25519(ed25519_key())
    }

    /// The fixed key that signs `alg`: RS*/PS* Istio's RSA key, ES256, ES384, ES512, EdDSA
    /// (also named Ed25519).
    pub fn for_alg(alg: &str) -> Key {
        match alg {
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Key::rsa(),
            "ES256" => Key::p256(),
            "ES384" => Key::p384(),
            "ES512" => Key::p521(),
            "EdDSA" | "Ed25519" => Key::ed25519(),
            _ => panic!("no fixed test key for alg {alg:?}"),
        }
    }

    /// The public JWK, with `kid` (and no `alg` or `use`).
    pub fn jwk(&self, kid: &str) -> Value {
        match self {
            Key::Rsa(key) => json!({"kty": "RSA", "kid": kid,
                "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())}),
            Key::P256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256", "kid": kid,
                    "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
            }
            Key::P384(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-384", "kid": kid,
                    "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
            }
            Key::P521(key) => {
                let point = p521::ecdsa::VerifyingKey::from(key).to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-521", "kid": kid,
                    "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
            }
            Key::Ed25519(key) => json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                "x": b64(key.verifying_key().as_bytes())}),
        }
    }

    /// The JWS signature of `msg` as `alg` in its JOSE form (ECDSA: r‖s). RSA signs RS256/384/512
    /// (PKCS#1 v1.5) and PS256/384/512 (PSS, salt from a seeded RNG); a P-256 key ES256, a P-384
    /// key ES384, an Ed25519 key EdDSA. Any other pairing panics.
    pub fn sign(&self, alg: &str, msg: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        let mut rng = rand_chacha::ChaCha8Rng::from_seed([7; 32]);
        let signed = match (self, alg) {
            (Key::Rsa(k), "RS256") => k.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg)),
            (Key::Rsa(k), "RS384") => k.sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg)),
            (Key::Rsa(k), "RS512") => k.sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg)),
            (Key::Rsa(k), "PS256") => {
                k.sign_with_rng(&mut rng, Pss::new::<Sha256>(), &Sha256::digest(msg))
            }
            (Key::Rsa(k), "PS384") => {
                k.sign_with_rng(&mut rng, Pss::new::<Sha384>(), &Sha384::digest(msg))
            }
            (Key::Rsa(k), "PS512") => {
                k.sign_with_rng(&mut rng, Pss::new::<Sha512>(), &Sha512::digest(msg))
            }
            (Key::P256(k), "ES256") => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_bytes().to_vec())
            }
            (Key::P384(k), "ES384") => {
                let sig: p384::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_bytes().to_vec())
            }
            (Key::P521(k), "ES512") => {
                use p521::ecdsa::signature::RandomizedSigner as _;
                let sig: p521::ecdsa::Signature = k.sign_with_rng(&mut rng, msg);
                Ok(sig.to_bytes().to_vec())
            }
            (Key::Ed25519(k), "EdDSA" | "Ed25519") => Ok(k.sign(msg).to_bytes().to_vec()),
            _ => panic!("a {} key does not sign {alg}", self.kind()),
        };
        signed.expect("RSA signature")
    }

    fn kind(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "RSA",
            Key::P256(_) => "P-256",
            Key::P384(_) => "P-384",
            Key::P521(_) => "P-521",
            Key::Ed25519(_) => "Ed25519",
        }
    }
}

/// HMAC of `msg` as HS256, HS384 or HS512 (the algorithm-confusion cases: a verifier must
/// refuse these whatever the secret).
pub fn hmac(alg: &str, secret: &[u8], msg: &[u8]) -> Vec<u8> {
    fn mac<M: hmac::Mac + hmac::digest::KeyInit>(secret: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(secret).unwrap();
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }
    match alg {
        "HS256" => mac::<hmac::Hmac<Sha256>>(secret, msg),
        "HS384" => mac::<hmac::Hmac<Sha384>>(secret, msg),
        "HS512" => mac::<hmac::Hmac<Sha512>>(secret, msg),
        _ => panic!("not an HMAC alg: {alg:?}"),
    }
}

// --- minting ------------------------------------------------------------------------------------

/// `b64(header).b64(payload).b64(sign(signing input))` over raw bytes, so that anything can be
/// signed: invalid JSON, duplicate members, a BOM, invalid UTF-8.
pub fn compact(header: &[u8], payload: &[u8], sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

/// [`compact`] over a JSON header and claims.
pub fn mint_with(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    compact(
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
        sign,
    )
}

/// A token signed as its header's `alg` says, by that algorithm's fixed key ([`Key::for_alg`],
/// whatever the header's `kid`). HS256/384/512 are HMAC keyed with the text of the RSA key's JWK
/// `n` (the algorithm-confusion forgery); `none`, a missing `alg` or any other get an empty
/// signature.
pub fn mint(header: &Value, claims: &Value) -> String {
    let alg = header["alg"].as_str().unwrap_or("none").to_owned();
    mint_with(header, claims, |input| match alg.as_str() {
        "HS256" | "HS384" | "HS512" => {
            let n = Key::rsa().jwk("")["n"].as_str().unwrap().to_owned();
            hmac(&alg, n.as_bytes(), input)
        }
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384" | "ES512"
        | "EdDSA" | "Ed25519" => Key::for_alg(&alg).sign(&alg, input),
        _ => Vec::new(),
    })
}

/// A token of `alg` by its fixed key, header `{"alg", "kid": kid_for(alg), "typ": "JWT"}`.
pub fn token(alg: &str, claims: &Value) -> String {
    mint(
        &json!({"alg": alg, "kid": kid_for(alg), "typ": "JWT"}),
        claims,
    )
}

// --- JWKS ---------------------------------------------------------------------------------------

/// The kid of [`Key::rsa`] in [`jwks`].
pub const RSA_KID: &str = "rsa";
/// The kid of [`Key::p256`] in [`jwks`].
pub const P256_KID: &str = "p256";
/// The kid of [`Key::p384`] in [`jwks`].
pub const P384_KID: &str = "p384";
/// The kid of [`Key::p521`] in [`jwks`].
pub const P521_KID: &str = "p521";
/// The kid of [`Key::ed25519`] in [`jwks`].
pub const ED25519_KID: &str = "ed";

/// The kid of `alg`'s fixed key in [`jwks`].
pub fn kid_for(alg: &str) -> &'static str {
    match alg {
        "ES256" => P256_KID,
        "ES384" => P384_KID,
        "ES512" => P521_KID,
        "EdDSA" | "Ed25519" => ED25519_KID,
        _ => RSA_KID,
    }
}

/// A JWKS document: `{"keys": [...]}`.
pub fn jwks_of(keys: impl IntoIterator<Item = Value>) -> Value {
    json!({ "keys": keys.into_iter().collect::<Vec<_>>() })
}

/// Every fixed key: kids "rsa", "p256", "p384", "p521", "ed".
pub fn jwks() -> Value {
    jwks_of([
        Key::rsa().jwk(RSA_KID),
        Key::p256().jwk(P256_KID),
        Key::p384().jwk(P384_KID),
        Key::p521().jwk(P521_KID),
        Key::ed25519().jwk(ED25519_KID),
    ])
}

// --- DPoP (RFC 9449) ----------------------------------------------------------------------------

/// The RFC 7638 SHA-256 thumbprint of a public JWK, base64url: the JSON object of the key
/// type's required members in lexicographic order, without whitespace. Written here apart from
/// the filter's own (jose/dpop.rs), so that the two are checked against each other.
pub fn jwk_thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk["kty"].as_str() {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("RSA") => &["e", "kty", "n"],
        Some("OKP") => &["crv", "kty", "x"],
        other => panic!("no thumbprint for kty {other:?}"),
    };
    let body: Vec<String> = members
        .iter()
        .map(|m| format!("\"{m}\":{}", jwk[*m]))
        .collect();
    b64(Sha256::digest(format!("{{{}}}", body.join(",")).as_bytes()))
}

/// `ath`: the base64url SHA-256 of an access token (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    b64(Sha256::digest(access_token.as_bytes()))
}

/// The public JWK of `key` as a DPoP proof carries it (no `kid`).
pub fn dpop_jwk(key: &Key) -> Value {
    let mut jwk = key.jwk("");
    jwk.as_object_mut().map(|o| o.remove("kid"));
    jwk
}

/// A DPoP proof signed by `key` as `alg`, header `{"typ":"dpop+jwt","alg":alg,"jwk":<public
/// key>}` merged with `header_extra` (a member set to `null` there is removed), and `claims`.
pub fn dpop_proof_with(key: &Key, alg: &str, header_extra: &Value, claims: &Value) -> String {
    let mut header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": dpop_jwk(key)});
    if let (Some(header), Some(extra)) = (header.as_object_mut(), header_extra.as_object()) {
        for (name, value) in extra {
            if value.is_null() {
                header.remove(name);
            } else {
                header.insert(name.clone(), value.clone());
            }
        }
    }
    mint_with(&header, claims, |input| key.sign(alg, input))
}

/// A valid DPoP proof by `key` (`alg`) for `method` and `uri` at `iat`, covering
/// `access_token`, with `jti`.
pub fn dpop_proof(
    key: &Key,
    alg: &str,
    method: &str,
    uri: &str,
    iat: u64,
    jti: &str,
    access_token: &str,
) -> String {
    dpop_proof_with(
        key,
        alg,
        &json!({}),
        &json!({"jti": jti, "htm": method, "htu": uri, "iat": iat, "ath": ath(access_token)}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_keys_match_their_published_halves() {
        // Istio's end-to-end key is the one of its JWKS.
        let common: Value = serde_json::from_str(ISTIO_COMMON_JWKS).unwrap();
        assert_eq!(common["keys"][0]["n"], Key::rsa().jwk("x")["n"]);
        let samples: Value = serde_json::from_str(ISTIO_SAMPLES_JWKS).unwrap();
        assert_eq!(
            samples["keys"][0]["n"],
            Key::rsa_istio_samples().jwk("x")["n"]
        );
        assert_eq!(samples["keys"][0]["kid"], ISTIO_SAMPLES_KID);
        assert_eq!(istio("demo.jwt"), ISTIO_DEMO_JWT);
        // RFC 7515 A.3's public point, RFC 8037 A.1's public key.
        let ec = Key::p256().jwk("k");
        assert_eq!(ec["x"], "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU");
        assert_eq!(ec["y"], "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
        assert_eq!(
            Key::ed25519().jwk("k")["x"],
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        // The key of fuzz/corpus/jwks/seed-ed.json.
        assert_eq!(
            Key::from(fuzz_ed25519_key()).jwk("k")["x"],
            "AAKoQ7Vpb4pJjNxDx5H6AznDtZPMgKkbhxbYd848YQE"
        );
    }

    #[test]
    fn minting_is_deterministic() {
        let claims = json!({"iss": "https://issuer.test", "exp": NOW + 600});
        for alg in [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ] {
            assert_eq!(token(alg, &claims), token(alg, &claims), "{alg}");
        }
        let none = mint(&json!({"alg": "none"}), &claims);
        assert!(none.ends_with('.'));
        let hs = mint(&json!({"alg": "HS256"}), &claims);
        assert_eq!(b64_decode(hs.rsplit('.').next().unwrap()).len(), 32);
    }
}
