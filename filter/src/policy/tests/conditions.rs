//! `when` conditions: Istio's conditions table, claims, value syntax and missing attributes.

use super::*;

// https://istio.io/latest/docs/reference/config/security/conditions/ — one row each.
#[test]
fn istio_conditions_table() {
    let when = |key: &str, values: Value| {
        build(json!({"name": "c", "rules": [{"when": [{"key": key, "values": values}]}]}))
    };
    let p = when("request.headers[User-Agent]", json!(["Mozilla/*"]));
    run(
        &p,
        &[
            case(
                "mozilla",
                Req::get("/").header("user-agent", "Mozilla/5.0"),
                None,
                Want::Allow,
            ),
            case(
                "curl",
                Req::get("/").header("user-agent", "curl/8"),
                None,
                Want::NoAllow,
            ),
            case("absent", Req::get("/"), None, Want::NoAllow),
        ],
    );
    assert_eq!(p.required_headers(), ["user-agent".to_owned()]);

    let p = when("source.ip", json!(["10.1.2.3", "10.2.0.0/16"]));
    run(
        &p,
        &[
            case("exact", Req::get("/").src_ip("10.1.2.3"), None, Want::Allow),
            case(
                "in cidr",
                Req::get("/").src_ip("10.2.200.1"),
                None,
                Want::Allow,
            ),
            case(
                "outside",
                Req::get("/").src_ip("10.3.0.1"),
                None,
                Want::NoAllow,
            ),
        ],
    );

    let p = when("remote.ip", json!(["10.1.2.3", "10.2.0.0/16"]));
    run(
        &p,
        &[
            // numTrustedProxies = 0: remote.ip is the source address; XFF is ignored.
            case(
                "source",
                Req::get("/")
                    .src_ip("10.1.2.3")
                    .header("x-forwarded-for", "8.8.8.8"),
                None,
                Want::Allow,
            ),
            case(
                "xff ignored",
                Req::get("/")
                    .src_ip("1.1.1.1")
                    .header("x-forwarded-for", "10.1.2.3"),
                None,
                Want::NoAllow,
            ),
        ],
    );

    let p = when("source.namespace", json!(["default"]));
    run(
        &p,
        &[
            case(
                "default",
                Req::get("/").peer("cluster.local/ns/default/sa/x"),
                None,
                Want::Allow,
            ),
            case("plaintext", Req::get("/"), None, Want::NoAllow),
        ],
    );

    let p = when(
        "source.principal",
        json!(["cluster.local/ns/default/sa/productpage"]),
    );
    run(
        &p,
        &[
            case(
                "productpage",
                Req::get("/").peer("cluster.local/ns/default/sa/productpage"),
                None,
                Want::Allow,
            ),
            case(
                "other",
                Req::get("/").peer("cluster.local/ns/default/sa/reviews"),
                None,
                Want::NoAllow,
            ),
        ],
    );

    let p = when(
        "request.auth.principal",
        json!(["issuer.example.com/subject-admin"]),
    );
    run(
        &p,
        &[
            case(
                "admin",
                Req::get("/"),
                Some(json!({"iss": "issuer.example.com", "sub": "subject-admin"})),
                Want::Allow,
            ),
            case(
                "user",
                Req::get("/"),
                Some(json!({"iss": "issuer.example.com", "sub": "subject-user"})),
                Want::NoAllow,
            ),
            case("no jwt", Req::get("/"), None, Want::NoAllow),
        ],
    );

    let p = when("request.auth.audiences", json!(["example.com"]));
    run(
        &p,
        &[
            case(
                "string aud",
                Req::get("/"),
                Some(json!({"iss": "i", "aud": "example.com"})),
                Want::Allow,
            ),
            case(
                "list aud",
                Req::get("/"),
                Some(json!({"iss": "i", "aud": ["x", "example.com"]})),
                Want::Allow,
            ),
            case(
                "other aud",
                Req::get("/"),
                Some(json!({"iss": "i", "aud": "example.org"})),
                Want::NoAllow,
            ),
        ],
    );

    let p = when(
        "request.auth.presenter",
        json!(["123456789012.example.com"]),
    );
    run(
        &p,
        &[
            case(
                "azp",
                Req::get("/"),
                Some(json!({"iss": "i", "azp": "123456789012.example.com"})),
                Want::Allow,
            ),
            case(
                "no azp",
                Req::get("/"),
                Some(json!({"iss": "i"})),
                Want::NoAllow,
            ),
        ],
    );

    let p = when("request.auth.claims[iss]", json!(["*@foo.com"]));
    run(
        &p,
        &[
            case(
                "suffix",
                Req::get("/"),
                Some(json!({"iss": "a@foo.com"})),
                Want::Allow,
            ),
            case(
                "other",
                Req::get("/"),
                Some(json!({"iss": "a@bar.com"})),
                Want::NoAllow,
            ),
        ],
    );

    let p = when("destination.ip", json!(["10.1.2.3", "10.2.0.0/16"]));
    run(
        &p,
        &[
            case("in", Req::get("/").dst_ip("10.2.0.9"), None, Want::Allow),
            case("out", Req::get("/").dst_ip("10.9.0.9"), None, Want::NoAllow),
        ],
    );

    let p = when("destination.port", json!(["80", "443"]));
    run(
        &p,
        &[
            case("443", Req::get("/").port(443), None, Want::Allow),
            case("8080", Req::get("/").port(8080), None, Want::NoAllow),
        ],
    );

    let p = when("connection.sni", json!(["www.example.com"]));
    run(
        &p,
        &[
            case(
                "sni",
                Req::get("/").sni("www.example.com"),
                None,
                Want::Allow,
            ),
            case("no sni", Req::get("/"), None, Want::NoAllow),
        ],
    );
}

