//! Scenarios of the real meshguard.wasm: verification, extraction, claim headers, anti-spoofing
//! and the JWKS lifecycle, through Envoy's ABI as the harness plays it.

use std::time::Duration;

use meshguard_harness::{Exchange, Host, LogLevel, Result};
use serde_json::{Value, json};

use crate::meshguard_wasm;
use crate::tokens::{self, AUDIENCE, ISSUER, RSA_KID, claims, jwks, mint, sign, token};

const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Every supported `alg`, with EdDSA under both its names (RFC 9864's `Ed25519`).
const ALGS: [&str; 11] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    "Ed25519",
];
/// The issuer as metric names spell it.
const ISS_METRIC: &str = "https___idp_example_com";

fn rule(extra: Value) -> Value {
    let mut r = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}],
    });
    if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            r.insert(k.clone(), v.clone());
        }
    }
    r
}

/// Inline keys: no fetch involved.
fn inline(extra: Value) -> Result<Host> {
    let mut r = rule(extra);
    r["jwks"] = json!(jwks());
    Host::load(meshguard_wasm())?.configure(json!({ "jwtRules": [r] }).to_string())
}

fn remote_rule(extra: Value) -> Value {
    let mut r = rule(extra);
    r["jwksUri"] = json!(format!("https://idp.example.com{JWKS_PATH}"));
    r["jwksCluster"] = json!("idp");
    r
}

fn remote(workers: usize, extra: Value) -> Result<Host> {
    Host::load(meshguard_wasm())?
        .workers(workers)
        .clusters(["idp"])
        .configure(json!({ "jwtRules": [remote_rule(extra)] }).to_string())
}

/// Lets the first tick start the fetch and answers it with `body`.
fn warm_with(h: &Host, headers: &[(&str, &str)], body: &str) -> Result<()> {
    h.advance(Duration::from_millis(20))?;
    let call = h.expect_one_call();
    assert_eq!(call.cluster(), "idp");
    assert_eq!(call.method(), "GET");
    assert_eq!(call.path(), JWKS_PATH);
    assert_eq!(call.authority(), "idp.example.com");
    call.respond(200, headers, body)
}

fn warm(h: &Host) -> Result<()> {
    warm_with(h, &[("content-type", "application/json")], &jwks())
}

fn send(h: &Host, token: &str) -> Result<Exchange> {
    h.request().bearer(token).send()
}

fn assert_401(r: &Exchange, reason: &str) {
    r.assert_status(401).assert_body_contains(reason);
    let www = r.response_header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer realm=\"https://api.example.com/\"") && www.contains(reason),
        "WWW-Authenticate {www:?}\n{}",
        r.describe()
    );
    assert!(!r.continued());
}

// --- verification ------------------------------------------------------------------------------

#[test]
fn every_algorithm_verifies() -> Result<()> {
    let h = inline(json!({}))?;
    let now = h.now_unix();
    for alg in ALGS {
        let r = send(&h, &token(alg, now))?;
        r.assert_continued()
            .assert_upstream_header("x-jwt-sub", "alice")
            .assert_no_upstream_header("authorization");
    }
    // Counted in the VM, exported on the root's tick.
    h.advance(Duration::from_secs(1))?;
    assert_eq!(
        h.metric(&format!("meshguard.jwt.{ISS_METRIC}.allowed")),
        Some(ALGS.len() as i64)
    );
    Ok(())
}

#[test]
fn algorithm_allowlist() -> Result<()> {
    let h = inline(json!({"algorithms": ["ES256"]}))?;
    let now = h.now_unix();
    send(&h, &token("ES256", now))?.assert_continued();
    let r = send(&h, &token("RS256", now))?;
    r.assert_status(401);
    Ok(())
}

#[test]
fn expiry_not_before_and_clock_skew() -> Result<()> {
    let h = inline(json!({}))?;
    let now = h.now_unix();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(now);
        f(&mut c);
        mint("ES256", &c)
    };
    // Within the default 60 s skew.
    send(&h, &with(&|c| c["exp"] = json!(now - 30)))?.assert_continued();
    send(&h, &with(&|c| c["nbf"] = json!(now + 30)))?.assert_continued();
    // Beyond it.
    assert_401(
        &send(&h, &with(&|c| c["exp"] = json!(now - 61)))?,
        "Jwt is expired",
    );
    assert_401(
        &send(&h, &with(&|c| c["nbf"] = json!(now + 61)))?,
        "Jwt not yet valid",
    );
    // exp is required by default.
    let r = send(
        &h,
        &with(&|c| {
            c.as_object_mut().map(|o| o.remove("exp"));
        }),
    )?;
    assert_401(&r, "exp");
    // A token that was fine becomes expired when the clock moves (also through the token cache).
    let t = token("ES256", now);
    send(&h, &t)?.assert_continued();
    h.advance(Duration::from_secs(3600 + 61))?;
    assert_401(&send(&h, &t)?, "Jwt is expired");
    Ok(())
}

