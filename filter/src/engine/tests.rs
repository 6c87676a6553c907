//! Native tests of the engine over the fake host ([`super::testing`]): the request path, paused
//! requests and their resumption, fetch failure and backoff, two workers contending for the
//! fetch lease, an undecided request's body, and dry-run/audit reporting.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use std::cell::RefCell;

use super::testing::{FakeHost, ROOT_IDS, SharedData};
use super::{Decided, Engine};

const DEMO_JWT: &str = include_str!("../../../tests/fixtures/istio/demo.jwt");
const DEMO_JWKS: &str = include_str!("../../../tests/fixtures/istio/jwks.json");
const ISSUER: &str = "testing@secure.istio.io";
const ROOT: u32 = ROOT_IDS;

fn shared() -> SharedData {
    Rc::new(RefCell::new(HashMap::new()))
}

fn bearer() -> String {
    format!("Bearer {}", DEMO_JWT.trim())
}

/// A rule fetching its keys from `https://idp/jwks` through cluster `idp`, timeout 2 s.
fn remote_config(extra: &str) -> String {
    format!(
        r#"{{"jwtRules":[{{"issuer":"{ISSUER}","jwksUri":"https://idp/jwks","jwksCluster":"idp","timeout":"2s","outputClaimToHeaders":[{{"header":"x-sub","claim":"sub"}}]}}]{extra}}}"#
    )
}

fn configure(host: &FakeHost, config: &str) -> Engine {
    host.set_current(ROOT);
    match Engine::configure(host, config.as_bytes()) {
        Some(engine) => engine,
        None => panic!("configuration refused: {config}"),
    }
}

/// Sends request `id` with the demo token and returns how the engine decided it.
fn send(host: &FakeHost, engine: &Engine, id: u32) -> Decided {
    let auth = bearer();
    host.request(
        id,
        &[(":path", "/"), (":method", "GET"), ("authorization", &auth)],
    );
    engine.on_request_headers(host, id)
}

/// Delivers the answer to HTTP call `token` (status and body) to the root.
fn deliver(host: &FakeHost, engine: &Engine, token: u32, status: &str, body: &str) {
    host.set_current(ROOT);
    *host.delivering.borrow_mut() = Some((
        vec![(":status".to_owned(), status.to_owned())],
        body.as_bytes().to_vec(),
    ));
    engine.on_http_call_response(host, ROOT, token, 1, body.len());
    *host.delivering.borrow_mut() = None;
}

/// The root's tick.
fn tick(host: &FakeHost, engine: &Engine) {
    host.set_current(ROOT);
    engine.on_tick(host, ROOT);
}

#[test]
fn a_verified_token_goes_on_with_its_claim_header_and_without_the_token() {
    let host = FakeHost::new(shared());
    let config = format!(
        r#"{{"jwtRules":[{{"issuer":"{ISSUER}","jwks":{},"outputClaimToHeaders":[{{"header":"x-sub","claim":"sub"}}]}}]}}"#,
        serde_json::Value::String(DEMO_JWKS.to_owned())
    );
    let engine = configure(&host, &config);
    host.request(
        1,
        &[
            (":path", "/"),
            ("authorization", &bearer()),
            ("x-sub", "spoofed"),
        ],
    );
    assert_eq!(engine.on_request_headers(&host, 1), Decided::Continue);
    let r = host.get(1);
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("x-sub"), Some(ISSUER.as_bytes()));
    // A bad token: 401 with the reason, the request goes no further.
    host.request(2, &[(":path", "/"), ("authorization", "Bearer junk")]);
    assert_eq!(engine.on_request_headers(&host, 2), Decided::Answered);
    assert_eq!(host.get(2).status(), Some(401));
}

