//! Istio's own examples: the AuthorizationPolicy reference page, the JWT, deny and ingress
//! tasks.

use super::*;

// https://istio.io/latest/docs/reference/config/security/authorization-policy/
// First example: ALLOW from `cluster.local/ns/default/sa/sleep` or namespace `test`, to GET
// `/info*` or POST `/data`, when `request.auth.claims[iss]` is `https://accounts.google.com`.
#[test]
fn istio_reference_allow_httpbin() {
    let p = build(json!({
        "name": "httpbin",
        "action": "ALLOW",
        "rules": [{
            "from": [
                {"source": {"principals": ["cluster.local/ns/default/sa/sleep"]}},
                {"source": {"namespaces": ["test"]}}
            ],
            "to": [
                {"operation": {"methods": ["GET"], "paths": ["/info*"]}},
                {"operation": {"methods": ["POST"], "paths": ["/data"]}}
            ],
            "when": [{"key": "request.auth.claims[iss]", "values": ["https://accounts.google.com"]}]
        }]
    }));
    let google = || Some(json!({"iss": "https://accounts.google.com", "sub": "u1"}));
    run(
        &p,
        &[
            case(
                "sleep GET /info",
                Req::get("/info").peer("cluster.local/ns/default/sa/sleep"),
                google(),
                Want::Allow,
            ),
            case(
                "sleep GET /info/x?y",
                Req::get("/info/x?y=1").peer("cluster.local/ns/default/sa/sleep"),
                google(),
                Want::Allow,
            ),
            case(
                "ns test POST /data",
                Req::post("/data").peer("cluster.local/ns/test/sa/any"),
                google(),
                Want::Allow,
            ),
            case(
                "no JWT",
                Req::get("/info").peer("cluster.local/ns/default/sa/sleep"),
                None,
                Want::NoAllow,
            ),
            case(
                "other issuer",
                Req::get("/info").peer("cluster.local/ns/default/sa/sleep"),
                Some(json!({"iss": "https://evil.example", "sub": "u1"})),
                Want::NoAllow,
            ),
            case(
                "other namespace",
                Req::get("/info").peer("cluster.local/ns/prod/sa/sleep"),
                google(),
                Want::NoAllow,
            ),
            case("plaintext", Req::get("/info"), google(), Want::NoAllow),
            case(
                "POST /info",
                Req::post("/info").peer("cluster.local/ns/default/sa/sleep"),
                google(),
                Want::NoAllow,
            ),
            case(
                "GET /data",
                Req::get("/data").peer("cluster.local/ns/test/sa/x"),
                google(),
                Want::NoAllow,
            ),
            case(
                "POST /data/x",
                Req::post("/data/x").peer("cluster.local/ns/test/sa/x"),
                google(),
                Want::NoAllow,
            ),
        ],
    );
}

// Same page: DENY requests from the `dev` namespace to the POST method.
#[test]
fn istio_reference_deny_dev_post() {
    let p = build(json!({
        "name": "httpbin",
        "action": "DENY",
        "rules": [{
            "from": [{"source": {"namespaces": ["dev"]}}],
            "to": [{"operation": {"methods": ["POST"]}}]
        }]
    }));
    run(
        &p,
        &[
            case(
                "dev POST",
                Req::post("/").peer("cluster.local/ns/dev/sa/a"),
                None,
                Want::DenyBy("httpbin", 0),
            ),
            case(
                "dev GET",
                Req::get("/").peer("cluster.local/ns/dev/sa/a"),
                None,
                Want::Allow,
            ),
            case(
                "prod POST",
                Req::post("/").peer("cluster.local/ns/prod/sa/a"),
                None,
                Want::Allow,
            ),
            case("plaintext POST", Req::post("/"), None, Want::Allow),
        ],
    );
}

// Same page: DENY POST on port 8080.
#[test]
fn istio_reference_deny_post_8080() {
    let p = build(json!({
        "name": "httpbin",
        "action": "DENY",
        "rules": [{"to": [{"operation": {"methods": ["POST"], "ports": ["8080"]}}]}]
    }));
    run(
        &p,
        &[
            case(
                "POST 8080",
                Req::post("/").port(8080),
                None,
                Want::DenyBy("httpbin", 0),
            ),
            case("POST 9090", Req::post("/").port(9090), None, Want::Allow),
            case("GET 8080", Req::get("/").port(8080), None, Want::Allow),
        ],
    );
}

