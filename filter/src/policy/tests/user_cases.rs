//! meshguard's two user cases, written as a user writes them in Istio.

use super::*;

// User case (a): the gateway. As a user writes it in Istio:
//
// apiVersion: security.istio.io/v1
// kind: AuthorizationPolicy
// metadata: {name: require-my-app-audience, namespace: istio-system}
// spec:
//   action: DENY
//   rules:
//   - to:
//     - operation:
//         hosts: ["my-app.example.com"]
//         ports: ["443"]
//         notPaths: ["/health"]
//     when:
//     - key: request.auth.claims[aud]
//       notValues: ["my-app.example.com"]
#[test]
fn user_case_gateway_audience() {
    let p = build(json!({
        "name": "require-my-app-audience",
        "action": "DENY",
        "rules": [{
            "to": [{"operation": {"hosts": ["my-app.example.com", "my-app.example.com:*"], "ports": ["443"], "notPaths": ["/health"]}}],
            "when": [{"key": "request.auth.claims[aud]", "notValues": ["my-app.example.com"]}]
        }]
    }));
    let gw = |path: &str| Req::get(path).host("my-app.example.com").port(443);
    let deny = Want::DenyBy("require-my-app-audience", 0);
    let tok = |aud: Value| {
        Some(
            json!({"iss": "https://idp.example.com", "sub": "u1", "email": "u1@example.com", "aud": aud}),
        )
    };
    run(
        &p,
        &[
            case("no token → 403", gw("/api/orders"), None, deny),
            case(
                "aud match → 200",
                gw("/api/orders"),
                tok(json!("my-app.example.com")),
                Want::Allow,
            ),
            case(
                "aud in list → 200",
                gw("/api/orders"),
                tok(json!(["other", "my-app.example.com"])),
                Want::Allow,
            ),
            case(
                "other aud → 403",
                gw("/api/orders"),
                tok(json!("other.example.com")),
                deny,
            ),
            case(
                "/health without token → 200",
                gw("/health"),
                None,
                Want::Allow,
            ),
            case(
                "/health?probe=1 → 200",
                gw("/health?probe=1"),
                None,
                Want::Allow,
            ),
            case(
                "/health/.. is not /health",
                gw("/health/../admin"),
                None,
                deny,
            ),
            case(
                "host with port, no token → 403",
                gw("/x").host("My-App.Example.com:443"),
                None,
                deny,
            ),
            case(
                "other host → 200",
                gw("/x").host("other.example.com"),
                None,
                Want::Allow,
            ),
            case("other port → 200", gw("/x").port(8443), None, Want::Allow),
        ],
    );
}

