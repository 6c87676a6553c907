//! Writes the seed inputs of `corpus/<target>/seed-*` (run by hand, then `cargo fuzz cmin`):
//! `cargo test --manifest-path fuzz/Cargo.toml --no-default-features --test seeds -- --ignored`.
//! Seeds: Istio's fixture tokens and JWKS (`tests/fixtures/istio/`), tokens minted with the fuzz
//! key (valid, expired, hostile headers), configurations from `docs/`, request shapes, and `cnf`
//! claims.

use std::path::Path;

use meshguard_fuzz::{FUZZ_ISSUER, NOW, ed25519_jwk, mint_ed25519};
use meshguard_test_support::b64;
use serde_json::json;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn fixture(rel: &str) -> Vec<u8> {
    meshguard_test_support::istio(rel).into_bytes()
}

const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

#[test]
#[ignore = "writes corpus seeds"]
fn write_seeds() {
    // token
    for name in ["demo.jwt", "groups-scope.jwt"] {
        write("token", name, &fixture(name));
    }
    for name in [
        "TokenIssuer1.jwt",
        "TokenIssuer1WithAudList.jwt",
        "TokenIssuer1WithNestedClaims1.jwt",
        "TokenIssuer2WithSpaceDelimitedScope.jwt",
        "TokenExpired.jwt",
        "TokenInvalid.jwt",
    ] {
        write("token", name, &fixture(&format!("tests_common_jwt/{name}")));
    }
    let header = br#"{"alg":"EdDSA","kid":"fuzz-ed","typ":"JWT"}"#;
    let claims = json!({"iss": FUZZ_ISSUER, "sub": "alice", "aud": ["foo", "bar"], "iat": NOW - 10,
        "nbf": NOW - 10, "exp": NOW + 3600, "groups": ["admin"], "scope": "read write"});
    write(
        "token",
        "ed-valid.jwt",
        mint_ed25519(header, claims.to_string().as_bytes()).as_bytes(),
    );
    let expired = json!({"iss": FUZZ_ISSUER, "sub": "alice", "exp": NOW - 3600});
    write(
        "token",
        "ed-expired.jwt",
        mint_ed25519(header, expired.to_string().as_bytes()).as_bytes(),
    );
    let hostile_headers: [(&str, &[u8]); 7] = [
        ("alg-none", br#"{"alg":"nOnE"}"#),
        ("alg-hs256", br#"{"alg":"HS256","kid":"fuzz-ed"}"#),
        ("crit", br#"{"alg":"EdDSA","crit":["b64"],"b64":false}"#),
        (
            "jwk-header",
            br#"{"alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAA"}}"#,
        ),
        (
            "kid-traversal",
            br#"{"alg":"EdDSA","kid":"../../../etc/passwd\u0000\""}"#,
        ),
        ("dup-alg", br#"{"alg":"EdDSA","alg":"none"}"#),
        ("deep", br#"{"alg":"EdDSA","x":[[[[[[[[[[[[]]]]]]]]]]]]}"#),
    ];
    for (name, h) in hostile_headers {
        let t = mint_ed25519(h, claims.to_string().as_bytes());
        write("token", &format!("{name}.jwt"), t.as_bytes());
    }
    // ES256 against the fixed P-256 key (a signature that does not verify: the verification
    // itself, with its precomputed tables, is what runs).
    let es_input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256","kid":"fuzz-ec"}"#),
        b64(claims.to_string().as_bytes())
    );
    let es_sig: Vec<u8> = (0u8..64)
        .map(|i| i.wrapping_mul(97).wrapping_add(13))
        .collect();
    write(
        "token",
        "es256-bad-sig.jwt",
        format!("{es_input}.{}", b64(&es_sig)).as_bytes(),
    );
    let odd_claims: [(&str, &str); 4] = [
        (
            "exp-string",
            r#"{"iss":"https://fuzz.example","exp":"soon"}"#,
        ),
        (
            "exp-float",
            r#"{"iss":"https://fuzz.example","exp":1e300,"iat":-1.5}"#,
        ),
        (
            "aud-object",
            r#"{"iss":"https://fuzz.example","exp":1700003600,"aud":{"a":1}}"#,
        ),
        ("bom", "\u{feff}{\"iss\":\"https://fuzz.example\"}"),
    ];
    for (name, c) in odd_claims {
        write(
            "token",
            &format!("{name}.jwt"),
            mint_ed25519(header, c.as_bytes()).as_bytes(),
        );
    }

    // jwks
    write("jwks", "istio.json", &fixture("jwks.json"));
    write(
        "jwks",
        "istio-common.json",
        &fixture("tests_common_jwt/jwks.json"),
    );
    let ec = json!({"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256", "use": "sig", "x": P256_X, "y": P256_Y});
    let mixed = json!({"keys": [
        ed25519_jwk(), ec,
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "EC", "crv": "P-384", "x": P256_X, "y": P256_Y},
        {"kty": "OKP", "crv": "X25519", "x": "AAAA"},
        {"kty": "RSA", "n": "AQAB", "e": "AQ", "key_ops": ["verify"]},
        {"kty": "EC", "crv": "P-256", "use": "enc", "x": P256_X, "y": P256_Y},
        {"kty": "EC", "crv": "P-256", "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        7, null, {"kty": ["RSA"]}
    ], "extra": {"ignored": true}});
    write("jwks", "mixed.json", mixed.to_string().as_bytes());
    write(
        "jwks",
        "ed.json",
        json!({"keys": [ed25519_jwk()]}).to_string().as_bytes(),
    );
    write("jwks", "dup.json", br#"{"keys":[],"keys":[]}"#);

    // config
    let cfg = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/policy_config.json"),
    )
    .unwrap();
    let jwks_text = json!({"keys": [ed25519_jwk()]})
        .to_string()
        .replace('"', "\\\"");
    write(
        "config",
        "policy.json",
        cfg.replace("FUZZ_JWKS", &jwks_text).as_bytes(),
    );
    let full = json!({
        "jwtRules": [{
            "issuer": "https://idp.example.com",
            "audiences": ["api.example.com"],
            "jwksUri": "https://idp.example.com/.well-known/jwks.json",
            "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}],
            "fromParams": ["access_token"],
            "fromCookies": ["np_scope_token"],
            "outputClaimToHeaders": [{"header": "x-user-id", "claim": "sub"}],
            "outputPayloadToHeader": "x-jwt-payload",
            "forwardOriginalToken": false,
            "timeout": "5s",
            "spaceDelimitedClaims": ["roles"],
            "jwksCluster": "idp",
            "algorithms": ["ES256", "EdDSA", "RS256", "PS256"],
            "clockSkewSeconds": 60,
            "requireExpiration": true,
            "maxLifetimeSeconds": 86400,
            "typ": ["JWT", "at+jwt"],
            "requiredClaims": ["sub"],
            "jwksCacheDurationSeconds": 600
        }, {"issuer": "https://discovery.example.com", "timeout": "1.5s"}],
        "policies": [{"name": "require-jwt", "action": "ALLOW", "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}],
        "unknownIssuer": "ignore",
        "maxTokenBytes": 8192,
        "unauthorizedBody": false,
        "forbiddenBody": "no",
        "trustedXffHops": 2,
        "trustXfcc": true,
        "pathNormalization": "DECODE_AND_MERGE_SLASHES"
    });
    write(
        "config",
        "full.json",
        serde_json::to_string_pretty(&full).unwrap().as_bytes(),
    );
    write("config", "empty.json", b"");
    write(
        "config",
        "bad-alg.json",
        br#"{"jwtRules":[{"issuer":"i","jwks":"{}","algorithms":["HS256"]}]}"#,
    );

    // policy: method, path, host, peer, source ip, destination ip, port, sni, claims, headers
    let requests: [(&str, String); 6] = [
        ("jwt-allowed", format!(
            "GET\n/public/a/b?x=1\napi.example.com:443\n\n10.1.2.3\n10.9.9.8\n443\n\n{}\nx-tags: a, xb\nx-forwarded-for: 1.1.1.1, 2.2.2.2",
            json!({"iss": FUZZ_ISSUER, "sub": "alice", "groups": ["admin"], "aud": "x", "azp": "y",
                   "nested": {"key1": ["a", "b"]}, "scope": "a b", "roles": "r1 r2", "exp": NOW + 60}))),
        ("mesh", "POST\n/admin/../admin//x\nfoo.example.com\nspiffe://cluster.local/ns/default/sa/admin\n192.168.1.1\n::1\n8080\nsvc.ns.svc.cluster.local\n\nx-debug: true-ish".into()),
        ("nul-path", "GET\n/a%00b\n\n\n\n\n\n\n\n".into()),
        ("sa", "DELETE\n/api/v1/secret/x/y\nAPI.EXAMPLE.COM\nspiffe://cluster.local/ns/ns1/sa/sa1\n::ffff:10.0.0.1\n\n22\n\n{\"iss\":\"https://fuzz.example\",\"sub\":\"mallory\",\"exp\":1}".into()),
        ("plaintext", "GET\n//private\n\n\n\n\n\n\n".into()),
        ("xff", "HEAD\n/health\n\n\n127.0.0.2\n\n\n\n\nx-forwarded-for: 192.168.7.7\nx-forwarded-client-cert: By=spiffe://a;URI=spiffe://b".into()),
    ];
    for (name, r) in requests {
        write("policy", name, r.as_bytes());
    }

    // extract: :path \0 cookie \0 authorization \0 x-jwt \0 x-token \0 :authority
    let t = std::str::from_utf8(&fixture("demo.jwt"))
        .unwrap()
        .to_owned();
    let shapes: [(&str, String); 5] = [
        (
            "all",
            format!(
                "/p?a=1&access_token={t}&tok%25en=x#frag\0session={t}; np_scope_token=\"q\"; a=b\0Bearer {t}\0{t}\0tok abc\0example.com"
            ),
        ),
        (
            "cookies",
            "/\0;;=; session=; session=a; =b; c\0Bearer  \0\0\0".into(),
        ),
        (
            "params",
            "/x?access_token=%41%zz&access_token=b&&=&x\0\0bearer x\0\0tok \0h\r\nx: y".into(),
        ),
        (
            "utf8",
            "/\u{e9}?access_token=%FF%FE\0session=\u{ff}\0Bearer \u{1F600}\0\0\0".into(),
        ),
        ("realm", "/\"\\\u{7f}?q\0\0\0\0\0\"a\\b\"".into()),
    ];
    for (name, s) in shapes {
        write("extract", name, s.as_bytes());
    }

    // cnf: the JSON text of a token's `cnf` claim (bound to the target's first certificate)
    let x5t = "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo";
    let cnfs: [(&str, String); 8] = [
        ("bound", json!({"x5t#S256": x5t}).to_string()),
        (
            "bound-rfc-bits",
            json!({"x5t#S256": x5t.replace("Wlo", "Wlr")}).to_string(),
        ),
        ("other", json!({"x5t#S256": b64([0xc3; 32])}).to_string()),
        (
            "dpop",
            json!({"jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}).to_string(),
        ),
        ("both", json!({"jkt": "x", "x5t#S256": x5t}).to_string()),
        ("hex", json!({"x5t#S256": "5a".repeat(32)}).to_string()),
        ("not-object", json!([x5t]).to_string()),
        ("empty", "{}".into()),
    ];
    for (name, s) in cnfs {
        write("cnf", name, s.as_bytes());
    }

    // dpop: `<header>\n<payload>` signed with the fuzz key by the target, or a whole proof.
    let mut jwk = ed25519_jwk();
    jwk.as_object_mut().map(|o| o.remove("kid"));
    let header = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk});
    let claims = |htm: &str, htu: &str, iat: u64| {
        json!({"jti": "e1j3V_bKic8-LAEB", "htm": htm, "htu": htu, "iat": iat,
               "ath": meshguard_test_support::ath("access.token.value")})
    };
    let proofs = [
        (
            "valid",
            header.clone(),
            claims("POST", "https://api.example.com/resource", NOW),
        ),
        (
            "normalised-uri",
            header.clone(),
            claims(
                "POST",
                "HTTPS://API.example.com:443/a/../%72esource",
                NOW - 30,
            ),
        ),
        (
            "other-method",
            header.clone(),
            claims("GET", "https://api.example.com/resource", NOW),
        ),
        (
            "stale",
            header.clone(),
            claims("POST", "https://api.example.com/resource", NOW - 3600),
        ),
        (
            "private-member",
            json!({"typ": "dpop+jwt", "alg": "EdDSA",
                   "jwk": {"kty": "OKP", "crv": "Ed25519", "x": ed25519_jwk()["x"], "d": "AAAA"}}),
            claims("POST", "https://api.example.com/resource", NOW),
        ),
        (
            "media-type",
            json!({"typ": "application/DPoP+JWT", "alg": "EdDSA", "jwk": header["jwk"], "kid": "k"}),
            claims("POST", "https://api.example.com/resource", NOW),
        ),
    ];
    for (name, header, claims) in proofs {
        write("dpop", name, format!("{header}\n{claims}").as_bytes());
    }
    // RFC 9449 Figure 3, a whole proof (ES256).
    write(
        "dpop",
        "rfc9449-figure3",
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
        .as_bytes(),
    );
}