#[test]
fn claims_matching() {
    let p = build(json!({"name": "c", "rules": [{"when": [
        {"key": "request.auth.claims[realm_access][roles]", "values": ["admin"]},
        {"key": "request.auth.claims[email_verified]", "values": ["true"]},
        {"key": "request.auth.claims[level]", "notValues": ["0"]}
    ]}]}));
    run(
        &p,
        &[
            case(
                "nested list, bool, number",
                Req::get("/"),
                Some(
                    json!({"realm_access": {"roles": ["user", "admin"]}, "email_verified": true, "level": 3}),
                ),
                Want::Allow,
            ),
            case(
                "level 0",
                Req::get("/"),
                Some(
                    json!({"realm_access": {"roles": ["admin"]}, "email_verified": true, "level": 0}),
                ),
                Want::NoAllow,
            ),
            case(
                "not verified",
                Req::get("/"),
                Some(json!({"realm_access": {"roles": ["admin"]}, "email_verified": false})),
                Want::NoAllow,
            ),
            case(
                "object is no match",
                Req::get("/"),
                Some(json!({"realm_access": {"roles": {"admin": 1}}, "email_verified": true})),
                Want::NoAllow,
            ),
        ],
    );

    // `scope` and `permission` split on spaces; other claims only when configured.
    let scope = build(
        json!({"name": "s", "rules": [{"when": [{"key": "request.auth.claims[scope]", "values": ["write"]}]}]}),
    );
    run(
        &scope,
        &[
            case(
                "space list",
                Req::get("/"),
                Some(json!({"scope": "read  write"})),
                Want::Allow,
            ),
            case(
                "json list",
                Req::get("/"),
                Some(json!({"scope": ["read", "write"]})),
                Want::Allow,
            ),
            case(
                "missing",
                Req::get("/"),
                Some(json!({"scope": "read"})),
                Want::NoAllow,
            ),
        ],
    );
    let roles_spec = json!({"name": "r", "rules": [{"when": [{"key": "request.auth.claims[roles]", "values": ["b"]}]}]});
    run(
        &build(roles_spec.clone()),
        &[case(
            "not split",
            Req::get("/"),
            Some(json!({"roles": "a b"})),
            Want::NoAllow,
        )],
    );
    let opts = PolicyOptions {
        space_delimited_claims: vec!["roles".into()],
        ..PolicyOptions::default()
    };
    run(
        &build_with(roles_spec, &opts),
        &[case(
            "split",
            Req::get("/"),
            Some(json!({"roles": "a b"})),
            Want::Allow,
        )],
    );
}

#[test]
fn value_syntax_and_missing_attributes() {
    // `*` in a string field is "present and non-empty"; prefix / suffix.
    let p = build(
        json!({"name": "v", "rules": [{"when": [{"key": "request.auth.claims[sub]", "values": ["*"]}]}]}),
    );
    run(
        &p,
        &[
            case(
                "present",
                Req::get("/"),
                Some(json!({"sub": "x"})),
                Want::Allow,
            ),
            case(
                "empty",
                Req::get("/"),
                Some(json!({"sub": ""})),
                Want::NoAllow,
            ),
            case("absent", Req::get("/"), Some(json!({})), Want::NoAllow),
        ],
    );
    // Headers follow Envoy's header matcher: `*` is presence, even of an empty value.
    let p = build(
        json!({"name": "h", "rules": [{"when": [{"key": "request.headers[x-tenant]", "values": ["*"]}]}]}),
    );
    run(
        &p,
        &[
            case(
                "empty header",
                Req::get("/").header("x-tenant", ""),
                None,
                Want::Allow,
            ),
            case("no header", Req::get("/"), None, Want::NoAllow),
        ],
    );
    // notValues on a missing header matches.
    let p = build(
        json!({"name": "n", "action": "DENY", "rules": [{"when": [{"key": "request.headers[x-api-key]", "notValues": ["secret*"]}]}]}),
    );
    run(
        &p,
        &[
            case("missing", Req::get("/"), None, Want::DenyBy("n", 0)),
            case(
                "wrong",
                Req::get("/").header("x-api-key", "nope"),
                None,
                Want::DenyBy("n", 0),
            ),
            case(
                "right",
                Req::get("/").header("x-api-key", "secret-1"),
                None,
                Want::Allow,
            ),
        ],
    );
    // Inline headers: each comma-separated element is matched.
    let p = build(
        json!({"name": "i", "rules": [{"when": [{"key": "request.experimental.inline.headers[x-groups]", "values": ["admins"]}]}]}),
    );
    run(
        &p,
        &[
            case(
                "element",
                Req::get("/").header("x-groups", "users,admins"),
                None,
                Want::Allow,
            ),
            case(
                "no element",
                Req::get("/").header("x-groups", "users,admins2"),
                None,
                Want::NoAllow,
            ),
        ],
    );
}

