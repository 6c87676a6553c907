//! DPoP (RFC 9449) in a real Envoy with two workers (`--concurrency 2`): access tokens from the
//! demo IdP bound to a client key (`cnf.jkt`), proofs signed with ES256, EdDSA and RS256 client
//! keys, each request on its own connection. A proof replayed on a new connection is refused
//! whichever worker takes it (the replay cache is proxy shared data, one per Envoy process).

use crate::common::*;
use meshguard_demo_idp::TokenSpec;
use meshguard_e2e::stack::StackOpts;
use meshguard_e2e::{Req, Resp, send};
use meshguard_test_support::{self as support, Key};
use serde_json::json;

const PATH: &str = "/orders";
const HTU: &str = "http://api.example.com/orders";

fn now() -> u64 {
    meshguard_demo_idp::idp::now_unix() as u64
}

fn request(token: &str, proof: &str) -> Req {
    Req::post(&format!("{PATH}?page=2"))
        .header("authorization", &format!("DPoP {token}"))
        .header("dpop", proof)
}

fn assert_dpop_401(r: &Resp, error: &str, description: &str) {
    assert_eq!(r.status, 401, "{description}: {}", r.summary());
    let www = r.header("www-authenticate").unwrap_or_default();
    assert_eq!(
        www,
        format!(
            "DPoP realm=\"http://{AUD}{PATH}\", error=\"{error}\", \
             error_description=\"{description}\", algs=\"RS256 ES256 EdDSA\""
        ),
        "{}",
        r.summary()
    );
    assert_eq!(r.text(), description);
}

#[test]
fn dpop_proofs_in_envoy_with_two_workers() {
    let mut dpop_rule = rule();
    dpop_rule["dpop"] = json!({"maxAgeSeconds": 30});
    let plugin = json!({"jwtRules": [dpop_rule]});
    let stack = meshguard_stack(
        StackOpts {
            concurrency: 2,
            ..StackOpts::default()
        },
        plugin,
    );
    let port = stack.port(LISTENER);
    let bound_to = |key: &Key| {
        let jkt = support::jwk_thumbprint(&support::dpop_jwk(key));
        stack
            .idp
            .mint(
                &TokenSpec::default()
                    .aud(AUD)
                    .claim("cnf", json!({"jkt": jkt})),
            )
            .unwrap()
    };

    // One client key per proof algorithm: 200, the token and the proof removed upstream.
    for (alg, key) in [
        ("ES256", Key::from(support::p256_key_from(0x61))),
        ("EdDSA", Key::from(support::ed25519_key_from(0x62))),
        ("RS256", Key::rsa()),
    ] {
        let token = bound_to(&key);
        let proof = support::dpop_proof(&key, alg, "POST", HTU, now(), &format!("{alg}-1"), &token);
        let r = send(port, &request(&token, &proof)).unwrap();
        assert_echo(&r);
        assert_eq!(r.echoed("x-user-id"), vec!["alice"], "{alg}");
        assert!(
            r.echoed("authorization").is_empty() && r.echoed("dpop").is_empty(),
            "{alg}"
        );
        // The same proof again, each time on a new connection (either worker): refused.
        for _ in 0..6 {
            let r = send(port, &request(&token, &proof)).unwrap();
            assert_dpop_401(&r, "invalid_dpop_proof", "DPoP proof was already used");
        }
    }

    let key = Key::from(support::p256_key_from(0x63));
    let token = bound_to(&key);
    let t = now();
    let proof = |method: &str, uri: &str, iat: u64, jti: &str, ath_of: &str| {
        support::dpop_proof(&key, "ES256", method, uri, iat, jti, ath_of)
    };
    let refusals = [
        (
            proof("GET", HTU, t, "m", &token),
            "invalid_dpop_proof",
            "DPoP proof htm does not match the request method",
        ),
        (
            proof("POST", "http://api.example.com/other", t, "u", &token),
            "invalid_dpop_proof",
            "DPoP proof htu does not match the request URI",
        ),
        (
            proof("POST", "https://api.example.com/orders", t, "s", &token),
            "invalid_dpop_proof",
            "DPoP proof htu does not match the request URI",
        ),
        (
            proof("POST", HTU, t, "a", "another-token"),
            "invalid_dpop_proof",
            "DPoP proof ath does not match the access token",
        ),
        (
            proof("POST", HTU, t - 120, "stale", &token),
            "invalid_dpop_proof",
            "DPoP proof iat is outside the acceptable window",
        ),
        (
            proof("POST", HTU, t + 600, "future", &token),
            "invalid_dpop_proof",
            "DPoP proof iat is outside the acceptable window",
        ),
        (
            support::dpop_proof(
                &Key::from(support::p256_key_from(0x64)),
                "ES256",
                "POST",
                HTU,
                t,
                "k",
                &token,
            ),
            "invalid_token",
            "DPoP proof key does not match the token's cnf.jkt",
        ),
    ];
    for (proof, error, description) in &refusals {
        let r = send(port, &request(&token, proof)).unwrap();
        assert_dpop_401(&r, error, description);
    }
    // RFC 3986 normalisation: the same URI written otherwise is accepted.
    let normalised = proof(
        "POST",
        "HTTP://API.example.com:80/a/../%6Frders",
        t,
        "n",
        &token,
    );
    assert_echo(&send(port, &request(&token, &normalised)).unwrap());
    // No proof; the bound token as a bearer token (RFC 9449 §7.2).
    let r = send(
        port,
        &Req::post(PATH).header("authorization", &format!("DPoP {token}")),
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.summary());
    let fresh = proof("POST", HTU, t, "bearer", &token);
    let r = send(port, &Req::post(PATH).bearer(&token).header("dpop", &fresh)).unwrap();
    assert_eq!(r.status, 401, "{}", r.summary());
    assert!(
        r.header("www-authenticate")
            .unwrap_or_default()
            .starts_with("DPoP realm=")
            && r.text() == "DPoP-bound token presented as a bearer token",
        "{}",
        r.summary()
    );
    // An unbound bearer token is still a bearer token where DPoP is not required.
    let unbound = stack.idp.mint(&TokenSpec::default().aud(AUD)).unwrap();
    assert_echo(&send(port, &Req::post(PATH).bearer(&unbound)).unwrap());

    let stats = stack.envoy.stats();
    let count = |reason: &str| denied(&stats, reason);
    assert_eq!(count("dpop_proof_replay"), 18, "{stats:?}");
    assert_eq!(count("dpop_proof_iat"), 2);
    assert_eq!(count("dpop_key_mismatch"), 1);
    assert_eq!(count("cnf_dpop_as_bearer"), 1);
    // Never a token or a proof in Envoy's log.
    let log = stack.envoy.log();
    assert!(!log.contains(&token) && !log.contains(&normalised));
}
