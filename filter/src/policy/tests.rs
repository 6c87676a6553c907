//! Table-driven policy suite: the examples of Istio's AuthorizationPolicy reference, its
//! conditions and normalization pages, the JWT tasks, and meshguard's two user cases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{IpAddr, SocketAddr};

use serde_json::{Value, json};

use super::*;
use crate::jose::VerifiedClaims;

/// A request for tests: GET / on example.com:8080 from 10.0.0.1, plaintext, no headers.
#[derive(Clone, Debug)]
struct Req {
    headers: Vec<(String, String)>,
    host: Option<String>,
    method: Option<String>,
    path: Option<String>,
    port: Option<u16>,
    source: Option<SocketAddr>,
    destination: Option<IpAddr>,
    peer: Option<PeerIdentity>,
    sni: Option<String>,
}

impl Default for Req {
    fn default() -> Self {
        Req {
            headers: Vec::new(),
            host: Some("example.com".into()),
            method: Some("GET".into()),
            path: Some("/".into()),
            port: Some(8080),
            source: Some("10.0.0.1:50000".parse().unwrap()),
            destination: Some("10.0.0.100".parse().unwrap()),
            peer: None,
            sni: None,
        }
    }
}

impl Req {
    fn get(path: &str) -> Self {
        Req {
            path: Some(path.into()),
            ..Req::default()
        }
    }
    fn post(path: &str) -> Self {
        Req {
            method: Some("POST".into()),
            ..Req::get(path)
        }
    }
    fn method(mut self, m: &str) -> Self {
        self.method = Some(m.into());
        self
    }
    fn host(mut self, h: &str) -> Self {
        self.host = Some(h.into());
        self
    }
    fn port(mut self, p: u16) -> Self {
        self.port = Some(p);
        self
    }
    fn peer(self, principal: &str) -> Self {
        self.raw_peer(&format!("spiffe://{principal}"))
    }
    /// A client certificate with this one URI SAN, read whole.
    fn raw_peer(mut self, uri: &str) -> Self {
        self.peer = Some(PeerIdentity {
            uris: vec![uri.into()],
            complete: true,
            ..PeerIdentity::default()
        });
        self
    }
    fn peer_identity(mut self, identity: PeerIdentity) -> Self {
        self.peer = Some(identity);
        self
    }
    /// The connection's peer address (Envoy's `source.address` with a real port).
    fn src_ip(mut self, ip: &str) -> Self {
        self.source = Some(SocketAddr::new(ip.parse().unwrap(), 50000));
        self
    }
    /// A `source.address` Envoy took from `x-forwarded-for` (port 0).
    fn xff_source(mut self, ip: &str) -> Self {
        self.source = Some(SocketAddr::new(ip.parse().unwrap(), 0));
        self
    }
    fn dst_ip(mut self, ip: &str) -> Self {
        self.destination = Some(ip.parse().unwrap());
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
    fn sni(mut self, sni: &str) -> Self {
        self.sni = Some(sni.into());
        self
    }
}

impl RequestAttributes for Req {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == lower_name)
            .map(|(_, v)| v.as_str())
    }
    fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
    fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }
    fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
    fn destination_port(&self) -> Option<u16> {
        self.port
    }
    fn source_address(&self) -> Option<SocketAddr> {
        self.source
    }
    fn destination_ip(&self) -> Option<IpAddr> {
        self.destination
    }
    fn peer(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }
    fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }
}

fn specs(v: Value) -> Vec<PolicySpec> {
    let v = if v.is_array() { v } else { json!([v]) };
    serde_json::from_value(v).unwrap()
}

fn build(v: Value) -> Policies {
    build_with(v, &PolicyOptions::default())
}

fn build_with(v: Value, options: &PolicyOptions) -> Policies {
    compile(&specs(v), options).unwrap_or_else(|e| panic!("{e}"))
}

fn jwt(claims: Value) -> VerifiedClaims {
    VerifiedClaims::for_tests(claims)
}

