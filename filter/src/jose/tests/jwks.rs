//! JWKS parsing: usable keys are kept, unusable ones skipped with a reason, and a set with no
//! usable key is an error.

use super::*;

fn reasons(set: &Jwks) -> Vec<(usize, SkipReason)> {
    set.skipped().iter().map(|s| (s.index, s.reason)).collect()
}

#[test]
fn unusable_keys_are_skipped_with_reasons() {
    let mut rsa_small = rsa_jwk("small");
    rsa_small["n"] = json!(b64::encode(&[0xc1; 128]));
    let mut rsa_even_e = rsa_jwk("even-e");
    rsa_even_e["e"] = json!(b64::encode(&[0x01, 0x00, 0x00]));
    let mut rsa_e_one = rsa_jwk("e-one");
    rsa_e_one["e"] = json!("AQ");
    let mut rsa_big = rsa_jwk("big");
    rsa_big["n"] = json!(b64::encode(&[0xc1; 1025]));
    let mut rsa_even_n = rsa_jwk("even-n");
    rsa_even_n["n"] = json!(b64::encode(&[0xc2; 256]));
    let mut off_curve = p256_jwk("off");
    let mut y = b64::decode(off_curve["y"].as_str().unwrap()).unwrap();
    y[31] ^= 1;
    off_curve["y"] = json!(b64::encode(&y));
    let mut short_x = p256_jwk("short");
    short_x["x"] = json!(b64::encode(&[1; 31]));
    let mut p384_as_p256 = p384_jwk("p384-as-p256");
    p384_as_p256["crv"] = json!("P-256");
    // Ed25519 points of small order: the identity (order 1), (0, -1) (order 2), y = 0
    // (order 4) and one of order 8.
    let okp = |x: Vec<u8>| json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(&x)});
    let hex = |h: &str| -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    let mut identity = vec![0u8; 32];
    identity[0] = 1;
    let mut minus_one = vec![0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    let weak = [
        okp(identity),
        okp(minus_one),
        okp(vec![0; 32]),
        okp(hex(
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        )),
    ];
    let mut enc = rsa_jwk("enc");
    enc["use"] = json!("enc");
    let mut sign_only = p256_jwk("sign-only");
    sign_only["key_ops"] = json!(["sign"]);
    let mut verify_ops = p256_jwk("verify-ops");
    verify_ops["key_ops"] = json!(["sign", "verify"]);
    let mut hs = rsa_jwk("hs");
    hs["alg"] = json!("HS256");
    let mut mismatch = rsa_jwk("mismatch");
    mismatch["alg"] = json!("ES256");
    let mut ps = rsa_jwk("ps");
    ps["alg"] = json!("PS256");
    let mut bad_b64 = rsa_jwk("pad");
    bad_b64["e"] = json!("AQAB=");
    let doc = json!({"keys": [
        rsa_jwk("good"),                                                  // 0 kept
        {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},                    // 1
        rsa_small, rsa_even_e, rsa_e_one, rsa_big, rsa_even_n,            // 2..=6
        off_curve, short_x, p384_as_p256,                                 // 7..=9
        weak[0].clone(), weak[3].clone(),                                 // 10, 11
        {"kty": "OKP", "crv": "X25519", "x": b64::encode(&[9; 32])},      // 12
        {"kty": "OKP", "crv": "Ed448", "x": b64::encode(&[9; 57])},       // 13
        enc, sign_only, verify_ops,                                       // 14, 15, 16 kept
        hs, mismatch, ps,                                                 // 17, 18, 19 kept
        "not an object", {"kid": "no-kty"}, bad_b64,                      // 20..=22
        {"kty": "RSA", "kid": 5, "n": "AQAB", "e": "AQAB"},               // 23
    ]});
    let set = jwks(doc);
    assert_eq!(set.len(), 3);
    assert_eq!(
        set.keys()
            .iter()
            .map(|k| k.kid().unwrap())
            .collect::<Vec<_>>(),
        ["good", "verify-ops", "ps"]
    );
    assert_eq!(set.keys()[2].alg(), Some(Algorithm::Ps256));
    assert_eq!(set.keys()[0].kind(), KeyKind::Rsa { bits: 2048 });
    use SkipReason::*;
    assert_eq!(
        reasons(&set),
        vec![
            (1, Symmetric),
            (2, RsaModulusSize),
            (3, RsaExponent),
            (4, RsaExponent),
            (5, RsaModulusSize),
            (6, RsaInvalid),
            (7, EcPoint),
            (8, EcPoint),
            (9, EcPoint),
            (10, Ed25519Weak),
            (11, Ed25519Weak),
            (12, UnsupportedCurve),
            (13, Ed448),
            (14, NotForSignatures),
            (15, NotForSignatures),
            (17, RefusedAlg),
            (18, AlgKeyMismatch),
            (20, NotAnObject),
            (21, BadMember("kty")),
            (22, BadMember("e")),
            (23, BadMember("kid")),
        ]
    );
    assert_eq!(set.skipped()[0].kid.as_deref(), Some("oct"));
    for key in weak {
        let err = Jwks::parse(json!({"keys": [key]}).to_string().as_bytes()).unwrap_err();
        assert_eq!(err, JwksError::NoUsableKey { skipped: 1 });
    }
    assert_eq!(Symmetric.reason(), "symmetric_key");
    assert_eq!(Symmetric.to_string(), "symmetric (oct) keys are never used");
}

