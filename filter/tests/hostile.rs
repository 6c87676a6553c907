//! The hostile-input catalogue: each hostile input once, with the precise outcome.
//!
//! Native tests against the public API: `jose` (parse/verify, JWKS), `config`, `extract`, and the
//! host-free request decision `engine::auth::authenticate` (the function the proxy-wasm glue calls)
//! with inline keys, so "401 with reason X" is asserted on the real decision path without Envoy.
//!
//! [`catalogue`] is the data: every hostile token with what the verifier must answer. Two tests
//! iterate it (the verifier's exact error; the request decision's 401 and its reason); the other
//! tests cover what is not a token (JWKS documents, configurations, request shapes) or needs more
//! than one answer per input. Tokens are minted with `meshguard-test-support`'s fixed keys
//! (Istio's public test RSA key, the RFC 7515 A.3 P-256 key, a fixed P-384 scalar, the RFC 8037
//! Ed25519 key) and with "attacker" keys that no JWKS lists.

// Helpers outside `#[test]` functions are not "in tests" for clippy.toml's allow-*-in-tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use meshguard::binding::{self, BindingError, Bindings, Presentation, Required};
use meshguard::cache::TokenCache;
use meshguard::config::{CompiledConfig, KeySource};
use meshguard::engine::auth::{KeyAccess, Outcome, Progress, authenticate};
use meshguard::extract::{self, Found, Source};
use meshguard::jose::{
    Algorithm, AlgorithmSet, DEFAULT_MAX_TOKEN_BYTES, DpopProof, JoseError, Jwks, JwksError,
    Malformed, ProofError, Segment, SkipReason, TokenLimits, UnverifiedToken, Validation, verify,
};
use meshguard::jwks::{KidMiss, Lookup};
use meshguard::output::Denial;
use meshguard_test_support::{self as support, Key, b64, b64_decode, compact, mint_with};
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

const NOW: u64 = support::NOW;
const ISS: &str = "https://idp.example";
const ISS2: &str = "https://other-idp.example";

// ---------------------------------------------------------------------------------------------
// keys and minting

fn rsa_jwk(kid: &str) -> Value {
    Key::rsa().jwk(kid)
}

fn ed_key() -> Key {
    Key::ed25519()
}

/// A key that no JWKS lists.
fn attacker_ed_key() -> Key {
    Key::from(support::ed25519_key_from(0x42))
}

fn attacker_p256_key() -> Key {
    Key::from(support::p256_key_from(0x23))
}

/// The legitimate JWKS: kids "rsa", "p256", "p384", "ed".
fn jwks_doc() -> Value {
    support::jwks()
}

fn jwks() -> Jwks {
    Jwks::parse(jwks_doc().to_string().as_bytes()).unwrap()
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "alice", "aud": "api", "iat": NOW - 10, "exp": NOW + 3600})
}

fn ed_sign(key: &Key) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
    |m| key.sign("EdDSA", m)
}

/// An EdDSA token by the legitimate key, kid "ed".
fn mint_ed(payload: &Value) -> String {
    compact(
        br#"{"alg":"EdDSA","kid":"ed"}"#,
        payload.to_string().as_bytes(),
        ed_sign(&ed_key()),
    )
}

/// A properly signed token of `alg` by its fixed key, with that key's kid.
fn token(alg: Algorithm, claims: &Value) -> String {
    support::token(alg.as_str(), claims)
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
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
// the catalogue

/// One hostile token and what the verifier must answer: `parse`, then `verify` against the
/// legitimate keys ([`jwks`]) with the defaults for [`ISS`] at [`NOW`].
struct Case {
    name: String,
    token: String,
    want: Result<(), JoseError>,
}

fn case(name: impl Into<String>, token: impl Into<String>, want: Result<(), JoseError>) -> Case {
    Case {
        name: name.into(),
        token: token.into(),
        want,
    }
}

/// Every hostile token, once.
fn catalogue() -> Vec<Case> {
    [
        alg_cases(),
        header_cases(),
        kid_cases(),
        key_header_cases(),
        encoding_cases(),
        json_cases(),
        signature_cases(),
        claim_cases(),
        cnf_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The catalogue's case called `name`.
fn catalogued(name: &str) -> Case {
    catalogue()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name:?}"))
}

type Signer<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;

/// `alg`: unsigned tokens in every spelling, HMAC keyed with the RSA public key in every
/// encoding (the algorithm-confusion attack), an algorithm we do not implement.
fn alg_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let payload = claims().to_string();
    let ed = ed_key();
    for alg in ["none", "None", "nOnE", "NONE"] {
        let header = json!({"alg": alg}).to_string();
        let with_kid = json!({"alg": alg, "kid": "ed"}).to_string();
        // Empty signature (RFC 7519 §6.1 unsecured JWS), garbage, a real EdDSA signature.
        let signers: [(&str, &String, Signer); 3] = [
            ("no signature", &header, &|_| Vec::new()),
            ("a garbage signature", &header, &|_| b"sig".to_vec()),
            ("a real EdDSA signature", &with_kid, &ed_sign(&ed)),
        ];
        for (what, header, sign) in signers {
            let token = compact(header.as_bytes(), payload.as_bytes(), sign);
            cases.push(case(
                format!("alg {alg}, {what}"),
                token,
                Err(JoseError::AlgNone),
            ));
        }
    }
    let public = support::istio_rsa_key().to_public_key();
    let n_text = rsa_jwk("rsa")["n"].as_str().unwrap().to_owned();
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
        ("n base64url", n_text.into_bytes()),
    ];
    for alg in ["HS256", "HS384", "HS512"] {
        for (what, secret) in &secrets {
            let header = json!({"alg": alg, "kid": "rsa", "typ": "JWT"});
            let token = mint_with(&header, &claims(), |m| support::hmac(alg, secret, m));
            cases.push(case(
                format!("{alg} keyed with the RSA public key's {what}"),
                token,
                Err(JoseError::AlgHmac),
            ));
        }
    }
    // ES512 over a P-256 signature (64 bytes, not P-521's 132): only the P-521 key fits, and fails.
    let es512 = mint_with(&json!({"alg": "ES512"}), &claims(), |m| {
        Key::p256().sign("ES256", m)
    });
    cases.push(case(
        "alg ES512 with an ES256 signature",
        es512,
        Err(JoseError::BadSignature),
    ));
    // Ed448 is not implemented (EdDSA here is Ed25519 only).
    let ed448 = mint_with(&json!({"alg": "Ed448"}), &claims(), |_| vec![7; 114]);
    cases.push(case("alg Ed448", ed448, Err(JoseError::AlgUnsupported)));
    cases
}

