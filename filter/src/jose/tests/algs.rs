//! Every supported algorithm verifies a token minted with its fixed key, and only with a key
//! of the right kind.

use super::*;

#[test]
fn every_algorithm_verifies() {
    for alg in Algorithm::ALL {
        let token = mint(alg, &claims());
        let verified = check(&token).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified.alg(), alg);
        assert_eq!(verified.kid(), Some(kid_for(alg)));
        assert_eq!(verified.subject(), Some("alice"));
        assert_eq!(verified.issued_at(), Some(NOW));
        assert_eq!(verified.expires_at(), Some(NOW + 600));
        assert_eq!(verified.not_before(), None);
        assert_eq!(verified.payload_b64(), token.split('.').nth(1).unwrap());
    }
}

#[test]
fn without_kid_every_fitting_key_is_tried() {
    for alg in Algorithm::ALL {
        let token = mint_with(&json!({"alg": alg.as_str()}), &claims(), |m| sign(alg, m));
        // Several keys of other kinds and a decoy RSA key come first.
        let mut decoy = rsa_jwk("decoy");
        decoy["n"] = json!(b64::encode(&[0xc7; 256]));
        let set = jwks(
            json!({"keys": [decoy, ed25519_jwk("a"), p384_jwk("b"), p256_jwk("c"), Key::p521().jwk("e"), rsa_jwk("d")]}),
        );
        assert!(
            verify(&parse(&token).unwrap(), &set, &Validation::new(ISS), NOW).is_ok(),
            "{alg}"
        );
    }
}

/// RFC 9864's `Ed25519` is EdDSA with an Ed25519 key: accepted wherever EdDSA is, by a JWK whose
/// `alg` says either name, and allowed by an allowlist that lists either name.
#[test]
fn ed25519_is_an_alias_of_eddsa() {
    let token = mint_with(&json!({"alg": "Ed25519", "kid": "ed"}), &claims(), |m| {
        sign(Algorithm::EdDsa, m)
    });
    assert_eq!(check(&token).unwrap().alg(), Algorithm::EdDsa);
    let eddsa = mint(Algorithm::EdDsa, &claims());
    for own in ["EdDSA", "Ed25519"] {
        let mut key = ed25519_jwk("ed");
        key["alg"] = json!(own);
        let set = jwks(json!({"keys": [key]}));
        for t in [&token, &eddsa] {
            verify(&parse(t).unwrap(), &set, &Validation::new(ISS), NOW).unwrap();
        }
    }
    for names in [["Ed25519"], ["EdDSA"]] {
        let rule = Validation {
            algorithms: AlgorithmSet::from_names(names).unwrap(),
            ..Validation::new(ISS)
        };
        for t in [&token, &eddsa] {
            verify(&parse(t).unwrap(), &all_keys(), &rule, NOW).unwrap();
        }
    }
    // Not the other way round: an allowlist without EdDSA refuses both spellings.
    let rule = Validation {
        algorithms: AlgorithmSet::from_names(["ES256"]).unwrap(),
        ..Validation::new(ISS)
    };
    assert_eq!(
        verify(&parse(&token).unwrap(), &all_keys(), &rule, NOW).unwrap_err(),
        JoseError::AlgNotAllowed(Algorithm::EdDsa)
    );
}

/// Ed448 (`alg: Ed448`, or an `OKP` key on Ed448) is refused with its own reasons: the token as
/// `alg_unsupported`, the key skipped as `ed448_unsupported`.
#[test]
fn ed448_is_refused() {
    let token = mint_with(&json!({"alg": "Ed448", "kid": "ed"}), &claims(), |_| {
        vec![1; 114]
    });
    assert_eq!(parse(&token).unwrap_err(), JoseError::AlgUnsupported);
    let ed448 = json!({"kty": "OKP", "crv": "Ed448", "kid": "x", "x": b64::encode(&[9; 57])});
    let set = jwks(json!({"keys": [ed448, ed25519_jwk("ed")]}));
    assert_eq!(set.skipped()[0].reason, SkipReason::Ed448);
    assert_eq!(set.skipped()[0].reason.reason(), "ed448_unsupported");
    let mut eddsa_on_448 = json!({"kty": "OKP", "crv": "Ed448", "x": b64::encode(&[9; 57])});
    eddsa_on_448["alg"] = json!("EdDSA");
    let set = jwks(json!({"keys": [eddsa_on_448, ed25519_jwk("ed")]}));
    assert_eq!(set.skipped()[0].reason, SkipReason::Ed448);
}