#[test]
fn a_paused_request_resumes_when_its_keys_arrive() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, &remote_config(""));
    assert_eq!(send(&host, &engine, 1), Decided::Waiting);
    assert!(engine.is_waiting(1), "its body must not move on yet");
    assert_eq!(host.wakeups(), 1, "the request wakes the root");
    assert!(host.calls.borrow().is_empty(), "no fetch from a request");
    // The root fetches from its queue callback...
    tick(&host, &engine);
    let call = host.calls.borrow().first().cloned().expect("a fetch");
    assert_eq!(
        (call.cluster.as_str(), call.path.as_str()),
        ("idp", "/jwks")
    );
    assert_eq!(
        host.tick.get(),
        Some(Duration::from_millis(100)),
        "fast tick while waiting"
    );
    // ... the keys arrive, the wake-up runs the root, the request is decided and resumed.
    deliver(&host, &engine, call.token, "200", DEMO_JWKS);
    assert!(
        !host.get(1).resumed,
        "never resumed inside the fetch callback"
    );
    tick(&host, &engine);
    let r = host.get(1);
    assert!(r.resumed);
    assert_eq!(r.status(), None);
    assert_eq!(r.header("x-sub"), Some(ISSUER.as_bytes()));
    assert!(!engine.is_waiting(1));
    assert_eq!(
        host.current(),
        ROOT,
        "the root is the current context again"
    );
    assert_eq!(
        host.counter(&format!(
            "meshguard.jwks.{}.fetch_ok",
            "testing_secure_istio_io"
        )),
        1
    );
    // The next request with a known kid is decided at once.
    assert_eq!(send(&host, &engine, 2), Decided::Continue);
}

#[test]
fn a_failed_fetch_backs_off_and_the_waiter_gets_401_at_its_deadline() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, &remote_config(""));
    assert_eq!(send(&host, &engine, 1), Decided::Waiting);
    tick(&host, &engine);
    let token = host
        .calls
        .borrow()
        .first()
        .map(|c| c.token)
        .expect("a fetch");
    deliver(&host, &engine, token, "503", "");
    assert_eq!(
        host.counter("meshguard.jwks.testing_secure_istio_io.fetch_failed"),
        1
    );
    // Backoff: no new fetch at once.
    tick(&host, &engine);
    assert_eq!(host.calls.borrow().len(), 1, "backing off");
    // The request's timeout (2 s) passes with no keys: 401, never a 5xx.
    host.advance(Duration::from_millis(2_100));
    tick(&host, &engine);
    let r = host.get(1);
    assert_eq!(r.status(), Some(401));
    assert!(!engine.is_waiting(1));
    // After the backoff the root tries again.
    host.advance(Duration::from_secs(2));
    tick(&host, &engine);
    assert_eq!(host.calls.borrow().len(), 2, "retried after the backoff");
    // A fetch the host refuses to dispatch counts as failed too.
    host.refuse_calls.set(true);
    host.advance(Duration::from_secs(120));
    tick(&host, &engine);
    assert!(host.counter("meshguard.jwks.testing_secure_istio_io.fetch_failed") >= 2);
}

#[test]
fn two_workers_share_one_fetch_through_the_lease() {
    let process = shared();
    let (a, b) = (FakeHost::new(Rc::clone(&process)), FakeHost::new(process));
    let engine_a = configure(&a, &remote_config(""));
    let engine_b = configure(&b, &remote_config(""));
    assert_eq!(send(&a, &engine_a, 1), Decided::Waiting);
    assert_eq!(send(&b, &engine_b, 1), Decided::Waiting);
    tick(&a, &engine_a);
    tick(&b, &engine_b);
    let fetches = a.calls.borrow().len() + b.calls.borrow().len();
    assert_eq!(fetches, 1, "one VM holds the lease and fetches");
    let (winner, engine_w, loser, engine_l) = if a.calls.borrow().is_empty() {
        (&b, &engine_b, &a, &engine_a)
    } else {
        (&a, &engine_a, &b, &engine_b)
    };
    let token = winner
        .calls
        .borrow()
        .first()
        .map(|c| c.token)
        .expect("fetch");
    deliver(winner, engine_w, token, "200", DEMO_JWKS);
    tick(winner, engine_w);
    assert!(winner.get(1).resumed);
    // The other VM adopts the shared keys on its next poll, without fetching.
    loser.advance(Duration::from_millis(100));
    tick(loser, engine_l);
    assert!(loser.calls.borrow().is_empty(), "adopted, not fetched");
    assert!(loser.get(1).resumed);
}

#[test]
fn a_request_that_goes_away_while_waiting_leaves_nothing_behind() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, &remote_config(""));
    assert_eq!(send(&host, &engine, 7), Decided::Waiting);
    host.end(7);
    engine.on_request_done(7);
    assert!(!engine.is_waiting(7));
    tick(&host, &engine);
    let token = host.calls.borrow().first().map(|c| c.token).expect("fetch");
    deliver(&host, &engine, token, "200", DEMO_JWKS);
    tick(&host, &engine);
    assert_eq!(
        host.tick.get(),
        Some(Duration::from_secs(1)),
        "no waiter left"
    );
}

