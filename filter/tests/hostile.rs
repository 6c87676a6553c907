//! The hostile-input catalogue: each hostile input, the precise outcome.
//!
//! Native tests against the public API: `jose` (parse/verify, JWKS), `config`, `extract`, and the
//! host-free request decision `engine::auth::authenticate` (the function the proxy-wasm glue calls)
//! with inline keys, so "401 with reason X" is asserted on the real decision path without Envoy.
//! Tokens are minted here with fixed keys: Istio's public test RSA key, fixed EC scalars, the
//! RFC 8037 Ed25519 seed, and "attacker" keys that no JWKS lists.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac as _};
use meshguard::cache::TokenCache;
use meshguard::config::{CompiledConfig, KeySource};
use meshguard::engine::auth::{KeyAccess, Outcome, Progress, authenticate};
use meshguard::extract::{self, Found, Source};
use meshguard::jose::{
    JoseError, Jwks, JwksError, Malformed, Segment, SkipReason, TokenLimits, UnverifiedToken,
    Validation, verify,
};
use meshguard::jwks::{KidMiss, Lookup};
use meshguard::output::Denial;
use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.example";
const ISS2: &str = "https://other-idp.example";

// ---------------------------------------------------------------------------------------------
// keys and minting

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Istio's published test RSA key (never a real secret).
fn rsa_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        RsaPrivateKey::from_pkcs1_pem(include_str!(
            "../../tests/fixtures/istio/tests_common_jwt/key.pem"
        ))
        .unwrap()
    })
}

fn ed_key() -> ed25519_dalek::SigningKey {
    let seed = B64
        .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .unwrap();
    ed25519_dalek::SigningKey::from_bytes(&seed.try_into().unwrap())
}

/// A key that no JWKS lists.
fn attacker_ed_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[0x42; 32])
}

fn p256_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x17; 32]).unwrap()
}

fn attacker_p256_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x23; 32]).unwrap()
}

fn rsa_jwk(kid: &str) -> Value {
    let public = rsa_key().to_public_key();
    json!({"kty": "RSA", "kid": kid, "n": b64(&public.n().to_bytes_be()),
           "e": b64(&public.e().to_bytes_be())})
}

fn ed_jwk(kid: &str, key: &ed25519_dalek::SigningKey) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(key.verifying_key().as_bytes())})
}

fn p256_jwk(kid: &str, key: &p256::ecdsa::SigningKey) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "kid": kid,
           "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
}

/// The legitimate JWKS: kids "rsa", "ed", "ec".
fn jwks_doc() -> Value {
    json!({"keys": [rsa_jwk("rsa"), ed_jwk("ed", &ed_key()), p256_jwk("ec", &p256_key())]})
}

fn jwks() -> Jwks {
    Jwks::parse(jwks_doc().to_string().as_bytes()).unwrap()
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "alice", "aud": "api", "iat": NOW - 10, "exp": NOW + 3600})
}

/// `header.payload.signer(signing input)`, header and payload given as raw JSON bytes.
fn mint_raw(header: &[u8], payload: &[u8], signer: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = signer(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

fn ed_sign(key: &ed25519_dalek::SigningKey) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
    |m| key.sign(m).to_bytes().to_vec()
}

/// An EdDSA token by the legitimate key, kid "ed".
fn mint_ed(payload: &Value) -> String {
    mint_raw(
        br#"{"alg":"EdDSA","kid":"ed"}"#,
        payload.to_string().as_bytes(),
        ed_sign(&ed_key()),
    )
}

fn parse(token: &str) -> Result<UnverifiedToken, JoseError> {
    UnverifiedToken::parse(token, &TokenLimits::default())
}

/// Parse + verify against [`jwks`] with the defaults for [`ISS`].
fn check(token: &str) -> Result<(), JoseError> {
    check_with(token, &Validation::new(ISS))
}

fn check_with(token: &str, validation: &Validation) -> Result<(), JoseError> {
    let token = parse(token)?;
    verify(&token, &jwks(), validation, NOW).map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// the request decision (extract → authenticate), with inline keys

/// Keys straight from the configuration's inline `jwks` (the state machine is not under test).
struct InlineKeys<'a>(&'a CompiledConfig);

impl KeyAccess for InlineKeys<'_> {
    fn lookup(&mut self, rule: usize) -> Lookup<Jwks> {
        match self.0.rules.get(rule).map(|r| &r.keys) {
            Some(KeySource::Inline(jwks)) => Lookup::Ready(Rc::clone(jwks)),
            _ => Lookup::Unavailable,
        }
    }
    fn unknown_kid(&mut self, _rule: usize) -> KidMiss {
        KidMiss::RateLimited
    }
}