#[test]
fn custom_skew() -> Result<()> {
    let h = inline(json!({"clockSkewSeconds": 0}))?;
    let now = h.now_unix();
    let mut c = claims(now);
    c["exp"] = json!(now - 1);
    assert_401(&send(&h, &mint("ES256", &c))?, "Jwt is expired");
    Ok(())
}

#[test]
fn wrong_issuer_or_audience() -> Result<()> {
    let h = inline(json!({}))?;
    let now = h.now_unix();
    let mut c = claims(now);
    c["iss"] = json!("https://evil.example.com");
    assert_401(
        &send(&h, &mint("ES256", &c))?,
        "Jwt issuer is not configured",
    );
    let mut c = claims(now);
    c["aud"] = json!("other.example.com");
    assert_401(
        &send(&h, &mint("ES256", &c))?,
        "Audiences in Jwt are not allowed",
    );
    let mut c = claims(now);
    c["aud"] = json!(["other.example.com", AUDIENCE]);
    send(&h, &mint("ES256", &c))?.assert_continued();
    Ok(())
}

#[test]
fn alg_none_hmac_confusion_and_kid_alg_mismatch() -> Result<()> {
    let h = inline(json!({}))?;
    let now = h.now_unix();
    let c = claims(now);
    let none = sign(&json!({"alg": "none", "typ": "JWT"}), &c);
    assert_401(&send(&h, &none)?, "none is not allowed");
    let hs = sign(&json!({"alg": "HS256", "typ": "JWT", "kid": RSA_KID}), &c);
    assert_401(&send(&h, &hs)?, "HMAC");
    // An ES256 signature presented under the RSA key's kid, and RS256 under the EC kid.
    let es_as_rsa = sign(&json!({"alg": "ES256", "kid": RSA_KID}), &c);
    send(&h, &es_as_rsa)?.assert_status(401);
    let rs_as_ec = sign(&json!({"alg": "RS256", "kid": tokens::EC256_KID}), &c);
    send(&h, &rs_as_ec)?.assert_status(401);
    // A tampered payload.
    let good = token("RS256", now);
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut evil = claims(now);
    evil["sub"] = json!("mallory");
    parts[1] = base64_url(&evil.to_string());
    assert_401(&send(&h, &parts.join("."))?, "Jwt verification fails");
    Ok(())
}

fn base64_url(s: &str) -> String {
    meshguard_test_support::b64(s)
}

#[test]
fn junk_and_oversize_tokens() -> Result<()> {
    let h = inline(json!({}))?;
    for junk in ["abc", "a.b", "a.b.c", "....", "e30.e30.", "%%%.%%%.%%%"] {
        let r = send(&h, junk)?;
        r.assert_status(401);
        assert!(
            !r.body_text().contains(junk) || junk.len() < 4,
            "token echoed"
        );
    }
    assert_401(&send(&h, &"A".repeat(20_000))?, "Jwt is too large");
    // The token never appears in logs.
    let t = token("ES256", h.now_unix() - 7200);
    send(&h, &t)?.assert_status(401);
    assert!(h.logs_containing(&t).is_empty());
    Ok(())
}