/// What a case expects.
#[derive(Debug, Clone, Copy)]
enum Want {
    Allow,
    /// Denied by the named DENY policy's rule.
    DenyBy(&'static str, usize),
    /// Denied because no ALLOW policy matched.
    NoAllow,
}

struct Case {
    name: &'static str,
    req: Req,
    claims: Option<Value>,
    want: Want,
}

fn case(name: &'static str, req: Req, claims: Option<Value>, want: Want) -> Case {
    Case {
        name,
        req,
        claims,
        want,
    }
}

fn run(policies: &Policies, cases: &[Case]) {
    for c in cases {
        let claims = c.claims.clone().map(jwt);
        let d = policies.evaluate(&c.req, claims.as_ref());
        let ok = match (c.want, d.verdict) {
            (Want::Allow, Verdict::Allow) => true,
            (Want::DenyBy(p, r), Verdict::Deny(DenyReason::Policy(m))) => {
                m.policy == p && m.rule == r
            }
            (Want::NoAllow, Verdict::Deny(DenyReason::NoAllowMatched)) => true,
            _ => false,
        };
        assert!(ok, "case {:?}: want {:?}, got {:?}", c.name, c.want, d);
    }
}

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

#[test]
fn source_fields() {
    let allow =
        |source: Value| build(json!({"name": "s", "rules": [{"from": [{"source": source}]}]}));
    let p = allow(json!({"serviceAccounts": ["order/order-service"]}));
    run(
        &p,
        &[
            case(
                "sa",
                Req::get("/").peer("cluster.local/ns/order/sa/order-service"),
                None,
                Want::Allow,
            ),
            case(
                "other td",
                Req::get("/").peer("other.td/ns/order/sa/order-service"),
                None,
                Want::Allow,
            ),
            case(
                "other sa",
                Req::get("/").peer("cluster.local/ns/order/sa/order-service2"),
                None,
                Want::NoAllow,
            ),
            case("plaintext", Req::get("/"), None, Want::NoAllow),
        ],
    );
    let p = allow(json!({"trustDomains": ["cluster.local"], "notServiceAccounts": ["a/b"]}));
    run(
        &p,
        &[
            case(
                "td",
                Req::get("/").peer("cluster.local/ns/x/sa/y"),
                None,
                Want::Allow,
            ),
            case(
                "excluded sa",
                Req::get("/").peer("cluster.local/ns/a/sa/b"),
                None,
                Want::NoAllow,
            ),
            case(
                "other td",
                Req::get("/").peer("remote.td/ns/x/sa/y"),
                None,
                Want::NoAllow,
            ),
        ],
    );
    let p = allow(json!({"notTrustDomains": ["evil.*"]}));
    run(
        &p,
        &[
            case("plaintext passes not*", Req::get("/"), None, Want::Allow),
            case(
                "evil",
                Req::get("/").peer("evil.example/ns/x/sa/y"),
                None,
                Want::NoAllow,
            ),
        ],
    );
    let p = allow(json!({"ipBlocks": ["2001:db8::/32"], "notIpBlocks": ["2001:db8::bad"]}));
    run(
        &p,
        &[
            case(
                "v6 in",
                Req::get("/").src_ip("2001:db8::1"),
                None,
                Want::Allow,
            ),
            case(
                "v6 excluded",
                Req::get("/").src_ip("2001:db8::bad"),
                None,
                Want::NoAllow,
            ),
            case("v4", Req::get("/").src_ip("10.0.0.1"), None, Want::NoAllow),
        ],
    );
    let p = allow(json!({"principals": ["cluster.local/ns/ops/*", "*/sa/robot"]}));
    run(
        &p,
        &[
            case(
                "prefix",
                Req::get("/").peer("cluster.local/ns/ops/sa/x"),
                None,
                Want::Allow,
            ),
            case(
                "suffix",
                Req::get("/").peer("td/ns/q/sa/robot"),
                None,
                Want::Allow,
            ),
            case(
                "neither",
                Req::get("/").peer("td/ns/q/sa/human"),
                None,
                Want::NoAllow,
            ),
        ],
    );
    let p = allow(
        json!({"requestPrincipals": ["https://idp.example.com/*"], "notRequestPrincipals": ["https://idp.example.com/banned"]}),
    );
    run(
        &p,
        &[
            case(
                "user",
                Req::get("/"),
                Some(json!({"iss": "https://idp.example.com", "sub": "u"})),
                Want::Allow,
            ),
            case(
                "banned",
                Req::get("/"),
                Some(json!({"iss": "https://idp.example.com", "sub": "banned"})),
                Want::NoAllow,
            ),
            case(
                "other idp",
                Req::get("/"),
                Some(json!({"iss": "https://other.example.com", "sub": "u"})),
                Want::NoAllow,
            ),
        ],
    );
}

#[test]
fn remote_ip_with_trusted_hops() {
    let opts = PolicyOptions {
        xff_num_trusted_hops: 1,
        ..PolicyOptions::default()
    };
    let p = build_with(
        json!({"name": "r", "action": "DENY", "rules": [{"from": [{"source": {"remoteIpBlocks": ["198.51.100.0/24"]}}]}]}),
        &opts,
    );
    assert_eq!(p.required_headers(), ["x-forwarded-for".to_owned()]);
    run(
        &p,
        &[
            case(
                "client behind one proxy",
                Req::get("/")
                    .src_ip("10.0.0.9")
                    .header("x-forwarded-for", "203.0.113.1, 198.51.100.7"),
                None,
                Want::DenyBy("r", 0),
            ),
            case(
                "spoofed left entry is not trusted",
                Req::get("/")
                    .src_ip("10.0.0.9")
                    .header("x-forwarded-for", "198.51.100.7, 203.0.113.1"),
                None,
                Want::Allow,
            ),
            case(
                "no xff: source address",
                Req::get("/").src_ip("198.51.100.3"),
                None,
                Want::DenyBy("r", 0),
            ),
        ],
    );
}

#[test]
fn forwarded_client_cert_option() {
    let opts = PolicyOptions {
        forwarded_client_cert: Some(ForwardedClientCert::default()),
        ..PolicyOptions::default()
    };
    let p = build_with(
        json!({"name": "x", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/order/sa/order-service"]}}]}]}),
        &opts,
    );
    assert!(
        p.warnings().is_empty(),
        "the identity comes from the header: {:?}",
        p.warnings()
    );
    assert_eq!(p.required_headers(), ["x-forwarded-client-cert".to_owned()]);
    let xfcc = "By=spiffe://cluster.local/ns/gw/sa/gw;Hash=1;URI=spiffe://cluster.local/ns/order/sa/order-service";
    run(
        &p,
        &[
            case(
                "xfcc",
                Req::get("/").header("x-forwarded-client-cert", xfcc),
                None,
                Want::Allow,
            ),
            // The connection's own certificate is ignored in this mode (it is the proxy's).
            case(
                "connection peer ignored",
                Req::get("/").peer("cluster.local/ns/order/sa/order-service"),
                None,
                Want::NoAllow,
            ),
            case(
                "left element not trusted",
                Req::get("/").header(
                    "x-forwarded-client-cert",
                    format!("{xfcc},URI=spiffe://cluster.local/ns/x/sa/y").as_str(),
                ),
                None,
                Want::NoAllow,
            ),
        ],
    );
}

#[test]
fn path_templates_and_normalization() {
    let p = build(
        json!({"name": "t", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/api/{*}/secret/{**}"]}}]}]}),
    );
    run(
        &p,
        &[
            case(
                "match",
                Req::get("/api/v1/secret/a/b"),
                None,
                Want::DenyBy("t", 0),
            ),
            case(
                "empty tail",
                Req::get("/api/v1/secret/"),
                None,
                Want::DenyBy("t", 0),
            ),
            case(
                "two segments for {*}",
                Req::get("/api/v1/x/secret/a"),
                None,
                Want::Allow,
            ),
            case(
                "dot segments",
                Req::get("/api/v1/public/../secret/a"),
                None,
                Want::DenyBy("t", 0),
            ),
            case(
                "doubled slashes are another path under BASE (Istio's default)",
                Req::get("/api//v1/secret//a"),
                None,
                Want::Allow,
            ),
        ],
    );
    let merging = build_with(
        json!({"name": "t", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/api/{*}/secret/{**}"]}}]}]}),
        &PolicyOptions {
            path_normalization: PathNormalization::MergeSlashes,
            ..PolicyOptions::default()
        },
    );
    run(
        &merging,
        &[case(
            "MERGE_SLASHES merges them",
            Req::get("/api//v1/secret//a"),
            None,
            Want::DenyBy("t", 0),
        )],
    );
    // %00 in the path is refused when enforced policies read paths.
    let d = p.evaluate(&Req::get("/api/%00"), None);
    assert_eq!(d.verdict, Verdict::Deny(DenyReason::InvalidPath));
    // ... but not when only hosts are read.
    let hosts = build(
        json!({"name": "h", "action": "DENY", "rules": [{"to": [{"operation": {"hosts": ["x"]}}]}]}),
    );
    assert!(hosts.evaluate(&Req::get("/api/%00"), None).is_allowed());

    // BASE keeps `//`, so the DENY on `/admin` no longer sees `//admin`.
    let opts = PolicyOptions {
        path_normalization: PathNormalization::Base,
        ..PolicyOptions::default()
    };
    let base = build_with(
        json!({"name": "b", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
        &opts,
    );
    run(
        &base,
        &[
            case("plain", Req::get("/admin"), None, Want::DenyBy("b", 0)),
            case("double slash kept", Req::get("//admin"), None, Want::Allow),
        ],
    );
}

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
fn spec_parsing() {
    // Defaults and camelCase.
    let s = specs(
        json!({"name": "n", "dryRun": true, "rules": [{"from": [{"source": {"notRemoteIpBlocks": ["1.2.3.4"]}}]}]}),
    );
    assert_eq!(s[0].action, Action::Allow);
    assert!(s[0].dry_run);
    // Unknown fields are errors at every level.
    for bad in [
        json!([{"name": "n", "rule": []}]),
        json!([{"name": "n", "rules": [{"form": []}]}]),
        json!([{"name": "n", "rules": [{"from": [{"source": {"principal": ["x"]}}]}]}]),
        json!([{"name": "n", "rules": [{"to": [{"operation": {"path": ["/"]}}]}]}]),
        json!([{"name": "n", "rules": [{"when": [{"key": "k", "value": ["/"]}]}]}]),
        json!([{"name": "n", "action": "REJECT"}]),
        json!([{"action": "ALLOW"}]),
    ] {
        assert!(
            serde_json::from_value::<Vec<PolicySpec>>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    // Options.
    let o: PolicyOptions = serde_json::from_value(json!({
        "xffNumTrustedHops": 2,
        "spaceDelimitedClaims": ["roles"],
        "forwardedClientCert": {},
        "pathNormalization": "DECODE_AND_MERGE_SLASHES"
    }))
    .unwrap();
    assert_eq!(o.xff_num_trusted_hops, 2);
    assert_eq!(
        o.forwarded_client_cert,
        Some(ForwardedClientCert { trusted_hop: 1 })
    );
    assert_eq!(
        o.path_normalization,
        PathNormalization::DecodeAndMergeSlashes
    );
    assert!(serde_json::from_value::<PolicyOptions>(json!({"xffHops": 1})).is_err());
}

fn compile_err(v: Value) -> String {
    compile(&specs(v), &PolicyOptions::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn compile_errors_name_policy_rule_and_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "ext", "action": "CUSTOM", "provider": {"name": "opa"}, "rules": [{}]}),
            "policy \"ext\": action CUSTOM (external authorization via provider \"opa\") is not supported",
        ),
        (
            json!({"name": "p", "provider": {"name": "opa"}}),
            "`provider` is only valid with action CUSTOM",
        ),
        (
            json!({"name": "sel", "selector": {"matchLabels": {"app": "x"}}}),
            "policy \"sel\": `selector` belongs to the AuthorizationPolicy resource, not its rules; where meshguard applies is decided by the WasmPlugin's selector/targetRefs",
        ),
        (
            json!({"name": "t", "targetRefs": [{"kind": "Gateway", "name": "g"}]}),
            "`targetRefs` belongs to",
        ),
        (
            json!({"name": "d", "action": "DENY"}),
            "policy \"d\": a DENY policy without `rules` never matches",
        ),
        (
            json!({"name": "d", "action": "DENY", "rules": []}),
            "a DENY policy without `rules`",
        ),
        (
            json!({"name": "c", "rules": [{}, {"from": [{"source": {"ipBlocks": ["10.0.0.0/8", "10.0.0.0/33"]}}]}]}),
            "policy \"c\": rules[1].from[0].source.ipBlocks[1]: bad IP address or CIDR range \"10.0.0.0/33\": the prefix length exceeds 32 for an IPv4 address",
        ),
        (
            json!({"name": "c", "rules": [{"from": [{"source": {"notRemoteIpBlocks": ["nope"]}}]}]}),
            "rules[0].from[0].source.notRemoteIpBlocks[0]: bad IP address or CIDR range \"nope\"",
        ),
        (
            json!({"name": "port", "rules": [{"to": [{"operation": {"ports": ["443", "https"]}}]}]}),
            "policy \"port\": rules[0].to[0].operation.ports[1]: bad port \"https\"",
        ),
        (
            json!({"name": "port", "rules": [{"to": [{"operation": {"notPorts": ["65536"]}}]}]}),
            "notPorts[0]: bad port \"65536\"",
        ),
        (
            json!({"name": "tpl", "rules": [{"to": [{"operation": {"paths": ["/{**}/foo/{*}"]}}]}]}),
            "policy \"tpl\": rules[0].to[0].operation.paths[0]: bad path template \"/{**}/foo/{*}\": {**} must be the last operator",
        ),
        (
            json!({"name": "tpl", "rules": [{"to": [{"operation": {"notPaths": ["/foo/{*}.txt"]}}]}]}),
            "notPaths[0]: bad path template",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "request.auth.claim[x]", "values": ["1"]}]}]}),
            "policy \"k\": rules[0].when[0].key: unknown attribute \"request.auth.claim[x]\"",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "experimental.envoy.filters.network.mysql_proxy[db.table]", "values": ["[update]"]}]}]}),
            "attribute \"experimental.envoy.filters.network.mysql_proxy[db.table]\" is not supported",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "destination.labels[app]", "values": ["x"]}]}]}),
            "replaced by the workload selector",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "request.headers[]", "values": ["x"]}]}]}),
            "bad key \"request.headers[]\"",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "request.auth.claims[a][]", "values": ["x"]}]}]}),
            "bad key \"request.auth.claims[a][]\"",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "request.auth.claims", "values": ["x"]}]}]}),
            "bad key",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "source.ip"}]}]}),
            "policy \"k\": rules[0].when[0]: at least one of `values` or `notValues` must be set for key \"source.ip\"",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "source.ip", "values": ["1.2.3.4.5"]}]}]}),
            "rules[0].when[0].values[0]: bad IP",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "destination.port", "notValues": ["-1"]}]}]}),
            "rules[0].when[0].notValues[0]: bad port",
        ),
        (
            json!({"name": "e", "rules": [{"from": []}]}),
            "policy \"e\": rules[0].from: `from` must not be empty",
        ),
        (
            json!({"name": "e", "rules": [{"to": []}]}),
            "rules[0].to: `to` must not be empty",
        ),
        (
            json!({"name": "e", "rules": [{"from": [{}]}]}),
            "rules[0].from[0].source: `from.source` must not be nil",
        ),
        (
            json!({"name": "e", "rules": [{"from": [{"source": {}}]}]}),
            "rules[0].from[0].source: `from.source` must not be empty",
        ),
        (
            json!({"name": "e", "rules": [{"to": [{"operation": {"paths": []}}]}]}),
            "rules[0].to[0].operation: `to.operation` must not be empty",
        ),
        (
            json!({"name": "e", "rules": [{"to": [{"operation": {"paths": ["/a", ""]}}]}]}),
            "rules[0].to[0].operation.paths[1]: empty value not allowed",
        ),
        (
            json!({"name": "sa", "rules": [{"from": [{"source": {"serviceAccounts": ["order-service"]}}]}]}),
            "rules[0].from[0].source.serviceAccounts[0]: bad service account \"order-service\": must be \"<namespace>/<name>\"",
        ),
        (
            json!({"name": "sa", "rules": [{"from": [{"source": {"serviceAccounts": ["a/*"]}}]}]}),
            "wildcards are not allowed",
        ),
        (
            json!({"name": "sa", "rules": [{"from": [{"source": {"serviceAccounts": ["a/b/c"]}}]}]}),
            "exactly one '/'",
        ),
        (
            json!({"name": "sa", "rules": [{"from": [{"source": {"serviceAccounts": ["a/b"], "principals": ["x"]}}]}]}),
            "cannot set serviceAccounts with namespaces or principals",
        ),
        (
            json!({"name": "", "rules": [{}]}),
            "policies[0]: `name` must not be empty",
        ),
        (
            json!([{"name": "twin"}, {"name": "twin"}]),
            "policy \"twin\": the name is used by more than one policy",
        ),
    ];
    for (spec, want) in cases {
        let got = compile_err(spec.clone());
        assert!(got.contains(want), "spec {spec}\n got: {got}\nwant: {want}");
    }
    let opts = PolicyOptions {
        forwarded_client_cert: Some(ForwardedClientCert { trusted_hop: 0 }),
        ..PolicyOptions::default()
    };
    let err = compile(&[], &opts).unwrap_err().to_string();
    assert!(err.contains("forwardedClientCert.trustedHop"), "{err}");
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

