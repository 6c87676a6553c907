//! DPoP (RFC 9449) through the engine with the fake host: each check of §4.3 refused on its
//! own, the `DPoP` challenge of §7.1, the replay cache shared by two simulated worker VMs, the
//! public origin, and the binding the policies see.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use meshguard_test_support::{self as support, Key};
use serde_json::{Value, json};

use super::testing::{FakeHost, ROOT_IDS, SharedData};
use super::{Decided, Engine};

const ISSUER: &str = "https://idp.example";
const URI: &str = "https://api.example/orders";

/// The client's DPoP key (not the issuer's).
fn client() -> Key {
    Key::from(support::p256_key_from(42))
}

/// An access token bound to `key` (`cnf.jkt`), or unbound.
fn access_token(key: Option<&Key>) -> String {
    let mut claims = json!({"iss": ISSUER, "sub": "alice", "exp": support::NOW + 3600});
    if let Some(key) = key {
        claims["cnf"] = json!({"jkt": support::jwk_thumbprint(&support::dpop_jwk(key))});
    }
    support::token("ES256", &claims)
}

fn shared() -> SharedData {
    Rc::new(RefCell::new(HashMap::new()))
}

/// One inline-keys rule with `dpop` (`dpop` is the block's JSON) plus `extra`, and `top`.
fn configure(host: &FakeHost, dpop: &str, extra: &str, top: &str) -> Engine {
    let jwks = Value::String(support::jwks().to_string());
    let config = format!(
        r#"{{"jwtRules":[{{"issuer":"{ISSUER}","jwks":{jwks},"algorithms":["ES256","EdDSA","RS256"],"dpop":{dpop},"outputClaimToHeaders":[{{"header":"x-sub","claim":"sub"}}]{extra}}}]{top}}}"#
    );
    host.set_current(ROOT_IDS);
    Engine::configure(host, config.as_bytes()).expect("configuration")
}

/// Sends request `id`: GET `URI` with `authorization` and the `proofs` as `DPoP` headers.
fn send(
    host: &FakeHost,
    engine: &Engine,
    id: u32,
    authorization: &str,
    proofs: &[&str],
) -> Decided {
    send_as(
        host,
        engine,
        id,
        "GET",
        ("https", "api.example", "/orders"),
        authorization,
        proofs,
    )
}

fn send_as(
    host: &FakeHost,
    engine: &Engine,
    id: u32,
    method: &str,
    (scheme, authority, path): (&str, &str, &str),
    authorization: &str,
    proofs: &[&str],
) -> Decided {
    let mut headers = vec![
        (":scheme", scheme),
        (":authority", authority),
        (":path", path),
        (":method", method),
        ("authorization", authorization),
    ];
    for proof in proofs {
        headers.push(("dpop", proof));
    }
    host.request(id, &headers);
    engine.on_request_headers(host, id)
}

fn proof(key: &Key, alg: &str, token: &str, jti: &str) -> String {
    support::dpop_proof(key, alg, "GET", URI, support::NOW, jti, token)
}

/// The 401's challenge, error code, description and reason counter.
fn assert_refused(
    host: &FakeHost,
    id: u32,
    scheme: &str,
    error: &str,
    description: &str,
    reason: &str,
) {
    let request = host.get(id);
    let (status, headers, _) = request.response.clone().expect("a local response");
    assert_eq!(status, 401, "{description}");
    let challenge = headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let want = format!(
        "{scheme} realm=\"https://api.example/orders\", error=\"{error}\", error_description=\"{description}\""
    );
    assert!(challenge.starts_with(&want), "{challenge}\nwant {want}");
    if scheme == "DPoP" {
        assert!(
            challenge.ends_with(", algs=\"RS256 ES256 EdDSA\""),
            "{challenge}"
        );
    }
    assert!(
        host.counter(&format!("meshguard.denied.{reason}")) >= 1,
        "counter {reason}"
    );
}

