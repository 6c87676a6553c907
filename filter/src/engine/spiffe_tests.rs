//! JWT-SVIDs (a rule with `spiffe`) through the engine with the fake host: attribution by the
//! trust domain of `sub` when there is no `iss`, the SPIFFE ID checks, only `jwt-svid` keys of
//! the bundle verifying, a fetched bundle's `spiffe_refresh_hint`, and policies on the SPIFFE ID.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use meshguard_test_support::{self as support, Key};
use serde_json::{Value, json};

use super::testing::{FakeHost, ROOT_IDS, SharedData};
use super::{Decided, Engine};

const TD: &str = "example.org";
const CLIENT: &str = "spiffe://example.org/ns/default/sa/client";
const AUD: &str = "api.example.org";

fn shared() -> SharedData {
    Rc::new(RefCell::new(HashMap::new()))
}

/// The bundle's `jwt-svid` key (kid "jwt") ...
fn jwt_key() -> Key {
    Key::p256()
}

/// ... and its `x509-svid` key (kid "x509"), which must never verify a JWT-SVID.
fn x509_key() -> Key {
    Key::from(support::p256_key_from(9))
}

/// A SPIFFE bundle with both keys, and `extra` members.
fn bundle(extra: &Value) -> String {
    let mut jwt = jwt_key().jwk("jwt");
    jwt["use"] = json!("jwt-svid");
    let mut x509 = x509_key().jwk("x509");
    x509["use"] = json!("x509-svid");
    let mut doc = json!({"keys": [x509, jwt], "spiffe_sequence": 3});
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    doc.to_string()
}

/// A JWT-SVID signed by `key` with `kid`.
fn svid(key: &Key, kid: &str, claims: &Value) -> String {
    support::mint_with(
        &json!({"alg": "ES256", "kid": kid, "typ": "JWT"}),
        claims,
        |input| key.sign("ES256", input),
    )
}

/// Claims of a good JWT-SVID for `CLIENT`, without `iss`.
fn claims() -> Value {
    json!({"sub": CLIENT, "aud": [AUD], "exp": support::NOW + 300})
}

/// One spiffe rule with the bundle inline (`rule_extra` inside the rule), and `top`.
fn configure(host: &FakeHost, rule_extra: &str, top: &str) -> Engine {
    let jwks = Value::String(bundle(&json!({})));
    let config = format!(
        r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"{TD}"}},"audiences":["{AUD}"],"jwks":{jwks},"outputClaimToHeaders":[{{"header":"x-sub","claim":"sub"}}]{rule_extra}}}]{top}}}"#
    );
    if let Err(e) = crate::config::CompiledConfig::from_json(config.as_bytes()) {
        panic!("configuration refused: {e}");
    }
    host.set_current(ROOT_IDS);
    Engine::configure(host, config.as_bytes()).expect("configuration")
}

fn send(host: &FakeHost, engine: &Engine, id: u32, token: &str) -> Decided {
    let auth = format!("Bearer {token}");
    host.request(
        id,
        &[(":path", "/"), (":method", "GET"), ("authorization", &auth)],
    );
    engine.on_request_headers(host, id)
}

fn status(host: &FakeHost, engine: &Engine, id: u32, token: &str) -> u32 {
    match send(host, engine, id, token) {
        Decided::Continue => 200,
        _ => host.get(id).status().unwrap_or(0),
    }
}

#[test]
fn a_jwt_svid_without_iss_is_attributed_by_its_trust_domain() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, "", "");
    let token = svid(&jwt_key(), "jwt", &claims());
    assert_eq!(send(&host, &engine, 1, &token), Decided::Continue);
    assert_eq!(host.get(1).header("x-sub"), Some(CLIENT.as_bytes()));
    // Without a kid, the x509-svid key is not even a candidate: the jwt-svid key verifies.
    let no_kid = support::mint_with(&json!({"alg": "ES256"}), &claims(), |input| {
        jwt_key().sign("ES256", input)
    });
    assert_eq!(status(&host, &engine, 2, &no_kid), 200);
}