#[test]
fn compiled_policies_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policies>();
    assert_send_sync::<PolicyError>();
}

// --- Istio parity: attributes a Wasm filter sees only partly, trust-domain aliases ----------------

/// `ipBlocks` is Istio's RBAC `direct_remote_ip`. When Envoy took `source.address` from
/// `x-forwarded-for` (port 0), the direct peer is unknown: DENY fails closed, ALLOW does not
/// allow; `remoteIpBlocks` (RBAC `remote_ip`) reads that address as it is.
#[test]
fn ip_blocks_fail_closed_on_an_xff_derived_source() {
    let deny = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"ipBlocks": ["127.0.0.1"]}}]}
    ]}));
    let allow = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"ipBlocks": ["1.2.3.4"]}}]}
    ]}));
    let remote = build(json!({"name": "r", "action": "DENY", "rules": [
        {"from": [{"source": {"remoteIpBlocks": ["9.9.9.9"]}}]}
    ]}));
    let fail_closed = |p: &Policies, req: &Req| match p.evaluate(req, None).verdict {
        Verdict::Deny(DenyReason::Policy(m)) => m.fail_closed,
        _ => false,
    };
    // Each policy that reads the direct peer says so once at configure time.
    assert_eq!(deny.warnings().len(), 1);
    assert!(deny.warnings()[0].starts_with("policy \"d\": ipBlocks"));
    assert!(remote.warnings().is_empty());
    // The connection's own peer: decided on it.
    let direct = Req::default().src_ip("127.0.0.1");
    assert!(!deny.evaluate(&direct, None).is_allowed());
    assert!(!fail_closed(&deny, &direct));
    assert!(
        allow
            .evaluate(&Req::default().src_ip("1.2.3.4"), None)
            .is_allowed()
    );
    // A client-sent X-Forwarded-For became the source address: undetermined.
    let spoofed = Req::default().xff_source("9.9.9.9");
    assert!(
        !deny.evaluate(&spoofed, None).is_allowed(),
        "DENY fails closed"
    );
    assert!(fail_closed(&deny, &spoofed));
    let opened = Req::default().xff_source("1.2.3.4");
    assert_eq!(
        allow.evaluate(&opened, None).verdict,
        Verdict::Deny(DenyReason::NoAllowMatched),
        "ALLOW is not opened by a header"
    );
    // remoteIpBlocks: Envoy's source address, whatever its origin.
    assert!(!remote.evaluate(&spoofed, None).is_allowed());
    assert!(!fail_closed(&remote, &spoofed));
    assert!(remote.evaluate(&direct, None).is_allowed());
    // Only the rule that reads the address fails closed: another path is decided as usual.
    let scoped = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}], "to": [{"operation": {"paths": ["/admin"]}}]}
    ]}));
    assert!(
        scoped
            .evaluate(&Req::get("/public").xff_source("1.1.1.1"), None)
            .is_allowed()
    );
    assert!(
        !scoped
            .evaluate(&Req::get("/admin").xff_source("1.1.1.1"), None)
            .is_allowed()
    );
    // notIpBlocks is undetermined too.
    let not = build(json!({"name": "n", "action": "DENY", "rules": [
        {"from": [{"source": {"notIpBlocks": ["10.0.0.0/8"]}}]}
    ]}));
    assert!(
        !not.evaluate(&Req::default().xff_source("10.0.0.1"), None)
            .is_allowed()
    );
    assert!(
        not.evaluate(&Req::default().src_ip("10.0.0.1"), None)
            .is_allowed()
    );
}