#[test]
fn a_valid_proof_is_accepted_and_consumed() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, "{}", "", "");
    let key = client();
    let token = access_token(Some(&key));
    let good = proof(&key, "ES256", &token, "one");
    assert_eq!(
        send(&host, &engine, 1, &format!("DPoP {token}"), &[&good]),
        Decided::Continue
    );
    let request = host.get(1);
    assert_eq!(request.header("x-sub"), Some(&b"alice"[..]));
    assert_eq!(
        request.header("authorization"),
        None,
        "the token is removed"
    );
    assert_eq!(request.header("dpop"), None, "and its proof with it");
}

#[test]
fn ed25519_and_rsa_proof_keys() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, "{}", "", "");
    for (i, (key, alg)) in [
        (Key::from(support::ed25519_key_from(5)), "EdDSA"),
        (Key::rsa(), "RS256"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = u32::try_from(i).unwrap() + 1;
        let token = access_token(Some(&key));
        let good = proof(&key, alg, &token, alg);
        assert_eq!(
            send(&host, &engine, id, &format!("DPoP {token}"), &[&good]),
            Decided::Continue,
            "{alg}"
        );
    }
}

#[test]
fn a_replay_is_refused_on_every_worker_of_the_process() {
    let process = shared();
    let worker_a = FakeHost::new(Rc::clone(&process));
    let worker_b = FakeHost::new(Rc::clone(&process));
    let engine_a = configure(&worker_a, "{}", "", "");
    let engine_b = configure(&worker_b, "{}", "", "");
    let key = client();
    let token = access_token(Some(&key));
    let good = proof(&key, "ES256", &token, "once");
    let auth = format!("DPoP {token}");
    assert_eq!(
        send(&worker_a, &engine_a, 1, &auth, &[&good]),
        Decided::Continue
    );
    // The same proof on the other worker (another connection): refused.
    assert_eq!(
        send(&worker_b, &engine_b, 2, &auth, &[&good]),
        Decided::Answered
    );
    assert_refused(
        &worker_b,
        2,
        "DPoP",
        "invalid_dpop_proof",
        "DPoP proof was already used",
        "dpop_proof_replay",
    );
    // And on the first worker too (a cached token is re-checked against every proof).
    assert_eq!(
        send(&worker_a, &engine_a, 3, &auth, &[&good]),
        Decided::Answered
    );
    // A new proof (new jti) is fine.
    let fresh = proof(&key, "ES256", &token, "twice");
    assert_eq!(
        send(&worker_b, &engine_b, 4, &auth, &[&fresh]),
        Decided::Continue
    );
    // Another process (its own shared data) has not seen it: the replay cache's scope.
    let elsewhere = FakeHost::new(shared());
    let engine_c = configure(&elsewhere, "{}", "", "");
    assert_eq!(
        send(&elsewhere, &engine_c, 5, &auth, &[&good]),
        Decided::Continue
    );
}