#[test]
fn istio_sample_tokens() -> Result<()> {
    let cfg = json!({"jwtRules": [{
        "issuer": "testing@secure.istio.io",
        "jwks": tokens::istio("jwks.json"),
        "outputClaimToHeaders": [{"header": "x-foo", "claim": "foo"}, {"header": "x-groups", "claim": "groups"}],
    }]});
    let h = Host::load(meshguard_wasm())?.configure(cfg.to_string())?;
    send(&h, &tokens::istio("demo.jwt"))?
        .assert_continued()
        .assert_upstream_header("x-foo", "bar");
    send(&h, &tokens::istio("groups-scope.jwt"))?
        .assert_continued()
        .assert_upstream_header("x-groups", "group1,group2");

    let cfg = json!({"jwtRules": [{
        "issuer": "test-issuer-1@istio.io",
        "jwks": tokens::istio("tests_common_jwt/jwks.json"),
        "outputClaimToHeaders": [{"header": "x-nested", "claim": "nested.key1"}],
    }]});
    let h = Host::load(meshguard_wasm())?.configure(cfg.to_string())?;
    send(&h, &tokens::istio("tests_common_jwt/TokenIssuer1.jwt"))?.assert_continued();
    send(
        &h,
        &tokens::istio("tests_common_jwt/TokenIssuer1WithNestedClaims1.jwt"),
    )?
    .assert_upstream_header("x-nested", "valueA,valueB");
    assert_401(
        &send(&h, &tokens::istio("tests_common_jwt/TokenExpired.jwt"))?,
        "Jwt is expired",
    );
    send(&h, &tokens::istio("tests_common_jwt/TokenInvalid.jwt"))?.assert_status(401);
    assert_401(
        &send(&h, &tokens::istio("tests_common_jwt/TokenIssuer2.jwt"))?,
        "Jwt issuer is not configured",
    );
    Ok(())
}

/// OpenID Connect Discovery §4.3: a document whose `issuer` is not exactly the configured one
/// (here one trailing slash apart) is a failed fetch, logged with both names; its `jwks_uri` is
/// never fetched.
#[test]
fn oidc_discovery_for_another_issuer_is_a_failed_fetch() -> Result<()> {
    let mut r = rule(json!({}));
    r["jwksCluster"] = json!("idp");
    let h = Host::load(meshguard_wasm())?
        .clusters(["idp"])
        .configure(json!({ "jwtRules": [r] }).to_string())?;
    let req = send(&h, &token("ES384", h.now_unix()))?;
    req.assert_paused();
    let discovery = h.expect_one_call();
    let doc =
        json!({"issuer": format!("{ISSUER}/"), "jwks_uri": "https://idp.example.com/oauth/keys"});
    discovery.respond(
        200,
        &[("content-type", "application/json")],
        doc.to_string(),
    )?;
    assert!(
        h.pending_calls().is_empty(),
        "no JWKS fetch for another issuer's document"
    );
    h.assert_logged(
        LogLevel::Warn,
        &format!(
            r#"discovery document names issuer "{ISSUER}/", the configured issuer is "{ISSUER}""#
        ),
    );
    Ok(())
}

// --- extraction, claim headers, anti-spoofing ---------------------------------------------------

/// A custom token header sent twice (a good token, then a forged one): the host's single-header
/// read gives only the first value and the upstream would get both, so it is refused (as
/// `jwt_authn`, which verifies every value, refuses it). `Authorization` pays nothing for this.
#[test]
fn a_repeated_custom_token_header_is_refused() -> Result<()> {
    let h = inline(json!({
        "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}, {"name": "x-jwt"}],
        "forwardOriginalToken": true,
    }))?;
    let good = token("ES256", h.now_unix());
    let other = token("ES256", h.now_unix() + 1);
    let (good_parts, other_parts): (Vec<&str>, Vec<&str>) =
        (good.split('.').collect(), other.split('.').collect());
    let forged = format!("{}.{}.{}", good_parts[0], other_parts[1], good_parts[2]);
    h.request()
        .header("x-jwt", &good)
        .send()?
        .assert_continued()
        .assert_upstream_header("x-jwt-sub", "alice");
    let r = h
        .request()
        .header("x-jwt", &good)
        .header("x-jwt", &forged)
        .send()?;
    assert_401(&r, "Jwt header [x-jwt] appears more than once");
    let r = h
        .request()
        .header("x-jwt", &forged)
        .header("x-jwt", &good)
        .send()?;
    assert_401(&r, "Jwt header [x-jwt] appears more than once");
    Ok(())
}