/// A configuration with two rules (issuers [`ISS`] and [`ISS2`], both keyed by [`jwks`]) reading
/// the `Authorization: Bearer` header and the `session` cookie.
fn config() -> CompiledConfig {
    let jwks = jwks_doc().to_string();
    let doc = json!({"jwtRules": [
        {"issuer": ISS, "jwks": jwks, "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}],
         "fromCookies": ["session"], "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}]},
        {"issuer": ISS2, "jwks": jwks, "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}],
         "fromCookies": ["session"]}
    ]});
    CompiledConfig::from_json(doc.to_string().as_bytes()).unwrap()
}

/// What the filter answers: `Ok(issuers of the verified tokens, principal first)` or the denial.
fn decide(
    config: &CompiledConfig,
    headers: &[(&str, &[u8])],
) -> (Vec<Found>, Result<Vec<String>, Denial>) {
    let found = extract::extract(&config.locations, |name| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_vec())
    });
    let mut cache = TokenCache::new(0);
    let outcome = authenticate(
        config,
        &found,
        &mut InlineKeys(config),
        &mut cache,
        NOW,
        &mut Progress::default(),
    );
    let result = match outcome {
        Outcome::Authenticated(list) => {
            Ok(list.iter().map(|v| v.claims.issuer().to_owned()).collect())
        }
        Outcome::Denied(denial, _) => Err(denial),
        Outcome::Wait { rule } => panic!("inline keys never wait (rule {rule})"),
    };
    (found, result)
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

// ---------------------------------------------------------------------------------------------
// alg

#[test]
fn alg_none_in_every_spelling_is_refused_even_with_a_valid_looking_signature() {
    for alg in ["none", "None", "nOnE", "NONE"] {
        let header = json!({"alg": alg, "kid": "ed"}).to_string();
        let payload = claims().to_string();
        // Empty signature (RFC 7519 §6.1 unsecured JWS) and a real EdDSA signature.
        let unsigned = mint_raw(header.as_bytes(), payload.as_bytes(), |_| Vec::new());
        let signed = mint_raw(header.as_bytes(), payload.as_bytes(), ed_sign(&ed_key()));
        for token in [unsigned, signed] {
            assert_eq!(parse(&token).unwrap_err(), JoseError::AlgNone, "{alg}");
            let (_, result) = decide(&config(), &[("authorization", &bearer(&token))]);
            let denial = result.unwrap_err();
            assert_eq!((denial.status(), denial.reason()), (401, "alg_none"));
        }
    }
}

#[test]
fn hmac_keyed_with_the_rsa_public_key_pem_der_or_jwk_is_refused() {
    let public = rsa_key().to_public_key();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        (
            "pkcs1 pem",
            public
                .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap()
                .into_bytes(),
        ),
        (
            "spki pem",
            public
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap()
                .into_bytes(),
        ),
        (
            "pkcs1 der",
            public.to_pkcs1_der().unwrap().as_bytes().to_vec(),
        ),
        (
            "spki der",
            public.to_public_key_der().unwrap().as_bytes().to_vec(),
        ),
        ("jwk json", rsa_jwk("rsa").to_string().into_bytes()),
        ("n", public.n().to_bytes_be()),
    ];
    for alg in ["HS256", "HS384", "HS512"] {
        for (what, secret) in &secrets {
            let header = json!({"alg": alg, "kid": "rsa", "typ": "JWT"}).to_string();
            let token = mint_raw(
                header.as_bytes(),
                claims().to_string().as_bytes(),
                |m| match alg {
                    "HS256" => {
                        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
                        mac.update(m);
                        mac.finalize().into_bytes().to_vec()
                    }
                    "HS384" => {
                        let mut mac = Hmac::<Sha384>::new_from_slice(secret).unwrap();
                        mac.update(m);
                        mac.finalize().into_bytes().to_vec()
                    }
                    _ => {
                        let mut mac = Hmac::<Sha512>::new_from_slice(secret).unwrap();
                        mac.update(m);
                        mac.finalize().into_bytes().to_vec()
                    }
                },
            );
            assert_eq!(
                parse(&token).unwrap_err(),
                JoseError::AlgHmac,
                "{alg} {what}"
            );
            let (_, result) = decide(&config(), &[("authorization", &bearer(&token))]);
            assert_eq!(result.unwrap_err().reason(), "alg_hmac", "{alg} {what}");
        }
    }
    // The JWKS side: the same secrets as `oct` keys, or the RSA key labelled HS256, are skipped.
    let doc = json!({"keys": [
        {"kty": "oct", "kid": "rsa", "k": b64(&secrets[0].1)},
        {"kty": "RSA", "kid": "rsa-hs", "alg": "HS256", "n": rsa_jwk("x")["n"], "e": "AQAB"},
        ed_jwk("ed", &ed_key()),
    ]});
    let parsed = Jwks::parse(doc.to_string().as_bytes()).unwrap();
    let reasons: Vec<SkipReason> = parsed.skipped().iter().map(|s| s.reason).collect();
    assert_eq!(reasons, [SkipReason::Symmetric, SkipReason::RefusedAlg]);
}

