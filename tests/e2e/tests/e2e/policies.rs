//! AuthorizationPolicy semantics in a real Envoy: the zero-trust case over mTLS with generated
//! SPIFFE certificates (peer identity + JWT scope), and the gateway case (DENY by audience per
//! host and port, token in header or cookie).

use crate::common::*;
use meshguard_demo_idp::TokenSpec;
use meshguard_e2e::stack::{ISSUER, JWKS_URI, StackOpts};
use meshguard_e2e::tls::Pki;
use meshguard_e2e::{Req, Stack, TempDir, config, send, send_tls};
use serde_json::{Value, json};
use std::net::TcpListener;

const PAYMENTS: &str = "/internal/payments/create";
const ORDER: &str = "spiffe://cluster.local/ns/order/sa/order-service";
const DENIED: &str = "RBAC: access denied";

fn assert_403(r: &meshguard_e2e::Resp, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.summary());
    assert_eq!(r.text(), DENIED, "{what}");
}

fn zero_trust_plugin() -> Value {
    json!({
        "jwtRules": [rule()],
        "policies": [{
            "name": "payments",
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"principals": ["cluster.local/ns/order/sa/order-service"]}}],
                    "to": [{"operation": {"methods": ["POST"], "paths": [PAYMENTS]}}],
                    "when": [{"key": "request.auth.claims[scope]", "values": ["payment:create"]}]
                },
                {"to": [{"operation": {"notPaths": [PAYMENTS]}}]}
            ]
        }]
    })
}