// User case (b): zero trust on one endpoint. As a user writes it in Istio (a DENY so that only
// this path is affected; every condition is a separate rule, so failing any one denies):
//
// apiVersion: security.istio.io/v1
// kind: AuthorizationPolicy
// metadata: {name: payments-create, namespace: payments}
// spec:
//   action: DENY
//   rules:
//   - to:
//     - operation:
//         paths: ["/internal/payments/create", "/internal/payments/create/*"]
//     from:
//     - source:
//         notPrincipals: ["cluster.local/ns/order/sa/order-service"]
//   - to:
//     - operation:
//         paths: ["/internal/payments/create", "/internal/payments/create/*"]
//         notMethods: ["POST"]
//   - to:
//     - operation:
//         paths: ["/internal/payments/create", "/internal/payments/create/*"]
//     when:
//     - key: request.auth.claims[scope]
//       notValues: ["payment:create"]
#[test]
fn user_case_zero_trust_payments() {
    let paths = json!(["/internal/payments/create", "/internal/payments/create/*"]);
    let p = build(json!({
        "name": "payments-create",
        "action": "DENY",
        "rules": [
            {"to": [{"operation": {"paths": paths}}],
             "from": [{"source": {"notPrincipals": ["cluster.local/ns/order/sa/order-service"]}}]},
            {"to": [{"operation": {"paths": paths, "notMethods": ["POST"]}}]},
            {"to": [{"operation": {"paths": paths}}],
             "when": [{"key": "request.auth.claims[scope]", "notValues": ["payment:create"]}]}
        ]
    }));
    let order = "cluster.local/ns/order/sa/order-service";
    let path = "/internal/payments/create";
    let scoped = || {
        Some(json!({"iss": "https://idp", "sub": "svc", "scope": "payment:read payment:create"}))
    };
    let deny = |rule| Want::DenyBy("payments-create", rule);
    let merging = build_with(
        json!({
            "name": "payments-create",
            "action": "DENY",
            "rules": [{"to": [{"operation": {"paths": paths}}],
                       "from": [{"source": {"notPrincipals": [order]}}]}]
        }),
        &PolicyOptions {
            path_normalization: PathNormalization::MergeSlashes,
            ..PolicyOptions::default()
        },
    );
    run(
        &merging,
        &[case(
            "double slash under MERGE_SLASHES",
            Req::post("/internal//payments/create").peer("cluster.local/ns/x/sa/y"),
            scoped(),
            deny(0),
        )],
    );
    run(
        &p,
        &[
            case(
                "order-service + scope → allow",
                Req::post(path).peer(order),
                scoped(),
                Want::Allow,
            ),
            case(
                "scope as JSON list → allow",
                Req::post(path).peer(order),
                Some(json!({"scope": ["payment:create"]})),
                Want::Allow,
            ),
            case(
                "wrong scope",
                Req::post(path).peer(order),
                Some(json!({"scope": "payment:read"})),
                deny(2),
            ),
            case("no token", Req::post(path).peer(order), None, deny(2)),
            case("plaintext with scope", Req::post(path), scoped(), deny(0)),
            case(
                "other sa with scope",
                Req::post(path).peer("cluster.local/ns/order/sa/batch"),
                scoped(),
                deny(0),
            ),
            case(
                "other ns with scope",
                Req::post(path).peer("cluster.local/ns/evil/sa/order-service"),
                scoped(),
                deny(0),
            ),
            case(
                "other td with scope",
                Req::post(path).peer("evil.td/ns/order/sa/order-service"),
                scoped(),
                deny(0),
            ),
            case(
                "GET from order-service",
                Req::get(path).peer(order),
                scoped(),
                deny(1),
            ),
            case(
                "trailing slash",
                Req::post("/internal/payments/create/").peer("cluster.local/ns/x/sa/y"),
                scoped(),
                deny(0),
            ),
            case(
                "double slash: another path under BASE, as in Istio (CVE-2021-31920)",
                Req::post("/internal//payments/create").peer("cluster.local/ns/x/sa/y"),
                scoped(),
                Want::Allow,
            ),
            case(
                "escaped",
                Req::post("/internal/payments/%63reate").peer("cluster.local/ns/x/sa/y"),
                scoped(),
                deny(0),
            ),
            case(
                "query",
                Req::post("/internal/payments/create?x=1").peer("cluster.local/ns/x/sa/y"),
                scoped(),
                deny(0),
            ),
            case(
                "other path untouched",
                Req::get("/internal/payments/list"),
                None,
                Want::Allow,
            ),
        ],
    );

    // The ALLOW form is the zero-trust default-deny variant: everything else everywhere is 403.
    let allow = build(json!({
        "name": "payments-create",
        "action": "ALLOW",
        "rules": [{
            "from": [{"source": {"principals": [order]}}],
            "to": [{"operation": {"methods": ["POST"], "paths": [path]}}],
            "when": [{"key": "request.auth.claims[scope]", "values": ["payment:create"]}]
        }]
    }));
    run(
        &allow,
        &[
            case(
                "allowed",
                Req::post(path).peer(order),
                scoped(),
                Want::Allow,
            ),
            case("plaintext", Req::post(path), scoped(), Want::NoAllow),
            case(
                "other peer",
                Req::post(path).peer("cluster.local/ns/x/sa/y"),
                scoped(),
                Want::NoAllow,
            ),
            case(
                "no scope",
                Req::post(path).peer(order),
                Some(json!({"scope": "x"})),
                Want::NoAllow,
            ),
            case(
                "other path",
                Req::get("/internal/payments/list").peer(order),
                scoped(),
                Want::NoAllow,
            ),
        ],
    );
}