/// The other header members: of the wrong type, `crit`.
fn header_cases() -> Vec<Case> {
    [
        (
            "no alg",
            json!({"kid": "p256"}),
            JoseError::Malformed(Malformed::Alg),
        ),
        (
            "alg a number",
            json!({"alg": 256}),
            JoseError::Malformed(Malformed::Alg),
        ),
        (
            "kid a number",
            json!({"alg": "ES256", "kid": 7}),
            JoseError::Malformed(Malformed::Kid),
        ),
        (
            "kid a list",
            json!({"alg": "ES256", "kid": ["p256"]}),
            JoseError::Malformed(Malformed::Kid),
        ),
        (
            "typ a list",
            json!({"alg": "ES256", "typ": ["JWT"]}),
            JoseError::Malformed(Malformed::Typ),
        ),
        (
            "crit exp",
            json!({"alg": "ES256", "crit": ["exp"], "exp": 1}),
            JoseError::CritUnsupported,
        ),
        (
            "crit empty",
            json!({"alg": "ES256", "crit": []}),
            JoseError::CritUnsupported,
        ),
        (
            "crit b64 false",
            json!({"alg": "ES256", "b64": false, "crit": ["b64"]}),
            JoseError::CritUnsupported,
        ),
    ]
    .into_iter()
    .map(|(name, header, want)| {
        let token = mint_with(&header, &claims(), |m| Key::p256().sign("ES256", m));
        case(name, token, Err(want))
    })
    .collect()
}

/// Kids that try path traversal, injection or C-string truncation, and one of 10 KB: looked up
/// as they are (the 10 KB kid still fits the default 16 KiB limit), found nowhere.
fn kid_cases() -> Vec<Case> {
    let payload = claims().to_string();
    let long = "k".repeat(10 * 1024);
    [
        "../../../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "/dev/random",
        "ed\" OR \"1\"=\"1",
        "ed'; DROP TABLE keys; --",
        "ed\u{0}",
        "\u{0}",
        "e\u{0}d",
        long.as_str(),
    ]
    .into_iter()
    .map(|kid| {
        let header = json!({"alg": "EdDSA", "kid": kid});
        let token = compact(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&ed_key()),
        );
        let shown: String = kid.chars().take(20).collect();
        case(format!("kid {shown:?}"), token, Err(JoseError::UnknownKid))
    })
    .collect()
}

/// Key-carrying header parameters: an attacker's key embedded as `jwk` (the signature matches
/// it), `jku`/`x5u`/`x5c` pointing anywhere. verify() is a pure function (no I/O: the crate has
/// no HTTP client outside the host's dispatch to the configured jwksCluster), so "never
/// followed" means: the outcome ignores them, also on a token the configured key signed.
fn key_header_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let attacker = attacker_ed_key();
    let jwk = attacker.jwk("ed");
    let payload = claims().to_string();
    // Attacker key embedded as `jwk`; kid absent, kid of a real key, kid of nothing known.
    for (name, header, want) in [
        (
            "jwk header, no kid",
            json!({"alg": "EdDSA", "jwk": jwk}),
            JoseError::BadSignature,
        ),
        (
            "jwk header, a listed kid",
            json!({"alg": "EdDSA", "kid": "ed", "jwk": jwk}),
            JoseError::BadSignature,
        ),
        (
            "jwk header, an unknown kid",
            json!({"alg": "EdDSA", "kid": "attacker", "jwk": jwk}),
            JoseError::UnknownKid,
        ),
    ] {
        let token = compact(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&attacker),
        );
        cases.push(case(name, token, Err(want)));
    }
    // Same with an EC attacker key.
    let ec = attacker_p256_key();
    let header = json!({"alg": "ES256", "jwk": ec.jwk("x")});
    let token = compact(header.to_string().as_bytes(), payload.as_bytes(), |m| {
        ec.sign("ES256", m)
    });
    cases.push(case(
        "jwk header, an EC attacker key",
        token,
        Err(JoseError::BadSignature),
    ));
    // A self-signed "certificate" chain and URLs an attacker controls.
    let x5c = vec![
        base64::engine::general_purpose::STANDARD
            .encode(support::ed25519_key_from(0x42).verifying_key().as_bytes()),
    ];
    for (name, extra) in [
        ("jku", json!({"jku": "https://attacker.example/jwks.json"})),
        ("x5u", json!({"x5u": "https://attacker.example/cert.pem"})),
        ("x5c", json!({"x5c": x5c})),
        (
            "jku, x5u and x5c",
            json!({"jku": "file:///etc/passwd", "x5u": "http://169.254.169.254/", "x5c": ["AAAA"]}),
        ),
    ] {
        let mut header = json!({"alg": "EdDSA"});
        for (k, v) in extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        let forged = compact(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&attacker),
        );
        cases.push(case(
            format!("{name} header, an attacker's signature"),
            forged,
            Err(JoseError::BadSignature),
        ));
        // The same header on a token signed by the configured key is simply ignored.
        let genuine = compact(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&ed_key()),
        );
        cases.push(case(
            format!("{name} header, the configured key's signature"),
            genuine,
            Ok(()),
        ));
    }
    cases
}