#[test]
fn each_proof_check_refuses_on_its_own() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, "{}", "", "");
    let key = client();
    let token = access_token(Some(&key));
    let auth = format!("DPoP {token}");
    let claims = |jti: &str| json!({"jti": jti, "htm": "GET", "htu": URI, "iat": support::NOW, "ath": support::ath(&token)});
    let with = |jti: &str, change: &dyn Fn(&mut Value)| {
        let mut c = claims(jti);
        change(&mut c);
        support::dpop_proof_with(&key, "ES256", &json!({}), &c)
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            with("m", &|c| c["htm"] = json!("POST")),
            "DPoP proof htm does not match the request method",
            "dpop_proof_htm",
        ),
        (
            with("m2", &|c| c["htm"] = json!("get")),
            "DPoP proof htm does not match the request method",
            "dpop_proof_htm",
        ),
        (
            with("u", &|c| c["htu"] = json!("https://api.example/other")),
            "DPoP proof htu does not match the request URI",
            "dpop_proof_htu",
        ),
        (
            with("u2", &|c| c["htu"] = json!("http://api.example/orders")),
            "DPoP proof htu does not match the request URI",
            "dpop_proof_htu",
        ),
        (
            with("u3", &|c| {
                c["htu"] = json!("https://api.example:8443/orders")
            }),
            "DPoP proof htu does not match the request URI",
            "dpop_proof_htu",
        ),
        (
            with("s", &|c| c["iat"] = json!(support::NOW - 61)),
            "DPoP proof iat is outside the acceptable window",
            "dpop_proof_iat",
        ),
        (
            with("f", &|c| c["iat"] = json!(support::NOW + 61)),
            "DPoP proof iat is outside the acceptable window",
            "dpop_proof_iat",
        ),
        (
            with("a", &|c| c["ath"] = json!(support::ath("another token"))),
            "DPoP proof ath does not match the access token",
            "dpop_proof_ath",
        ),
        (
            with("a2", &|c| {
                c.as_object_mut().unwrap().remove("ath");
            }),
            "DPoP proof ath does not match the access token",
            "dpop_proof_ath",
        ),
        (
            with("j", &|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            "DPoP proof claim [jti] is missing or malformed",
            "dpop_proof_claim",
        ),
        (
            with("i", &|c| c["iat"] = json!("now")),
            "DPoP proof claim [iat] is missing or malformed",
            "dpop_proof_claim",
        ),
        (
            support::dpop_proof_with(&key, "ES256", &json!({"typ": "JWT"}), &claims("t")),
            "DPoP proof typ is not dpop+jwt",
            "dpop_proof_typ",
        ),
        (
            support::dpop_proof_with(&key, "ES256", &json!({"typ": null}), &claims("t2")),
            "DPoP proof typ is not dpop+jwt",
            "dpop_proof_typ",
        ),
        (
            support::dpop_proof_with(&key, "ES256", &json!({"jwk": null}), &claims("k")),
            "DPoP proof header has no jwk",
            "dpop_proof_key",
        ),
        (
            "not.a.proof".to_owned(),
            "DPoP proof is not a well-formed JWT",
            "dpop_proof_malformed",
        ),
    ];
    for (i, (bad, description, reason)) in cases.iter().enumerate() {
        let id = u32::try_from(i).unwrap() + 1;
        assert_eq!(
            send(&host, &engine, id, &auth, &[bad]),
            Decided::Answered,
            "{description}"
        );
        assert_refused(&host, id, "DPoP", "invalid_dpop_proof", description, reason);
    }
    // Within the window: iat 60 s old, or 60 s ahead (the rule's clock skew).
    for (id, iat, jti) in [
        (100, support::NOW - 60, "old"),
        (101, support::NOW + 60, "ahead"),
    ] {
        let ok = with(jti, &|c| c["iat"] = json!(iat));
        assert_eq!(
            send(&host, &engine, id, &auth, &[&ok]),
            Decided::Continue,
            "{iat}"
        );
    }
}