#[test]
fn header_cookie_and_param_extraction() -> Result<()> {
    let h = inline(json!({
        "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}, {"name": "x-jwt"}],
        "fromParams": ["access_token"],
        "fromCookies": ["session"],
    }))?;
    let t = token("ES256", h.now_unix());
    h.request()
        .header("x-jwt", &t)
        .send()?
        .assert_continued()
        .assert_upstream_header("x-jwt-sub", "alice")
        .assert_no_upstream_header("x-jwt");
    h.request()
        .path(&format!("/p?a=1&access_token={t}&b=2"))
        .send()?
        .assert_continued()
        .assert_upstream_header("x-jwt-sub", "alice")
        .assert_upstream_header(":path", "/p?a=1&b=2");
    h.request()
        .header("cookie", format!("a=1; session={t}; b=2"))
        .send()?
        .assert_continued()
        .assert_upstream_header("x-jwt-sub", "alice")
        .assert_upstream_header("cookie", "a=1; b=2");
    // Without the exact prefix it is not a token: no authentication, the request passes bare.
    h.request()
        .header("authorization", format!("Token {t}"))
        .send()?
        .assert_continued()
        .assert_no_upstream_header("x-jwt-sub");
    // A bad token in any location is a 401.
    h.request()
        .header("cookie", "session=junk")
        .send()?
        .assert_status(401);
    h.request()
        .path("/p?access_token=junk")
        .send()?
        .assert_status(401);
    Ok(())
}

#[test]
fn forward_original_token() -> Result<()> {
    let h = inline(json!({"forwardOriginalToken": true}))?;
    let t = token("ES256", h.now_unix());
    send(&h, &t)?.assert_upstream_header("authorization", &format!("Bearer {t}"));
    Ok(())
}