#[test]
fn zero_trust_spiffe_peer_and_jwt_scope_over_mtls() {
    let certs = TempDir::new("pki").unwrap();
    let pki = Pki::new(certs.path()).unwrap();
    let plugin = zero_trust_plugin();
    let stack = Stack::start(StackOpts::default(), |p| {
        let mg = || config::meshguard(&p.wasm, &plugin);
        let mtls = config::downstream_mtls(&pki.server_cert, &pki.server_key, &pki.ca_file);
        Ok(config::bootstrap(
            vec![
                config::listener("mesh", vec![mg()], Some(mtls)),
                config::listener("plain", vec![mg()], None),
            ],
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    })
    .unwrap();
    let mesh = stack.port("mesh");
    let plain = stack.port("plain");
    let order = pki.client(ORDER).unwrap();
    let frontend = pki
        .client("spiffe://cluster.local/ns/shop/sa/frontend")
        .unwrap();
    let foreign = pki
        .client("spiffe://evil.example/ns/order/sa/order-service")
        .unwrap();
    let tok = |scope: &str| {
        stack
            .idp
            .mint(&TokenSpec::default().aud(AUD).claim("scope", json!(scope)))
            .unwrap()
    };
    let create = |t: &str| Req::post(PAYMENTS).bearer(t).body(b"{}");

    // The one allowed combination; scope is space-delimited.
    for scope in ["payment:create", "payment:read payment:create"] {
        let r = send_tls(mesh, order.clone(), "localhost", &create(&tok(scope))).unwrap();
        assert_echo(&r);
        assert_eq!(r.echoed("x-user-id"), vec!["alice"], "{scope}");
    }
    // Everything else on that path: 403.
    let r = send_tls(
        mesh,
        order.clone(),
        "localhost",
        &create(&tok("payment:read")),
    )
    .unwrap();
    assert_403(&r, "right peer, wrong scope");
    let r = send_tls(
        mesh,
        order.clone(),
        "localhost",
        &Req::post(PAYMENTS).body(b"{}"),
    )
    .unwrap();
    assert_403(&r, "right peer, no JWT");
    let r = send_tls(
        mesh,
        frontend.clone(),
        "localhost",
        &create(&tok("payment:create")),
    )
    .unwrap();
    assert_403(&r, "other peer, right scope");
    let r = send_tls(mesh, foreign, "localhost", &create(&tok("payment:create"))).unwrap();
    assert_403(&r, "other trust domain, right scope");
    let r = send(plain, &create(&tok("payment:create"))).unwrap();
    assert_403(&r, "plaintext, right scope");
    let get = Req::get(PAYMENTS).bearer(&tok("payment:create"));
    let r = send_tls(mesh, order.clone(), "localhost", &get).unwrap();
    assert_403(&r, "GET instead of POST");
    // An invalid JWT is a 401 even from the right peer (authentication before authorization).
    let expired = stack
        .idp
        .mint(
            &TokenSpec::default()
                .aud(AUD)
                .claim("scope", json!("payment:create"))
                .exp_in(Some(-3600)),
        )
        .unwrap();
    let r = send_tls(mesh, order.clone(), "localhost", &create(&expired)).unwrap();
    assert_eq!(r.status, 401, "{}", r.summary());
    // Other paths: any peer, JWT optional; plaintext too.
    let r = send_tls(mesh, frontend, "localhost", &Req::get("/internal/health")).unwrap();
    assert_echo(&r);
    let r = send(plain, &Req::get("/orders")).unwrap();
    assert_echo(&r);
    // Client certificates are required on the mesh listener.
    let anon = send_tls(
        mesh,
        pki.anonymous().unwrap(),
        "localhost",
        &Req::get("/orders"),
    );
    assert!(
        anon.is_err(),
        "a peer without a client certificate was served: {anon:?}"
    );

    let stats = stack.envoy.stats();
    let no_allow = stats
        .get("wasmcustom.meshguard.policy.no_allow_matched")
        .copied()
        .unwrap_or(0);
    assert!(no_allow >= 6, "no_allow_matched = {no_allow}");
    let forbidden = stats
        .get("wasmcustom.meshguard.denied.forbidden")
        .copied()
        .unwrap_or(0);
    assert!(forbidden >= 6, "denied.forbidden = {forbidden}");
}

#[test]
fn gateway_denies_by_audience_per_host_and_port() {
    // The policy names the destination port, so pick the listener's port before starting Envoy.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let plugin = json!({
        "jwtRules": [{
            "issuer": ISSUER,
            "jwksUri": JWKS_URI,
            "jwksCluster": "idp",
            "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}],
            "fromCookies": ["np_scope_token"],
            "outputClaimToHeaders": [
                {"header": "X-User-ID", "claim": "sub"},
                {"header": "X-User-Email", "claim": "email"}
            ]
        }],
        "policies": [{
            "name": "my-app-audience",
            "action": "DENY",
            "rules": [{
                "to": [{"operation": {
                    "hosts": ["my-app.example.com", "my-app.example.com:*"],
                    "ports": [port.to_string()],
                    "notPaths": ["/health"]
                }}],
                "when": [{"key": "request.auth.claims[aud]", "notValues": ["my-app.example.com"]}]
            }]
        }]
    });
    let stack = Stack::start(StackOpts::default(), |p| {
        let mut l = config::listener("gateway", vec![config::meshguard(&p.wasm, &plugin)], None);
        l["address"]["socket_address"]["port_value"] = json!(port);
        Ok(config::bootstrap(
            vec![l],
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    })
    .unwrap();
    assert_eq!(stack.port("gateway"), port);
    let app = |path: &str| Req::get(path).host("my-app.example.com");
    let tok = |aud: &str| {
        stack
            .idp
            .mint(
                &TokenSpec::default()
                    .aud(aud)
                    .claim("email", json!("alice@example.com")),
            )
            .unwrap()
    };

    assert_403(&send(port, &app("/api")).unwrap(), "no token");
    let r = send(
        port,
        &app("/api")
            .bearer(&tok("my-app.example.com"))
            .header("x-user-id", "root"),
    )
    .unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-user-id"), vec!["alice"]);
    assert_eq!(r.echoed("x-user-email"), vec!["alice@example.com"]);
    let cookie = format!("np_scope_token={}", tok("my-app.example.com"));
    let r = send(port, &app("/api").header("Cookie", &cookie)).unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-user-id"), vec!["alice"]);
    assert_403(
        &send(port, &app("/api").bearer(&tok("other.example.com"))).unwrap(),
        "other aud",
    );
    let cookie = format!("np_scope_token={}", tok("other.example.com"));
    assert_403(
        &send(port, &app("/api").header("Cookie", &cookie)).unwrap(),
        "other aud in cookie",
    );
    assert_echo(&send(port, &app("/health")).unwrap());
    // Hosts: case-insensitive; `:*` covers a Host with a port (as in Istio, the authority is
    // compared as sent); other hosts are not covered by this policy.
    let with_port = format!("my-app.example.com:{port}");
    assert_403(
        &send(port, &Req::get("/api").host(&with_port)).unwrap(),
        "host with port",
    );
    assert_403(
        &send(port, &Req::get("/api").host("MY-APP.example.COM")).unwrap(),
        "host case",
    );
    assert_echo(&send(port, &Req::get("/api").host("other.example.com")).unwrap());
    let denied = stack
        .envoy
        .stat("wasmcustom.meshguard.policy.my-app-audience.denied");
    assert!(denied >= 5, "policy denied counter = {denied}");
}