/// ES512: a P-521 key verifies only 132-byte r‖s; a P-256/P-384 key never verifies ES512, nor a
/// P-521 key ES256/ES384.
#[test]
fn es512_is_p521_only() {
    let token = mint(Algorithm::Es512, &claims());
    assert_eq!(check(&token).unwrap().alg(), Algorithm::Es512);
    let parts: Vec<&str> = token.split('.').collect();
    let sig = b64::decode(parts[2]).unwrap();
    assert_eq!(sig.len(), 132);
    for bad in [&sig[..131], &[&sig[..], &[0][..]].concat()[..], &[][..]] {
        let forged = format!("{}.{}.{}", parts[0], parts[1], b64::encode(bad));
        assert_eq!(check(&forged).unwrap_err(), JoseError::BadSignature);
    }
    for (alg, kid) in [
        ("ES512", "p256"),
        ("ES512", "p384"),
        ("ES256", "p521"),
        ("ES384", "p521"),
    ] {
        let header = json!({"alg": alg, "kid": kid});
        let forged = mint_with(&header, &claims(), |m| sign(Algorithm::Es512, m));
        assert_eq!(
            check(&forged).unwrap_err(),
            JoseError::NoMatchingKey,
            "{alg} {kid}"
        );
    }
}

#[test]
fn allowlist_is_enforced() {
    let token = mint(Algorithm::Ps256, &claims());
    let rule = Validation {
        algorithms: AlgorithmSet::from_names(["RS256", "ES256"]).unwrap(),
        ..Validation::new(ISS)
    };
    assert_eq!(
        verify(&parse(&token).unwrap(), &all_keys(), &rule, NOW).unwrap_err(),
        JoseError::AlgNotAllowed(Algorithm::Ps256)
    );
}

#[test]
fn key_must_fit_the_alg() {
    // ES256 token whose kid names the RSA key.
    let header = json!({"alg": "ES256", "kid": "rsa"});
    let token = mint_with(&header, &claims(), |m| sign(Algorithm::Es256, m));
    assert_eq!(check(&token).unwrap_err(), JoseError::NoMatchingKey);
    // ES384 token claiming the P-256 key: curve mismatch.
    let header = json!({"alg": "ES384", "kid": "p256"});
    let token = mint_with(&header, &claims(), |m| sign(Algorithm::Es384, m));
    assert_eq!(check(&token).unwrap_err(), JoseError::NoMatchingKey);
    // No kid and no key of the right type at all.
    let token = mint_with(&json!({"alg": "EdDSA"}), &claims(), |m| {
        sign(Algorithm::EdDsa, m)
    });
    let rsa_only = jwks(json!({"keys": [rsa_jwk("rsa")]}));
    assert_eq!(
        verify(
            &parse(&token).unwrap(),
            &rsa_only,
            &Validation::new(ISS),
            NOW
        )
        .unwrap_err(),
        JoseError::NoMatchingKey
    );
    // The JWK's own alg restricts it: an RS384-only key does not verify RS256.
    let mut pinned = rsa_jwk("rsa");
    pinned["alg"] = json!("RS384");
    let pinned = jwks(json!({"keys": [pinned]}));
    let rs256 = mint(Algorithm::Rs256, &claims());
    assert_eq!(
        verify(&parse(&rs256).unwrap(), &pinned, &Validation::new(ISS), NOW).unwrap_err(),
        JoseError::NoMatchingKey
    );
    let rs384 = mint(Algorithm::Rs384, &claims());
    assert!(verify(&parse(&rs384).unwrap(), &pinned, &Validation::new(ISS), NOW).is_ok());
}

#[test]
fn signature_schemes_do_not_cross() {
    // A PSS signature relabelled as PKCS#1 v1.5 (and the reverse), and hash swaps.
    let pairs = [
        (Algorithm::Ps256, Algorithm::Rs256),
        (Algorithm::Rs256, Algorithm::Ps256),
        (Algorithm::Rs256, Algorithm::Rs384),
        (Algorithm::Ps512, Algorithm::Ps384),
    ];
    for (signed, claimed) in pairs {
        let header = json!({"alg": claimed.as_str(), "kid": "rsa"});
        let token = mint_with(&header, &claims(), |m| sign(signed, m));
        assert_eq!(
            check(&token).unwrap_err(),
            JoseError::BadSignature,
            "{signed} as {claimed}"
        );
    }
}

#[test]
fn kid_selects_and_unknown_kid_is_distinct() {
    let header = json!({"alg": "RS256", "kid": "rotated-away"});
    let token = mint_with(&header, &claims(), |m| sign(Algorithm::Rs256, m));
    let err = check(&token).unwrap_err();
    assert_eq!(err, JoseError::UnknownKid);
    assert_eq!(err.reason(), "unknown_kid");
    // With a kid, other keys are not tried, even one that would verify.
    let two = jwks(json!({"keys": [rsa_jwk("a"), rsa_jwk("b")]}));
    let header = json!({"alg": "RS256", "kid": "a"});
    let token = mint_with(&header, &claims(), |m| sign(Algorithm::Rs256, m));
    assert!(verify(&parse(&token).unwrap(), &two, &Validation::new(ISS), NOW).is_ok());
    assert!(two.has_kid("a") && two.has_kid("b") && !two.has_kid("c"));
}