#[test]
fn key_and_presentation_refusals() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, "{}", "", "");
    let key = client();
    let token = access_token(Some(&key));
    let auth = format!("DPoP {token}");
    // A proof by another key: the token's cnf.jkt names the client's (invalid_token, §7.1).
    let other = Key::from(support::p256_key_from(43));
    let stolen = proof(&other, "ES256", &token, "x");
    assert_eq!(
        send(&host, &engine, 1, &auth, &[&stolen]),
        Decided::Answered
    );
    assert_refused(
        &host,
        1,
        "DPoP",
        "invalid_token",
        "DPoP proof key does not match the token's cnf.jkt",
        "dpop_key_mismatch",
    );
    // No proof, two proofs.
    assert_eq!(send(&host, &engine, 2, &auth, &[]), Decided::Answered);
    assert_refused(
        &host,
        2,
        "DPoP",
        "invalid_dpop_proof",
        "DPoP proof is missing",
        "dpop_proof_missing",
    );
    let (p1, p2) = (
        proof(&key, "ES256", &token, "p1"),
        proof(&key, "ES256", &token, "p2"),
    );
    assert_eq!(
        send(&host, &engine, 3, &auth, &[&p1, &p2]),
        Decided::Answered
    );
    assert_refused(
        &host,
        3,
        "DPoP",
        "invalid_dpop_proof",
        "more than one DPoP proof",
        "dpop_proof_repeated",
    );
    // The DPoP-bound token as a bearer token (§7.2), even with a valid proof beside it.
    let good = proof(&key, "ES256", &token, "bearer");
    assert_eq!(
        send(&host, &engine, 4, &format!("Bearer {token}"), &[&good]),
        Decided::Answered
    );
    assert_refused(
        &host,
        4,
        "DPoP",
        "invalid_token",
        "DPoP-bound token presented as a bearer token",
        "cnf_dpop_as_bearer",
    );
    // An unbound token under the DPoP scheme.
    let unbound = access_token(None);
    let proof_for_unbound = proof(&key, "ES256", &unbound, "u");
    assert_eq!(
        send(
            &host,
            &engine,
            5,
            &format!("DPoP {unbound}"),
            &[&proof_for_unbound]
        ),
        Decided::Answered
    );
    assert_refused(
        &host,
        5,
        "DPoP",
        "invalid_token",
        "token presented with DPoP is not DPoP-bound",
        "dpop_token_not_bound",
    );
    // A bad access token under the DPoP scheme is challenged as DPoP too.
    assert_eq!(
        send(&host, &engine, 6, "DPoP not-a-jwt", &[&good]),
        Decided::Answered
    );
    let (_, headers, _) = host.get(6).response.unwrap();
    let challenge = &headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .unwrap()
        .1;
    assert!(challenge.starts_with("DPoP realm="), "{challenge}");
    // An unbound bearer token is fine where DPoP is not required ...
    assert_eq!(
        send(&host, &engine, 7, &format!("Bearer {unbound}"), &[]),
        Decided::Continue
    );
    // ... and refused where it is.
    let strict_host = FakeHost::new(shared());
    let strict = configure(&strict_host, r#"{"required":true}"#, "", "");
    assert_eq!(
        send(&strict_host, &strict, 8, &format!("Bearer {unbound}"), &[]),
        Decided::Answered
    );
    assert_refused(
        &strict_host,
        8,
        "DPoP",
        "invalid_token",
        "DPoP-bound token required",
        "dpop_required",
    );
}

#[test]
fn htu_behind_a_proxy_uses_the_public_origin() {
    let host = FakeHost::new(shared());
    let key = client();
    let token = access_token(Some(&key));
    let auth = format!("DPoP {token}");
    let internal = ("http", "orders.internal:8080", "/orders?page=2");
    // The client signed the public URI; the request arrives rewritten.
    let public = proof(&key, "ES256", &token, "pub");
    let plain = configure(&host, "{}", "", "");
    assert_eq!(
        send_as(&host, &plain, 1, "GET", internal, &auth, &[&public]),
        Decided::Answered
    );
    let (_, headers, _) = host.get(1).response.unwrap();
    assert!(
        headers
            .iter()
            .any(|(_, v)| v.contains("htu does not match")),
        "{headers:?}"
    );
    let host = FakeHost::new(shared());
    let behind = configure(
        &host,
        r#"{"publicOrigin":"https://API.example:443"}"#,
        "",
        "",
    );
    assert_eq!(
        send_as(&host, &behind, 2, "GET", internal, &auth, &[&public]),
        Decided::Continue
    );
}

#[test]
fn policies_see_the_dpop_binding() {
    let host = FakeHost::new(shared());
    let policy = r#","policies":[{"name":"dpop-only","action":"DENY","rules":[{"to":[{"operation":{"paths":["/orders"]}}],"when":[{"key":"request.auth.binding","notValues":["jkt"]}]}]}]"#;
    let engine = configure(&host, "{}", "", policy);
    let key = client();
    let bound = access_token(Some(&key));
    let good = proof(&key, "ES256", &bound, "p");
    assert_eq!(
        send(&host, &engine, 1, &format!("DPoP {bound}"), &[&good]),
        Decided::Continue
    );
    let unbound = access_token(None);
    assert_eq!(
        send(&host, &engine, 2, &format!("Bearer {unbound}"), &[]),
        Decided::Answered
    );
    assert_eq!(host.get(2).status(), Some(403));
}

