//! The JWKS lifecycle through a real Envoy: key rotation without restart, an unknown-kid flood
//! costing a bounded number of fetches, an IdP outage at start and recovery, and an IdP failing
//! (500, hang, garbage) after a good fetch while the cached keys keep verifying.

use crate::common::*;
use meshguard_demo_idp::{Mode, TokenSpec};
use meshguard_e2e::stack::StackOpts;
use meshguard_e2e::wait::poll;
use meshguard_e2e::{Req, Stack, send};
use serde_json::json;
use std::time::{Duration, Instant};

const NO_KEY: &str = "Jwks doesn't have key to match kid or alg from Jwt";

fn good(stack: &Stack) -> String {
    stack.idp.mint(&TokenSpec::default().aud(AUD)).unwrap()
}

/// Polls (bounded) until a fresh valid token gets 200; returns how long that took.
fn wait_allowed(stack: &Stack, within: Duration) -> Duration {
    let start = Instant::now();
    let port = stack.port(LISTENER);
    poll(within, Duration::from_millis(100), || {
        let r =
            send(port, &Req::get("/api/poll").bearer(&good(stack))).map_err(|e| e.to_string())?;
        assert!(
            r.status == 200 || r.status == 401,
            "never a 5xx or other: {}",
            r.summary()
        );
        Ok((r.status == 200).then_some(()))
    })
    .unwrap_or_else(|e| {
        panic!(
            "a valid token was not allowed: {e}; IdP stats {}",
            stack.idp.stats()
        )
    });
    start.elapsed()
}

#[test]
fn key_rotation_without_restart() {
    let stack = meshguard_stack(StackOpts::default(), json!({"jwtRules": [rule()]}));
    let port = stack.port(LISTENER);
    wait_allowed(&stack, Duration::from_secs(20));
    let old_token = good(&stack);
    let f0 = stack.idp.jwks_fetches();
    let pid = stack.envoy.pid();

    stack.idp.rotate().unwrap();
    // A token with a new kid: one refetch while the request waits, then 200.
    let r = send(port, &Req::get("/api/rotated").bearer(&good(&stack))).unwrap();
    assert_echo(&r);
    assert_eq!(
        stack.idp.jwks_fetches(),
        f0 + 1,
        "exactly one refetch for the new kid"
    );
    // The old key is gone from the JWKS: its tokens now fail, without another fetch (30 s limit).
    let r = send(port, &Req::get("/api/old").bearer(&old_token)).unwrap();
    assert_401(&r, "/api/old", NO_KEY);
    assert_eq!(
        stack.idp.jwks_fetches(),
        f0 + 1,
        "no second refetch within 30 s"
    );
    assert_eq!(stack.envoy.pid(), pid);
    let refetches = stack
        .envoy
        .stat("wasmcustom.meshguard.jwks.https___idp_meshguard_test.unknown_kid_refetch");
    assert!(refetches >= 1, "unknown_kid_refetch = {refetches}");
}

#[test]
fn unknown_kid_flood_costs_a_bounded_number_of_fetches() {
    let stack = meshguard_stack(
        StackOpts {
            concurrency: 2,
            ..Default::default()
        },
        json!({"jwtRules": [rule()]}),
    );
    let port = stack.port(LISTENER);
    wait_allowed(&stack, Duration::from_secs(20));
    let f0 = stack.idp.jwks_fetches();
    // 4 clients × 25 requests, each token naming a different unknown kid.
    let tokens: Vec<Vec<String>> = (0..4)
        .map(|c| {
            (0..25)
                .map(|i| {
                    let kid = format!("flood-{c}-{i}");
                    stack
                        .idp
                        .mint(&TokenSpec::default().aud(AUD).kid(&kid))
                        .unwrap()
                })
                .collect()
        })
        .collect();
    std::thread::scope(|s| {
        for batch in &tokens {
            s.spawn(move || {
                for t in batch {
                    let r = send(port, &Req::get("/api/flood").bearer(t)).unwrap();
                    assert_401(&r, "/api/flood", NO_KEY);
                }
            });
        }
    });
    let extra = stack.idp.jwks_fetches() - f0;
    assert!(
        extra <= 1,
        "100 unknown kids caused {extra} JWKS fetches (at most 1 per 30 s)"
    );
    // Known keys still verify.
    let r = send(port, &Req::get("/api/after").bearer(&good(&stack))).unwrap();
    assert_echo(&r);
}

#[test]
fn jwks_outage_at_start_recovery_and_failures_after_a_good_fetch() {
    // No Cache-Control from the IdP: the rule's 2 s cache duration drives frequent refreshes.
    let mut r = rule();
    r["jwksCacheDurationSeconds"] = json!(2);
    r["timeout"] = json!("2s");
    let stack = meshguard_stack(
        StackOpts {
            concurrency: 2,
            max_age: 0,
            initial_mode: Mode::Status(500),
        },
        json!({"jwtRules": [r]}),
    );
    let port = stack.port(LISTENER);

    // Outage at start: a clean 401 "JWKS unavailable", never a 5xx.
    let resp = send(port, &Req::get("/api/down").bearer(&good(&stack))).unwrap();
    assert_401(&resp, "/api/down", "JWKS unavailable");
    poll(Duration::from_secs(10), Duration::from_millis(50), || {
        Ok((stack.idp.jwks_fetches() >= 1).then_some(()))
    })
    .expect("no fetch attempt during the outage");

    // Recovery without restart (retries back off 1 s → 60 s: well within 30 s here).
    let pid = stack.envoy.pid();
    stack.idp.set_mode(Mode::Ok);
    let took = wait_allowed(&stack, Duration::from_secs(30));
    eprintln!("recovered {took:?} after the IdP came back");
    assert_eq!(stack.envoy.pid(), pid);

    // The IdP fails after a good fetch: refreshes fail, cached keys keep verifying.
    for mode in [
        Mode::Status(500),
        Mode::Hang,
        Mode::Garbage,
        Mode::Status(404),
    ] {
        let f = stack.idp.jwks_fetches();
        stack.idp.set_mode(mode);
        poll(Duration::from_secs(30), Duration::from_millis(50), || {
            Ok((stack.idp.jwks_fetches() > f).then_some(()))
        })
        .unwrap_or_else(|e| panic!("{mode:?}: no refresh attempt: {e}"));
        for _ in 0..5 {
            let resp = send(port, &Req::get("/api/stale").bearer(&good(&stack))).unwrap();
            assert_echo(&resp);
        }
    }
    let failed = stack
        .envoy
        .stat("wasmcustom.meshguard.jwks.https___idp_meshguard_test.fetch_failed");
    assert!(failed >= 3, "fetch_failed = {failed}");

    // Back to normal with new keys: picked up without restart.
    stack.idp.set_mode(Mode::Ok);
    stack.idp.rotate().unwrap();
    wait_allowed(&stack, Duration::from_secs(30));
    assert_eq!(stack.envoy.pid(), pid);
}

#[test]
fn oidc_discovery_when_the_rule_names_no_jwks() {
    let mut r = rule();
    r.as_object_mut().unwrap().remove("jwksUri");
    let stack = meshguard_stack(StackOpts::default(), json!({"jwtRules": [r]}));
    let port = stack.port(LISTENER);
    let resp = send(port, &Req::get("/api/discovered").bearer(&good(&stack))).unwrap();
    assert_echo(&resp);
    assert_eq!(stack.idp.discovery_fetches(), 1, "{}", stack.idp.stats());
    assert_eq!(stack.idp.jwks_fetches(), 1, "{}", stack.idp.stats());
}