fn identity(uris: &[&str], dns: &[&str], subject: &str, complete: bool) -> PeerIdentity {
    PeerIdentity {
        uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        dns: dns.iter().map(|d| (*d).to_owned()).collect(),
        subject: subject.to_owned(),
        complete,
    }
}

/// Envoy RBAC's `authenticated` matcher tries every URI SAN, every DNS SAN and the subject.
#[test]
fn principals_match_any_san_of_the_certificate() {
    let both = identity(
        &[
            "spiffe://cluster.local/ns/a/sa/allow",
            "spiffe://cluster.local/ns/a/sa/deny",
        ],
        &[],
        "CN=client",
        true,
    );
    let deny = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/deny"]}}]}
    ]}));
    assert!(
        !deny
            .evaluate(&Req::default().peer_identity(both.clone()), None)
            .is_allowed()
    );
    let allow_second = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/deny"]}}]}
    ]}));
    assert!(
        allow_second
            .evaluate(&Req::default().peer_identity(both.clone()), None)
            .is_allowed()
    );
    // notPrincipals: no identity may match.
    let not = build(json!({"name": "n", "action": "DENY", "rules": [
        {"from": [{"source": {"notPrincipals": ["cluster.local/ns/a/sa/allow"]}}]}
    ]}));
    assert!(
        not.evaluate(&Req::default().peer_identity(both.clone()), None)
            .is_allowed()
    );
    // A DNS SAN only, or the subject only: `*` (regex `.+`) matches, as in Envoy.
    let any_allow = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["*"]}}]}
    ]}));
    let any_deny = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"principals": ["*"]}}]}
    ]}));
    for peer in [
        identity(&[], &["client.example.com"], "CN=client", true),
        identity(&[], &[], "CN=client", true),
    ] {
        let req = Req::default().peer_identity(peer);
        assert!(any_allow.evaluate(&req, None).is_allowed());
        assert!(!any_deny.evaluate(&req, None).is_allowed());
    }
    assert!(any_allow.warnings()[0].contains("every SAN of the client certificate"));
    // No certificate: no identity.
    assert!(!any_allow.evaluate(&Req::default(), None).is_allowed());
    // namespaces (regex `.*/ns/<ns>/.*`) over any SAN.
    let ns = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"namespaces": ["evil"]}}]}
    ]}));
    let hidden = identity(
        &[
            "spiffe://cluster.local/ns/good/sa/x",
            "spiffe://cluster.local/ns/evil/sa/x",
        ],
        &[],
        "",
        true,
    );
    assert!(
        !ns.evaluate(&Req::default().peer_identity(hidden), None)
            .is_allowed()
    );
}

