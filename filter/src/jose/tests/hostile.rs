//! Hostile and malformed tokens: each is refused with its precise error.

use hmac::{Hmac, Mac as _};
use p256::ecdsa::signature::Signer as _;
use rsa::pkcs1::EncodeRsaPublicKey as _;

use super::*;

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[test]
fn alg_none_in_any_case() {
    for none in ["none", "NONE", "nOnE"] {
        let header = b64::encode(json!({"alg": none}).to_string().as_bytes());
        let payload = b64::encode(claims().to_string().as_bytes());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.c2ln"),
        ] {
            let err = parse(&token).unwrap_err();
            assert_eq!(err, JoseError::AlgNone, "{none}");
            assert_eq!(err.reason(), "alg_none");
        }
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key() {
    let public = rsa_key().to_public_key();
    let pem = public.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let n = b64::encode(&rsa::traits::PublicKeyParts::n(&public).to_bytes_be());
    let secrets: [Vec<u8>; 3] = [
        pem.into_bytes(),
        rsa_jwk("rsa").to_string().into_bytes(),
        n.into_bytes(),
    ];
    for secret in secrets {
        let header = json!({"alg": "HS256", "kid": "rsa", "typ": "JWT"});
        let token = mint_with(&header, &claims(), |m| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
            mac.update(m);
            mac.finalize().into_bytes().to_vec()
        });
        let err = parse(&token).unwrap_err();
        assert_eq!(err, JoseError::AlgHmac);
        assert_eq!(err.reason(), "alg_hmac");
    }
}

#[test]
fn tampering_breaks_the_signature() {
    for alg in Algorithm::ALL {
        let token = mint(alg, &claims());
        let parts = segments(&token);
        // Header: same alg and kid, one more member.
        let header = json!({"alg": alg.as_str(), "kid": kid_for(alg), "typ": "JWT", "x": 1});
        let t1 = format!(
            "{}.{}.{}",
            b64::encode(header.to_string().as_bytes()),
            parts[1],
            parts[2]
        );
        // Payload: sub changed.
        let mut forged = claims();
        forged["sub"] = json!("admin");
        let t2 = format!(
            "{}.{}.{}",
            parts[0],
            b64::encode(forged.to_string().as_bytes()),
            parts[2]
        );
        // Signature: one bit flipped.
        let mut sig = b64::decode(&parts[2]).unwrap();
        sig[5] ^= 0x01;
        let t3 = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&sig));
        // Signature: truncated, extended, empty.
        let t4 = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            b64::encode(&sig[..sig.len() - 1])
        );
        let mut long = b64::decode(&parts[2]).unwrap();
        long.push(0);
        let t5 = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&long));
        let t6 = format!("{}.{}.", parts[0], parts[1]);
        for t in [t1, t2, t3, t4, t5, t6] {
            assert_eq!(check(&t).unwrap_err(), JoseError::BadSignature, "{alg}");
        }
    }
}

#[test]
fn es256_der_signature_fails() {
    let header = json!({"alg": "ES256", "kid": "p256"});
    let token = mint_with(&header, &claims(), |m| {
        let sig: p256::ecdsa::Signature = p256_key().sign(m);
        sig.to_der().as_bytes().to_vec()
    });
    assert_eq!(check(&token).unwrap_err(), JoseError::BadSignature);
    let header = json!({"alg": "ES384", "kid": "p384"});
    let token = mint_with(&header, &claims(), |m| {
        let sig: p384::ecdsa::Signature = p384_key().sign(m);
        sig.to_der().as_bytes().to_vec()
    });
    assert_eq!(check(&token).unwrap_err(), JoseError::BadSignature);
}