// Same page: AUDIT GET requests to `/user/profile/*`.
#[test]
fn istio_reference_audit() {
    let p = build(json!({
        "name": "anyname",
        "action": "AUDIT",
        "rules": [{"to": [{"operation": {"methods": ["GET"], "paths": ["/user/profile/*"]}}]}]
    }));
    let d = p.evaluate(&Req::get("/user/profile/alice"), None);
    assert!(d.is_allowed());
    assert_eq!(
        d.audits,
        vec![PolicyMatch {
            policy: "anyname",
            rule: 0,
            fail_closed: false,
        }]
    );
    let d = p.evaluate(&Req::post("/user/profile/alice"), None);
    assert!(d.is_allowed());
    assert!(d.audits.is_empty());
}

// Same page: `spec: {}` allows nothing; `rules: [{}]` allows everything.
#[test]
fn istio_reference_allow_nothing_and_allow_all() {
    let nothing = build(json!({"name": "allow-nothing"}));
    run(
        &nothing,
        &[case("anything", Req::get("/"), None, Want::NoAllow)],
    );
    let empty_list = build(json!({"name": "allow-nothing", "rules": []}));
    run(
        &empty_list,
        &[case("anything", Req::get("/"), None, Want::NoAllow)],
    );
    let all = build(json!({"name": "allow-all", "rules": [{}]}));
    run(
        &all,
        &[
            case("GET", Req::get("/"), None, Want::Allow),
            case("POST plaintext", Req::post("/x"), None, Want::Allow),
        ],
    );
    let d = all.evaluate(&Req::get("/"), None);
    assert_eq!(
        d.allowed_by,
        Some(PolicyMatch {
            policy: "allow-all",
            rule: 0,
            fail_closed: false,
        })
    );
    // An AUDIT policy alone does not turn on deny-by-default.
    let audit_only = build(json!({"name": "a", "action": "AUDIT"}));
    run(
        &audit_only,
        &[case("anything", Req::get("/"), None, Want::Allow)],
    );
    // No policies at all: allow.
    assert!(
        Policies::default()
            .evaluate(&Req::get("/"), None)
            .is_allowed()
    );
}

// Same page: the dry-run example (DENY `/headers`), our `dryRun: true`.
#[test]
fn istio_reference_dry_run() {
    let p = build(json!({
        "name": "dry-run-example",
        "action": "DENY",
        "dryRun": true,
        "rules": [{"to": [{"operation": {"paths": ["/headers"]}}]}]
    }));
    let d = p.evaluate(&Req::get("/headers"), None);
    assert!(d.is_allowed());
    assert_eq!(
        d.dry_run,
        vec![DryRunResult {
            policy: "dry-run-example",
            action: Action::Deny,
            matched_rule: Some(0)
        }]
    );
    assert_eq!(
        d.dry_run_verdict,
        Some(Verdict::Deny(DenyReason::Policy(PolicyMatch {
            policy: "dry-run-example",
            rule: 0,
            fail_closed: false,
        })))
    );
    let d = p.evaluate(&Req::get("/ip"), None);
    assert!(d.is_allowed());
    assert_eq!(d.dry_run[0].matched_rule, None);
    assert_eq!(d.dry_run_verdict, Some(Verdict::Allow));

    // A dry-run ALLOW does not turn on deny-by-default, but its shadow verdict shows it would.
    let p = build(
        json!({"name": "dry-allow", "dryRun": true, "rules": [{"to": [{"operation": {"paths": ["/ok"]}}]}]}),
    );
    let d = p.evaluate(&Req::get("/other"), None);
    assert!(d.is_allowed());
    assert_eq!(
        d.dry_run_verdict,
        Some(Verdict::Deny(DenyReason::NoAllowMatched))
    );
    let d = p.evaluate(&Req::get("/ok"), None);
    assert_eq!(d.dry_run_verdict, Some(Verdict::Allow));
}