/// The compact serialization: part count, whitespace, non-canonical base64url, size.
fn encoding_cases() -> Vec<Case> {
    let base = token(Algorithm::Es256, &claims());
    let p = segments(&base);
    let parts = || Err(JoseError::Malformed(Malformed::PartCount));
    let base64 = |segment| Err(JoseError::Malformed(Malformed::Base64(segment)));
    let mut cases = vec![
        case("a fourth part", format!("{base}.e30"), parts()),
        case("an empty fourth part", format!("{base}."), parts()),
        case("two parts", base.rsplit_once('.').unwrap().0, parts()),
        case("empty", "", parts()),
        case("not a JWT", "TokenInvalid", parts()),
        case(
            "a trailing space",
            format!("{base} "),
            base64(Segment::Signature),
        ),
        case(
            "a trailing newline",
            format!("{base}\n"),
            base64(Segment::Signature),
        ),
        case(
            "a trailing CRLF",
            format!("{base}\r\n"),
            base64(Segment::Signature),
        ),
        case(
            "a leading space",
            format!(" {base}"),
            base64(Segment::Header),
        ),
        case(
            "a space after the payload",
            format!("{}.{} .{}", p[0], p[1], p[2]),
            base64(Segment::Payload),
        ),
    ];
    // 64 signature bytes: 86 characters, the last carrying 2 unused (must-be-zero) bits.
    let mut chars: Vec<char> = p[2].chars().collect();
    let last = chars.pop().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = alphabet.find(last).unwrap();
    let sibling = alphabet.chars().nth(value | 0b0001).unwrap();
    assert_ne!(sibling, last);
    let non_canonical: String = chars.iter().chain(Some(&sibling)).collect();
    cases.push(case(
        "signature with non-zero unused bits",
        format!("{}.{}.{non_canonical}", p[0], p[1]),
        base64(Segment::Signature),
    ));
    cases.push(case(
        "signature with padding",
        format!("{base}=="),
        base64(Segment::Signature),
    ));
    let std_alphabet = p[2].replace('-', "+").replace('_', "/");
    if std_alphabet != p[2] {
        cases.push(case(
            "signature in the standard alphabet",
            format!("{}.{}.{std_alphabet}", p[0], p[1]),
            base64(Segment::Signature),
        ));
    }
    let header = format!("{}=", b64(br#"{"alg":"ES256"}"#));
    cases.push(case(
        "header with padding",
        format!("{header}.{}.{}", p[1], p[2]),
        base64(Segment::Header),
    ));
    let mut big = claims();
    big["pad"] = json!("x".repeat(20_000));
    cases.push(case(
        "20 KB of claims",
        token(Algorithm::Es256, &big),
        Err(JoseError::TooLarge),
    ));
    cases
}

/// The JSON of header and payload: duplicate members (also once escaped: JSON compares decoded
/// names), nesting beyond 32 levels, not an object, not JSON, invalid UTF-8, a BOM.
fn json_cases() -> Vec<Case> {
    let ed = |header: &[u8], payload: &[u8]| compact(header, payload, ed_sign(&ed_key()));
    let p = segments(&token(Algorithm::Es256, &claims()));
    let claims_json = claims().to_string();
    let malformed = |m: Malformed| Err(JoseError::Malformed(m));
    let mut cases = Vec::new();
    for (name, header) in [
        (
            "header: alg twice",
            br#"{"alg":"ES256","kid":"p256","alg":"none"}"#.as_slice(),
        ),
        (
            "header: kid twice",
            br#"{"alg":"ES256","kid":"p256","kid":"other"}"#.as_slice(),
        ),
    ] {
        cases.push(case(
            name,
            format!("{}.{}.{}", b64(header), p[1], p[2]),
            malformed(Malformed::DuplicateMember(Segment::Header)),
        ));
    }
    for (name, payload) in [
        (
            "sub",
            r#"{"iss":"https://idp.example","exp":1700003600,"sub":"alice","sub":"admin"}"#,
        ),
        (
            "sub, once escaped",
            r#"{"iss":"https://idp.example","exp":1700003600,"sub":"alice","s\u0075b":"admin"}"#,
        ),
        (
            "iss",
            r#"{"iss":"https://idp.example","exp":1700003600,"iss":"https://idp.example"}"#,
        ),
        (
            "exp",
            r#"{"iss":"https://idp.example","exp":1700003600,"exp":9999999999}"#,
        ),
        (
            "a nested member",
            r#"{"iss":"https://idp.example","exp":1700003600,"n":{"a":1,"a":2}}"#,
        ),
        (
            "a member in a list",
            r#"{"iss":"https://idp.example","exp":1700003600,"l":[{"x":1,"x":1}]}"#,
        ),
    ] {
        cases.push(case(
            format!("payload: {name} twice"),
            ed(br#"{"alg":"EdDSA","kid":"ed"}"#, payload.as_bytes()),
            malformed(Malformed::DuplicateMember(Segment::Payload)),
        ));
    }
    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!({ "d": deep });
    }
    let mut c = claims();
    c["deep"] = deep;
    cases.push(case(
        "payload: 41 levels deep",
        token(Algorithm::Es256, &c),
        malformed(Malformed::TooDeep(Segment::Payload)),
    ));
    let header = format!(
        r#"{{"alg":"ES256","x":{}{}}}"#,
        "[".repeat(35),
        "]".repeat(35)
    );
    cases.push(case(
        "header: 36 levels deep",
        format!("{}.{}.{}", b64(header.as_bytes()), p[1], p[2]),
        malformed(Malformed::TooDeep(Segment::Header)),
    ));
    for (name, payload, m) in [
        (
            "payload: a list",
            b"[1,2]".as_slice(),
            Malformed::NotObject(Segment::Payload),
        ),
        (
            "payload: a string",
            b"\"claims\"".as_slice(),
            Malformed::NotObject(Segment::Payload),
        ),
        (
            "payload: unterminated JSON",
            b"{\"a\":1".as_slice(),
            Malformed::Json(Segment::Payload),
        ),
        (
            "payload: invalid UTF-8 (a bad continuation byte)",
            b"{\"a\":\"\xc3\x28\"}".as_slice(),
            Malformed::Json(Segment::Payload),
        ),
    ] {
        cases.push(case(
            name,
            format!("{}.{}.{}", p[0], b64(payload), p[2]),
            malformed(m),
        ));
    }
    cases.push(case(
        "header: null",
        format!("{}.{}.{}", b64(b"null"), p[1], p[2]),
        malformed(Malformed::NotObject(Segment::Header)),
    ));
    // Invalid UTF-8 in the JSON of a signed payload or header, lone surrogates escaped in JSON
    // (not valid UTF-8 text either), a byte-order mark before the JSON.
    cases.push(case(
        "payload: invalid UTF-8 (0xff 0xfe)",
        ed(
            br#"{"alg":"EdDSA","kid":"ed"}"#,
            b"{\"iss\":\"https://idp.example\",\"sub\":\"\xff\xfe\",\"exp\":1700003600}",
        ),
        malformed(Malformed::Json(Segment::Payload)),
    ));
    cases.push(case(
        "header: invalid UTF-8 (an overlong '/')",
        ed(
            b"{\"alg\":\"EdDSA\",\"kid\":\"\xc0\xaf\"}",
            claims_json.as_bytes(),
        ),
        malformed(Malformed::Json(Segment::Header)),
    ));
    cases.push(case(
        "payload: a lone surrogate",
        ed(
            br#"{"alg":"EdDSA","kid":"ed"}"#,
            br#"{"iss":"https://idp.example","sub":"\ud800","exp":1700003600}"#,
        ),
        malformed(Malformed::Json(Segment::Payload)),
    ));
    const BOM: &[u8] = b"\xef\xbb\xbf";
    let mut payload = BOM.to_vec();
    payload.extend_from_slice(claims_json.as_bytes());
    cases.push(case(
        "payload: a BOM",
        ed(br#"{"alg":"EdDSA","kid":"ed"}"#, &payload),
        malformed(Malformed::Json(Segment::Payload)),
    ));
    let mut header = BOM.to_vec();
    header.extend_from_slice(br#"{"alg":"EdDSA","kid":"ed"}"#);
    cases.push(case(
        "header: a BOM",
        ed(&header, claims_json.as_bytes()),
        malformed(Malformed::Json(Segment::Header)),
    ));
    cases
}

/// Signatures: every algorithm's token with its header, payload or signature tampered with;
/// ECDSA signatures in DER instead of JOSE's r‖s.
fn signature_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let bad = || Err(JoseError::BadSignature);
    for alg in Algorithm::ALL {
        let parts = segments(&token(alg, &claims()));
        // Header: same alg and kid, one more member.
        let header = json!({"alg": alg.as_str(), "kid": support::kid_for(alg.as_str()), "typ": "JWT", "x": 1});
        cases.push(case(
            format!("{alg}: a header member added"),
            format!("{}.{}.{}", b64(header.to_string()), parts[1], parts[2]),
            bad(),
        ));
        // Payload: sub changed.
        let mut forged = claims();
        forged["sub"] = json!("admin");
        cases.push(case(
            format!("{alg}: sub changed"),
            format!("{}.{}.{}", parts[0], b64(forged.to_string()), parts[2]),
            bad(),
        ));
        // Signature: one bit flipped; truncated, extended, empty.
        let sig = b64_decode(&parts[2]);
        let mut flipped = sig.clone();
        flipped[5] ^= 0x01;
        let mut long = sig.clone();
        long.push(0);
        for (what, sig) in [
            ("a signature bit flipped", flipped),
            ("the signature truncated", sig[..sig.len() - 1].to_vec()),
            ("the signature extended", long),
        ] {
            cases.push(case(
                format!("{alg}: {what}"),
                format!("{}.{}.{}", parts[0], parts[1], b64(sig)),
                bad(),
            ));
        }
        cases.push(case(
            format!("{alg}: no signature"),
            format!("{}.{}.", parts[0], parts[1]),
            bad(),
        ));
    }
    let header = json!({"alg": "ES256", "kid": "p256"});
    let token = mint_with(&header, &claims(), |m| {
        use support::p256::ecdsa::signature::Signer as _;
        let sig: support::p256::ecdsa::Signature = support::p256_key().sign(m);
        sig.to_der().as_bytes().to_vec()
    });
    cases.push(case("ES256: a DER signature", token, bad()));
    let header = json!({"alg": "ES384", "kid": "p384"});
    let token = mint_with(&header, &claims(), |m| {
        use support::p384::ecdsa::signature::Signer as _;
        let sig: support::p384::ecdsa::Signature = support::p384_key().sign(m);
        sig.to_der().as_bytes().to_vec()
    });
    cases.push(case("ES384: a DER signature", token, bad()));
    cases
}

/// Registered claims of the wrong type or out of range.
fn claim_cases() -> Vec<Case> {
    let with = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        mint_ed(&c)
    };
    let mut cases = Vec::new();
    for aud in [
        json!(42),
        json!(1.5),
        json!({"api": true}),
        json!(null),
        json!(true),
        json!(["api", 7]),
    ] {
        cases.push(case(
            format!("aud {aud}"),
            with("aud", aud),
            Err(JoseError::InvalidClaim("aud")),
        ));
    }
    let exps: [(Value, Result<(), JoseError>); 9] = [
        (json!("1700003600"), Err(JoseError::InvalidClaim("exp"))),
        (json!("soon"), Err(JoseError::InvalidClaim("exp"))),
        (json!([1_700_003_600]), Err(JoseError::InvalidClaim("exp"))),
        (json!(-1), Err(JoseError::InvalidClaim("exp"))),
        (json!(-1e300), Err(JoseError::InvalidClaim("exp"))),
        (json!(null), Err(JoseError::InvalidClaim("exp"))),
        // Fractions are NumericDates (RFC 7519 §2).
        (json!(1_700_003_600.5), Ok(())),
        (json!((NOW - 3600) as f64 + 0.5), Err(JoseError::Expired)),
        // Beyond any representable time: refused, never read as "no expiry" (RFC 7519 §2 is
        // seconds since the epoch; nothing past i64 seconds is a time).
        (json!(1e300), Err(JoseError::InvalidClaim("exp"))),
    ];
    for (exp, want) in exps {
        cases.push(case(format!("exp {exp}"), with("exp", exp), want));
    }
    // Missing exp is refused by default.
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    cases.push(case(
        "no exp",
        mint_ed(&c),
        Err(JoseError::MissingExpiration),
    ));
    // u64 overflow in the JSON number itself: refused like any unrepresentable time.
    cases.push(case(
        "exp beyond u64",
        compact(
            br#"{"alg":"EdDSA","kid":"ed"}"#,
            br#"{"iss":"https://idp.example","exp":184467440737095516160000}"#,
            ed_sign(&ed_key()),
        ),
        Err(JoseError::InvalidClaim("exp")),
    ));
    // Just past i64 seconds (an integer serde_json reads as u64).
    cases.push(case(
        "exp past i64 seconds",
        with("exp", json!(9_223_372_036_854_775_808_u64)),
        Err(JoseError::InvalidClaim("exp")),
    ));
    for name in ["nbf", "iat"] {
        cases.push(case(
            format!("{name} 1e300"),
            with(name, json!(1e300)),
            Err(JoseError::InvalidClaim(name)),
        ));
    }
    // `sub` and `jti` are strings (RFC 7519 §4.1.2, §4.1.7); `jwt_authn` refuses others too.
    for name in ["sub", "jti"] {
        for value in [
            json!(42),
            json!(["alice"]),
            json!({"id": "alice"}),
            json!(null),
        ] {
            cases.push(case(
                format!("{name} {value}"),
                with(name, value),
                Err(JoseError::InvalidClaim(name)),
            ));
        }
    }
    cases
}

/// The SHA-256 of the client certificate the `cnf` cases are presented with.
const CNF_CERT: [u8; 32] = [0x11; 32];

/// Hostile `cnf` claims (RFC 8705 §3, RFC 9449 §7.2), each with what the verifier answers and,
/// for a token it accepts, what the binding check answers over a connection whose certificate
/// is [`CNF_CERT`] under a rule that does not require a binding.
#[allow(clippy::type_complexity)]
fn cnf_table() -> Vec<(
    String,
    String,
    Result<(), JoseError>,
    Result<Bindings, BindingError>,
)> {
    let with_cnf = |cnf: Value| {
        let mut c = claims();
        c["cnf"] = cnf;
        mint_ed(&c)
    };
    let thumb = b64(CNF_CERT);
    let mut table = Vec::new();
    let mut row = |name: String, token: String, binding| table.push((name, token, Ok(()), binding));
    for cnf in [
        json!(thumb),
        json!([thumb]),
        json!(null),
        json!(1),
        json!(true),
    ] {
        row(
            format!("cnf {cnf}"),
            with_cnf(cnf),
            Err(BindingError::CnfNotObject),
        );
    }
    let multibyte = format!("{}A", "é".repeat(21));
    assert_eq!(multibyte.len(), 43);
    for x5t in [
        json!(hex(&CNF_CERT)),
        json!(format!("{thumb}=")),
        json!(thumb.replace('_', "/").replace('-', "+") + "+/"),
        json!(&thumb[1..]),
        json!(format!("{thumb}A")),
        json!(""),
        json!("A".repeat(2000)),
        json!(multibyte),
        json!(format!(" {}", &thumb[1..])),
        json!(null),
        json!(7),
        json!([thumb]),
        json!({"x5t#S256": thumb}),
    ] {
        let shown: String = x5t.to_string().chars().take(60).collect();
        row(
            format!("cnf x5t#S256 {shown}"),
            with_cnf(json!({"x5t#S256": x5t})),
            Err(BindingError::BadThumbprint),
        );
    }
    // A DPoP binding (whatever else cnf has) presented as a bearer token; a `jkt` that is no
    // thumbprint is malformed first.
    for cnf in [
        json!({"jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}),
        json!({"jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "x5t#S256": thumb}),
    ] {
        row(
            format!("cnf {cnf}"),
            with_cnf(cnf),
            Err(BindingError::DpopAsBearer),
        );
    }
    for cnf in [
        json!({"jkt": null}),
        json!({"jkt": {}}),
        json!({"jkt": "x", "x5t#S256": thumb}),
        json!({"jkt": format!("{thumb}=")}),
    ] {
        row(
            format!("cnf {cnf}"),
            with_cnf(cnf),
            Err(BindingError::BadJkt),
        );
    }
    // Bound to another certificate, or its member name in another case (not a binding).
    row(
        "cnf bound to another certificate".into(),
        with_cnf(json!({"x5t#S256": b64([0x12; 32])})),
        Err(BindingError::OtherCertificate),
    );
    row(
        "cnf X5T#S256 (another member)".into(),
        with_cnf(json!({"X5T#S256": thumb})),
        Ok(Bindings::NONE),
    );
    // Two thumbprints in one cnf: the strict reader refuses the token before anyone picks one.
    let payload = format!(
        r#"{{"iss":"{ISS}","sub":"alice","aud":"api","exp":{},"cnf":{{"x5t#S256":"{thumb}","x5t#S256":"{}"}}}}"#,
        NOW + 3600,
        b64([0x12; 32])
    );
    table.push((
        "cnf x5t#S256 twice".into(),
        compact(
            br#"{"alg":"EdDSA","kid":"ed"}"#,
            payload.as_bytes(),
            ed_sign(&ed_key()),
        ),
        Err(JoseError::Malformed(Malformed::DuplicateMember(
            Segment::Payload,
        ))),
        Ok(Bindings::NONE),
    ));
    table
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cnf_cases() -> Vec<Case> {
    cnf_table()
        .into_iter()
        .map(|(name, token, want, _)| case(name, token, want))
        .collect()
}

/// The verifier accepts a token whatever its `cnf` (a binding is the request's business): the
/// binding check then answers each hostile `cnf` exactly, without panicking.
#[test]
fn the_binding_check_answers_the_cnf_cases() {
    let digest = hex(&CNF_CERT);
    for (name, token, want, binding_want) in cnf_table() {
        let parsed = parse(&token);
        let verified = parsed.and_then(|t| verify(&t, &jwks(), &Validation::new(ISS), NOW));
        match (verified, want) {
            (Ok(claims), Ok(())) => {
                assert_eq!(
                    binding::check(
                        &claims,
                        Required::default(),
                        Presentation::Bearer,
                        || Some(digest.as_str()),
                        |_| panic!("{name}: a bearer token has no proof to check"),
                    ),
                    binding_want,
                    "{name}"
                );
                if let Err(e) = binding_want {
                    assert!(e.reason().starts_with("cnf_"), "{name}");
                    assert!(!e.to_string().contains(&digest), "{name}");
                }
            }
            (Err(got), Err(want)) => assert_eq!(got, want, "{name}"),
            (got, want) => panic!("{name}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn the_catalogue_is_answered_exactly() {
    let cases = catalogue();
    let mut tokens = HashSet::new();
    let mut names = HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name.as_str()), "case {:?} twice", c.name);
        assert!(
            tokens.insert(c.token.as_str()),
            "{:?}: a token twice",
            c.name
        );
        assert_eq!(check(&c.token), c.want, "{}", c.name);
        if let Err(e) = &c.want {
            // Error texts are static: they never carry the token.
            assert!(
                !e.reason().is_empty() && e.to_string().len() < 200,
                "{}",
                c.name
            );
        }
    }
    assert!(cases.len() > 150, "{} cases", cases.len());
}

/// Every case that can travel in a header (a non-empty value without surrounding whitespace)
/// is answered the same on the request path: 401 with the verifier's reason, never a pass; and
/// the denial never echoes the token or its kid.
#[test]
fn the_request_decision_answers_the_catalogue() {
    let config = config();
    for c in catalogue() {
        if c.token.is_empty() || c.token.trim() != c.token {
            continue;
        }
        let (found, result) = decide(&config, &[("authorization", &bearer(&c.token))]);
        assert_eq!(found.len(), 1, "{}", c.name);
        match (&c.want, result) {
            (Ok(()), Ok(issuers)) => assert_eq!(issuers, [ISS], "{}", c.name),
            (Err(want), Err(denial)) => {
                assert_eq!(
                    (denial.status(), denial.reason()),
                    (401, want.reason()),
                    "{}",
                    c.name
                );
                let text = denial.to_string();
                for part in c.token.split('.').filter(|p| p.len() >= 3) {
                    assert!(!text.contains(part), "{}: token echoed: {text}", c.name);
                }
                let kid = c
                    .token
                    .split('.')
                    .next()
                    .and_then(|h| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(h)
                            .ok()
                    })
                    .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
                    .and_then(|h| h["kid"].as_str().map(str::to_owned));
                if let Some(kid) = kid.filter(|k| k.len() >= 3) {
                    assert!(!text.contains(&kid), "{}: kid echoed: {text}", c.name);
                }
            }
            (want, got) => panic!("{}: want {want:?}, got {got:?}", c.name),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// around the catalogue: limits, texts, the JWKS side of its attacks

#[test]
fn token_size_limits() {
    // The 20 KB token passes a raised limit...
    let big = catalogued("20 KB of claims").token;
    let roomy = TokenLimits {
        max_token_bytes: 64 * 1024,
        ..TokenLimits::default()
    };
    assert!(UnverifiedToken::parse(&big, &roomy).is_ok());
    // ...and a small one fails a limit one byte short of it.
    let small = token(Algorithm::Es256, &claims());
    let tight = TokenLimits {
        max_token_bytes: small.len() - 1,
        ..TokenLimits::default()
    };
    assert_eq!(
        UnverifiedToken::parse(&small, &tight).unwrap_err(),
        JoseError::TooLarge
    );
    assert_eq!(JoseError::TooLarge.reason(), "too_large");
}

#[test]
fn thirty_one_levels_below_the_top_object_fit_the_depth_limit() {
    // 31 levels below the top object fit the default limit of 32.
    let mut ok = json!(1);
    for _ in 0..31 {
        ok = json!({ "d": ok });
    }
    let mut c = claims();
    c["deep"] = ok;
    assert!(check(&token(Algorithm::Es256, &c)).is_ok());
}

#[test]
fn hmac_keys_in_a_jwks_are_skipped() {
    // The same secrets as `oct` keys, or the RSA key labelled HS256, are skipped.
    let Key::Rsa(private) = Key::rsa() else {
        unreachable!()
    };
    let pem = private
        .to_public_key()
        .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap();
    let doc = json!({"keys": [
        {"kty": "oct", "kid": "rsa", "k": b64(pem.as_bytes())},
        {"kty": "RSA", "kid": "rsa-hs", "alg": "HS256", "n": rsa_jwk("x")["n"], "e": "AQAB"},
        ed_key().jwk("ed"),
    ]});
    let parsed = Jwks::parse(doc.to_string().as_bytes()).unwrap();
    let reasons: Vec<SkipReason> = parsed.skipped().iter().map(|s| s.reason).collect();
    assert_eq!(reasons, [SkipReason::Symmetric, SkipReason::RefusedAlg]);
}

#[test]
fn kids_match_byte_for_byte() {
    // A kid with NUL or quotes is matched exactly, byte for byte, when the JWKS really has it.
    let payload = claims().to_string();
    for kid in ["a\u{0}b", "q\"uote", "../x"] {
        let doc = json!({"keys": [ed_key().jwk(kid)]});
        let keys = Jwks::parse(doc.to_string().as_bytes()).unwrap();
        let header = json!({"alg": "EdDSA", "kid": kid});
        let token = compact(
            header.to_string().as_bytes(),
            payload.as_bytes(),
            ed_sign(&ed_key()),
        );
        let token = parse(&token).unwrap();
        assert!(verify(&token, &keys, &Validation::new(ISS), NOW).is_ok());
        let truncated = json!({"alg": "EdDSA", "kid": "a"});
        let other = compact(
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
}

#[test]
fn aud_of_the_wrong_type_or_huge() {
    // The catalogue's audiences of the wrong type are refused by a rule with audiences too.
    let strict = Validation {
        audiences: vec!["api".into()],
        ..Validation::new(ISS)
    };
    let wrong_type: Vec<Case> = catalogue()
        .into_iter()
        .filter(|c| c.name.starts_with("aud "))
        .collect();
    assert_eq!(wrong_type.len(), 6);
    for c in wrong_type {
        assert_eq!(
            check_with(&c.token, &strict).unwrap_err(),
            JoseError::InvalidClaim("aud"),
            "{}",
            c.name
        );
    }
    // 10 000 audiences: over the default 16 KiB token limit...
    let with_aud = |aud: Value| {
        let mut c = claims();
        c["aud"] = aud;
        c
    };
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
fn an_eternal_token_is_refused_when_the_rule_caps_the_lifetime() {
    let capped = Validation {
        max_lifetime_secs: Some(86_400),
        ..Validation::new(ISS)
    };
    // The last representable second: accepted without a cap, refused with one.
    let mut c = claims();
    c["exp"] = json!(i64::MAX);
    let eternal = mint_ed(&c);
    assert_eq!(check(&eternal), Ok(()));
    assert_eq!(
        check_with(&eternal, &capped).unwrap_err(),
        JoseError::LifetimeTooLong
    );
    // Beyond it there is no time: invalid, with or without a cap.
    assert_eq!(
        check_with(&catalogued("exp 1e+300").token, &capped).unwrap_err(),
        JoseError::InvalidClaim("exp")
    );
}

#[test]
fn messages_never_echo_the_token() {
    let secret_sub = "s3cr3t-subject-value";
    let mut c = claims();
    c["sub"] = json!(secret_sub);
    c["exp"] = json!(NOW - 1000);
    let token = token(Algorithm::Es256, &c);
    let err = check(&token).unwrap_err();
    assert_eq!(err, JoseError::Expired);
    assert_eq!(err.to_string(), "Jwt is expired");
    let parsed = parse(&token).unwrap();
    let debug = format!("{parsed:?}");
    assert!(!debug.contains(secret_sub) && !debug.contains(&token[..20]));
    let keys_debug = format!("{:?}", jwks());
    assert!(!keys_debug.contains(rsa_jwk("rsa")["n"].as_str().unwrap()));
}

#[test]
fn display_texts_and_reasons() {
    assert_eq!(
        JoseError::BadSignature.to_string(),
        "Jwt verification fails"
    );
    assert_eq!(JoseError::BadSignature.reason(), "bad_signature");
    assert_eq!(
        JoseError::AudienceNotAllowed.to_string(),
        "Audiences in Jwt are not allowed"
    );
    assert_eq!(
        JoseError::IssuerMismatch.to_string(),
        "Jwt issuer is not configured"
    );
    assert_eq!(
        JoseError::UnknownKid.to_string(),
        "Jwks doesn't have key to match kid or alg from Jwt"
    );
    assert_eq!(
        JoseError::AlgNotAllowed(Algorithm::Rs256).reason(),
        "alg_not_allowed"
    );
    assert_eq!(JoseError::AlgNone.reason(), "alg_none");
    assert_eq!(JoseError::AlgHmac.reason(), "alg_hmac");
    assert_eq!(
        JoseError::Malformed(Malformed::PartCount).reason(),
        "malformed"
    );
    assert_eq!(
        JoseError::Malformed(Malformed::PartCount).to_string(),
        "Jwt is not in the form of Header.Payload.Signature"
    );
}

/// Every one-character substitution and every truncation of a valid token is refused without
/// a panic (a cheap deterministic stand-in for fuzzing the whole path).
#[test]
fn mutations_are_refused_without_panic() {
    let token = token(Algorithm::EdDsa, &claims());
    assert!(check(&token).is_ok());
    let keys = jwks();
    let rule = Validation::new(ISS);
    let bytes = token.as_bytes();
    for i in 0..bytes.len() {
        for replacement in ['A', '_', '.', '=', ' ', '\u{e9}'] {
            if bytes[i] as char == replacement {
                continue;
            }
            let mut mutated = String::with_capacity(token.len() + 1);
            mutated.push_str(&token[..i]);
            mutated.push(replacement);
            mutated.push_str(&token[i + 1..]);
            let outcome = parse(&mutated).and_then(|t| verify(&t, &keys, &rule, NOW));
            assert!(
                outcome.is_err(),
                "substitution at {i} by {replacement:?} verified"
            );
        }
    }
    for len in 0..bytes.len() {
        assert!(
            parse(&token[..len])
                .and_then(|t| verify(&t, &keys, &rule, NOW))
                .is_err()
        );
    }
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
    let forged = compact(
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
    let forged = compact(
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
fn invalid_utf8_outside_a_token() {
    // (Invalid UTF-8 inside a token's JSON is in the catalogue.) In a header, cookie or parameter
    // value: a token that cannot parse, so 401 malformed (as Envoy's jwt_authn answers), never
    // "no token" (which would pass as anonymous).
    let config = config();
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
fn a_jwks_or_a_configuration_with_a_bom() {
    // (A BOM before a token's JSON is in the catalogue.)
    const BOM: &[u8] = b"\xef\xbb\xbf";
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
    let key = ed_key().jwk("k");
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
    list.push(ed_key().jwk("good"));
    let parsed = Jwks::parse(json!({ "keys": list }).to_string().as_bytes())?;
    assert_eq!(parsed.len(), 1, "only the good key is usable");
    Ok(parsed.skipped().iter().map(|s| s.reason).collect())
}

#[test]
fn rsa_16384_bit_and_tiny_or_exotic_exponents_are_rejected() {
    let real_n = support::istio_rsa_key().n().to_bytes_be();
    let cases: Vec<(Value, SkipReason)> = vec![
        (
            json!({"kty": "RSA", "n": b64(modulus(16_384)), "e": "AQAB"}),
            SkipReason::RsaModulusSize,
        ),
        (
            json!({"kty": "RSA", "n": b64(modulus(8_200)), "e": "AQAB"}),
            SkipReason::RsaModulusSize,
        ),
        (
            json!({"kty": "RSA", "n": b64(modulus(1_024)), "e": "AQAB"}),
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
    let doc = json!({"keys": [{"kty": "RSA", "n": b64(modulus(16_384)), "e": "AQAB"}]});
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
    let good = Key::p256().jwk("ec");
    let x = good["x"].as_str().unwrap();
    let y = good["y"].as_str().unwrap();
    let mut y_bad = b64_decode(y);
    y_bad[31] ^= 1;
    let zero = b64([0u8; 32]);
    let ones = b64([0xffu8; 32]);
    let cases = [
        json!({"kty": "EC", "crv": "P-256", "x": x, "y": b64(&y_bad)}),
        json!({"kty": "EC", "crv": "P-256", "x": zero, "y": zero}),
        json!({"kty": "EC", "crv": "P-256", "x": ones, "y": ones}),
        // The P-256 point on P-384: wrong size.
        json!({"kty": "EC", "crv": "P-384", "x": x, "y": y}),
        // Truncated / compressed-style coordinates.
        json!({"kty": "EC", "crv": "P-256", "x": b64(&b64_decode(x)[1..]), "y": y}),
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
        ed_key().jwk("ed")
    ]});
    let keys = Jwks::parse(doc.to_string().as_bytes()).unwrap();
    let header = json!({"alg": "ES256", "kid": "ec"});
    let token = compact(
        header.to_string().as_bytes(),
        claims().to_string().as_bytes(),
        |m| Key::p256().sign("ES256", m),
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
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(hex(point))});
        let reasons = skip_reasons(json!([jwk])).unwrap();
        assert!(
            reasons == [SkipReason::Ed25519Weak] || reasons == [SkipReason::Ed25519Point],
            "{point}: {reasons:?}"
        );
    }
    for point in canonical {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(hex(point))});
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
        ed_key().jwk("ed")
    ]});
    let keys = Jwks::parse(doc.to_string().as_bytes()).unwrap();
    let mut sig = identity.clone();
    sig.extend_from_slice(&[0u8; 32]);
    let token = compact(
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
    let token = compact(
        br#"{"alg":"EdDSA"}"#,
        claims().to_string().as_bytes(),
        |_| sig.clone(),
    );
    assert_eq!(check(&token).unwrap_err(), JoseError::BadSignature);
}

// ---------------------------------------------------------------------------------------------
// DPoP proofs (RFC 9449 §4.3). The request-level cases that need a host (a `DPoP` header sent
// twice, a megabyte-long one, replays across workers) are in the engine's tests
// (`engine::dpop_tests`).

/// Hostile DPoP proofs, each with the exact refusal of `DpopProof::verify` (every algorithm
/// allowed: the refusals are the proof's own, not the allowlist's).
fn dpop_proof_cases() -> Vec<(&'static str, String, ProofError)> {
    let key = Key::p256();
    let jwk = support::dpop_jwk(&key);
    let claims = json!({"jti": "j", "htm": "GET", "htu": "https://api.example/r", "iat": NOW});
    let with = |extra: Value| support::dpop_proof_with(&key, "ES256", &extra, &claims);
    let jwk_with = |member: &str, value: Value| {
        let mut j = jwk.clone();
        j[member] = value;
        with(json!({ "jwk": j }))
    };
    let mut cases = vec![
        ("typ JWT", with(json!({"typ": "JWT"})), ProofError::Typ),
        ("no typ", with(json!({"typ": null})), ProofError::Typ),
        ("no jwk", with(json!({"jwk": null})), ProofError::NoKey),
        (
            "jwk a string",
            with(json!({"jwk": "key"})),
            ProofError::NoKey,
        ),
        (
            "kid disagreeing with jwk",
            with(json!({"kid": "other"})),
            ProofError::KidMismatch,
        ),
        (
            "jwk kid disagreeing with header kid",
            {
                let mut j = jwk.clone();
                j["kid"] = json!("mine");
                with(json!({"kid": "other", "jwk": j}))
            },
            ProofError::KidMismatch,
        ),
        (
            "jwk of type oct",
            with(json!({"jwk": {"kty": "oct", "k": "c2VjcmV0"}})),
            ProofError::PrivateKey,
        ),
        (
            "jwk of curve P-192",
            jwk_with("crv", json!("P-192")),
            ProofError::Key(SkipReason::UnsupportedCurve),
        ),
        (
            "jwk of type X25519 (OKP, key agreement)",
            with(json!({"jwk": {"kty": "OKP", "crv": "X25519", "x": b64([9; 32])}})),
            ProofError::Key(SkipReason::UnsupportedCurve),
        ),
        (
            "jwk point off the curve",
            jwk_with("y", json!(b64([1; 32]))),
            ProofError::Key(SkipReason::EcPoint),
        ),
        (
            "signature by another key",
            {
                let other = Key::from(support::p256_key_from(77));
                let mut header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
                header["jwk"] = jwk.clone();
                mint_with(&header, &claims, |m| other.sign("ES256", m))
            },
            ProofError::Signature,
        ),
        (
            "jti missing",
            support::dpop_proof_with(
                &key,
                "ES256",
                &json!({}),
                &json!({"htm": "GET", "htu": "https://a/", "iat": NOW}),
            ),
            ProofError::Claim("jti"),
        ),
        (
            "iat a string",
            support::dpop_proof_with(
                &key,
                "ES256",
                &json!({}),
                &json!({"jti": "j", "htm": "GET", "htu": "https://a/", "iat": "now"}),
            ),
            ProofError::Claim("iat"),
        ),
        (
            "jti over 256 bytes",
            support::dpop_proof_with(
                &key,
                "ES256",
                &json!({}),
                &json!({"jti": "j".repeat(257), "htm": "GET", "htu": "https://a/", "iat": NOW}),
            ),
            ProofError::Claim("jti"),
        ),
        ("not a JWS", "not.a.proof".to_owned(), ProofError::Malformed),
        (
            "over the token size limit",
            format!("{}.e30.", "e".repeat(DEFAULT_MAX_TOKEN_BYTES)),
            ProofError::Malformed,
        ),
    ];
    // Private key members, each alone (RFC 9449 §4.3: the jwk MUST NOT contain a private key).
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        let name: &'static str =
            Box::leak(format!("jwk with private member {member}").into_boxed_str());
        cases.push((
            name,
            jwk_with(member, json!(b64([7; 32]))),
            ProofError::PrivateKey,
        ));
    }
    // Keys named elsewhere than in `jwk`, and `crit`.
    for member in ["jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"] {
        let name: &'static str = Box::leak(format!("header {member}").into_boxed_str());
        cases.push((
            name,
            with(json!({ member: ["https://attacker.example/k"] })),
            ProofError::Header(member),
        ));
    }
    // `alg: none` and HMAC, the latter keyed with the proof key's public bytes (confusion).
    let unsigned = compact(
        json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk})
            .to_string()
            .as_bytes(),
        claims.to_string().as_bytes(),
        |_| Vec::new(),
    );
    cases.push(("alg none", unsigned, ProofError::Alg));
    let public = b64_decode(jwk["x"].as_str().unwrap());
    let hs = compact(
        json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk})
            .to_string()
            .as_bytes(),
        claims.to_string().as_bytes(),
        |m| support::hmac("HS256", &public, m),
    );
    cases.push(("HS256 keyed with the public key", hs, ProofError::Alg));
    // An RSA algorithm over the EC key.
    cases.push((
        "RS256 over an EC jwk",
        support::dpop_proof_with(&Key::rsa(), "RS256", &json!({"jwk": jwk}), &claims),
        ProofError::Key(SkipReason::AlgKeyMismatch),
    ));
    cases
}

#[test]
fn hostile_dpop_proofs_are_refused_exactly() {
    let limits = TokenLimits::default();
    let all = AlgorithmSet::all();
    let key = Key::p256();
    let claims = json!({"jti": "j", "htm": "GET", "htu": "https://api.example/r", "iat": NOW});
    // The baseline the cases mutate is accepted (so each refusal is the mutation's).
    let good = support::dpop_proof_with(&key, "ES256", &json!({}), &claims);
    assert!(DpopProof::verify(&good, &limits, &all).is_ok());
    let cases = dpop_proof_cases();
    for (name, proof, want) in &cases {
        let got = DpopProof::verify(proof, &limits, &all).map(|p| p.jti().to_owned());
        assert_eq!(got, Err(*want), "{name}");
        // Texts are static: they never carry the proof or its key.
        let text = want.to_string();
        assert!(text.len() < 100 && !text.contains(&b64([7; 32])), "{name}");
        assert!(want.reason().starts_with("dpop_"), "{name}");
    }
    assert!(cases.len() >= 30, "{} cases", cases.len());
}
