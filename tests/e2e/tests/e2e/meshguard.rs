//! meshguard in Envoy against the demo IdP: statuses and `WWW-Authenticate`, what the upstream
//! sees, cookies, cold start, two workers sharing one JWKS fetch, metrics.

use crate::common::*;
use meshguard_demo_idp::{Alg, TokenSpec};
use meshguard_e2e::stack::StackOpts;
use meshguard_e2e::wait::poll;
use meshguard_e2e::{Req, send};
use serde_json::json;
use std::time::Duration;

fn token(stack: &meshguard_e2e::Stack, spec: TokenSpec) -> String {
    stack.idp.mint(&spec).unwrap()
}

#[test]
fn statuses_headers_cookies_metrics_on_two_workers() {
    let stack = meshguard_stack(
        StackOpts {
            concurrency: 2,
            ..Default::default()
        },
        json!({"jwtRules": [rule()]}),
    );
    let port = stack.port(LISTENER);
    let good = TokenSpec::default()
        .aud(AUD)
        .claim("email", json!("alice@example.com"));

    // Cold start: the very first request waits for the first JWKS fetch, then passes. (Asserted
    // at the end, so that a cold-start failure does not hide the other cases.)
    let cold = send(
        port,
        &Req::get("/api/first").bearer(&token(&stack, good.clone())),
    )
    .unwrap();
    let cold_fetches = stack.idp.jwks_fetches();
    poll(Duration::from_secs(20), Duration::from_millis(100), || {
        let r = send(
            port,
            &Req::get("/api/warm").bearer(&token(&stack, good.clone())),
        )
        .map_err(|e| e.to_string())?;
        Ok((r.status == 200).then_some(()))
    })
    .expect("keys never became available");

    // Every algorithm; the token is removed, claims mapped, spoofed copies (any case) gone.
    for alg in Alg::ALL {
        let t = token(&stack, good.clone().alg(alg));
        let r = send(
            port,
            &Req::get("/api/x?q=1")
                .bearer(&t)
                .header("X-User-ID", "mallory")
                .header("x-user-email", "mallory@evil.example")
                .header("x-other", "kept"),
        )
        .unwrap();
        assert_echo(&r);
        assert_eq!(
            r.echoed("x-user-id"),
            vec!["alice"],
            "{alg}: {}",
            r.summary()
        );
        assert_eq!(r.echoed("x-user-email"), vec!["alice@example.com"], "{alg}");
        assert!(
            r.echoed("authorization").is_empty(),
            "{alg}: token forwarded: {}",
            r.summary()
        );
        assert_eq!(r.echoed("x-other"), vec!["kept"]);
        assert_eq!(r.echoed_path(), "/api/x?q=1");
    }

    // No token: passes (no policy here), spoofed output headers still removed.
    let r = send(
        port,
        &Req::get("/public")
            .header("x-user-id", "admin")
            .header("X-USER-EMAIL", "a@b"),
    )
    .unwrap();
    assert_echo(&r);
    assert!(
        r.echoed("x-user-id").is_empty(),
        "spoofed x-user-id reached upstream: {}",
        r.summary()
    );
    assert!(r.echoed("x-user-email").is_empty(), "{}", r.summary());

    // A header without the exact prefix is not a token: passes through untouched.
    let r = send(
        port,
        &Req::get("/public").header("Authorization", "Basic dXNlcjpwYXNz"),
    )
    .unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("authorization"), vec!["Basic dXNlcjpwYXNz"]);

    // Cookie token: only that cookie is removed.
    let t = token(&stack, good.clone().subject("bob"));
    let r = send(
        port,
        &Req::get("/api/c").header("Cookie", &format!("a=1; np_scope_token={t}; b=2")),
    )
    .unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-user-id"), vec!["bob"]);
    assert_eq!(r.echoed("cookie"), vec!["a=1; b=2"], "{}", r.summary());
    let r = send(
        port,
        &Req::get("/api/c").header("Cookie", &format!("np_scope_token={t}")),
    )
    .unwrap();
    assert_echo(&r);
    assert!(
        r.echoed("cookie").is_empty(),
        "empty Cookie header kept: {}",
        r.summary()
    );

    // Failures: exact 401s.
    let cases = [
        (
            TokenSpec::default().aud(AUD).exp_in(Some(-3600)),
            "Jwt is expired",
        ),
        (
            TokenSpec::default().aud("someone-else"),
            "Audiences in Jwt are not allowed",
        ),
        (
            TokenSpec::default().aud(AUD).tamper(),
            "Jwt verification fails",
        ),
        (
            TokenSpec::default().aud(AUD).iss("https://evil.example"),
            "Jwt issuer is not configured",
        ),
        (
            TokenSpec::default().aud(AUD).exp_in(None),
            "Jwt is missing the required exp claim",
        ),
    ];
    for (spec, why) in cases {
        let r = send(port, &Req::get("/api/deny").bearer(&token(&stack, spec))).unwrap();
        assert_401(&r, "/api/deny", why);
    }
    // The same failure from the cookie; the realm has no query string.
    let expired = token(&stack, TokenSpec::default().aud(AUD).exp_in(Some(-3600)));
    let r = send(
        port,
        &Req::get("/p?token=x").header("Cookie", &format!("np_scope_token={expired}")),
    )
    .unwrap();
    assert_401(&r, "/p", "Jwt is expired");
    let r = send(port, &Req::get("/api/deny").bearer("not-a-jwt")).unwrap();
    assert_eq!(r.status, 401, "{}", r.summary());
    assert!(
        r.header("www-authenticate").is_some_and(|h| h.starts_with(
            "Bearer realm=\"http://api.example.com/api/deny\", error=\"invalid_token\""
        )),
        "{}",
        r.summary()
    );
    assert!(
        !r.text().contains("not-a-jwt"),
        "token echoed: {}",
        r.summary()
    );

    // Two workers: spread connections until both served some, all allowed.
    // Per-worker listener stats are named after the configured address (port 0).
    let stats_prefix = "listener.127.0.0.1_0.";
    let mut both = false;
    for _ in 0..64 {
        let r = send(
            port,
            &Req::get("/api/w").bearer(&token(&stack, good.clone())),
        )
        .unwrap();
        assert_echo(&r);
        let stats = stack.envoy.stats();
        let w0 = stats
            .get(&format!("{stats_prefix}worker_0.downstream_cx_total"))
            .copied()
            .unwrap_or(0);
        let w1 = stats
            .get(&format!("{stats_prefix}worker_1.downstream_cx_total"))
            .copied()
            .unwrap_or(0);
        if w0 > 0 && w1 > 0 {
            both = true;
            break;
        }
    }
    assert!(both, "connections never reached both workers");
    // One JWKS fetch for the whole process (shared across worker VMs), however many requests.
    assert_eq!(
        stack.idp.jwks_fetches(),
        1,
        "JWKS fetched per VM instead of per process"
    );

    assert_eq!(
        cold.status,
        200,
        "cold start: the first request must wait for the first JWKS fetch \
         (the IdP had seen {cold_fetches} fetches then): {}",
        cold.summary()
    );

    // Metrics under Envoy's wasmcustom. prefix. `allowed` and `no_token` are counted in the VM
    // and flushed on the root's 1 s tick (docs/config.md#metrics): wait for the flushes.
    let allowed_stat = "wasmcustom.meshguard.jwt.https___idp_meshguard_test.allowed";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while (stack.envoy.stat(allowed_stat) < 8
        || stack.envoy.stat("wasmcustom.meshguard.jwt.no_token") < 2)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = stack.envoy.stats();
    let allowed = stats.get(allowed_stat).copied().unwrap_or(0);
    assert!(
        allowed >= 8,
        "allowed counter {allowed}; wasmcustom stats: {:?}",
        wasmcustom(&stats)
    );
    assert!(
        stats
            .get("wasmcustom.meshguard.denied.expired")
            .copied()
            .unwrap_or(0)
            >= 2,
        "{:?}",
        wasmcustom(&stats)
    );
    assert!(
        stats
            .get("wasmcustom.meshguard.jwt.no_token")
            .copied()
            .unwrap_or(0)
            >= 2,
        "{:?}",
        wasmcustom(&stats)
    );
    let fetch_ok = stats
        .get("wasmcustom.meshguard.jwks.https___idp_meshguard_test.fetch_ok")
        .copied()
        .unwrap_or(0);
    assert_eq!(fetch_ok, 1, "{:?}", wasmcustom(&stats));
}

fn wasmcustom(stats: &std::collections::BTreeMap<String, u64>) -> Vec<(String, u64)> {
    stats
        .iter()
        .filter(|(k, _)| k.starts_with("wasmcustom."))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}