// ---------------------------------------------------------------------------------------------
// key-carrying header parameters

#[test]
fn jwk_header_with_matching_attacker_signature_is_not_trusted() {
    let attacker = attacker_ed_key();
    let jwk = ed_jwk("ed", &attacker);
    let payload = claims().to_string();
    // Attacker key embedded as `jwk`; kid absent, kid of a real key, kid of nothing known.
    for (header, want) in [
        (json!({"alg": "EdDSA", "jwk": jwk}), JoseError::BadSignature),
        (
            json!({"alg": "EdDSA", "kid": "ed", "jwk": jwk}),
            JoseError::BadSignature,
        ),
        (
            json!({"alg": "EdDSA", "kid": "attacker", "jwk": jwk}),
            JoseError::UnknownKid,
        ),
    ] {
        let token = mint_raw(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&attacker),
        );
        assert_eq!(check(&token).unwrap_err(), want, "{header}");
    }
    // Same with an EC attacker key.
    let ec = attacker_p256_key();
    let header = json!({"alg": "ES256", "jwk": p256_jwk("x", &ec)});
    let token = mint_raw(header.to_string().as_bytes(), payload.as_bytes(), |m| {
        let sig: p256::ecdsa::Signature = ec.sign(m);
        sig.to_bytes().to_vec()
    });
    assert_eq!(check(&token).unwrap_err(), JoseError::BadSignature);
}

#[test]
fn jku_x5u_x5c_are_never_followed_or_trusted() {
    let attacker = attacker_ed_key();
    let payload = claims().to_string();
    // A self-signed "certificate" chain and URLs an attacker controls. verify() is a pure
    // function (no I/O: the crate has no HTTP client outside the host's dispatch to the
    // configured jwksCluster), so "never followed" means: the outcome ignores them.
    let x5c =
        vec![base64::engine::general_purpose::STANDARD.encode(attacker.verifying_key().as_bytes())];
    for extra in [
        json!({"jku": "https://attacker.example/jwks.json"}),
        json!({"x5u": "https://attacker.example/cert.pem"}),
        json!({"x5c": x5c}),
        json!({"jku": "file:///etc/passwd", "x5u": "http://169.254.169.254/", "x5c": ["AAAA"]}),
    ] {
        let mut header = json!({"alg": "EdDSA"});
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        let forged = mint_raw(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&attacker),
        );
        assert_eq!(check(&forged).unwrap_err(), JoseError::BadSignature);
        // The same header on a token signed by the configured key is simply ignored.
        let genuine = mint_raw(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&ed_key()),
        );
        assert_eq!(check(&genuine), Ok(()), "{header}");
    }
}

// ---------------------------------------------------------------------------------------------
// kid

#[test]
fn hostile_kids_are_unknown_and_never_echoed() {
    let payload = claims().to_string();
    let long = "k".repeat(10 * 1024);
    for kid in [
        "../../../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "/dev/random",
        "ed\" OR \"1\"=\"1",
        "ed'; DROP TABLE keys; --",
        "ed\u{0}",
        "\u{0}",
        "e\u{0}d",
        long.as_str(),
    ] {
        let header = json!({"alg": "EdDSA", "kid": kid});
        let token = mint_raw(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&ed_key()),
        );
        // The 10 KB kid still fits the default 16 KiB limit: it is looked up, not truncated.
        let err = check(&token).unwrap_err();
        assert_eq!(
            err,
            JoseError::UnknownKid,
            "{:?}",
            &kid[..kid.len().min(20)]
        );
        let (_, result) = decide(&config(), &[("authorization", &bearer(&token))]);
        let denial = result.unwrap_err();
        assert_eq!((denial.status(), denial.reason()), (401, "unknown_kid"));
        let text = denial.to_string();
        assert!(!text.contains(kid) || kid.len() < 3, "kid echoed: {text}");
    }
    // A kid with NUL or quotes is matched exactly, byte for byte, when the JWKS really has it.
    for kid in ["a\u{0}b", "q\"uote", "../x"] {
        let doc = json!({"keys": [ed_jwk(kid, &ed_key())]});
        let keys = Jwks::parse(doc.to_string().as_bytes()).unwrap();
        let header = json!({"alg": "EdDSA", "kid": kid});
        let token = mint_raw(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&ed_key()),
        );
        let token = parse(&token).unwrap();
        assert!(verify(&token, &keys, &Validation::new(ISS), NOW).is_ok());
        let truncated = json!({"alg": "EdDSA", "kid": "a"});
        let other = mint_raw(
            truncated.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&ed_key()),
        );
        let other = parse(&other).unwrap();
        assert_eq!(
            verify(&other, &keys, &Validation::new(ISS), NOW).unwrap_err(),
            JoseError::UnknownKid,
            "no C-string truncation of {kid:?}"
        );
    }
    // A kid that is not a string is malformed.
    let token = mint_raw(
        br#"{"alg":"EdDSA","kid":["ed"]}"#,
        payload.as_bytes(),
        ed_sign(&ed_key()),
    );
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::Kid)
    );
}