#[test]
fn a_new_configuration_answers_the_old_ones_waiters() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, &remote_config(""));
    assert_eq!(send(&host, &engine, 3), Decided::Waiting);
    host.set_current(ROOT);
    engine.shutdown(&host);
    engine.answer_waiters(&host, ROOT);
    assert_eq!(host.get(3).status(), Some(401));
    assert_eq!(host.current(), ROOT);
}

#[test]
fn dry_run_and_audit_policies_are_reported_not_enforced() {
    let host = FakeHost::new(shared());
    let config = format!(
        r#"{{"jwtRules":[{{"issuer":"{ISSUER}","jwks":{}}}],
            "policies":[
              {{"name":"would-deny","action":"DENY","dryRun":true,"rules":[{{"to":[{{"operation":{{"paths":["/admin"]}}}}]}}]}},
              {{"name":"watch","action":"AUDIT","rules":[{{"from":[{{"source":{{"requestPrincipals":["*"]}}}}]}}]}},
              {{"name":"deny-delete","action":"DENY","rules":[{{"to":[{{"operation":{{"methods":["DELETE"]}}}}]}}]}}
            ]}}"#,
        serde_json::Value::String(DEMO_JWKS.to_owned())
    );
    let engine = configure(&host, &config);
    let auth = bearer();
    host.request(
        1,
        &[
            (":path", "/admin"),
            (":method", "GET"),
            ("authorization", &auth),
        ],
    );
    assert_eq!(engine.on_request_headers(&host, 1), Decided::Continue);
    assert_eq!(
        host.counter("meshguard.policy.would-deny.dry_run_matched"),
        1
    );
    assert_eq!(host.counter("meshguard.policy.dry_run_would_deny"), 1);
    assert_eq!(host.counter("meshguard.policy.watch.audit"), 1);
    host.request(2, &[(":path", "/"), (":method", "DELETE")]);
    assert_eq!(engine.on_request_headers(&host, 2), Decided::Answered);
    let r = host.get(2);
    assert_eq!(r.status(), Some(403));
    assert_eq!(
        r.response.map(|(_, _, body)| body),
        Some(b"RBAC: access denied".to_vec())
    );
    assert_eq!(host.counter("meshguard.policy.deny-delete.denied"), 1);
    assert_eq!(
        host.counter("meshguard.policy.watch.audit"),
        1,
        "no token, no audit"
    );
}

#[test]
fn the_anonymous_path_reads_no_clock_and_counts_in_the_vm() {
    let host = FakeHost::new(shared());
    let engine = configure(&host, &remote_config(""));
    host.log.borrow_mut().clear();
    host.request(1, &[(":path", "/")]);
    assert_eq!(engine.on_request_headers(&host, 1), Decided::Continue);
    assert!(!host.log.borrow().contains(&"now"));
    assert!(!host.log.borrow().contains(&"increment_counter"));
    tick(&host, &engine);
    assert_eq!(
        host.counter("meshguard.jwt.no_token"),
        1,
        "exported on the tick"
    );
}

/// A header sent twice is seen twice: a DENY on its second value is not walked around, and an
/// ALLOW matches any value (Envoy 1.40's header matcher).
#[test]
fn every_value_of_a_repeated_header_is_matched() {
    let host = FakeHost::new(shared());
    let engine = configure(
        &host,
        r#"{"policies":[
            {"name":"no-evil","action":"DENY","rules":[{"when":[{"key":"request.headers[x-abc]","values":["evil"]}]}]}
        ]}"#,
    );
    host.request(1, &[(":path", "/"), ("x-abc", "good"), ("x-abc", "evil")]);
    assert_eq!(engine.on_request_headers(&host, 1), Decided::Answered);
    assert_eq!(host.get(1).status(), Some(403));
    host.request(2, &[(":path", "/"), ("x-abc", "good"), ("x-abc", "fine")]);
    assert_eq!(engine.on_request_headers(&host, 2), Decided::Continue);
    let allow = configure(
        &host,
        r#"{"policies":[
            {"name":"abc1","action":"ALLOW","rules":[{"when":[{"key":"request.headers[x-abc]","values":["abc1"]}]}]}
        ]}"#,
    );
    host.request(3, &[(":path", "/"), ("x-abc", "other"), ("X-Abc", "abc1")]);
    assert_eq!(allow.on_request_headers(&host, 3), Decided::Continue);
    host.request(4, &[(":path", "/"), ("x-abc", "abc1,other")]);
    assert_eq!(allow.on_request_headers(&host, 4), Decided::Answered);
}