// Same page, `Source` message example: principals admin/dev AND namespaces prod/test AND not
// 203.0.113.4. (The example's bare "admin" principals only match `spiffe://admin`.)
#[test]
fn istio_reference_source_example() {
    let p = build(json!({
        "name": "src",
        "rules": [{"from": [{"source": {
            "principals": ["admin", "dev"],
            "namespaces": ["prod", "test"],
            "notIpBlocks": ["203.0.113.4"]
        }}]}]
    }));
    // `principals: admin` is `spiffe://admin` exactly, which has no `/ns/`, so with the
    // namespaces AND-ed nothing can match: Istio's example is illustrative. Use prefix forms
    // to exercise the AND/OR/NOT structure instead.
    run(
        &p,
        &[case(
            "admin",
            Req::get("/").raw_peer("spiffe://admin"),
            None,
            Want::NoAllow,
        )],
    );
    let p = build(json!({
        "name": "src",
        "rules": [{"from": [{"source": {
            "principals": ["cluster.local/ns/prod/sa/admin", "cluster.local/ns/test/sa/dev"],
            "namespaces": ["prod", "test"],
            "notIpBlocks": ["203.0.113.4"]
        }}]}]
    }));
    run(
        &p,
        &[
            case(
                "admin in prod",
                Req::get("/").peer("cluster.local/ns/prod/sa/admin"),
                None,
                Want::Allow,
            ),
            case(
                "dev in test",
                Req::get("/").peer("cluster.local/ns/test/sa/dev"),
                None,
                Want::Allow,
            ),
            case(
                "admin from blocked ip",
                Req::get("/")
                    .peer("cluster.local/ns/prod/sa/admin")
                    .src_ip("203.0.113.4"),
                None,
                Want::NoAllow,
            ),
            case(
                "someone else",
                Req::get("/").peer("cluster.local/ns/prod/sa/x"),
                None,
                Want::NoAllow,
            ),
        ],
    );
}

// Same page, `Operation` message example: hosts `*.example.com`, methods GET/HEAD, notPaths
// `/admin*`.
#[test]
fn istio_reference_operation_example() {
    let p = build(json!({
        "name": "op",
        "rules": [{"to": [{"operation": {
            "hosts": ["*.example.com"],
            "methods": ["GET", "HEAD"],
            "notPaths": ["/admin*"]
        }}]}]
    }));
    run(
        &p,
        &[
            case(
                "api GET",
                Req::get("/x").host("api.example.com"),
                None,
                Want::Allow,
            ),
            case(
                "API HEAD upper-case host",
                Req::get("/x").method("HEAD").host("API.Example.COM"),
                None,
                Want::Allow,
            ),
            case(
                "host with a port is another authority (Istio)",
                Req::get("/x").host("api.example.com:443"),
                None,
                Want::NoAllow,
            ),
            case(
                "admin path",
                Req::get("/admin/x").host("api.example.com"),
                None,
                Want::NoAllow,
            ),
            case(
                "admin via dot segments",
                Req::get("/x/../admin").host("api.example.com"),
                None,
                Want::NoAllow,
            ),
            case(
                "admin via escape",
                Req::get("/%61dmin").host("api.example.com"),
                None,
                Want::NoAllow,
            ),
            case(
                "//admin is another path under BASE (Istio's default, CVE-2021-31920)",
                Req::get("//admin").host("api.example.com"),
                None,
                Want::Allow,
            ),
            case(
                "POST",
                Req::post("/x").host("api.example.com"),
                None,
                Want::NoAllow,
            ),
            case(
                "apex host",
                Req::get("/x").host("example.com"),
                None,
                Want::NoAllow,
            ),
            case(
                "lower-case method",
                Req::get("/x").method("get").host("a.example.com"),
                None,
                Want::NoAllow,
            ),
        ],
    );
}