// ---------------------------------------------------------------------------------------------
// claims

#[test]
fn duplicate_claims_are_malformed_in_every_spelling() {
    let key = ed_key();
    let sign = ed_sign(&key);
    let header = br#"{"alg":"EdDSA","kid":"ed"}"#;
    for payload in [
        r#"{"iss":"https://idp.example","exp":1700003600,"sub":"alice","sub":"admin"}"#,
        // The same name once escaped: JSON compares decoded names.
        r#"{"iss":"https://idp.example","exp":1700003600,"sub":"alice","s\u0075b":"admin"}"#,
        r#"{"iss":"https://idp.example","exp":1700003600,"iss":"https://idp.example"}"#,
        r#"{"iss":"https://idp.example","exp":1700003600,"exp":9999999999}"#,
        r#"{"iss":"https://idp.example","exp":1700003600,"n":{"a":1,"a":2}}"#,
        r#"{"iss":"https://idp.example","exp":1700003600,"l":[{"x":1,"x":1}]}"#,
    ] {
        let token = mint_raw(header, payload.as_bytes(), &sign);
        assert_eq!(
            parse(&token).unwrap_err(),
            JoseError::Malformed(Malformed::DuplicateMember(Segment::Payload)),
            "{payload}"
        );
    }
    let token = mint_raw(
        br#"{"alg":"EdDSA","alg":"none"}"#,
        claims().to_string().as_bytes(),
        &sign,
    );
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::DuplicateMember(Segment::Header))
    );
}

#[test]
fn aud_of_the_wrong_type_or_huge() {
    let with_aud = |aud: Value| {
        let mut c = claims();
        c["aud"] = aud;
        c
    };
    let strict = Validation {
        audiences: vec!["api".into()],
        ..Validation::new(ISS)
    };
    for aud in [
        json!(42),
        json!(1.5),
        json!({"api": true}),
        json!(null),
        json!(true),
        json!(["api", 7]),
    ] {
        let token = mint_ed(&with_aud(aud.clone()));
        for v in [&Validation::new(ISS), &strict] {
            assert_eq!(
                check_with(&token, v).unwrap_err(),
                JoseError::InvalidClaim("aud"),
                "{aud}"
            );
        }
    }
    // 10 000 audiences: over the default 16 KiB token limit...
    let many: Vec<String> = (0..10_000).map(|i| format!("a{i}")).collect();
    let token = mint_ed(&with_aud(json!(many)));
    assert_eq!(parse(&token).unwrap_err(), JoseError::TooLarge);
    let (_, result) = decide(&config(), &[("authorization", &bearer(&token))]);
    assert_eq!(result.unwrap_err().reason(), "too_large");
    // ...and with the limit raised to the configurable maximum it is still decided correctly
    // and quickly (no quadratic matching).
    let limits = TokenLimits {
        max_token_bytes: 256 * 1024,
        ..TokenLimits::default()
    };
    let parsed = UnverifiedToken::parse(&token, &limits).unwrap();
    let start = Instant::now();
    assert_eq!(
        verify(&parsed, &jwks(), &strict, NOW).unwrap_err(),
        JoseError::AudienceNotAllowed
    );
    let mut last = many.clone();
    last.push("api".into());
    let token = mint_ed(&with_aud(json!(last)));
    let parsed = UnverifiedToken::parse(&token, &limits).unwrap();
    assert!(verify(&parsed, &jwks(), &strict, NOW).is_ok());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn exp_as_string_float_huge_negative() {
    let with_exp = |exp: Value| {
        let mut c = claims();
        c["exp"] = exp;
        c
    };
    let cases: [(Value, Result<(), JoseError>); 9] = [
        (json!("1700003600"), Err(JoseError::InvalidClaim("exp"))),
        (json!("soon"), Err(JoseError::InvalidClaim("exp"))),
        (json!([1_700_003_600]), Err(JoseError::InvalidClaim("exp"))),
        (json!(-1), Err(JoseError::InvalidClaim("exp"))),
        (json!(-1e300), Err(JoseError::InvalidClaim("exp"))),
        (json!(null), Err(JoseError::InvalidClaim("exp"))),
        // Fractions are NumericDates (RFC 7519 §2).
        (json!(1_700_003_600.5), Ok(())),
        (json!((NOW - 3600) as f64 + 0.5), Err(JoseError::Expired)),
        // Saturates instead of overflowing: the issuer signed a (practically) eternal token.
        (json!(1e300), Ok(())),
    ];
    for (exp, want) in cases {
        let token = mint_ed(&with_exp(exp.clone()));
        assert_eq!(check(&token), want, "exp {exp}");
    }
    // An eternal token is refused when the rule caps the lifetime.
    let capped = Validation {
        max_lifetime_secs: Some(86_400),
        ..Validation::new(ISS)
    };
    let token = mint_ed(&with_exp(json!(1e300)));
    assert_eq!(
        check_with(&token, &capped).unwrap_err(),
        JoseError::LifetimeTooLong
    );
    // Missing exp is refused by default.
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        check(&mint_ed(&c)).unwrap_err(),
        JoseError::MissingExpiration
    );
    // u64 overflow in the JSON number itself.
    let token = mint_raw(
        br#"{"alg":"EdDSA","kid":"ed"}"#,
        br#"{"iss":"https://idp.example","exp":184467440737095516160000}"#,
        ed_sign(&ed_key()),
    );
    assert_eq!(check(&token), Ok(()), "a float beyond u64 saturates");
}