#[test]
fn the_x509_svid_key_cannot_verify() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, "", "");
    // Named by its kid: listed, but skipped (no refetch, "no matching key").
    let token = svid(&x509_key(), "x509", &claims());
    assert_eq!(status(&host, &engine, 1, &token), 401);
    // Unnamed: only the jwt-svid key is tried, and it does not verify.
    let unnamed = support::mint_with(&json!({"alg": "ES256"}), &claims(), |input| {
        x509_key().sign("ES256", input)
    });
    assert_eq!(status(&host, &engine, 2, &unnamed), 401);
    // Claiming the jwt-svid kid does not help.
    let forged = svid(&x509_key(), "jwt", &claims());
    assert_eq!(status(&host, &engine, 3, &forged), 401);
}

#[test]
fn the_spiffe_id_and_registered_claims_are_checked() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, "", "");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims();
        edit(&mut c);
        svid(&jwt_key(), "jwt", &c)
    };
    let refused: Vec<(&str, String)> = vec![
        (
            "another trust domain (no rule: unknown issuer)",
            with(&|c| c["sub"] = json!("spiffe://other.org/ns/default/sa/client")),
        ),
        ("not a SPIFFE ID", with(&|c| c["sub"] = json!("client"))),
        (
            "no sub",
            with(&|c| drop(c.as_object_mut().map(|o| o.remove("sub")))),
        ),
        (
            "no aud",
            with(&|c| drop(c.as_object_mut().map(|o| o.remove("aud")))),
        ),
        ("another aud", with(&|c| c["aud"] = json!("other.example"))),
        (
            "no exp",
            with(&|c| drop(c.as_object_mut().map(|o| o.remove("exp")))),
        ),
        ("expired", with(&|c| c["exp"] = json!(support::NOW - 120))),
        (
            "a query in the SPIFFE ID",
            with(&|c| c["sub"] = json!("spiffe://example.org/ns/default?sa=client")),
        ),
        (
            "a port in the SPIFFE ID",
            with(&|c| c["sub"] = json!("spiffe://example.org:443/ns/default/sa/client")),
        ),
        (
            "upper-case trust domain",
            with(&|c| c["sub"] = json!("spiffe://EXAMPLE.org/ns/default/sa/client")),
        ),
        (
            "a dot segment",
            with(&|c| c["sub"] = json!("spiffe://example.org/ns/../sa/client")),
        ),
        (
            "no path",
            with(&|c| c["sub"] = json!("spiffe://example.org")),
        ),
        (
            "an iss no rule has",
            with(&|c| c["iss"] = json!("https://spire.example.org")),
        ),
    ];
    for (i, (what, token)) in refused.iter().enumerate() {
        let id = u32::try_from(i).unwrap() + 10;
        assert_eq!(status(&host, &engine, id, token), 401, "{what}");
    }
    assert_eq!(
        status(&host, &engine, 1, &svid(&jwt_key(), "jwt", &claims())),
        200
    );
}

