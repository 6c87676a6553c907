//! DPoP (RFC 9449) through the real module: proofs checked per request in the wasm VM, and the
//! `jti` replay cache in proxy shared data seen by every worker VM of the process (two simulated
//! workers here; a real Envoy with `--concurrency 2` in the e2e suite).

use meshguard_harness::{Exchange, Host, Result};
use meshguard_test_support::{self as support, Key};
use serde_json::json;

use crate::meshguard_wasm;
use crate::tokens::{ISSUER, claims, jwks, mint};

const URI: &str = "https://api.example.com/orders";

fn client() -> Key {
    Key::from(support::p256_key_from(0x51))
}

fn host(workers: usize) -> Result<Host> {
    let rule = json!({
        "issuer": ISSUER,
        "jwks": jwks(),
        "dpop": {"maxAgeSeconds": 30},
        "outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}],
    });
    Host::load(meshguard_wasm())?
        .workers(workers)
        .configure(json!({ "jwtRules": [rule] }).to_string())
}

fn bound_token(h: &Host, key: &Key) -> String {
    let mut c = claims(h.now_unix());
    c["cnf"] = json!({"jkt": support::jwk_thumbprint(&support::dpop_jwk(key))});
    mint("ES256", &c)
}

fn send(h: &Host, worker: usize, token: &str, proof: &str) -> Result<Exchange> {
    h.request()
        .on_worker(worker)
        .method("POST")
        .path("/orders?page=2")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .send()
}

fn assert_refused(r: &Exchange, error: &str, description: &str) {
    r.assert_status(401).assert_body_contains(description);
    let www = r.response_header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("DPoP realm=")
            && www.contains(&format!("error=\"{error}\""))
            && www.contains(&format!("error_description=\"{description}\""))
            && www.contains("algs=\""),
        "WWW-Authenticate {www:?}\n{}",
        r.describe()
    );
    assert!(!r.continued());
}

#[test]
fn a_proof_is_accepted_once_across_workers() -> Result<()> {
    let h = host(2)?;
    let key = client();
    let token = bound_token(&h, &key);
    let now = h.now_unix();
    let proof = support::dpop_proof(&key, "ES256", "POST", URI, now, "jti-1", &token);
    send(&h, 0, &token, &proof)?
        .assert_continued()
        .assert_upstream_header("x-jwt-sub", "alice")
        .assert_no_upstream_header("authorization")
        .assert_no_upstream_header("dpop");
    // The same proof on the other worker VM: refused from the shared replay cache.
    assert_refused(
        &send(&h, 1, &token, &proof)?,
        "invalid_dpop_proof",
        "DPoP proof was already used",
    );
    // ... and on the first worker again.
    assert_refused(
        &send(&h, 0, &token, &proof)?,
        "invalid_dpop_proof",
        "DPoP proof was already used",
    );
    // A fresh proof works on either worker.
    for (worker, jti) in [(1, "jti-2"), (0, "jti-3")] {
        let fresh = support::dpop_proof(&key, "ES256", "POST", URI, now, jti, &token);
        send(&h, worker, &token, &fresh)?.assert_continued();
    }
    assert_eq!(h.metric("meshguard.denied.dpop_proof_replay"), Some(2));
    assert_eq!(h.logs_containing("reason=dpop_proof_replay").len(), 2);
    assert!(!h.log_dump(None).contains(&proof));
    Ok(())
}

#[test]
fn a_replay_after_the_window_is_stale_not_accepted() -> Result<()> {
    let h = host(2)?;
    let key = client();
    let token = bound_token(&h, &key);
    let proof = support::dpop_proof(&key, "ES256", "POST", URI, h.now_unix(), "late", &token);
    send(&h, 0, &token, &proof)?.assert_continued();
    // Past maxAgeSeconds the replay entry may be gone, but the proof's iat is refused first.
    h.advance(std::time::Duration::from_secs(31))?;
    assert_refused(
        &send(&h, 1, &token, &proof)?,
        "invalid_dpop_proof",
        "DPoP proof iat is outside the acceptable window",
    );
    Ok(())
}

#[test]
fn proof_mismatches_are_refused_in_the_module() -> Result<()> {
    let h = host(1)?;
    let key = client();
    let token = bound_token(&h, &key);
    let now = h.now_unix();
    let wrong = [
        (
            support::dpop_proof(&key, "ES256", "GET", URI, now, "m", &token),
            "invalid_dpop_proof",
            "DPoP proof htm does not match the request method",
        ),
        (
            support::dpop_proof(
                &key,
                "ES256",
                "POST",
                "https://api.example.com/other",
                now,
                "u",
                &token,
            ),
            "invalid_dpop_proof",
            "DPoP proof htu does not match the request URI",
        ),
        (
            support::dpop_proof(&key, "ES256", "POST", URI, now, "a", "another.token"),
            "invalid_dpop_proof",
            "DPoP proof ath does not match the access token",
        ),
        (
            support::dpop_proof(
                &Key::from(support::p256_key_from(0x52)),
                "ES256",
                "POST",
                URI,
                now,
                "k",
                &token,
            ),
            "invalid_token",
            "DPoP proof key does not match the token's cnf.jkt",
        ),
    ];
    for (proof, error, description) in &wrong {
        assert_refused(&send(&h, 0, &token, proof)?, error, description);
    }
    // The bound token as a bearer token (RFC 9449 §7.2).
    let r = h.request().bearer(&token).send()?;
    assert_refused(
        &r,
        "invalid_token",
        "DPoP-bound token presented as a bearer token",
    );
    Ok(())
}