// ---------------------------------------------------------------------------------------------
// request shape

#[test]
fn one_megabyte_cookie() {
    let config = config();
    let token = mint_ed(&claims());
    // The token cookie at the end of a 1 MB Cookie header: found, verified, quickly.
    let mut cookie = Vec::with_capacity(1 << 20);
    while cookie.len() < (1 << 20) {
        cookie.extend_from_slice(b"junk=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; ");
    }
    cookie.extend_from_slice(format!("session={token}").as_bytes());
    let start = Instant::now();
    let (found, result) = decide(&config, &[("cookie", &cookie)]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].source, Source::Cookie(0));
    assert_eq!(result.unwrap(), [ISS]);
    let rest = extract::remove_cookie(&cookie, "session").unwrap();
    assert_eq!(extract::cookie_value(&rest, "session"), None);
    assert!(start.elapsed() < Duration::from_secs(5));

    // A 1 MB token value: refused by size before any decoding.
    let mut huge = b"session=".to_vec();
    huge.resize(8 + (1 << 20), b'A');
    let (_, result) = decide(&config, &[("cookie", &huge)]);
    let denial = result.unwrap_err();
    assert_eq!((denial.status(), denial.reason()), (401, "too_large"));
    // 1 MB of `;` and `=`: no token, no panic.
    let separators: Vec<u8> = b";=".iter().copied().cycle().take(1 << 20).collect();
    let (found, result) = decide(&config, &[("cookie", &separators)]);
    assert!(found.is_empty());
    assert_eq!(result.unwrap(), Vec::<String>::new());
}

#[test]
fn a_hundred_authorization_values() {
    // Envoy's HTTP/1 codec joins a repeated `Authorization` into one value (`a,b`; other
    // proxies fold with `, `), which is not a token; for other headers a Wasm filter sees the
    // first value (tests/e2e/tests/e2e/faults.rs `repeated_token_headers` pins both in Envoy).
    let config = config();
    let good = mint_ed(&claims());
    let forged = mint_raw(
        br#"{"alg":"EdDSA","kid":"ed"}"#,
        claims().to_string().as_bytes(),
        ed_sign(&attacker_ed_key()),
    );
    let mut values: Vec<String> = vec![format!("Bearer {good}")];
    values.extend((0..99).map(|_| format!("Bearer {forged}")));
    let folded = values.join(",");
    let (found, result) = decide(&config, &[("authorization", folded.as_bytes())]);
    assert_eq!(found.len(), 1);
    assert_eq!(
        result.unwrap_err().reason(),
        "too_large",
        "100 folded values exceed 16 KiB"
    );
    let (found, result) = decide(
        &config,
        &[("authorization", values[..3].join(",").as_bytes())],
    );
    assert_eq!(found.len(), 1);
    assert_eq!(result.unwrap_err().reason(), "malformed");
    // The first value alone decides.
    let (_, result) = decide(&config, &[("authorization", values[0].as_bytes())]);
    assert_eq!(result.unwrap(), [ISS]);
    let (_, result) = decide(&config, &[("authorization", values[1].as_bytes())]);
    assert_eq!(result.unwrap_err().reason(), "bad_signature");
}