/// `request.auth.binding` (meshguard extension): the binding the engine checked, passed to
/// `evaluate_bound`; nothing for an unbound token or a request without one, so `notValues`
/// matches both, like Istio's other `request.auth` keys.
#[test]
fn request_auth_binding() {
    use crate::binding::{Binding, Bindings};
    let none = Bindings::NONE;
    let p = build(json!({
        "name": "bound-admin",
        "action": "DENY",
        "rules": [{
            "to": [{"operation": {"paths": ["/admin/*"]}}],
            "when": [{"key": "request.auth.binding", "notValues": ["x5t#S256"]}]
        }]
    }));
    let claims = jwt(json!({"iss": "i", "sub": "s"}));
    let admin = Req::get("/admin/users");
    let deny = |d: Decision<'_>| match d.verdict {
        Verdict::Deny(DenyReason::Policy(m)) => m.policy == "bound-admin" && m.rule == 0,
        _ => false,
    };
    let bound = Bindings::from(Binding::Certificate);
    let dpop = Bindings::from(Binding::Dpop);
    assert!(p.evaluate_bound(&admin, Some(&claims), bound).is_allowed());
    assert!(deny(p.evaluate_bound(&admin, Some(&claims), none)));
    assert!(deny(p.evaluate_bound(&admin, None, none)));
    // `evaluate` knows no binding: the same as an unbound token.
    assert!(deny(p.evaluate(&admin, Some(&claims))));
    // A DPoP-bound token is not certificate-bound; one bound both ways is.
    assert!(deny(p.evaluate_bound(&admin, Some(&claims), dpop)));
    assert!(
        p.evaluate_bound(&admin, Some(&claims), dpop.with(Binding::Certificate))
            .is_allowed()
    );
    // Another path: the rule does not apply.
    let other = Req::get("/public");
    assert!(p.evaluate_bound(&other, Some(&claims), none).is_allowed());
    assert!(p.evaluate_bound(&other, None, none).is_allowed());

    // Positive values: `x5t#S256`, `jkt`, or `*` (any binding).
    for (value, other_binding_matches) in [("x5t#S256", false), ("jkt", false), ("*", true)] {
        let bound = if value == "jkt" { dpop } else { bound };
        let other_binding = if value == "jkt" {
            Bindings::from(Binding::Certificate)
        } else {
            dpop
        };
        let p = build(json!({
            "name": "a",
            "rules": [{"when": [{"key": "request.auth.binding", "values": [value]}]}]
        }));
        assert!(
            p.evaluate_bound(&other, Some(&claims), bound).is_allowed(),
            "{value}"
        );
        assert!(
            !p.evaluate_bound(&other, Some(&claims), none).is_allowed(),
            "{value}"
        );
        assert!(
            !p.evaluate_bound(&other, None, none).is_allowed(),
            "{value}"
        );
        assert_eq!(
            p.evaluate_bound(&other, Some(&claims), other_binding)
                .is_allowed(),
            other_binding_matches,
            "{value}"
        );
    }

    // Only the bindings meshguard checks are values: anything else is a configuration error.
    for bad in ["JKT", "dpop", "X5T#S256", "x5t#*", "true"] {
        let err = compile(
            &specs(json!({
                "name": "p",
                "rules": [{"when": [{"key": "request.auth.binding", "values": ["x5t#S256", bad]}]}]
            })),
            &PolicyOptions::default(),
        )
        .err()
        .unwrap_or_else(|| panic!("{bad} compiled"))
        .to_string();
        assert_eq!(
            err,
            format!(
                "policy \"p\": rules[0].when[0].values[1]: unknown token binding {bad:?}: expected \"x5t#S256\" (certificate-bound), \"jkt\" (DPoP-bound) or \"*\" (any binding)"
            )
        );
    }
}