#[test]
fn configuration_errors_name_the_field() {
    let host = FakeHost::new(shared());
    host.set_current(ROOT_IDS);
    let jwks = Value::String(support::jwks().to_string());
    for (dpop, top) in [
        (r#"{"maxAgeSeconds":0}"#, ""),
        (r#"{"maxAgeSeconds":3601}"#, ""),
        (r#"{"publicOrigin":"https://api.example/path"}"#, ""),
        (r#"{"publicOrigin":"api.example"}"#, ""),
        (r#"{"nonce":true}"#, ""),
        ("{}", r#","dpopReplayCacheEntries":0"#),
    ] {
        let config =
            format!(r#"{{"jwtRules":[{{"issuer":"{ISSUER}","jwks":{jwks},"dpop":{dpop}}}]{top}}}"#);
        let error = crate::config::CompiledConfig::from_json(config.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("dpop") || error.contains("Dpop") || error.contains("`nonce`"),
            "{error}"
        );
        assert!(Engine::configure(&host, config.as_bytes()).is_none());
    }
    // The scheme is the dpop block's, not a token location.
    let config = format!(
        r#"{{"jwtRules":[{{"issuer":"{ISSUER}","jwks":{jwks},"fromHeaders":[{{"name":"Authorization","prefix":"DPoP "}}]}}]}}"#
    );
    let error = crate::config::CompiledConfig::from_json(config.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("jwtRules[0].fromHeaders[0]"), "{error}");
    // Without dpop rules the replay cache setting is an error, not ignored.
    let config = format!(
        r#"{{"jwtRules":[{{"issuer":"{ISSUER}","jwks":{jwks}}}],"dpopReplayCacheEntries":10}}"#
    );
    assert!(crate::config::CompiledConfig::from_json(config.as_bytes()).is_err());
}

#[test]
fn a_megabyte_proof_header_is_refused_cleanly() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, "{}", "", "");
    let token = access_token(Some(&client()));
    let huge = format!("{}.e30.", "e".repeat(1 << 20));
    assert_eq!(
        send(&host, &engine, 1, &format!("DPoP {token}"), &[&huge]),
        Decided::Answered
    );
    assert_refused(
        &host,
        1,
        "DPoP",
        "invalid_dpop_proof",
        "DPoP proof is not a well-formed JWT",
        "dpop_proof_malformed",
    );
}

#[test]
fn a_client_key_is_remembered_only_after_a_proof_passed() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, "{}", "", "");
    let remembered = || engine.state.borrow().proof_keys.len();
    let key = client();
    let token = access_token(Some(&key));
    let auth = format!("DPoP {token}");
    // A proof by another key is refused and its key not kept.
    let other = Key::from(support::p256_key_from(44));
    let stolen = proof(&other, "ES256", &token, "x");
    assert_eq!(
        send(&host, &engine, 1, &auth, &[&stolen]),
        Decided::Answered
    );
    assert_eq!(remembered(), 0);
    // Accepted proofs: the client's key is kept once, and the next proofs verify with it.
    for (id, jti) in [(2, "a"), (3, "b"), (4, "c")] {
        let good = proof(&key, "ES256", &token, jti);
        assert_eq!(send(&host, &engine, id, &auth, &[&good]), Decided::Continue);
        assert_eq!(remembered(), 1);
    }
    // A replay with the remembered key is still a replay.
    let again = proof(&key, "ES256", &token, "c");
    assert_eq!(send(&host, &engine, 5, &auth, &[&again]), Decided::Answered);
    assert_refused(
        &host,
        5,
        "DPoP",
        "invalid_dpop_proof",
        "DPoP proof was already used",
        "dpop_proof_replay",
    );
}