#[test]
fn tokens_in_header_and_cookie_with_different_issuers() {
    let config = config();
    let t1 = mint_ed(&claims());
    let mut c2 = claims();
    c2["iss"] = json!(ISS2);
    c2["sub"] = json!("bob");
    let t2 = mint_ed(&c2);
    let cookie = format!("session={t2}");
    // Both verify: both rules, the header's token (found first) is the principal.
    let (found, result) = decide(
        &config,
        &[
            ("authorization", &bearer(&t1)),
            ("cookie", cookie.as_bytes()),
        ],
    );
    assert_eq!(
        found.iter().map(|f| f.source).collect::<Vec<_>>(),
        [Source::Header(0), Source::Cookie(0)]
    );
    assert_eq!(result.unwrap(), [ISS, ISS2]);
    // One of them forged: the request fails, whichever place it is in.
    let mut forged_claims = c2.clone();
    forged_claims["sub"] = json!("admin");
    let forged = mint_raw(
        br#"{"alg":"EdDSA","kid":"ed"}"#,
        forged_claims.to_string().as_bytes(),
        ed_sign(&attacker_ed_key()),
    );
    let (_, result) = decide(
        &config,
        &[
            ("authorization", &bearer(&t1)),
            ("cookie", format!("session={forged}").as_bytes()),
        ],
    );
    assert_eq!(result.unwrap_err().reason(), "bad_signature");
    let (_, result) = decide(
        &config,
        &[
            ("authorization", &bearer(&forged)),
            ("cookie", format!("session={t1}").as_bytes()),
        ],
    );
    assert_eq!(result.unwrap_err().reason(), "bad_signature");
    // An issuer no rule knows, next to a good token: 401 (unknownIssuer: reject).
    let mut c3 = claims();
    c3["iss"] = json!("https://unknown.example");
    let t3 = mint_ed(&c3);
    let (_, result) = decide(
        &config,
        &[
            ("authorization", &bearer(&t1)),
            ("cookie", format!("session={t3}").as_bytes()),
        ],
    );
    assert_eq!(result.unwrap_err(), Denial::UnknownIssuer);
}

#[test]
fn invalid_utf8() {
    let config = config();
    // In the JSON of a signed payload or header: malformed.
    let token = mint_raw(
        br#"{"alg":"EdDSA","kid":"ed"}"#,
        b"{\"iss\":\"https://idp.example\",\"sub\":\"\xff\xfe\",\"exp\":1700003600}",
        ed_sign(&ed_key()),
    );
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::Json(Segment::Payload))
    );
    let token = mint_raw(
        b"{\"alg\":\"EdDSA\",\"kid\":\"\xc0\xaf\"}",
        claims().to_string().as_bytes(),
        ed_sign(&ed_key()),
    );
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::Json(Segment::Header))
    );
    // Lone surrogates escaped in JSON are not valid UTF-8 text either.
    let token = mint_raw(
        br#"{"alg":"EdDSA","kid":"ed"}"#,
        br#"{"iss":"https://idp.example","sub":"\ud800","exp":1700003600}"#,
        ed_sign(&ed_key()),
    );
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::Json(Segment::Payload))
    );
    // In a header, cookie or parameter value: a token that cannot parse, so 401 malformed (as
    // Envoy's jwt_authn answers), never "no token" (which would pass as anonymous).
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(mint_ed(&claims()).as_bytes());
    value.push(0xff);
    let (found, result) = decide(&config, &[("authorization", &value)]);
    assert_eq!(found.len(), 1);
    assert_eq!(result.unwrap_err().reason(), "malformed");
    let (found, result) = decide(&config, &[("cookie", b"session=\xff\xfe; other=1")]);
    assert_eq!(found.len(), 1);
    assert_eq!(result.unwrap_err().reason(), "malformed");
    // Invalid UTF-8 configuration: one clear error.
    let err = CompiledConfig::from_json(b"{\"jwtRules\":[{\"issuer\":\"\xff\"}]}").unwrap_err();
    assert_eq!(err.to_string(), "configuration is not UTF-8");
    // Invalid UTF-8 JWKS.
    assert_eq!(
        Jwks::parse(b"{\"keys\":[{\"kty\":\"\xff\"}]}").unwrap_err(),
        JwksError::Json
    );
}