// ---------------------------------------------------------------------------------------------
// Issue 19: a repeated token header, the denial log lines, the discovery document's issuer.

mod parity {
    use serde_json::{Value, json};

    use super::super::testing::logs;
    use super::*;
    use meshguard_test_support as support;

    const ISS: &str = "https://idp.example";
    const NOW: u64 = support::NOW;

    /// One rule for [`ISS`] with the test-support keys inline, `sub` as `x-sub`.
    fn inline_config(rule_extra: &str, top_extra: &str) -> String {
        format!(
            r#"{{"jwtRules":[{{"issuer":"{ISS}","jwks":{},"outputClaimToHeaders":[{{"header":"x-sub","claim":"sub"}}]{rule_extra}}}]{top_extra}}}"#,
            Value::String(support::jwks().to_string())
        )
    }

    fn es256(claims: &Value) -> String {
        support::token("ES256", claims)
    }

    fn alice() -> Value {
        json!({"iss": ISS, "sub": "alice", "exp": NOW + 3600})
    }

    /// The same signature over another payload (`sub: admin`).
    fn forged(token: &str) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        let payload =
            support::b64(json!({"iss": ISS, "sub": "admin", "exp": NOW + 3600}).to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    }

    fn decide(host: &FakeHost, engine: &Engine, id: u32, headers: &[(&str, &str)]) -> Decided {
        let mut all = vec![(":path", "/"), (":method", "GET")];
        all.extend_from_slice(headers);
        host.request(id, &all);
        engine.on_request_headers(host, id)
    }

    /// The one denial line of this thread since [`logs::capture`].
    fn denial_line() -> String {
        let lines = logs::containing(" reason=");
        assert_eq!(lines.len(), 1, "{lines:?}");
        lines[0].clone()
    }

    #[test]
    fn a_repeated_custom_token_header_is_refused() {
        let host = FakeHost::new(shared());
        let engine = configure(
            &host,
            &inline_config(
                r#","fromHeaders":[{"name":"x-token"}],"forwardOriginalToken":true"#,
                "",
            ),
        );
        let good = es256(&alice());
        assert_eq!(
            decide(&host, &engine, 1, &[("x-token", &good)]),
            Decided::Continue
        );
        assert_eq!(host.get(1).header("x-sub"), Some(&b"alice"[..]));
        // Good first, forged second: the host reads only the first value, the upstream
        // would get both. Refused, as `jwt_authn` refuses (it verifies every value).
        logs::capture();
        let forged = forged(&good);
        let twice = [("x-token", good.as_str()), ("X-Token", forged.as_str())];
        assert_eq!(decide(&host, &engine, 2, &twice), Decided::Answered);
        let r = host.get(2);
        assert_eq!(r.status(), Some(401));
        assert_eq!(
            r.response.as_ref().map(|(_, _, body)| body.clone()),
            Some(b"Jwt header [x-token] appears more than once".to_vec())
        );
        let line = denial_line();
        assert!(
            line.contains(
                "reason=repeated_token_header issuer=https://idp.example kid=p256 sub=alice"
            ),
            "{line}"
        );
        assert!(!line.contains(&good), "never the token: {line}");
        // Twice the same good token: still refused (a documented difference from jwt_authn).
        let same = [("x-token", good.as_str()), ("x-token", good.as_str())];
        assert_eq!(decide(&host, &engine, 3, &same), Decided::Answered);
        // The header present without a token value (the prefix missing) counts too.
        let prefixed = configure(
            &host,
            &inline_config(
                r#","fromHeaders":[{"name":"x-token","prefix":"Bearer "}]"#,
                "",
            ),
        );
        let bearer = format!("Bearer {good}");
        let junk_first = [("x-token", "junk"), ("x-token", bearer.as_str())];
        assert_eq!(decide(&host, &prefixed, 4, &junk_first), Decided::Answered);
        assert_eq!(host.get(4).status(), Some(401));
    }