#[test]
fn an_iss_on_a_spiffe_rule_must_be_its_issuer_and_the_sub_its_trust_domain() {
    let host = FakeHost::new(shared());
    let iss = "https://spire.example.org";
    let engine = configure(&host, &format!(r#","issuer":"{iss}""#), "");
    let mut c = claims();
    c["iss"] = json!(iss);
    assert_eq!(status(&host, &engine, 1, &svid(&jwt_key(), "jwt", &c)), 200);
    // Without iss it is still attributed by its trust domain.
    assert_eq!(
        status(&host, &engine, 2, &svid(&jwt_key(), "jwt", &claims())),
        200
    );
    // With the rule's iss but another trust domain in sub: refused by the SPIFFE ID check.
    c["sub"] = json!("spiffe://other.org/ns/default/sa/client");
    assert_eq!(status(&host, &engine, 3, &svid(&jwt_key(), "jwt", &c)), 401);
}

#[test]
fn policies_see_the_spiffe_id_as_the_request_principal() {
    let host = FakeHost::new(shared());
    let policies = format!(
        r#","policies":[
            {{"name":"by-principal","action":"ALLOW","rules":[{{"from":[{{"source":{{"requestPrincipals":["{CLIENT}"]}}}}],"to":[{{"operation":{{"paths":["/principal"]}}}}]}}]}},
            {{"name":"by-prefix","action":"ALLOW","rules":[{{"from":[{{"source":{{"requestPrincipals":["spiffe://example.org/ns/default/*"]}}}}],"to":[{{"operation":{{"paths":["/prefix"]}}}}]}}]}},
            {{"name":"by-condition","action":"ALLOW","rules":[{{"to":[{{"operation":{{"paths":["/when"]}}}}],"when":[{{"key":"request.auth.principal","values":["{CLIENT}"]}},{{"key":"request.auth.claims[sub]","values":["{CLIENT}"]}}]}}]}}
        ]"#
    );
    let engine = configure(&host, "", &policies);
    let decide = |id: u32, path: &str, sub: &str| {
        let mut c = claims();
        c["sub"] = json!(sub);
        let auth = format!("Bearer {}", svid(&jwt_key(), "jwt", &c));
        host.request(
            id,
            &[
                (":path", path),
                (":method", "GET"),
                ("authorization", &auth),
            ],
        );
        match engine.on_request_headers(&host, id) {
            Decided::Continue => 200,
            _ => host.get(id).status().unwrap_or(0),
        }
    };
    let other = "spiffe://example.org/ns/prod/sa/client";
    for (path, id) in [("/principal", 1), ("/prefix", 3), ("/when", 5)] {
        assert_eq!(decide(id, path, CLIENT), 200, "{path}");
        assert_eq!(decide(id + 1, path, other), 403, "{path} with {other}");
    }
    // Istio's `iss/sub` split does not apply to an iss-less principal: the prefix before the
    // last `/` is not an issuer.
    let split = r#","policies":[{"name":"split","action":"ALLOW","rules":[{"from":[{"source":{"requestPrincipals":["spiffe://example.org/ns/default/sa/*"]}}]}]}]"#;
    let host = FakeHost::new(shared());
    let engine = configure(&host, "", split);
    let token = svid(&jwt_key(), "jwt", &claims());
    assert_eq!(status(&host, &engine, 1, &token), 200);
    let mut c = claims();
    c["sub"] = json!("spiffe://example.org/ns/other/sa/client");
    assert_eq!(status(&host, &engine, 2, &svid(&jwt_key(), "jwt", &c)), 403);
}

/// Delivers the answer to HTTP call `token` to the root.
fn deliver(host: &FakeHost, engine: &Engine, token: u32, body: &str) {
    host.set_current(ROOT_IDS);
    *host.delivering.borrow_mut() = Some((
        vec![(":status".to_owned(), "200".to_owned())],
        body.as_bytes().to_vec(),
    ));
    engine.on_http_call_response(host, ROOT_IDS, token, 1, body.len());
    *host.delivering.borrow_mut() = None;
}

fn tick(host: &FakeHost, engine: &Engine) {
    host.set_current(ROOT_IDS);
    engine.on_tick(host, ROOT_IDS);
}

/// A fetched bundle: its jwt-svid key verifies, and `spiffe_refresh_hint` sets when it is
/// fetched again (the rule's `jwksCacheDurationSeconds`, 600 s, would be much later).
#[test]
fn a_fetched_bundle_is_refreshed_by_its_hint() {
    let host = FakeHost::new(shared());
    let config = format!(
        r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"{TD}"}},"audiences":["{AUD}"],"jwksUri":"https://spire/bundle","jwksCluster":"spire","timeout":"2s"}}]}}"#
    );
    host.set_current(ROOT_IDS);
    let engine = Engine::configure(&host, config.as_bytes()).expect("configuration");
    let token = svid(&jwt_key(), "jwt", &claims());
    assert_eq!(send(&host, &engine, 1, &token), Decided::Waiting);
    tick(&host, &engine);
    let call = host
        .calls
        .borrow()
        .first()
        .map(|c| c.token)
        .expect("a fetch");
    deliver(
        &host,
        &engine,
        call,
        &bundle(&json!({"spiffe_refresh_hint": 120})),
    );
    tick(&host, &engine);
    assert!(!engine.is_waiting(1));
    assert_eq!(host.get(1).status(), None, "resumed, not answered");
    let x509 = svid(&x509_key(), "x509", &claims());
    assert_eq!(status(&host, &engine, 2, &x509), 401);

    // Refreshed ahead of expiry, at 80 % of the hint's 120 s (96 s); without the hint only at
    // 80 % of 600 s.
    host.advance(Duration::from_secs(90));
    tick(&host, &engine);
    assert_eq!(status(&host, &engine, 3, &token), 200);
    tick(&host, &engine);
    assert_eq!(host.calls.borrow().len(), 1, "fresh for 96 s");
    host.advance(Duration::from_secs(10));
    assert_eq!(status(&host, &engine, 4, &token), 200);
    tick(&host, &engine);
    assert_eq!(host.calls.borrow().len(), 2, "refetched by the hint");
}