#[test]
fn json_with_a_bom() {
    const BOM: &[u8] = b"\xef\xbb\xbf";
    let mut payload = BOM.to_vec();
    payload.extend_from_slice(claims().to_string().as_bytes());
    let token = mint_raw(
        br#"{"alg":"EdDSA","kid":"ed"}"#,
        &payload,
        ed_sign(&ed_key()),
    );
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::Json(Segment::Payload))
    );
    let mut header = BOM.to_vec();
    header.extend_from_slice(br#"{"alg":"EdDSA","kid":"ed"}"#);
    let token = mint_raw(&header, claims().to_string().as_bytes(), ed_sign(&ed_key()));
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::Json(Segment::Header))
    );
    let mut doc = BOM.to_vec();
    doc.extend_from_slice(jwks_doc().to_string().as_bytes());
    assert_eq!(Jwks::parse(&doc).unwrap_err(), JwksError::Json);
    let mut cfg = BOM.to_vec();
    cfg.extend_from_slice(br#"{"jwtRules":[]}"#);
    let err = CompiledConfig::from_json(&cfg).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid configuration JSON"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// JWKS

#[test]
fn jwks_with_ten_thousand_keys_is_refused_and_usable_keys_are_capped() {
    let key = ed_jwk("k", &ed_key());
    let doc = json!({"keys": vec![key.clone(); 10_000]});
    let start = Instant::now();
    assert_eq!(
        Jwks::parse(doc.to_string().as_bytes()).unwrap_err(),
        JwksError::TooManyEntries
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // 1000 entries (the most accepted): 100 usable, the rest skipped with a reason.
    let doc = json!({"keys": vec![key; 1000]});
    let parsed = Jwks::parse(doc.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.len(), meshguard::jose::MAX_USABLE_KEYS);
    assert_eq!(parsed.skipped().len(), 900);
    assert!(
        parsed
            .skipped()
            .iter()
            .all(|s| s.reason == SkipReason::TooManyKeys)
    );
}

/// A modulus of `bits` bits: odd, top bit set (not a real key; the size check comes first).
fn modulus(bits: usize) -> Vec<u8> {
    let mut n = vec![0xa5u8; bits / 8];
    n[0] = 0xc3;
    *n.last_mut().unwrap() |= 1;
    n
}

fn skip_reasons(keys: Value) -> Result<Vec<SkipReason>, JwksError> {
    // An extra good key so the document parses and only the entry under test is skipped.
    let mut list = keys.as_array().unwrap().clone();
    list.push(ed_jwk("good", &ed_key()));
    let parsed = Jwks::parse(json!({ "keys": list }).to_string().as_bytes())?;
    assert_eq!(parsed.len(), 1, "only the good key is usable");
    Ok(parsed.skipped().iter().map(|s| s.reason).collect())
}

#[test]
fn rsa_16384_bit_and_tiny_or_exotic_exponents_are_rejected() {
    let real_n = rsa_key().to_public_key().n().to_bytes_be();
    let cases: Vec<(Value, SkipReason)> = vec![
        (
            json!({"kty": "RSA", "n": b64(&modulus(16_384)), "e": "AQAB"}),
            SkipReason::RsaModulusSize,
        ),
        (
            json!({"kty": "RSA", "n": b64(&modulus(8_200)), "e": "AQAB"}),
            SkipReason::RsaModulusSize,
        ),
        (
            json!({"kty": "RSA", "n": b64(&modulus(1_024)), "e": "AQAB"}),
            SkipReason::RsaModulusSize,
        ),
        (
            json!({"kty": "RSA", "n": b64(&real_n), "e": "AQ"}),
            SkipReason::RsaExponent,
        ),
        (
            json!({"kty": "RSA", "n": b64(&real_n), "e": "Ag"}),
            SkipReason::RsaExponent,
        ),
        (
            json!({"kty": "RSA", "n": b64(&real_n), "e": "AA"}),
            SkipReason::RsaExponent,
        ),
    ];
    for (jwk, want) in cases {
        assert_eq!(skip_reasons(json!([jwk])).unwrap(), [want], "{jwk}");
    }
    // A 16 384-bit key alone: the JWKS has no usable key (previous keys stay in use).
    let doc = json!({"keys": [{"kty": "RSA", "n": b64(&modulus(16_384)), "e": "AQAB"}]});
    assert_eq!(
        Jwks::parse(doc.to_string().as_bytes()).unwrap_err(),
        JwksError::NoUsableKey { skipped: 1 }
    );
    // e = 1 would make every signature equal its own message: a token "signed" that way with
    // the real modulus must not verify even if such a key were listed.
    let doc = json!({"keys": [{"kty": "RSA", "kid": "e1", "n": b64(&real_n), "e": "AQ"}]});
    assert!(Jwks::parse(doc.to_string().as_bytes()).is_err());
}

#[test]
fn ec_points_off_the_curve_or_at_infinity_are_rejected() {
    let good = p256_jwk("ec", &p256_key());
    let x = good["x"].as_str().unwrap();
    let y = good["y"].as_str().unwrap();
    let mut y_bad = B64.decode(y).unwrap();
    y_bad[31] ^= 1;
    let zero = b64(&[0u8; 32]);
    let ones = b64(&[0xffu8; 32]);
    let cases = [
        json!({"kty": "EC", "crv": "P-256", "x": x, "y": b64(&y_bad)}),
        json!({"kty": "EC", "crv": "P-256", "x": zero, "y": zero}),
        json!({"kty": "EC", "crv": "P-256", "x": ones, "y": ones}),
        // The P-256 point on P-384: wrong size.
        json!({"kty": "EC", "crv": "P-384", "x": x, "y": y}),
        // Truncated / compressed-style coordinates.
        json!({"kty": "EC", "crv": "P-256", "x": b64(&B64.decode(x).unwrap()[1..]), "y": y}),
        json!({"kty": "EC", "crv": "P-256", "x": x, "y": ""}),
    ];
    for jwk in cases {
        assert_eq!(
            skip_reasons(json!([jwk])).unwrap(),
            [SkipReason::EcPoint],
            "{jwk}"
        );
    }
    // No y at all is a bad member.
    assert_eq!(
        skip_reasons(json!([{"kty": "EC", "crv": "P-256", "x": x}])).unwrap(),
        [SkipReason::BadMember("y")]
    );
    // An invalid-curve attack token (ES256 by a key "on" a different curve) never verifies: the
    // only listed P-256 key is rejected, so there is no key for the kid.
    let doc = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec", "x": x, "y": b64(&y_bad)},
        ed_jwk("ed", &ed_key())
    ]});
    let keys = Jwks::parse(doc.to_string().as_bytes()).unwrap();
    let header = json!({"alg": "ES256", "kid": "ec"});
    let token = mint_raw(
        header.to_string().as_bytes(),
        claims().to_string().as_bytes(),
        |m| {
            let sig: p256::ecdsa::Signature = p256_key().sign(m);
            sig.to_bytes().to_vec()
        },
    );
    let token = parse(&token).unwrap();
    assert_eq!(
        verify(&token, &keys, &Validation::new(ISS), NOW).unwrap_err(),
        JoseError::NoMatchingKey
    );
}