#[test]
fn size_limit() {
    let mut big = claims();
    big["pad"] = json!("x".repeat(20_000));
    let token = mint(Algorithm::Es256, &big);
    assert_eq!(parse(&token).unwrap_err(), JoseError::TooLarge);
    let roomy = TokenLimits {
        max_token_bytes: 64 * 1024,
        ..TokenLimits::default()
    };
    assert!(UnverifiedToken::parse(&token, &roomy).is_ok());
    let small = mint(Algorithm::Es256, &claims());
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
fn part_count_and_whitespace() {
    let token = mint(Algorithm::Es256, &claims());
    let bad = |t: &str| parse(t).unwrap_err();
    let parts = JoseError::Malformed(Malformed::PartCount);
    assert_eq!(bad(&format!("{token}.e30")), parts, "fourth part");
    assert_eq!(bad(&format!("{token}.")), parts, "empty fourth part");
    assert_eq!(bad(token.rsplit_once('.').unwrap().0), parts, "two parts");
    assert_eq!(bad(""), parts);
    assert_eq!(bad("TokenInvalid"), parts);
    let sig_b64 = JoseError::Malformed(Malformed::Base64(Segment::Signature));
    assert_eq!(bad(&format!("{token} ")), sig_b64, "trailing space");
    assert_eq!(bad(&format!("{token}\n")), sig_b64, "trailing newline");
    assert_eq!(bad(&format!("{token}\r\n")), sig_b64);
    assert_eq!(
        bad(&format!(" {token}")),
        JoseError::Malformed(Malformed::Base64(Segment::Header))
    );
    let p = segments(&token);
    assert_eq!(
        bad(&format!("{}.{} .{}", p[0], p[1], p[2])),
        JoseError::Malformed(Malformed::Base64(Segment::Payload))
    );
}

#[test]
fn non_canonical_base64url() {
    let token = mint(Algorithm::Es256, &claims());
    let p = segments(&token);
    // 64 signature bytes: 86 characters, the last carrying 2 unused (must-be-zero) bits.
    let mut chars: Vec<char> = p[2].chars().collect();
    let last = chars.pop().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = alphabet.find(last).unwrap();
    let sibling = alphabet.chars().nth(value | 0b0001).unwrap();
    assert_ne!(sibling, last);
    let non_canonical: String = chars.iter().chain(Some(&sibling)).collect();
    let sig_b64 = JoseError::Malformed(Malformed::Base64(Segment::Signature));
    assert_eq!(
        parse(&format!("{}.{}.{non_canonical}", p[0], p[1])).unwrap_err(),
        sig_b64
    );
    assert_eq!(
        parse(&format!("{token}==")).unwrap_err(),
        sig_b64,
        "padding"
    );
    let std_alphabet = p[2].replace('-', "+").replace('_', "/");
    if std_alphabet != p[2] {
        assert_eq!(
            parse(&format!("{}.{}.{std_alphabet}", p[0], p[1])).unwrap_err(),
            sig_b64
        );
    }
    // Header with padding.
    let header = format!("{}=", b64::encode(br#"{"alg":"ES256"}"#));
    assert_eq!(
        parse(&format!("{header}.{}.{}", p[1], p[2])).unwrap_err(),
        JoseError::Malformed(Malformed::Base64(Segment::Header))
    );
}

#[test]
fn duplicate_members() {
    let p = segments(&mint(Algorithm::Es256, &claims()));
    let header = b64::encode(br#"{"alg":"ES256","kid":"p256","alg":"none"}"#);
    assert_eq!(
        parse(&format!("{header}.{}.{}", p[1], p[2])).unwrap_err(),
        JoseError::Malformed(Malformed::DuplicateMember(Segment::Header))
    );
    let header = b64::encode(br#"{"alg":"ES256","kid":"p256","kid":"other"}"#);
    assert_eq!(
        parse(&format!("{header}.{}.{}", p[1], p[2])).unwrap_err(),
        JoseError::Malformed(Malformed::DuplicateMember(Segment::Header))
    );
    let payload = b64::encode(
        format!(
            r#"{{"iss":"{ISS}","sub":"alice","exp":{},"sub":"admin"}}"#,
            NOW + 600
        )
        .as_bytes(),
    );
    let token = format!("{}.{payload}.{}", p[0], p[2]);
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::DuplicateMember(Segment::Payload))
    );
}

#[test]
fn too_deep_json() {
    let mut deep = json!("leaf");
    for _ in 0..40 {
        deep = json!({ "d": deep });
    }
    let mut c = claims();
    c["deep"] = deep;
    assert_eq!(
        parse(&mint(Algorithm::Es256, &c)).unwrap_err(),
        JoseError::Malformed(Malformed::TooDeep(Segment::Payload))
    );
    let header = format!(
        r#"{{"alg":"ES256","x":{}{}}}"#,
        "[".repeat(35),
        "]".repeat(35)
    );
    let p = segments(&mint(Algorithm::Es256, &claims()));
    let token = format!("{}.{}.{}", b64::encode(header.as_bytes()), p[1], p[2]);
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::TooDeep(Segment::Header))
    );
    // 31 levels below the top object fit the default limit of 32.
    let mut ok = json!(1);
    for _ in 0..31 {
        ok = json!({ "d": ok });
    }
    let mut c = claims();
    c["deep"] = ok;
    assert!(check(&mint(Algorithm::Es256, &c)).is_ok());
}

#[test]
fn header_shape() {
    let c = claims();
    let cases = [
        (json!({"kid": "p256"}), JoseError::Malformed(Malformed::Alg)),
        (json!({"alg": 256}), JoseError::Malformed(Malformed::Alg)),
        (
            json!({"alg": "ES256", "kid": 7}),
            JoseError::Malformed(Malformed::Kid),
        ),
        (
            json!({"alg": "ES256", "typ": ["JWT"]}),
            JoseError::Malformed(Malformed::Typ),
        ),
        (
            json!({"alg": "ES256", "crit": ["exp"], "exp": 1}),
            JoseError::CritUnsupported,
        ),
        (
            json!({"alg": "ES256", "crit": []}),
            JoseError::CritUnsupported,
        ),
        (
            json!({"alg": "ES256", "b64": false, "crit": ["b64"]}),
            JoseError::CritUnsupported,
        ),
        (json!({"alg": "ES512"}), JoseError::AlgUnsupported),
        (json!({"alg": "HS512"}), JoseError::AlgHmac),
    ];
    for (header, want) in cases {
        let token = mint_with(&header, &c, |m| sign(Algorithm::Es256, m));
        assert_eq!(parse(&token).unwrap_err(), want, "{header}");
    }
    let p = segments(&mint(Algorithm::Es256, &c));
    for (payload, segment_err) in [
        (b"[1,2]".as_slice(), Malformed::NotObject(Segment::Payload)),
        (
            b"\"claims\"".as_slice(),
            Malformed::NotObject(Segment::Payload),
        ),
        (b"{\"a\":1".as_slice(), Malformed::Json(Segment::Payload)),
        (
            b"{\"a\":\"\xc3\x28\"}".as_slice(),
            Malformed::Json(Segment::Payload),
        ),
    ] {
        let token = format!("{}.{}.{}", p[0], b64::encode(payload), p[2]);
        assert_eq!(
            parse(&token).unwrap_err(),
            JoseError::Malformed(segment_err)
        );
    }
    let token = format!("{}.{}.{}", b64::encode(b"null"), p[1], p[2]);
    assert_eq!(
        parse(&token).unwrap_err(),
        JoseError::Malformed(Malformed::NotObject(Segment::Header))
    );
}

#[test]
fn messages_never_echo_the_token() {
    let secret_sub = "s3cr3t-subject-value";
    let mut c = claims();
    c["sub"] = json!(secret_sub);
    c["exp"] = json!(NOW - 1000);
    let token = mint(Algorithm::Es256, &c);
    let err = check(&token).unwrap_err();
    assert_eq!(err, JoseError::Expired);
    assert_eq!(err.to_string(), "Jwt is expired");
    let parsed = parse(&token).unwrap();
    let debug = format!("{parsed:?}");
    assert!(!debug.contains(secret_sub) && !debug.contains(&token[..20]));
    let keys_debug = format!("{:?}", all_keys());
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
    let token = mint(Algorithm::EdDsa, &claims());
    assert!(check(&token).is_ok());
    let keys = all_keys();
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
