//! Envoy's native `jwt_authn` against the demo IdP: proves the test kit and the IdP's tokens with
//! an independent verifier, and is the baseline meshguard is compared with.

use meshguard_demo_idp::{Alg, TokenSpec};
use meshguard_e2e::stack::{ISSUER, JWKS_URI};
use meshguard_e2e::{Req, Stack, config, send};

#[test]
fn native_jwt_authn_accepts_demo_idp_tokens() {
    let stack = Stack::start(Default::default(), |p| {
        Ok(config::bootstrap(
            vec![config::listener(
                "native",
                vec![config::jwt_authn(ISSUER, "api.example.com", JWKS_URI)],
                None,
            )],
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    })
    .unwrap();
    let port = stack.port("native");
    for alg in Alg::ALL {
        let token = stack
            .idp
            .mint(&TokenSpec::default().alg(alg).aud("api.example.com"))
            .unwrap();
        let r = send(
            port,
            &Req::get("/api")
                .bearer(&token)
                .header("x-user-id", "mallory"),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{alg}: {}", r.summary());
        assert_eq!(r.echoed("x-user-id"), vec!["alice"], "{alg}");
        assert!(
            r.echoed("authorization").is_empty(),
            "{alg}: jwt_authn forwards the token only when asked"
        );
    }
    let expired = stack
        .idp
        .mint(
            &TokenSpec::default()
                .aud("api.example.com")
                .exp_in(Some(-3600)),
        )
        .unwrap();
    let r = send(port, &Req::get("/api").bearer(&expired)).unwrap();
    assert_eq!(r.status, 401, "{}", r.summary());
    assert_eq!(r.text(), "Jwt is expired");
    let wrong_aud = stack.idp.mint(&TokenSpec::default().aud("other")).unwrap();
    let r = send(port, &Req::get("/api").bearer(&wrong_aud)).unwrap();
    assert_eq!(r.status, 403, "{}", r.summary());
    let tampered = stack
        .idp
        .mint(&TokenSpec::default().aud("api.example.com").tamper())
        .unwrap();
    let r = send(port, &Req::get("/api").bearer(&tampered)).unwrap();
    assert_eq!(r.status, 401, "{}", r.summary());
    let r = send(port, &Req::get("/api")).unwrap();
    assert_eq!(r.status, 401, "{}", r.summary());
    let r = send(port, &Req::get("/public/x")).unwrap();
    assert_eq!(r.status, 200, "{}", r.summary());
    let cookie = stack
        .idp
        .mint(&TokenSpec::default().aud("api.example.com").subject("bob"))
        .unwrap();
    let r = send(
        port,
        &Req::get("/api").header("Cookie", &format!("a=b; np_scope_token={cookie}")),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.summary());
    assert_eq!(r.echoed("x-user-id"), vec!["bob"]);
    assert_eq!(stack.idp.jwks_fetches(), 1, "one JWKS fetch, then cached");
    assert!(stack.envoy.stat("http.native.jwt_authn.allowed") >= 5);
}

/// The suite runs on the Envoy it claims to: `MESHGUARD_ENVOY_VERSION` (set by `make e2e`; alone
/// it also selects the pinned install), or the pinned default when neither variable is set.
#[test]
fn envoy_under_test_is_the_expected_version() {
    use meshguard_e2e::paths;
    let want = match std::env::var("MESHGUARD_ENVOY_VERSION") {
        Ok(v) => v,
        Err(_) if std::env::var_os("MESHGUARD_ENVOY").is_none() => {
            paths::DEFAULT_ENVOY_VERSION.to_string()
        }
        Err(_) => return, // a custom binary without a stated version
    };
    let bin = paths::envoy().unwrap();
    assert_eq!(paths::envoy_version(&bin), want, "{}", bin.display());
}