#[test]
fn ed25519_small_order_keys_are_rejected() {
    // The eight small-order points of edwards25519 (canonical encodings), and non-canonical
    // encodings of some of them (x = 0 with the sign bit set, y >= p).
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let canonical = [
        "0100000000000000000000000000000000000000000000000000000000000000", // identity
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
        "0000000000000000000000000000000000000000000000000000000000000000", // order 4
        "0000000000000000000000000000000000000000000000000000000000000080", // order 4
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", // order 8
    ];
    let non_canonical = [
        "0100000000000000000000000000000000000000000000000000000000000080", // -0 identity
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // -0, order 2
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p + 1
    ];
    for point in canonical.iter().chain(&non_canonical) {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&hex(point))});
        let reasons = skip_reasons(json!([jwk])).unwrap();
        assert!(
            reasons == [SkipReason::Ed25519Weak] || reasons == [SkipReason::Ed25519Point],
            "{point}: {reasons:?}"
        );
    }
    for point in canonical {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&hex(point))});
        // "80" points of order 4 with x = 0 and the sign bit set are not canonical.
        if point.ends_with("0080") {
            continue;
        }
        assert_eq!(
            skip_reasons(json!([jwk])).unwrap(),
            [SkipReason::Ed25519Weak],
            "{point}"
        );
    }
    // The classic forgery for the identity key (R = identity, S = 0) cannot be used: the key
    // is never loaded, so a token naming it has no key.
    let identity = hex(canonical[0]);
    let doc = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "weak", "x": b64(&identity)},
        ed_jwk("ed", &ed_key())
    ]});
    let keys = Jwks::parse(doc.to_string().as_bytes()).unwrap();
    let mut sig = identity.clone();
    sig.extend_from_slice(&[0u8; 32]);
    let token = mint_raw(
        br#"{"alg":"EdDSA","kid":"weak"}"#,
        claims().to_string().as_bytes(),
        |_| sig.clone(),
    );
    let token = parse(&token).unwrap();
    assert_eq!(
        verify(&token, &keys, &Validation::new(ISS), NOW).unwrap_err(),
        JoseError::NoMatchingKey
    );
    // The same forged signature without a kid, against the good key: bad signature.
    let token = mint_raw(
        br#"{"alg":"EdDSA"}"#,
        claims().to_string().as_bytes(),
        |_| sig.clone(),
    );
    assert_eq!(check(&token).unwrap_err(), JoseError::BadSignature);
}