/// Only Envoy's first-SAN properties: a match among them decides, a miss is undetermined.
#[test]
fn a_partial_peer_identity_fails_closed() {
    let first_only = identity(&["spiffe://cluster.local/ns/a/sa/allow"], &[], "", false);
    let req = Req::default().peer_identity(first_only);
    let deny_other = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/deny"]}}]}
    ]}));
    let d = deny_other.evaluate(&req, None);
    assert!(!d.is_allowed(), "a second SAN could be `deny`");
    assert!(d.verdict.to_string_contains_fail_closed());
    let allow_first = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/allow"]}}]}
    ]}));
    assert!(allow_first.evaluate(&req, None).is_allowed());
    let allow_other = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/other"]}}]}
    ]}));
    assert!(!allow_other.evaluate(&req, None).is_allowed());
    let deny_first = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/allow"]}}]}
    ]}));
    assert!(!deny_first.evaluate(&req, None).is_allowed());
    // notPrincipals with the known SAN: decided (some identity matches → the rule is false).
    let not_first = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"notPrincipals": ["cluster.local/ns/a/sa/allow"]}}]}
    ]}));
    assert!(not_first.evaluate(&req, None).is_allowed());
    // An audit of an undetermined rule is not reported.
    let audit = build(json!({"name": "au", "action": "AUDIT", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/other"]}}]}
    ]}));
    assert!(audit.evaluate(&req, None).audits.is_empty());
}

