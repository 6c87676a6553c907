//! Evaluation as a whole: policy order, the headers and warnings of a policy set, the trait
//! object, hostile inputs, sharing.

use super::*;

#[test]
fn policy_order_and_multiple_policies() {
    let p = build(json!([
        {"name": "allow-get", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]},
        {"name": "deny-admin", "action": "DENY", "rules": [
            {"to": [{"operation": {"paths": ["/nothing"]}}]},
            {"to": [{"operation": {"paths": ["/admin*"]}}]}
        ]},
        {"name": "audit-all", "action": "AUDIT", "rules": [{}]},
        {"name": "allow-health", "rules": [{"to": [{"operation": {"paths": ["/health"]}}]}]}
    ]));
    run(
        &p,
        &[
            case("GET", Req::get("/x"), None, Want::Allow),
            case(
                "DENY wins over ALLOW",
                Req::get("/admin"),
                None,
                Want::DenyBy("deny-admin", 1),
            ),
            case(
                "POST /health allowed by second ALLOW",
                Req::post("/health"),
                None,
                Want::Allow,
            ),
            case("POST elsewhere", Req::post("/x"), None, Want::NoAllow),
        ],
    );
    let d = p.evaluate(&Req::post("/health"), None);
    assert_eq!(
        d.allowed_by,
        Some(PolicyMatch {
            policy: "allow-health",
            rule: 0,
            fail_closed: false,
        })
    );
    assert_eq!(
        d.audits,
        vec![PolicyMatch {
            policy: "audit-all",
            rule: 0,
            fail_closed: false,
        }]
    );
    let d = p.evaluate(&Req::get("/admin"), None);
    assert_eq!(d.audits.len(), 1, "AUDIT is reported even when denied");
    assert_eq!(d.allowed_by, None);
    assert_eq!(d.dry_run_verdict, None);
}

#[test]
fn headers_and_warnings() {
    let p = build(json!([
        {"name": "a", "rules": [{
            "from": [{"source": {"namespaces": ["x"]}}],
            "to": [{"operation": {"hosts": ["h"], "paths": ["/p"]}}],
            "when": [{"key": "request.headers[X-B]", "values": ["1"]}, {"key": "request.headers[x-a]", "values": ["1"]}]
        }]},
        {"name": "b", "action": "DENY", "rules": [{"when": [{"key": "request.headers[X-A]", "values": ["2"]}]}]}
    ]));
    // Only "a" reads the peer certificate (warned about at configure time); nothing reads the
    // direct peer address.
    assert_eq!(p.warnings().len(), 1, "{:?}", p.warnings());
    assert!(
        p.warnings()[0].starts_with("policy \"a\": peer identities"),
        "{:?}",
        p.warnings()
    );
    assert_eq!(p.required_headers(), ["x-a".to_owned(), "x-b".to_owned()]);
    assert_eq!(p.names().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn evaluates_through_dyn_trait() {
    let p = build(json!({"name": "a", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}));
    let req: &dyn RequestAttributes = &Req::get("/");
    assert!(p.evaluate(req, None).is_allowed());
    assert_eq!(DEFAULT_DENY_BODY, "RBAC: access denied");
    assert_eq!(
        DenyReason::NoAllowMatched.to_string(),
        "no ALLOW policy matched"
    );
    assert_eq!(
        DenyReason::Policy(PolicyMatch {
            policy: "p",
            rule: 2,
            fail_closed: false,
        })
        .to_string(),
        "denied by policy \"p\" rule 2"
    );
}

#[test]
fn hostile_inputs_never_panic() {
    let p = build(json!([
        {"name": "a", "rules": [{
            "from": [{"source": {"serviceAccounts": ["x/y"], "remoteIpBlocks": ["10.0.0.0/8"]}},
                     {"source": {"principals": ["*z"], "namespaces": ["a*b*c"], "trustDomains": ["t*"], "notRequestPrincipals": ["*/*"]}}],
            "to": [{"operation": {"hosts": ["*.é.com"], "paths": ["/{*}/{**}", "*é"], "methods": ["*"]}}],
            "when": [{"key": "request.auth.claims[a][b]", "values": ["*"]},
                     {"key": "request.experimental.inline.headers[x]", "notValues": ["v*"]}]
        }]},
        {"name": "d", "action": "DENY", "dryRun": true, "rules": [{"to": [{"operation": {"notPaths": ["/ok"]}}]}]}
    ]));
    let opts = PolicyOptions {
        xff_num_trusted_hops: 3,
        forwarded_client_cert: Some(ForwardedClientCert { trusted_hop: 2 }),
        ..PolicyOptions::default()
    };
    let q = build_with(
        json!({"name": "x", "rules": [{"from": [{"source": {"namespaces": ["n"], "remoteIpBlocks": ["::/0"]}}], "to": [{"operation": {"paths": ["/p*"]}}]}]}),
        &opts,
    );
    let weird = [
        "",
        "%",
        "%%",
        "%%%",
        "%é",
        "/%C3",
        "/é%2",
        "/../../..",
        "//..//.//",
        "/\\..\\",
        "?",
        "#",
        "/a%2F..%2F",
        ":",
        "[",
        "]:",
        ":::",
        "[::1]:",
        "spiffe://",
        "spiffe:///ns/",
        "/ns/",
        "/ns//",
        ",,,",
        "\"",
        "URI=\"",
        "é,é;é=é",
        "URI=spiffe://a/ns/n/x\",URI=\"",
        "a=b;URI",
        "ns/n/sa/",
    ];
    for w in weird {
        let req = Req {
            headers: vec![
                ("x".into(), w.into()),
                ("x-forwarded-for".into(), w.into()),
                ("x-forwarded-client-cert".into(), w.into()),
            ],
            host: Some(w.into()),
            method: Some(w.into()),
            path: Some(w.into()),
            port: Some(0),
            source: None,
            destination: None,
            peer: Some(PeerIdentity {
                uris: vec![w.into()],
                dns: vec![w.into()],
                subject: w.into(),
                complete: false,
            }),
            sni: Some(w.into()),
        };
        for claims in [
            None,
            Some(json!({"a": {"b": w}, "iss": w, "sub": w})),
            Some(json!({"a": [w, 1, null, {"b": w}]})),
        ] {
            let c = claims.map(jwt);
            let _ = p.evaluate(&req, c.as_ref());
            let _ = q.evaluate(&req, c.as_ref());
        }
    }
}

#[test]
fn compiled_policies_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policies>();
    assert_send_sync::<PolicyError>();
}