#[test]
fn claim_headers_nested_arrays_and_payload() -> Result<()> {
    let h = inline(json!({
        "outputClaimToHeaders": [
            {"header": "x-sub", "claim": "sub"},
            {"header": "x-groups", "claim": "groups"},
            {"header": "x-deep", "claim": "org.team.name"},
            {"header": "x-num", "claim": "level"},
            {"header": "x-flag", "claim": "admin"},
            {"header": "x-obj", "claim": "org.team"},
            {"header": "x-absent", "claim": "nope"},
        ],
        "outputPayloadToHeader": "x-jwt-payload",
    }))?;
    let mut c = claims(h.now_unix());
    c["groups"] = json!(["dev", "ops"]);
    c["org"] = json!({"team": {"name": "core"}});
    c["level"] = json!(3);
    c["admin"] = json!(true);
    let t = mint("ES256", &c);
    let r = send(&h, &t)?;
    r.assert_continued()
        .assert_upstream_header("x-sub", "alice")
        .assert_upstream_header("x-groups", "dev,ops")
        .assert_upstream_header("x-deep", "core")
        .assert_upstream_header("x-num", "3")
        .assert_upstream_header("x-flag", "true")
        .assert_upstream_header("x-obj", r#"{"name":"core"}"#)
        .assert_no_upstream_header("x-absent")
        .assert_upstream_header("x-jwt-payload", t.split('.').nth(1).unwrap_or_default());
    Ok(())
}

#[test]
fn spoofed_claim_headers_are_stripped() -> Result<()> {
    let h = inline(json!({"outputPayloadToHeader": "x-jwt-payload"}))?;
    // No token: client copies go, the request passes.
    h.request()
        .header("X-JWT-Sub", "root")
        .header("x-jwt-sub", "root2")
        .header("x-jwt-payload", "forged")
        .send()?
        .assert_continued()
        .assert_no_upstream_header("x-jwt-sub")
        .assert_no_upstream_header("x-jwt-payload");
    // With a token: exactly one value, the verified one.
    let r = h
        .request()
        .header("x-jwt-sub", "root")
        .bearer(&token("ES256", h.now_unix()))
        .send()?;
    assert_eq!(r.upstream_headers().get_all("x-jwt-sub"), vec!["alice"]);
    Ok(())
}

// --- JWKS lifecycle ---------------------------------------------------------------------------

#[test]
fn cold_start_pauses_until_the_fetch_is_answered() -> Result<()> {
    let h = remote(1, json!({}))?;
    let r = send(&h, &token("ES256", h.now_unix()))?;
    r.assert_paused();
    let call = h.expect_one_call();
    assert_eq!(call.context_id(), 1, "fetched by the root context");
    assert_eq!(call.path(), JWKS_PATH);
    call.respond(200, &[], jwks())?;
    r.assert_continued()
        .assert_upstream_header("x-jwt-sub", "alice");
    assert_eq!(
        h.metric(&format!("meshguard.jwks.{ISS_METRIC}.fetch_ok")),
        Some(1)
    );
    // Warm now: no pause, no fetch.
    send(&h, &token("RS256", h.now_unix()))?.assert_continued();
    assert!(h.pending_calls().is_empty());
    Ok(())
}

#[test]
fn cold_start_failure_and_timeout_give_401_jwks_unavailable() -> Result<()> {
    let h = remote(1, json!({"timeout": "2s"}))?;
    let r = send(&h, &token("ES256", h.now_unix()))?;
    r.assert_paused();
    h.expect_one_call().respond(500, &[], "oops")?;
    if r.is_paused() {
        h.advance(Duration::from_secs(2))?;
    }
    assert_401(&r, "JWKS unavailable");
    // Nobody answers at all: the rule's timeout decides.
    let h = remote(1, json!({"timeout": "2s"}))?;
    let r = send(&h, &token("ES256", h.now_unix()))?;
    h.advance(Duration::from_millis(1900))?;
    r.assert_paused();
    h.advance(Duration::from_millis(200))?;
    assert_401(&r, "JWKS unavailable");
    Ok(())
}

#[test]
fn unknown_kid_refetches_once_per_30s() -> Result<()> {
    let h = remote(1, json!({}))?;
    warm(&h)?;
    let now = h.now_unix();
    let other = tokens::ec256_other();
    let t = tokens::sign_ec256_with(&other, "rotated", &claims(now));
    let r = send(&h, &t)?;
    r.assert_paused();
    let mut keys: Vec<Value> = serde_json::from_str::<Value>(&jwks())?["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    keys.push(other.jwk("rotated"));
    h.expect_one_call()
        .respond(200, &[], tokens::jwks_of(&keys))?;
    r.assert_continued();
    assert_eq!(
        h.metric(&format!("meshguard.jwks.{ISS_METRIC}.unknown_kid_refetch")),
        Some(1)
    );
    // Another unknown kid within 30 s: no refetch, a 401 right away.
    let t2 = tokens::sign_ec256_with(&other, "unknown-2", &claims(now));
    let r2 = send(&h, &t2)?;
    assert!(!r2.is_paused(), "{}", r2.describe());
    r2.assert_status(401);
    assert!(h.pending_calls().is_empty(), "{:?}", h.pending_calls());
    // After the rate-limit window, it refetches again.
    h.advance(Duration::from_secs(31))?;
    let r3 = send(
        &h,
        &tokens::sign_ec256_with(&other, "unknown-3", &claims(h.now_unix())),
    )?;
    r3.assert_paused();
    let call = h.expect_one_call();
    call.respond(200, &[], tokens::jwks_of(&keys))?;
    r3.assert_status(401);
    Ok(())
}

/// Advances in 1 s steps until a call is pending; returns the seconds waited.
fn wait_for_call(h: &Host, max_secs: u64) -> Result<Option<u64>> {
    for s in 1..=max_secs {
        h.advance(Duration::from_secs(1))?;
        if !h.pending_calls().is_empty() {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

#[test]
fn fetch_failure_backs_off_and_keeps_stale_keys() -> Result<()> {
    let h = remote(1, json!({"jwksCacheDurationSeconds": 60}))?;
    warm(&h)?;
    let refresh = wait_for_call(&h, 70)?.expect("a refresh before expiry");
    assert!(refresh <= 60, "refresh after {refresh}s");
    h.expect_one_call().respond(503, &[], "down")?;
    let mut gaps = Vec::new();
    for i in 0..5 {
        let gap = wait_for_call(&h, 120)?.expect("a retry");
        gaps.push(gap);
        let call = h.expect_one_call();
        match i % 3 {
            0 => call.connect_failure()?,
            1 => call.timeout()?,
            _ => call.respond(200, &[], "not json")?,
        }
    }
    assert!(gaps[0] >= 1, "{gaps:?}");
    assert!(
        gaps.windows(2).all(|w| w[1] >= w[0]),
        "backoff must not shrink: {gaps:?}"
    );
    assert!(
        *gaps.last().unwrap_or(&0) > gaps[0],
        "backoff must grow: {gaps:?}"
    );
    assert!(gaps.iter().all(|g| *g <= 61), "{gaps:?}");
    assert!(
        h.metric(&format!("meshguard.jwks.{ISS_METRIC}.fetch_failed"))
            .unwrap_or(0)
            >= 6
    );
    // Past the cache duration, the last good keys still verify (stale-if-error).
    send(&h, &token("ES256", h.now_unix()))?.assert_continued();
    // Recovery.
    let _ = wait_for_call(&h, 120)?.expect("a retry");
    h.expect_one_call().respond(200, &[], jwks())?;
    assert_eq!(
        h.metric(&format!("meshguard.jwks.{ISS_METRIC}.fetch_ok")),
        Some(2)
    );
    Ok(())
}

/// Envoy delivers a reset fetch as a callback with 0 headers and no response maps: reading
/// `:status` then is BAD_ARGUMENT, which the SDK's `get_map_value_bytes` turns into a panic.
#[test]
fn a_reset_fetch_is_a_failure_not_a_panic() -> Result<()> {
    let h = remote(1, json!({"timeout": "2s"}))?;
    let r = send(&h, &token("ES256", h.now_unix()))?;
    h.expect_one_call().fail()?;
    if r.is_paused() {
        h.advance(Duration::from_secs(2))?;
    }
    assert_401(&r, "JWKS unavailable");
    assert!(h.failure(0).is_none());
    Ok(())
}

#[test]
fn cache_control_max_age_sets_the_refresh() -> Result<()> {
    let h = remote(1, json!({}))?;
    warm_with(&h, &[("cache-control", "public, max-age=120")], &jwks())?;
    let refresh = wait_for_call(&h, 700)?.expect("a refresh");
    assert!(
        (60..=120).contains(&refresh),
        "max-age=120 refreshed after {refresh}s"
    );

    // Clamped to at least 60 s.
    let h = remote(1, json!({}))?;
    warm_with(&h, &[("cache-control", "max-age=1")], &jwks())?;
    let refresh = wait_for_call(&h, 700)?.expect("a refresh");
    assert!(
        refresh >= 30,
        "max-age=1 (clamped to 60) refreshed after {refresh}s"
    );

    // Without it, the configured duration (default 600 s).
    let h = remote(1, json!({}))?;
    warm(&h)?;
    let refresh = wait_for_call(&h, 700)?.expect("a refresh");
    assert!(
        (300..=600).contains(&refresh),
        "default refreshed after {refresh}s"
    );
    Ok(())
}

#[test]
fn two_workers_fetch_once() -> Result<()> {
    let h = remote(2, json!({}))?;
    h.advance(Duration::from_millis(20))?;
    let call = h.expect_one_call();
    call.respond(200, &[], jwks())?;
    h.advance(Duration::from_secs(1))?;
    assert!(h.pending_calls().is_empty(), "{:?}", h.pending_calls());
    let now = h.now_unix();
    for w in 0..2 {
        h.request()
            .on_worker(w)
            .bearer(&token("EdDSA", now))
            .send()?
            .assert_continued();
    }
    assert!(h.pending_calls().is_empty());
    assert_eq!(
        h.metric(&format!("meshguard.jwks.{ISS_METRIC}.fetch_ok")),
        Some(1)
    );
    Ok(())
}

#[test]
fn two_workers_cold_start_share_one_fetch() -> Result<()> {
    let h = remote(2, json!({}))?;
    let now = h.now_unix();
    let r0 = h
        .request()
        .on_worker(0)
        .bearer(&token("ES256", now))
        .send()?;
    let r1 = h
        .request()
        .on_worker(1)
        .bearer(&token("ES256", now))
        .send()?;
    r0.assert_paused();
    r1.assert_paused();
    h.expect_one_call().respond(200, &[], jwks())?;
    h.advance(Duration::from_millis(200))?;
    r0.assert_continued();
    r1.assert_continued();
    assert!(h.pending_calls().is_empty());
    Ok(())
}

// --- configuration -------------------------------------------------------------------------------

#[test]
fn bad_config_is_rejected_with_its_message() -> Result<()> {
    let cases = [
        (
            json!({"jwtRules": [{"issuer": "x", "jwks": jwks(), "algorithms": ["HS256"]}]}),
            "jwtRules[0].algorithms",
        ),
        (
            json!({"jwtRules": [{"issuer": "x", "jwks": jwks(), "jwksUri": "https://x/j"}]}),
            "jwtRules[0]",
        ),
        (json!({"jwtRulez": []}), "jwtRulez"),
        (
            json!({"jwtRules": [{"issuer": "x", "jwksUri": "https://x/j", "timeout": "five"}]}),
            "timeout",
        ),
        (
            json!({"jwtRules": [{"issuer": "x", "jwks": "{\"keys\": []}"}]}),
            "jwtRules[0].jwks",
        ),
    ];
    for (cfg, needle) in cases {
        let err = Host::load(meshguard_wasm())?
            .configure(cfg.to_string())
            .err()
            .unwrap_or_else(|| panic!("accepted: {cfg}"));
        let msg = err.to_string();
        assert!(msg.contains("proxy_on_configure returned false"), "{msg}");
        assert!(
            msg.contains("invalid configuration") && msg.contains(needle),
            "{needle}: {msg}"
        );
    }
    // Not JSON at all.
    assert!(Host::load(meshguard_wasm())?.configure("{").is_err());
    // Empty configuration: no rules, every request passes.
    let h = Host::load(meshguard_wasm())?.configure("")?;
    h.request().send()?.assert_continued();
    Ok(())
}

// --- policies over the peer's SPIFFE identity and the JWT ------------------------------------------

#[test]
fn policies_over_peer_identity_and_request_principal() -> Result<()> {
    let mut r = rule(json!({}));
    r["jwks"] = json!(jwks());
    let cfg = json!({
        "jwtRules": [r],
        "policies": [{
            "name": "frontend-with-jwt",
            "action": "ALLOW",
            "rules": [{
                "from": [{"source": {
                    "principals": ["cluster.local/ns/web/sa/frontend"],
                    "requestPrincipals": [format!("{ISSUER}/alice")],
                }}],
                "to": [{"operation": {"methods": ["GET"], "ports": ["8080"]}}],
            }],
        }],
    });
    let h = Host::load(meshguard_wasm())?.configure(cfg.to_string())?;
    let t = token("ES256", h.now_unix());
    let frontend = "spiffe://cluster.local/ns/web/sa/frontend";
    h.request()
        .bearer(&t)
        .peer_spiffe(frontend)
        .send()?
        .assert_continued()
        .assert_upstream_header("x-jwt-sub", "alice");
    // Wrong peer, no peer (plaintext), no token, wrong method, wrong port: 403.
    let denied = [
        h.request()
            .bearer(&t)
            .peer_spiffe("spiffe://cluster.local/ns/web/sa/other")
            .send()?,
        h.request().bearer(&t).send()?,
        h.request().peer_spiffe(frontend).send()?,
        h.request()
            .method("POST")
            .bearer(&t)
            .peer_spiffe(frontend)
            .send()?,
        h.request()
            .destination_port(9090)
            .bearer(&t)
            .peer_spiffe(frontend)
            .send()?,
    ];
    for d in &denied {
        d.assert_status(403)
            .assert_body_contains("RBAC: access denied");
    }
    // A bad token is still a 401, before the policies.
    h.request()
        .bearer("junk")
        .peer_spiffe(frontend)
        .send()?
        .assert_status(401);
    Ok(())
}

#[test]
fn a_waiter_whose_client_left_is_dropped() -> Result<()> {
    let h = remote(1, json!({}))?;
    let now = h.now_unix();
    let gone = send(&h, &token("ES256", now))?;
    let stays = send(&h, &token("RS256", now))?;
    gone.assert_paused();
    stays.assert_paused();
    h.reset(&gone)?;
    // The fetch belongs to the root context: it survives the request that triggered it.
    h.expect_one_call().respond(200, &[], jwks())?;
    stays.assert_continued();
    assert!(!gone.continued());
    assert!(h.failure(0).is_none());
    Ok(())
}

#[test]
fn a_paused_request_whose_stream_is_reset_leaves_nothing_behind() -> Result<()> {
    let h = remote(1, json!({}))?;
    let now = h.now_unix();
    let r = send(&h, &token("ES256", now))?;
    r.assert_paused();
    assert_eq!(
        h.tick_period(0),
        Some(Duration::from_millis(100)),
        "a waiter: fast tick"
    );
    h.reset(&r)?;
    // proxy_on_done dropped the waiter: the next tick finds none and slows down, though the
    // fetch is still outstanding.
    h.advance(Duration::from_millis(150))?;
    assert_eq!(h.pending_calls().len(), 1);
    assert_eq!(
        h.tick_period(0),
        Some(Duration::from_secs(1)),
        "the reset request's waiter is still registered"
    );
    // The answer resumes nothing, fails nothing, and serves the next request.
    h.expect_one_call().respond(200, &[], jwks())?;
    assert!(!r.continued());
    assert!(h.logs_containing("could not").is_empty(), "{:?}", h.logs());
    send(&h, &token("ES256", now))?.assert_continued();
    assert!(h.failure(0).is_none());
    assert!(h.notes().is_empty(), "{:?}", h.notes());
    Ok(())
}

/// Envoy calls only the callbacks a module exports: meshguard exports what it uses, so a
/// request costs `proxy_on_context_create`, `proxy_on_request_headers` and `proxy_on_done`
/// (plus the body callbacks when there is a body), nothing on the response side.
#[test]
fn only_the_callbacks_meshguard_uses_are_exported() -> Result<()> {
    let exports = meshguard_harness::exports(meshguard_wasm())?;
    assert_eq!(
        exports,
        [
            "_initialize",
            "proxy_abi_version_0_2_1",
            "proxy_on_configure",
            "proxy_on_context_create",
            "proxy_on_done",
            "proxy_on_http_call_response",
            "proxy_on_memory_allocate",
            "proxy_on_queue_ready",
            "proxy_on_request_body",
            "proxy_on_request_headers",
            "proxy_on_request_trailers",
            "proxy_on_tick",
        ]
    );
    let h = inline(json!({}))?;
    let r = h
        .request()
        .method("POST")
        .bearer(&token("ES256", h.now_unix()))
        .body("payload")
        .trailer("x-t", "1")
        .upstream_response(200, &[("x-up", "1")], "reply")
        .send()?;
    r.assert_continued();
    assert_eq!(r.upstream().body, b"payload");
    assert_eq!(
        r.actions(),
        [
            ("on_request_headers", "Continue"),
            ("on_request_body", "Continue"),
            ("on_request_trailers", "Continue"),
        ],
        "the response callbacks are not exported, so never called"
    );
    assert_eq!(r.response().status, 200);
    Ok(())
}

/// The per-request `allowed` and `no_token` counters are kept in the VM and flushed on the root's
/// tick (and when the root ends), like the cache counters: no host call per request for them.
#[test]
fn allowed_is_flushed_on_the_tick_and_at_shutdown() -> Result<()> {
    let h = inline(json!({}))?;
    let name = format!("meshguard.jwt.{ISS_METRIC}.allowed");
    for _ in 0..3 {
        send(&h, &token("ES256", h.now_unix()))?.assert_continued();
    }
    h.request().send()?.assert_continued();
    assert_eq!(h.metric(&name).unwrap_or(0), 0, "flushed before the tick");
    assert_eq!(h.metric("meshguard.jwt.no_token").unwrap_or(0), 0);
    assert_eq!(h.tick_period(0), Some(Duration::from_secs(1)));
    h.advance(Duration::from_secs(1))?;
    assert_eq!(h.metric(&name), Some(3));
    assert_eq!(h.metric("meshguard.jwt.no_token"), Some(1));
    send(&h, &token("RS256", h.now_unix()))?.assert_continued();
    h.shutdown()?;
    assert_eq!(
        h.metric(&name),
        Some(4),
        "the last delta is flushed when the root ends"
    );
    Ok(())
}

/// A paused request with a body: its body waits too (Pause) until the keys arrive, and then
/// goes upstream whole.
#[test]
fn the_body_of_a_paused_request_waits_for_the_decision() -> Result<()> {
    let h = remote(1, json!({}))?;
    let r = h
        .request()
        .method("POST")
        .bearer(&token("ES256", h.now_unix()))
        .body("payload")
        .send()?;
    r.assert_paused();
    h.expect_one_call().respond(200, &[], jwks())?;
    r.assert_continued();
    assert_eq!(r.upstream().body, b"payload");
    Ok(())
}

#[test]
fn oidc_discovery_then_keys() -> Result<()> {
    let mut r = rule(json!({}));
    r["jwksCluster"] = json!("idp");
    let h = Host::load(meshguard_wasm())?
        .clusters(["idp"])
        .configure(json!({ "jwtRules": [r] }).to_string())?;
    let req = send(&h, &token("ES384", h.now_unix()))?;
    req.assert_paused();
    let discovery = h.expect_one_call();
    assert_eq!(discovery.path(), "/.well-known/openid-configuration");
    assert_eq!(discovery.authority(), "idp.example.com");
    let doc = json!({"issuer": ISSUER, "jwks_uri": "https://idp.example.com/oauth/keys"});
    discovery.respond(
        200,
        &[("content-type", "application/json")],
        doc.to_string(),
    )?;
    let keys = h.expect_one_call();
    assert_eq!(keys.path(), "/oauth/keys");
    keys.respond(200, &[], jwks())?;
    req.assert_continued()
        .assert_upstream_header("x-jwt-sub", "alice");
    Ok(())
}
