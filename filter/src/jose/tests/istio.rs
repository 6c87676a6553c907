//! Istio's public token set decides as in Istio: valid ones verify, the expired one is expired,
//! the invalid one does not parse.

use super::*;

/// A file of `tests/fixtures/istio/`, trimmed.
macro_rules! fixture {
    ($path:literal) => {
        &meshguard_test_support::istio($path)
    };
}

/// 2025-11-22: after every `iat` in the set, before every `exp` but TokenExpired's.
const TODAY: u64 = 1_763_800_000;

fn istio_verify(token: &str, jwks_json: &str, iss: &str) -> Result<VerifiedClaims, JoseError> {
    let keys = Jwks::parse(jwks_json.as_bytes()).unwrap();
    verify(&parse(token)?, &keys, &Validation::new(iss), TODAY)
}

#[test]
fn samples_demo_and_groups_scope() {
    let jwks = fixture!("jwks.json");
    let demo = istio_verify(fixture!("demo.jwt"), jwks, "testing@secure.istio.io").unwrap();
    assert_eq!(demo.subject(), Some("testing@secure.istio.io"));
    assert_eq!(demo.claim(&["foo"]), Some(&json!("bar")));
    assert_eq!(
        demo.kid(),
        Some("DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ")
    );
    let groups = istio_verify(
        fixture!("groups-scope.jwt"),
        jwks,
        "testing@secure.istio.io",
    )
    .unwrap();
    assert_eq!(
        groups.claim(&["groups"]),
        Some(&json!(["group1", "group2"]))
    );
    assert_eq!(groups.claim(&["scope"]), Some(&json!(["scope1", "scope2"])));
    // The other set's key does not know this kid.
    assert_eq!(
        istio_verify(
            fixture!("demo.jwt"),
            fixture!("tests_common_jwt/jwks.json"),
            "testing@secure.istio.io"
        )
        .unwrap_err(),
        JoseError::UnknownKid
    );
}

#[test]
fn end_to_end_set() {
    let jwks = fixture!("tests_common_jwt/jwks.json");
    let valid = [
        (
            fixture!("tests_common_jwt/TokenIssuer1.jwt"),
            "test-issuer-1@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer1WithAud.jwt"),
            "test-issuer-1@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer1WithAudList.jwt"),
            "test-issuer-1@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer1WithAzp.jwt"),
            "test-issuer-1@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer1WithCollisionResistantName.jwt"),
            "test-issuer-1@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer1WithNestedClaims1.jwt"),
            "test-issuer-1@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer1WithNestedClaims2.jwt"),
            "test-issuer-1@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer2.jwt"),
            "test-issuer-2@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer2WithCustomScopeSpaceDelimitedScope.jwt"),
            "test-issuer-2@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer2WithSpaceDelimitedPermission.jwt"),
            "test-issuer-2@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer2WithSpaceDelimitedScope.jwt"),
            "test-issuer-2@istio.io",
        ),
        (
            fixture!("tests_common_jwt/TokenIssuer3.jwt"),
            "test-issuer-3@istio.io",
        ),
    ];
    for (token, iss) in valid {
        let parsed = parse(token).unwrap();
        assert_eq!(parsed.issuer(), Some(iss), "routing by unverified iss");
        let claims = istio_verify(token, jwks, iss).unwrap();
        assert_eq!(claims.issuer(), iss);
    }
    let aud_list = istio_verify(
        fixture!("tests_common_jwt/TokenIssuer1WithAudList.jwt"),
        jwks,
        "test-issuer-1@istio.io",
    )
    .unwrap();
    assert_eq!(aud_list.audiences(), vec!["foo", "buzz"]);
    let nested = istio_verify(
        fixture!("tests_common_jwt/TokenIssuer1WithNestedClaims1.jwt"),
        jwks,
        "test-issuer-1@istio.io",
    )
    .unwrap();
    assert_eq!(
        nested.claim(&["nested", "nested-2", "key1"]),
        Some(&json!(["valueA", "valueB"]))
    );

    assert_eq!(
        istio_verify(
            fixture!("tests_common_jwt/TokenExpired.jwt"),
            jwks,
            "test-issuer-1@istio.io"
        )
        .unwrap_err(),
        JoseError::Expired
    );
    assert_eq!(
        parse(fixture!("tests_common_jwt/TokenInvalid.jwt")).unwrap_err(),
        JoseError::Malformed(Malformed::PartCount)
    );
    // Issuer routing matters: issuer 2's token under issuer 1's rule.
    assert_eq!(
        istio_verify(
            fixture!("tests_common_jwt/TokenIssuer2.jwt"),
            jwks,
            "test-issuer-1@istio.io"
        )
        .unwrap_err(),
        JoseError::IssuerMismatch
    );
}

#[test]
fn audiences_as_istio() {
    let jwks = Jwks::parse(fixture!("tests_common_jwt/jwks.json").as_bytes()).unwrap();
    let rule = |auds: &[&str]| Validation {
        audiences: auds.iter().map(|a| a.to_string()).collect(),
        ..Validation::new("test-issuer-1@istio.io")
    };
    let with_aud = parse(fixture!("tests_common_jwt/TokenIssuer1WithAud.jwt")).unwrap();
    let with_list = parse(fixture!("tests_common_jwt/TokenIssuer1WithAudList.jwt")).unwrap();
    let without = parse(fixture!("tests_common_jwt/TokenIssuer1.jwt")).unwrap();
    assert!(verify(&with_aud, &jwks, &rule(&["foo"]), TODAY).is_ok());
    assert!(verify(&with_list, &jwks, &rule(&["bar", "buzz"]), TODAY).is_ok());
    assert_eq!(
        verify(&with_aud, &jwks, &rule(&["bar"]), TODAY).unwrap_err(),
        JoseError::AudienceNotAllowed
    );
    assert_eq!(
        verify(&without, &jwks, &rule(&["foo"]), TODAY).unwrap_err(),
        JoseError::AudienceNotAllowed
    );
}