trait FailClosedText {
    fn to_string_contains_fail_closed(&self) -> bool;
}

impl FailClosedText for Verdict<'_> {
    fn to_string_contains_fail_closed(&self) -> bool {
        matches!(self, Verdict::Deny(r) if r.to_string().contains("fail closed"))
    }
}

/// Istio's golden cases `simple-policy-td-aliases` and `td-aliases-source-principal`: principals
/// in the local trust domain, an alias or `cluster.local` stand for every trust domain of the
/// bundle; `*` and foreign trust domains are kept.
#[test]
fn trust_domain_aliases_as_istio() {
    let options = PolicyOptions {
        trust_domain: "td1".into(),
        trust_domain_aliases: vec!["cluster.local".into()],
        ..PolicyOptions::default()
    };
    let p = build_with(
        json!({"name": "a", "action": "ALLOW", "rules": [
            {"from": [{"source": {"principals": ["cluster.local/ns/rule[0]/sa/x"]}}]},
            {"when": [{"key": "source.principal", "values": ["td1/ns/w/sa/y"]}]},
            {"from": [{"source": {"principals": ["*/ns/any/sa/z", "other-td/ns/o/sa/o"]}}]}
        ]}),
        &options,
    );
    for (peer, want) in [
        ("td1/ns/rule[0]/sa/x", true),
        ("cluster.local/ns/rule[0]/sa/x", true),
        ("td2/ns/rule[0]/sa/x", false),
        ("cluster.local/ns/w/sa/y", true),
        ("td1/ns/w/sa/y", true),
        ("whatever/ns/any/sa/z", true),
        ("other-td/ns/o/sa/o", true),
        ("td1/ns/o/sa/o", false),
    ] {
        assert_eq!(
            p.evaluate(&Req::default().peer(peer), None).is_allowed(),
            want,
            "{peer}"
        );
    }
    // Without aliases, a trust domain other than cluster.local maps cluster.local principals
    // onto it (Istio: cluster.local points at the local trust domain).
    let moved = build_with(
        json!({"name": "a", "action": "ALLOW", "rules": [
            {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}
        ]}),
        &PolicyOptions {
            trust_domain: "new-td".into(),
            ..PolicyOptions::default()
        },
    );
    assert!(
        moved
            .evaluate(&Req::default().peer("new-td/ns/a/sa/b"), None)
            .is_allowed()
    );
    assert!(
        !moved
            .evaluate(&Req::default().peer("cluster.local/ns/a/sa/b"), None)
            .is_allowed()
    );
    // trustDomains: a bundle member stands for all of them.
    let td = build_with(
        json!({"name": "a", "action": "ALLOW", "rules": [
            {"from": [{"source": {"trustDomains": ["cluster.local"]}}]}
        ]}),
        &options,
    );
    assert!(
        td.evaluate(&Req::default().peer("td1/ns/a/sa/b"), None)
            .is_allowed()
    );
    assert!(
        !td.evaluate(&Req::default().peer("td9/ns/a/sa/b"), None)
            .is_allowed()
    );
}