    /// Only a request that carries a custom token header reads all headers; the Authorization
    /// path's host calls stay as they were.
    #[test]
    fn only_custom_token_headers_pay_for_reading_every_header() {
        let host = FakeHost::new(shared());
        let engine = configure(
            &host,
            &inline_config(
                r#","fromHeaders":[{"name":"Authorization","prefix":"Bearer "},{"name":"x-token"}]"#,
                "",
            ),
        );
        let good = es256(&alice());
        let bearer = format!("Bearer {good}");
        for (id, headers) in [(1, vec![("authorization", bearer.as_str())]), (2, vec![])] {
            host.log.borrow_mut().clear();
            assert_eq!(decide(&host, &engine, id, &headers), Decided::Continue);
            assert!(
                !host.log.borrow().contains(&"request_header_pairs"),
                "request {id}: {:?}",
                host.log.borrow()
            );
        }
        host.log.borrow_mut().clear();
        assert_eq!(
            decide(&host, &engine, 3, &[("x-token", &good)]),
            Decided::Continue
        );
        assert!(host.log.borrow().contains(&"request_header_pairs"));
    }

    /// Every denial line names `issuer`, `kid` and `sub` whenever the token let them be read.
    #[test]
    fn denial_lines_name_issuer_kid_and_sub() {
        let host = FakeHost::new(shared());
        let engine = configure(
            &host,
            &inline_config(
                "",
                r#","policies":[{"name":"no-bob","action":"DENY","rules":[{"when":[{"key":"request.auth.claims[sub]","values":["bob"]}]}]}]"#,
            ),
        );
        let send_bearer = |id: u32, token: &str| {
            let bearer = format!("Bearer {token}");
            logs::capture();
            let decided = decide(&host, &engine, id, &[("authorization", &bearer)]);
            assert_eq!(decided, Decided::Answered, "request {id}");
            denial_line()
        };
        let who = "issuer=https://idp.example kid=p256 sub=alice";
        // A header-based refusal at parse time: an algorithm we do not implement.
        let es512 = support::compact(
            br#"{"alg":"Ed448","kid":"p521"}"#,
            alice().to_string().as_bytes(),
            |_| vec![7; 132],
        );
        let line = send_bearer(1, &es512);
        assert!(
            line.contains("reason=alg_unsupported issuer=https://idp.example kid=p521 sub=alice"),
            "{line}"
        );
        // HMAC, `crit`: the same.
        let hmac = support::compact(
            br#"{"alg":"HS256","kid":"p256"}"#,
            alice().to_string().as_bytes(),
            |_| vec![7; 32],
        );
        let line = send_bearer(2, &hmac);
        assert!(line.contains(&format!("reason=alg_hmac {who}")), "{line}");
        // Malformed payload: the header's kid is still named.
        let broken = format!(
            "{}.{}.c2ln",
            support::b64(br#"{"alg":"ES256","kid":"p256"}"#),
            support::b64("not json")
        );
        let line = send_bearer(3, &broken);
        assert!(
            line.contains("reason=malformed issuer=- kid=p256 sub=-"),
            "{line}"
        );
        // A claim refusal (fresh): expired.
        let expired = es256(&json!({"iss": ISS, "sub": "alice", "exp": NOW - 3600}));
        let line = send_bearer(4, &expired);
        assert!(line.contains(&format!("reason=expired {who}")), "{line}");
        // A signature refusal.
        let line = send_bearer(5, &forged(&es256(&alice())));
        assert!(
            line.contains("reason=bad_signature issuer=https://idp.example kid=p256 sub=admin"),
            "{line}"
        );
        // An unknown issuer.
        let other = es256(&json!({"iss": "https://other", "sub": "alice", "exp": NOW + 3600}));
        let line = send_bearer(6, &other);
        assert!(
            line.contains("reason=unknown_issuer issuer=https://other kid=p256 sub=alice"),
            "{line}"
        );
        // A policy refusal.
        let bob = es256(&json!({"iss": ISS, "sub": "bob", "exp": NOW + 3600}));
        let line = send_bearer(7, &bob);
        assert!(
            line.contains("reason=forbidden issuer=https://idp.example kid=p256 sub=bob"),
            "{line}"
        );
        // A token verified and cached, then refused from the cache for time.
        let short = es256(&json!({"iss": ISS, "sub": "alice", "exp": NOW + 30}));
        let bearer = format!("Bearer {short}");
        assert_eq!(
            decide(&host, &engine, 8, &[("authorization", &bearer)]),
            Decided::Continue
        );
        host.advance(Duration::from_secs(120));
        let line = send_bearer(9, &short);
        assert!(line.contains(&format!("reason=expired {who}")), "{line}");
        // Unreadable: a token that is not three parts names nothing (and is never echoed).
        let line = send_bearer(10, "not-a-jwt");
        assert!(
            line.contains("reason=malformed issuer=- kid=- sub=-"),
            "{line}"
        );
    }

    /// A paused request answered without keys names its token too (deadline, and a new
    /// configuration replacing the old one).
    #[test]
    fn denial_lines_of_paused_requests_name_the_token() {
        let who = format!(
            "reason=jwks_unavailable issuer={ISSUER} kid={} sub={ISSUER}",
            support::ISTIO_SAMPLES_KID
        );
        let host = FakeHost::new(shared());
        let engine = configure(&host, &remote_config(""));
        assert_eq!(send(&host, &engine, 1), Decided::Waiting);
        tick(&host, &engine);
        let token = host
            .calls
            .borrow()
            .first()
            .map(|c| c.token)
            .expect("a fetch");
        logs::capture();
        deliver(&host, &engine, token, "503", "");
        tick(&host, &engine);
        host.advance(Duration::from_millis(2_100));
        tick(&host, &engine);
        assert_eq!(host.get(1).status(), Some(401));
        let line = denial_line();
        assert!(line.contains(&who), "{line}");

        let host = FakeHost::new(shared());
        let engine = configure(&host, &remote_config(""));
        assert_eq!(send(&host, &engine, 3), Decided::Waiting);
        logs::capture();
        host.set_current(ROOT);
        engine.answer_waiters(&host, ROOT);
        assert_eq!(host.get(3).status(), Some(401));
        let line = denial_line();
        assert!(line.contains(&who), "{line}");
    }

    /// OpenID Connect Discovery §4.3: a document for another issuer (even one trailing slash
    /// apart) is a failed fetch, logged with both names, and its `jwks_uri` is never fetched.
    #[test]
    fn a_discovery_document_for_another_issuer_is_a_failed_fetch() {
        let config =
            format!(r#"{{"jwtRules":[{{"issuer":"{ISS}","jwksCluster":"idp","timeout":"2s"}}]}}"#);
        for (served, ok) in [
            (format!("{ISS}/"), false),
            ("https://evil.example".to_owned(), false),
            (ISS.to_owned(), true),
        ] {
            let host = FakeHost::new(shared());
            let engine = configure(&host, &config);
            let token = es256(&alice());
            let bearer = format!("Bearer {token}");
            assert_eq!(
                decide(&host, &engine, 1, &[("authorization", &bearer)]),
                Decided::Waiting
            );
            tick(&host, &engine);
            let call = host
                .calls
                .borrow()
                .first()
                .cloned()
                .expect("the discovery fetch");
            assert_eq!(call.path, "/.well-known/openid-configuration");
            let doc = json!({"issuer": served, "jwks_uri": "https://idp.example/keys"}).to_string();
            logs::capture();
            deliver(&host, &engine, call.token, "200", &doc);
            let calls: Vec<String> = host.calls.borrow().iter().map(|c| c.path.clone()).collect();
            if ok {
                assert_eq!(calls.last().map(String::as_str), Some("/keys"), "{served}");
                continue;
            }
            assert_eq!(calls.len(), 1, "{served}: no JWKS fetch: {calls:?}");
            assert_eq!(
                host.counter("meshguard.jwks.https___idp_example.fetch_failed"),
                1,
                "{:?}",
                host.counters.borrow()
            );
            let lines = logs::containing("discovery document names issuer");
            assert_eq!(lines.len(), 1, "{served}");
            assert!(
                lines[0].contains(&format!(
                    r#"issuer "{served}", the configured issuer is "{ISS}""#
                )),
                "{}",
                lines[0]
            );
        }
    }
}