#[test]
fn no_usable_key_is_an_error() {
    let err = Jwks::parse(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap_err();
    assert_eq!(err, JwksError::NoUsableKey { skipped: 1 });
    assert_eq!(err.reason(), "jwks_no_usable_key");
    assert_eq!(
        Jwks::parse(br#"{"keys":[]}"#).unwrap_err(),
        JwksError::NoUsableKey { skipped: 0 }
    );
}

#[test]
fn document_shape() {
    assert_eq!(Jwks::parse(b"").unwrap_err(), JwksError::Json);
    assert_eq!(Jwks::parse(b"[]").unwrap_err(), JwksError::NotAKeySet);
    assert_eq!(Jwks::parse(b"{}").unwrap_err(), JwksError::NotAKeySet);
    assert_eq!(
        Jwks::parse(br#"{"keys":{}}"#).unwrap_err(),
        JwksError::NotAKeySet
    );
    assert_eq!(
        Jwks::parse(br#"{"keys":[],"keys":[]}"#).unwrap_err(),
        JwksError::DuplicateMember
    );
    let deep = format!(r#"{{"keys":[],"x":{}{}}}"#, "[".repeat(40), "]".repeat(40));
    assert_eq!(
        Jwks::parse(deep.as_bytes()).unwrap_err(),
        JwksError::TooDeep
    );
    // A duplicate member inside one key refuses the document: we cannot tell which `n` is meant.
    let dup = format!(
        r#"{{"keys":[{{"kty":"EC","kty":"RSA"}},{}]}}"#,
        rsa_jwk("k")
    );
    assert_eq!(
        Jwks::parse(dup.as_bytes()).unwrap_err(),
        JwksError::DuplicateMember
    );
    // Unknown members (at both levels) are ignored.
    let mut key = p256_jwk("k");
    key["x5t"] = json!("whatever");
    key["d"] = json!("private material is ignored, never used");
    assert_eq!(jwks(json!({"keys": [key], "extra": true})).len(), 1);
}

#[test]
fn key_count_caps() {
    let key = p256_jwk("k");
    let many: Vec<Value> = (0..MAX_USABLE_KEYS + 5).map(|_| key.clone()).collect();
    let set = jwks(json!({ "keys": many }));
    assert_eq!(set.len(), MAX_USABLE_KEYS);
    assert_eq!(set.skipped().len(), 5);
    assert!(
        set.skipped()
            .iter()
            .all(|s| s.reason == SkipReason::TooManyKeys)
    );
    let too_many: Vec<Value> = (0..=MAX_JWKS_ENTRIES).map(|_| json!(0)).collect();
    assert_eq!(
        Jwks::parse(json!({ "keys": too_many }).to_string().as_bytes()).unwrap_err(),
        JwksError::TooManyEntries
    );
}

#[test]
fn istio_jwks_without_alg_parses() {
    let set = Jwks::parse(meshguard_test_support::ISTIO_SAMPLES_JWKS.as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.has_kid("DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ"));
    assert_eq!(set.keys()[0].alg(), None);
    assert!(set.keys()[0].fits(Algorithm::Ps512) && !set.keys()[0].fits(Algorithm::Es256));
}

#[test]
fn points_and_lengths() {
    let ec = |crv: &str, x: Vec<u8>, y: Vec<u8>| json!({"kty": "EC", "crv": crv, "x": b64::encode(&x), "y": b64::encode(&y)});
    let okp = |x: Vec<u8>| json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(&x)});
    // (0, 0) is the usual stand-in for the point at infinity, which has no affine form.
    let p256_x = b64::decode(p256_jwk("k")["x"].as_str().unwrap()).unwrap();
    let p256_y = b64::decode(p256_jwk("k")["y"].as_str().unwrap()).unwrap();
    let mut padded_x = vec![0];
    padded_x.extend_from_slice(&p256_x);
    let mut non_canonical_y = vec![0xff; 32];
    non_canonical_y[31] = 0x7f;
    let cases = [
        (ec("P-256", vec![0; 32], vec![0; 32]), SkipReason::EcPoint),
        (ec("P-384", vec![0; 48], vec![0; 48]), SkipReason::EcPoint),
        (ec("P-256", padded_x, p256_y), SkipReason::EcPoint),
        (okp(vec![1; 31]), SkipReason::Ed25519Point),
        (okp(vec![1; 33]), SkipReason::Ed25519Point),
        // y = 2^255 - 1 >= p: a non-canonical encoding (of y = 18).
        (okp(non_canonical_y), SkipReason::Ed25519Point),
    ];
    for (key, want) in cases {
        let doc = json!({"keys": [key.clone(), p256_jwk("ok")]});
        let set = jwks(doc);
        assert_eq!(set.skipped()[0].reason, want, "{key}");
    }
}

/// Checks one curve's JWKS-time point validation: `good` is a valid key of curve `crv`, `p` the
/// field prime big-endian and `y0_hex` the y of the point with x = 0 (y0² = b), so that (p, y0)
/// is that point spelled out of range. Refused: off the curve, coordinates ≥ p or all ones,
/// wrong lengths (short, zero-padded, empty), the identity's (0, 0).
fn check_point_validation(crv: &str, good: &Value, p: &[u8], y0_hex: &str, kind: KeyKind) {
    let coordinate = |name: &str| b64::decode(good[name].as_str().unwrap()).unwrap();
    let (x, y) = (coordinate("x"), coordinate("y"));
    let len = p.len();
    let ec = |x: &[u8], y: &[u8]| json!({"kty": "EC", "crv": crv, "x": b64::encode(x), "y": b64::encode(y)});
    let mut off_curve = y.clone();
    off_curve[len - 1] ^= 1;
    let padded = |v: &[u8]| [&[0u8][..], v].concat();
    let y0: Vec<u8> = (0..2 * len)
        .step_by(2)
        .map(|i| u8::from_str_radix(&y0_hex[i..i + 2], 16).unwrap())
        .collect();
    let (zero, ones) = (vec![0u8; len], vec![0xffu8; len]);
    let cases = [
        ec(p, &y0),
        ec(&x, &off_curve),
        ec(&zero, &zero),
        ec(p, &y),
        ec(&x, p),
        ec(&ones, &y),
        ec(&x[1..], &y),
        ec(&x, &y[..len - 1]),
        ec(&padded(&x), &y),
        ec(&x, &padded(&y)),
        ec(&[], &[]),
    ];
    for key in cases {
        let set = jwks(json!({"keys": [key.clone(), p256_jwk("ok")]}));
        assert_eq!(set.skipped()[0].reason, SkipReason::EcPoint, "{key}");
    }
    for (x, y) in [(&x[..], &y[..]), (&zero[..], &y0[..])] {
        let set = jwks(json!({"keys": [ec(x, y)]}));
        assert_eq!(set.keys()[0].kind(), kind);
    }
}

/// P-384 keys are validated by our own code (`meshguard-crypto`) at JWKS parse time: the point must be
/// on the curve, both coordinates exactly 48 bytes and below p; the identity has no encoding.
#[test]
fn p384_points_are_validated() {
    // p = 2^384 − 2^128 − 2^96 + 2^32 − 1.
    let mut p = vec![0xffu8; 48];
    p[31] = 0xfe;
    p[36..44].fill(0);
    check_point_validation(
        "P-384",
        &p384_jwk("k"),
        &p,
        "c306610fb0ae5a159cf45c06069f22a6c5eb3641c602d42dea2c4b4f75550793406d80d2b91ad54f9048bd487af1ade1",
        KeyKind::P384,
    );
}

/// P-521 keys (ES512, RustCrypto's `p521` through `meshguard-crypto`) are validated at JWKS parse
/// time the same way: on the curve, both coordinates exactly 66 bytes and below p.
#[test]
fn p521_points_are_validated() {
    // p = 2^521 − 1.
    let mut p = vec![0xffu8; 66];
    p[0] = 0x01;
    check_point_validation(
        "P-521",
        &Key::p521().jwk("k"),
        &p,
        "012df13601594a883ef2d935e44bb90bf4d6619b74e52af7552f97769011c0719eb439cfab2a88d40fe59a2bed1f43557169a2d0a2ccd280c607b92bbf51ffe0b078",
        KeyKind::P521,
    );
}

/// P-256 keys are validated by the same code at JWKS parse time: on the curve, both coordinates
/// exactly 32 bytes and below p; the identity has no encoding.
#[test]
fn p256_points_are_validated() {
    // p = 2^256 − 2^224 + 2^192 + 2^96 − 1.
    let mut p = vec![0xffu8; 32];
    p[..8].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
    p[8..20].fill(0);
    check_point_validation(
        "P-256",
        &p256_jwk("k"),
        &p,
        "66485c780e2f83d72433bd5d84a06bb6541c2af31dae871728bf856a174f93f4",
        KeyKind::P256,
    );
}
