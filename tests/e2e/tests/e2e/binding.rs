//! Certificate-bound access tokens (RFC 8705 §3) in a real Envoy: TLS listeners with the kit's
//! generated CA, two client certificates, and tokens from the demo IdP whose `cnf.x5t#S256` is
//! the SHA-256 of one certificate's DER. Envoy computes the connection's digest
//! (`connection.sha256_peer_certificate_digest`); meshguard compares.

use crate::common::*;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use meshguard_demo_idp::TokenSpec;
use meshguard_e2e::stack::StackOpts;
use meshguard_e2e::tls::Pki;
use meshguard_e2e::{Req, Stack, TempDir, config, send, send_tls};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// `x5t#S256` of a PEM certificate: base64url (no padding) of the SHA-256 of its DER.
fn thumbprint(pem: &str) -> String {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = STANDARD.decode(body).unwrap();
    URL_SAFE_NO_PAD.encode(Sha256::digest(&der))
}

fn assert_401(r: &meshguard_e2e::Resp, description: &str) {
    assert_eq!(r.status, 401, "{description}: {}", r.summary());
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(
        www.contains("error=\"invalid_token\"")
            && www.ends_with(&format!("error_description=\"{description}\"")),
        "{www}"
    );
}

#[test]
fn certificate_bound_tokens_over_mtls() {
    let certs = TempDir::new("pki").unwrap();
    let pki = Pki::new(certs.path()).unwrap();
    let plugin = json!({"jwtRules": [rule()]});
    let mut strict_rule = rule();
    strict_rule["requireCertificateBinding"] = json!(true);
    let strict = json!({"jwtRules": [strict_rule]});
    // A binding required on /admin/* only, by a policy (request.auth.binding).
    let by_policy = json!({"jwtRules": [rule()], "policies": [{
        "name": "bound-admin",
        "action": "DENY",
        "rules": [{
            "to": [{"operation": {"paths": ["/admin/*"]}}],
            "when": [{"key": "request.auth.binding", "notValues": ["x5t#S256"]}]
        }]
    }]});
    let stack = Stack::start(StackOpts::default(), |p| {
        let required = config::downstream_mtls(&pki.server_cert, &pki.server_key, &pki.ca_file);
        // Client certificates asked for and validated, not required.
        let mut optional = required.clone();
        optional["typed_config"]["require_client_certificate"] = json!(false);
        Ok(config::bootstrap(
            vec![
                config::listener(
                    "mtls",
                    vec![config::meshguard(&p.wasm, &plugin)],
                    Some(required),
                ),
                config::listener(
                    "optional",
                    vec![config::meshguard(&p.wasm, &plugin)],
                    Some(optional.clone()),
                ),
                config::listener(
                    "strict",
                    vec![config::meshguard(&p.wasm, &strict)],
                    Some(optional.clone()),
                ),
                config::listener(
                    "policy",
                    vec![config::meshguard(&p.wasm, &by_policy)],
                    Some(optional),
                ),
                config::listener("plain", vec![config::meshguard(&p.wasm, &plugin)], None),
            ],
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    })
    .unwrap();
    let a = pki
        .client_cert(&["spiffe://cluster.local/ns/a/sa/client"], &[], "client-a")
        .unwrap();
    let b = pki
        .client_cert(&["spiffe://cluster.local/ns/b/sa/client"], &[], "client-b")
        .unwrap();
    let bound_to_a = stack
        .idp
        .mint(
            &TokenSpec::default()
                .aud(AUD)
                .claim("cnf", json!({"x5t#S256": thumbprint(&a.pem)})),
        )
        .unwrap();
    let unbound = stack.idp.mint(&TokenSpec::default().aud(AUD)).unwrap();
    // DPoP-bound (RFC 9449 `cnf.jkt`; RFC 7638's example thumbprint).
    let dpop_bound = stack
        .idp
        .mint(&TokenSpec::default().aud(AUD).claim(
            "cnf",
            json!({"jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}),
        ))
        .unwrap();
    let get = |t: &str| Req::get("/bound").bearer(t);
    let (mtls, optional, strict, plain, policy) = (
        stack.port("mtls"),
        stack.port("optional"),
        stack.port("strict"),
        stack.port("plain"),
        stack.port("policy"),
    );

    // The right certificate: 200 (twice: the second is a verified-token cache hit).
    for port in [mtls, optional, mtls] {
        let r = send_tls(port, a.config.clone(), "localhost", &get(&bound_to_a)).unwrap();
        assert_echo(&r);
        assert_eq!(r.echoed("x-user-id"), vec!["alice"]);
    }
    // Another client certificate of the same CA: 401 (the token is cached by now).
    for port in [mtls, optional] {
        let r = send_tls(port, b.config.clone(), "localhost", &get(&bound_to_a)).unwrap();
        assert_401(
            &r,
            "certificate-bound token presented by another client certificate",
        );
    }
    // No client certificate (TLS without one, and plaintext): 401.
    let r = send_tls(
        optional,
        pki.anonymous().unwrap(),
        "localhost",
        &get(&bound_to_a),
    )
    .unwrap();
    assert_401(
        &r,
        "certificate-bound token presented without a client certificate",
    );
    let r = send(plain, &get(&bound_to_a)).unwrap();
    assert_401(
        &r,
        "certificate-bound token presented without a client certificate",
    );
    // An unbound token is a bearer token unless the rule requires a binding.
    let r = send_tls(optional, b.config.clone(), "localhost", &get(&unbound)).unwrap();
    assert_echo(&r);
    let r = send_tls(strict, b.config.clone(), "localhost", &get(&unbound)).unwrap();
    assert_401(&r, "token is not certificate-bound");
    let r = send_tls(strict, a.config.clone(), "localhost", &get(&bound_to_a)).unwrap();
    assert_echo(&r);
    // A DPoP-bound token presented as a bearer token (RFC 9449 §7.2): 401 under every rule.
    let r = send_tls(optional, a.config.clone(), "localhost", &get(&dpop_bound)).unwrap();
    assert_401(&r, "DPoP-bound token presented as a bearer token");
    // The policy: on /admin/*, the bound token over its certificate goes on; an unbound token
    // (or none) is a 403; elsewhere the unbound token goes on.
    let admin = |t: &str| Req::get("/admin/users").bearer(t);
    let r = send_tls(policy, a.config.clone(), "localhost", &admin(&bound_to_a)).unwrap();
    assert_echo(&r);
    let r = send_tls(policy, a.config.clone(), "localhost", &admin(&unbound)).unwrap();
    assert_eq!(r.status, 403, "{}", r.summary());
    let r = send_tls(
        policy,
        a.config.clone(),
        "localhost",
        &Req::get("/admin/users"),
    )
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.summary());
    let r = send_tls(policy, a.config.clone(), "localhost", &get(&unbound)).unwrap();
    assert_echo(&r);

    let stats = stack.envoy.stats();
    let count = |reason: &str| denied(&stats, reason);
    assert_eq!(count("cnf_other_certificate"), 2, "{stats:?}");
    assert_eq!(count("cnf_no_certificate"), 2);
    assert_eq!(count("cnf_not_bound"), 1);
    assert_eq!(count("cnf_dpop_as_bearer"), 1);
}