#[test]
fn typ_and_issuer_rules() {
    let rule = Validation {
        typ: vec!["at+jwt".into()],
        ..Validation::new(ISS)
    };
    let header = json!({"alg": "ES256", "kid": "p256", "typ": "application/AT+JWT"});
    let token = mint_with(&header, &claims(), |m| sign(Algorithm::Es256, m));
    assert!(verify(&parse(&token).unwrap(), &all_keys(), &rule, NOW).is_ok());
    let jwt = mint(Algorithm::Es256, &claims());
    assert_eq!(
        verify(&parse(&jwt).unwrap(), &all_keys(), &rule, NOW).unwrap_err(),
        JoseError::TypNotAllowed
    );
    let mut other = claims();
    other["iss"] = json!("https://issuer.test/");
    assert_eq!(
        check(&mint(Algorithm::Es256, &other)).unwrap_err(),
        JoseError::IssuerMismatch
    );
    let mut missing = claims();
    missing.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        check(&mint(Algorithm::Es256, &missing)).unwrap_err(),
        JoseError::IssuerMismatch
    );
}

#[test]
fn claims_are_checked_before_the_signature() {
    let mut expired = claims();
    expired["exp"] = json!(NOW - 61);
    assert_eq!(
        check(&mint(Algorithm::EdDsa, &expired)).unwrap_err(),
        JoseError::Expired
    );
    // As Envoy: a forged expired token is "expired" (no signature work for it), and an expired
    // token naming a kid the JWKS lacks is "expired", not "unknown kid" (no refetch).
    let header = json!({"alg": "EdDSA", "kid": "ed"});
    let forged = mint_with(&header, &expired, |_| vec![0; 64]);
    assert_eq!(check(&forged).unwrap_err(), JoseError::Expired);
    let unknown_kid = mint_with(&json!({"alg": "EdDSA", "kid": "nobody"}), &expired, |_| {
        vec![0; 64]
    });
    assert_eq!(check(&unknown_kid).unwrap_err(), JoseError::Expired);
    // With good claims the signature still decides.
    let forged_valid = mint_with(&header, &claims(), |_| vec![0; 64]);
    assert_eq!(check(&forged_valid).unwrap_err(), JoseError::BadSignature);
    let mut float_exp = claims();
    float_exp["exp"] = json!((NOW + 600) as f64 + 0.5);
    assert_eq!(
        check(&mint(Algorithm::EdDsa, &float_exp))
            .unwrap()
            .expires_at(),
        Some(NOW + 600)
    );
    let mut bad_exp = claims();
    bad_exp["exp"] = json!("tomorrow");
    assert_eq!(
        check(&mint(Algorithm::EdDsa, &bad_exp)).unwrap_err(),
        JoseError::InvalidClaim("exp")
    );
}

#[test]
fn kid_of_a_skipped_key_is_not_unknown() {
    let mut small = rsa_jwk("old");
    small["n"] = json!(b64::encode(&[0xc1; 128]));
    let set = jwks(json!({"keys": [small, rsa_jwk("rsa")]}));
    assert!(set.skipped_kid("old") && !set.has_kid("old"));
    let header = json!({"alg": "RS256", "kid": "old"});
    let token = mint_with(&header, &claims(), |m| sign(Algorithm::Rs256, m));
    assert_eq!(
        verify(&parse(&token).unwrap(), &set, &Validation::new(ISS), NOW).unwrap_err(),
        JoseError::NoMatchingKey
    );
}

/// `verify_owned` hands a refused token back as it was (the engine retries it once newer keys
/// arrive), and the retry gives what `verify` gives.
#[test]
fn verify_owned_returns_a_refused_token_for_a_retry() {
    let validation = Validation::new(ISS);
    for alg in Algorithm::ALL {
        let token = mint(alg, &claims());
        let stale = jwks(json!({"keys": [rsa_jwk("rotated-away")]}));
        let Err((error, back)) = verify_owned(parse(&token).unwrap(), &stale, &validation, NOW)
        else {
            panic!("{alg}: verified without its key");
        };
        assert_eq!(error, JoseError::UnknownKid, "{alg}");
        let retried = verify_owned(back, &all_keys(), &validation, NOW)
            .unwrap_or_else(|(e, _)| panic!("{alg}: {e}"));
        let fresh = check(&token).unwrap();
        assert_eq!(retried.claims(), fresh.claims(), "{alg}");
        assert_eq!(
            retried.payload_b64(),
            token.split('.').nth(1).unwrap(),
            "{alg}"
        );
        assert_eq!(
            (
                retried.issuer(),
                retried.kid(),
                retried.alg(),
                retried.times()
            ),
            (fresh.issuer(), fresh.kid(), fresh.alg(), fresh.times()),
            "{alg}"
        );
    }
}