// https://istio.io/latest/docs/tasks/security/authorization/authz-jwt/ — requestPrincipals
// and a nested/list claim; and the "require a JWT" DENY with `notRequestPrincipals: ["*"]`.
#[test]
fn istio_jwt_tasks() {
    let p = build(json!({
        "name": "require-jwt",
        "action": "ALLOW",
        "rules": [{
            "from": [{"source": {"requestPrincipals": ["testing@secure.istio.io/testing@secure.istio.io"]}}],
            "when": [{"key": "request.auth.claims[groups]", "values": ["group1"]}]
        }]
    }));
    let tok = |groups: Value| {
        Some(
            json!({"iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io", "groups": groups}),
        )
    };
    run(
        &p,
        &[
            case(
                "group1",
                Req::get("/headers"),
                tok(json!(["group1", "group2"])),
                Want::Allow,
            ),
            case(
                "group2 only",
                Req::get("/headers"),
                tok(json!(["group2"])),
                Want::NoAllow,
            ),
            case("no token", Req::get("/headers"), None, Want::NoAllow),
        ],
    );

    let p = build(json!({
        "name": "deny-anonymous",
        "action": "DENY",
        "rules": [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}]
    }));
    run(
        &p,
        &[
            case(
                "anonymous",
                Req::get("/"),
                None,
                Want::DenyBy("deny-anonymous", 0),
            ),
            case(
                "token",
                Req::get("/"),
                Some(json!({"iss": "i", "sub": "s"})),
                Want::Allow,
            ),
            // `*` is iss AND sub present: a token without `sub` is not a request principal.
            case(
                "token without sub",
                Req::get("/"),
                Some(json!({"iss": "i"})),
                Want::DenyBy("deny-anonymous", 0),
            ),
        ],
    );

    let p = build(json!({
        "name": "deny-plaintext",
        "action": "DENY",
        "rules": [{"from": [{"source": {"notPrincipals": ["*"]}}]}]
    }));
    run(
        &p,
        &[
            case(
                "plaintext",
                Req::get("/"),
                None,
                Want::DenyBy("deny-plaintext", 0),
            ),
            case(
                "mtls",
                Req::get("/").peer("cluster.local/ns/a/sa/b"),
                None,
                Want::Allow,
            ),
        ],
    );
}

// Adapted from https://istio.io/latest/docs/tasks/security/authorization/authz-deny/ : a DENY on
// GET unless `x-token: admin`, next to an ALLOW for `/ip` with the same header.
#[test]
fn istio_task_explicit_deny() {
    let p = build(json!([
        {"name": "deny-method-get", "action": "DENY", "rules": [{
            "to": [{"operation": {"methods": ["GET"]}}],
            "when": [{"key": "request.headers[x-token]", "notValues": ["admin"]}]
        }]},
        {"name": "allow-path-ip", "action": "ALLOW", "rules": [{
            "to": [{"operation": {"paths": ["/ip"]}}]
        }]}
    ]));
    run(
        &p,
        &[
            case(
                "GET /ip without token",
                Req::get("/ip"),
                None,
                Want::DenyBy("deny-method-get", 0),
            ),
            case(
                "GET /ip as admin",
                Req::get("/ip").header("x-token", "admin"),
                None,
                Want::Allow,
            ),
            case(
                "GET /headers as admin",
                Req::get("/headers").header("x-token", "admin"),
                None,
                Want::NoAllow,
            ),
            case("POST /ip", Req::post("/ip"), None, Want::Allow),
        ],
    );
}

// Adapted from https://istio.io/latest/docs/tasks/security/authorization/authz-ingress/ : an
// ingress gateway allowing a client IP range, by `ipBlocks` (the connection) or by
// `remoteIpBlocks` (X-Forwarded-For with numTrustedProxies = 1).
#[test]
fn istio_task_ingress_ip_allowlist() {
    let spec = |field: &str| json!({"name": "ingress-policy", "action": "ALLOW", "rules": [{"from": [{"source": {field: ["1.2.3.4", "5.6.7.0/24"]}}]}]});
    let direct = build(spec("ipBlocks"));
    run(
        &direct,
        &[
            case(
                "listed",
                Req::get("/headers").src_ip("5.6.7.8"),
                None,
                Want::Allow,
            ),
            case(
                "unlisted",
                Req::get("/headers").src_ip("9.9.9.9"),
                None,
                Want::NoAllow,
            ),
            case(
                "xff not used",
                Req::get("/headers")
                    .src_ip("9.9.9.9")
                    .header("x-forwarded-for", "1.2.3.4"),
                None,
                Want::NoAllow,
            ),
        ],
    );
    let opts = PolicyOptions {
        xff_num_trusted_hops: 1,
        ..PolicyOptions::default()
    };
    let remote = build_with(spec("remoteIpBlocks"), &opts);
    run(
        &remote,
        &[
            case(
                "listed client behind LB",
                Req::get("/")
                    .src_ip("10.0.0.2")
                    .header("x-forwarded-for", "1.2.3.4"),
                None,
                Want::Allow,
            ),
            case(
                "unlisted client behind LB",
                Req::get("/")
                    .src_ip("10.0.0.2")
                    .header("x-forwarded-for", "9.9.9.9"),
                None,
                Want::NoAllow,
            ),
        ],
    );
}