#[test]
fn configuration_errors_name_the_field() {
    let bundle = Value::String(bundle(&json!({})));
    let cases = [
        (
            format!(r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"{TD}"}},"jwks":{bundle}}}]}}"#),
            "jwtRules[0].audiences: must not be empty in a rule with spiffe",
        ),
        (
            format!(
                r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"Example.org"}},"audiences":["a"],"jwks":{bundle}}}]}}"#
            ),
            "jwtRules[0].spiffe.trustDomain: \"Example.org\" is not a SPIFFE trust domain",
        ),
        (
            format!(
                r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"spiffe://example.org"}},"audiences":["a"],"jwks":{bundle}}}]}}"#
            ),
            "jwtRules[0].spiffe.trustDomain",
        ),
        (
            format!(
                r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"{TD}","x":1}},"audiences":["a"],"jwks":{bundle}}}]}}"#
            ),
            "jwtRules[0]: unknown field `x`",
        ),
        (
            format!(r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"{TD}"}},"audiences":["a"]}}]}}"#),
            "jwtRules[0]: a rule with spiffe needs its SPIFFE bundle",
        ),
        (
            format!(
                r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"{TD}"}},"audiences":["a"],"jwks":{bundle},"requireExpiration":false}}]}}"#
            ),
            "jwtRules[0].requireExpiration: cannot be false",
        ),
        (
            format!(
                r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"{TD}"}},"audiences":["a"],"jwks":{bundle}}},{{"spiffe":{{"trustDomain":"{TD}"}},"audiences":["b"],"jwks":{bundle}}}]}}"#
            ),
            "jwtRules[1].spiffe.trustDomain: \"example.org\" is already the trust domain of jwtRules[0]",
        ),
        (
            format!(r#"{{"jwtRules":[{{"jwks":{bundle}}}]}}"#),
            "jwtRules[0]: missing field `issuer`",
        ),
        (
            // A bundle of x509-svid keys only has no usable key.
            format!(
                r#"{{"jwtRules":[{{"spiffe":{{"trustDomain":"{TD}"}},"audiences":["a"],"jwks":{}}}]}}"#,
                Value::String(json!({"keys":[{"use":"x509-svid","kty":"EC"}]}).to_string())
            ),
            "jwtRules[0].jwks:",
        ),
    ];
    for (config, want) in cases {
        match crate::config::CompiledConfig::from_json(config.as_bytes()) {
            Ok(_) => panic!("accepted: {config}"),
            Err(e) => assert!(e.to_string().starts_with(want), "{e}\nwant {want}"),
        }
    }
}
