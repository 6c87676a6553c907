//! A differential suite from Istio's own golden translations: for each HTTP case of istio/istio's
//! `pilot/pkg/security/authz/builder/builder_test.go` (copied, data only, to
//! `tests/e2e/testdata/istio-goldens/`, see its README), one real Envoy with two listeners side
//! by side:
//!
//! - `istio`: Envoy's `jwt_authn` as Istio's RequestAuthentication translator writes it (one
//!   provider per issuer, inline JWKS, the payload in metadata under `payload`, which is what the
//!   goldens' metadata matchers read, a missing token passes, a bad one is a 401,
//!   `bypass_cors_preflight`), then the golden's RBAC filter(s) *verbatim* from `*-out[N].yaml`
//!   (in order), behind the connection manager of an Istio sidecar (`normalize_path`, no slash
//!   merging, `use_remote_address: false`);
//! - `mg`: meshguard with the same AuthorizationPolicies (each `spec` of the `*-in.yaml`, without
//!   `selector`, named after `metadata.name`, `istio.io/dry-run` → `dryRun`), `jwtRules` for the
//!   same issuers with the same JWKS, and the trust-domain bundle of the case; a plain connection
//!   manager (meshguard normalises its own copy of the path), with `SANITIZE_SET` + `cert` XFCC so
//!   that meshguard can read the whole peer certificate on Envoys without
//!   `connection.peer_certificate`.
//!
//! Requests are generated from every field the policies name, with matching and non-matching
//! values (per rule and per `from`/`to` entry: one request satisfying every drivable condition,
//! then each condition varied alone), plus a few generic ones (no token, a bad token, a CORS
//! preflight, doubled slashes, peers with several or no URI SANs, a forged XFCC). Each goes to both
//! listeners and the status codes are compared: Envoy + Istio's RBAC is the oracle. A disagreement
//! fails the test unless it is in [`KNOWN`]. What cannot be driven on loopback (other source or
//! destination IPs, SNI other than the kit's `localhost` certificate, values no HTTP/1.1 request
//! can carry, ports that cannot be bound) is listed in the output, not silently skipped.
//!
//! Both connection managers accept custom methods (`allow_custom_methods`: not Istio's setting,
//! the same on both sides) so that `methods` values such as `method-prefix-x` can be sent.
//! Several goldens are translation tests rather than behaviour tests: `allow-full-rule` rule 1,
//! `allow-path` and `single-policy` can never match (`principals: ["*"]` with
//! `notPrincipals: ["*"]`, `notPaths: ["*"]`, methods that are no HTTP token, paths without a
//! leading `/`); their requests check that meshguard never matches them either.
//!
//! Listeners for `ports`: pairs on the named port, on addresses of their own in 127.0.0.0/8
//! (127.A.B.x, A.B from the test process id, x per case), so that the two sides can listen on the
//! same port; the client's source address stays 127.0.0.1.
//!
//! Each case prints one summary (requests, agreements, known differences, disagreements, what is
//! not drivable, the adaptations of the policies meshguard needs); `MESHGUARD_GOLDENS_VERBOSE=1`
//! also prints every request with both statuses.

use meshguard_demo_idp::TokenSpec;
use meshguard_e2e::stack::{ISSUER, StackOpts};
use meshguard_e2e::tls::Pki;
use meshguard_e2e::{Req, Resp, Stack, TempDir, config, paths, rbac, send_tls_to, send_to};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// One HTTP case of istio/istio's `TestGenerator_GenerateHTTP` (`builder_test.go`), without the
/// CUSTOM ones (meshguard refuses CUSTOM) and without the `extended-*` goldens.
struct Case {
    /// The test case's name in `builder_test.go`.
    name: &'static str,
    /// `<input>-in.yaml`.
    input: &'static str,
    /// The `want` files, i.e. the RBAC filters in order.
    outputs: &'static [&'static str],
    /// `tdBundle`: the trust domain and its aliases.
    trust_domains: Option<(&'static str, &'static [&'static str])>,
}

const CASES: &[Case] = &[
    Case {
        name: "allow-empty-rule",
        input: "allow-empty-rule",
        outputs: &["allow-empty-rule-out"],
        trust_domains: None,
    },
    Case {
        name: "allow-full-rule",
        input: "allow-full-rule",
        outputs: &["allow-full-rule-out"],
        trust_domains: None,
    },
    Case {
        name: "allow-nil-rule",
        input: "allow-nil-rule",
        outputs: &["allow-nil-rule-out"],
        trust_domains: None,
    },
    Case {
        name: "allow-path",
        input: "allow-path",
        outputs: &["allow-path-out"],
        trust_domains: None,
    },
    Case {
        name: "audit-full-rule",
        input: "audit-full-rule",
        outputs: &["audit-full-rule-out"],
        trust_domains: None,
    },
    Case {
        name: "deny-and-allow",
        input: "deny-and-allow",
        outputs: &["deny-and-allow-out1", "deny-and-allow-out2"],
        trust_domains: None,
    },
    Case {
        name: "deny-empty-rule",
        input: "deny-empty-rule",
        outputs: &["deny-empty-rule-out"],
        trust_domains: None,
    },
    Case {
        name: "dry-run-allow-and-deny",
        input: "dry-run-allow-and-deny",
        outputs: &["dry-run-allow-and-deny-out1", "dry-run-allow-and-deny-out2"],
        trust_domains: None,
    },
    Case {
        name: "dry-run-allow",
        input: "dry-run-allow",
        outputs: &["dry-run-allow-out"],
        trust_domains: None,
    },
    Case {
        name: "dry-run-mix",
        input: "dry-run-mix",
        outputs: &["dry-run-mix-out"],
        trust_domains: None,
    },
    Case {
        name: "multiple-policies",
        input: "multiple-policies",
        outputs: &["multiple-policies-out"],
        trust_domains: None,
    },
    Case {
        name: "single-policy",
        input: "single-policy",
        outputs: &["single-policy-out"],
        trust_domains: None,
    },
    Case {
        name: "trust-domain-one-alias",
        input: "simple-policy-td-aliases",
        outputs: &["simple-policy-td-aliases-out"],
        trust_domains: Some(("td1", &["cluster.local"])),
    },
    Case {
        name: "trust-domain-multiple-aliases",
        input: "simple-policy-multiple-td-aliases",
        outputs: &["simple-policy-multiple-td-aliases-out"],
        trust_domains: Some(("td1", &["cluster.local", "some-td"])),
    },
    Case {
        name: "trust-domain-wildcard-in-principal",
        input: "simple-policy-principal-with-wildcard",
        outputs: &["simple-policy-principal-with-wildcard-out"],
        trust_domains: Some(("td1", &["foobar"])),
    },
    Case {
        name: "trust-domain-aliases-in-source-principal",
        input: "td-aliases-source-principal",
        outputs: &["td-aliases-source-principal-out"],
        trust_domains: Some(("new-td", &["old-td", "some-trustdomain"])),
    },
    Case {
        name: "trust-domains-field",
        input: "trust-domains",
        outputs: &["trust-domains-out"],
        trust_domains: None,
    },
];

/// A disagreement that is understood and accepted: what a Wasm filter cannot do as Envoy's RBAC
/// does. Matched on the case, the request's description (as printed), both statuses and, when
/// set, the Envoy version (a prefix of `MESHGUARD_ENVOY_VERSION`, e.g. `1.36`).
struct Known {
    case: &'static str,
    request: &'static str,
    envoy: Option<&'static str>,
    istio: u16,
    meshguard: u16,
    why: &'static str,
}

/// Envoy 1.36's RBAC joins a repeated header's values with `,` before matching; Envoy 1.40's
/// (and meshguard) match each value (docs/policies.md, "Differences from Istio").
const JOINED_ON_1_36: &str =
    "Envoy 1.36 matches a repeated header's joined values, meshguard each value as Envoy 1.40";

const KNOWN: &[Known] = &[
    Known {
        case: "multiple-policies",
        request: r#"PATCH / Host:example.com X-abc:"abc1" X-abc:"other" plaintext"#,
        envoy: Some("1.36"),
        istio: 403,
        meshguard: 200,
        why: JOINED_ON_1_36,
    },
    Known {
        case: "multiple-policies",
        request: r#"PATCH / Host:example.com X-abc:"other" X-abc:"abc1" plaintext"#,
        envoy: Some("1.36"),
        istio: 403,
        meshguard: 200,
        why: JOINED_ON_1_36,
    },
    Known {
        case: "multiple-policies",
        request: r#"PATCH / Host:example.com X-abc:"abc2" X-abc:"other" plaintext"#,
        envoy: Some("1.36"),
        istio: 403,
        meshguard: 200,
        why: JOINED_ON_1_36,
    },
    Known {
        case: "multiple-policies",
        request: r#"PATCH / Host:example.com X-abc:"other" X-abc:"abc2" plaintext"#,
        envoy: Some("1.36"),
        istio: 403,
        meshguard: 200,
        why: JOINED_ON_1_36,
    },
];

/// Requests per case at most (the generator stops there and says so).
const MAX_REQUESTS: usize = 400;

macro_rules! golden_tests {
    ($($test:ident => $case:literal,)*) => {
        $(
            #[test]
            fn $test() {
                run($case);
            }
        )*
        /// The cases that have a test.
        const TESTED: &[&str] = &[$($case),*];
    };
}

golden_tests! {
    allow_empty_rule => "allow-empty-rule",
    allow_full_rule => "allow-full-rule",
    allow_nil_rule => "allow-nil-rule",
    allow_path => "allow-path",
    audit_full_rule => "audit-full-rule",
    deny_and_allow => "deny-and-allow",
    deny_empty_rule => "deny-empty-rule",
    dry_run_allow_and_deny => "dry-run-allow-and-deny",
    dry_run_allow => "dry-run-allow",
    dry_run_mix => "dry-run-mix",
    multiple_policies => "multiple-policies",
    single_policy => "single-policy",
    trust_domain_one_alias => "trust-domain-one-alias",
    trust_domain_multiple_aliases => "trust-domain-multiple-aliases",
    trust_domain_wildcard_in_principal => "trust-domain-wildcard-in-principal",
    trust_domain_aliases_in_source_principal => "trust-domain-aliases-in-source-principal",
    trust_domains_field => "trust-domains-field",
}

#[test]
fn every_case_has_its_goldens_and_a_test() {
    for case in CASES {
        let mut files = vec![format!("{}-in", case.input)];
        files.extend(case.outputs.iter().map(|o| (*o).to_string()));
        for f in files {
            let p = golden_dir().join(format!("{f}.yaml"));
            assert!(p.is_file(), "{}: {} is missing", case.name, p.display());
        }
    }
    for f in ["README.md", "LICENSE"] {
        assert!(golden_dir().join(f).is_file(), "{f} is missing");
    }
    let cases: BTreeSet<&str> = CASES.iter().map(|c| c.name).collect();
    let tested: BTreeSet<&str> = TESTED.iter().copied().collect();
    assert_eq!(
        cases, tested,
        "each case of CASES needs a line in golden_tests!"
    );
    assert_eq!(cases.len(), CASES.len(), "duplicate case names");
}

// ---------------------------------------------------------------------------------------------
// Inputs

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/istio-goldens")
}

/// The YAML documents of a golden file, as JSON (empty documents dropped).
fn yaml_docs(stem: &str) -> Vec<Value> {
    let path = golden_dir().join(format!("{stem}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            if !cur.trim().is_empty() {
                let v: Value = serde_norway::from_str(&cur)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                if !v.is_null() {
                    docs.push(v);
                }
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs
}

/// One AuthorizationPolicy of a `*-in.yaml`.
struct Policy {
    name: String,
    namespace: String,
    dry_run: bool,
    /// `spec` without `selector`.
    spec: Value,
}

fn policies(stem: &str) -> Vec<Policy> {
    yaml_docs(&format!("{stem}-in"))
        .into_iter()
        .map(|doc| {
            let meta = &doc["metadata"];
            let mut spec = doc.get("spec").cloned().unwrap_or_else(|| json!({}));
            if let Some(obj) = spec.as_object_mut() {
                obj.remove("selector");
            }
            Policy {
                name: meta["name"].as_str().unwrap().to_string(),
                namespace: meta["namespace"].as_str().unwrap_or("default").to_string(),
                dry_run: meta["annotations"]["istio.io/dry-run"].as_str() == Some("true"),
                spec,
            }
        })
        .collect()
}

/// The policy as meshguard's configuration, with the adaptations it needs (each one recorded in
/// `notes` with its reason).
fn meshguard_policy(p: &Policy, notes: &mut Vec<String>) -> Value {
    let mut spec = p.spec.clone();
    if let Some(rules) = spec.get_mut("rules").and_then(Value::as_array_mut) {
        for (ri, rule) in rules.iter_mut().enumerate() {
            for from in rule
                .get_mut("from")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                for field in ["serviceAccounts", "notServiceAccounts"] {
                    for v in from
                        .pointer_mut(&format!("/source/{field}"))
                        .and_then(Value::as_array_mut)
                        .into_iter()
                        .flatten()
                    {
                        let bare = v.as_str().filter(|s| !s.contains('/')).map(String::from);
                        if let Some(bare) = bare {
                            let full = format!("{}/{bare}", p.namespace);
                            notes.push(format!(
                                "policy {} rules[{ri}] {field} {bare:?} -> {full:?}: a bare name means the policy's namespace in Istio; meshguard's policies have no namespace (docs/policies.md)",
                                p.name
                            ));
                            *v = Value::String(full);
                        }
                    }
                }
            }
            for cond in rule
                .get_mut("when")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                let key = cond["key"].as_str().unwrap_or_default().to_string();
                if key.starts_with("experimental.envoy.filters.") {
                    let header = "request.headers[x-golden-never-sent]";
                    notes.push(format!(
                        "policy {} rules[{ri}] when {key:?} -> {header:?}: meshguard cannot read another filter's dynamic metadata; no filter of this Envoy writes it, so on the Envoy side it is always absent, as is a header no request carries (never sent)",
                        p.name
                    ));
                    cond["key"] = Value::String(header.to_string());
                }
            }
        }
    }
    if let Some(obj) = spec.as_object_mut() {
        obj.insert("name".into(), Value::String(p.name.clone()));
        if p.dry_run {
            obj.insert("dryRun".into(), Value::Bool(true));
        }
    }
    spec
}

// ---------------------------------------------------------------------------------------------
// The conditions the policies name

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Method,
    Host,
    Path,
    Port,
    Header(String),
    RequestPrincipal,
    Claim(Vec<String>),
    Audience,
    Presenter,
    Principal,
    Namespace,
    ServiceAccount,
    TrustDomain,
    RemoteIp,
    SourceIp,
    DestinationIp,
    Sni,
    Other(String),
}

impl Field {
    fn needs_tls(&self) -> bool {
        matches!(
            self,
            Field::Principal
                | Field::Namespace
                | Field::ServiceAccount
                | Field::TrustDomain
                | Field::Sni
        )
    }
}

#[derive(Debug, Clone)]
struct Cond {
    field: Field,
    /// What the policy wrote (`principals`, `request.headers[x]` …), for notes.
    name: String,
    /// The same for `not_values` (`notPrincipals`, `request.headers[x] notValues` …).
    not_name: String,
    values: Vec<String>,
    not_values: Vec<String>,
    /// The policy's namespace (bare `serviceAccounts`).
    namespace: String,
}

/// One (policy, rule, from entry, to entry): the conditions that must all hold together.
struct Combo {
    label: String,
    conds: Vec<Cond>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn when_field(key: &str) -> Field {
    if let Some(name) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        return Field::Header(name.to_string());
    }
    if let Some(rest) = key.strip_prefix("request.auth.claims") {
        let path: Vec<String> = rest
            .split(']')
            .filter_map(|p| p.strip_prefix('['))
            .map(String::from)
            .collect();
        return Field::Claim(path);
    }
    match key {
        "source.ip" => Field::SourceIp,
        "remote.ip" => Field::RemoteIp,
        "source.namespace" => Field::Namespace,
        "source.principal" => Field::Principal,
        "source.serviceAccount" => Field::ServiceAccount,
        "request.auth.principal" => Field::RequestPrincipal,
        "request.auth.audiences" => Field::Audience,
        "request.auth.presenter" => Field::Presenter,
        "destination.ip" => Field::DestinationIp,
        "destination.port" => Field::Port,
        "connection.sni" => Field::Sni,
        other => Field::Other(other.to_string()),
    }
}

fn combos(policies: &[Policy]) -> Vec<Combo> {
    const SOURCE: &[(&str, &str, Field)] = &[
        ("principals", "notPrincipals", Field::Principal),
        (
            "requestPrincipals",
            "notRequestPrincipals",
            Field::RequestPrincipal,
        ),
        ("namespaces", "notNamespaces", Field::Namespace),
        (
            "serviceAccounts",
            "notServiceAccounts",
            Field::ServiceAccount,
        ),
        ("trustDomains", "notTrustDomains", Field::TrustDomain),
        ("ipBlocks", "notIpBlocks", Field::SourceIp),
        ("remoteIpBlocks", "notRemoteIpBlocks", Field::RemoteIp),
    ];
    const OPERATION: &[(&str, &str, Field)] = &[
        ("methods", "notMethods", Field::Method),
        ("hosts", "notHosts", Field::Host),
        ("ports", "notPorts", Field::Port),
        ("paths", "notPaths", Field::Path),
    ];
    let fields = |obj: &Value, table: &[(&str, &str, Field)], ns: &str| -> Vec<Cond> {
        table
            .iter()
            .filter_map(|(pos, neg, field)| {
                let values = strings(obj.get(*pos));
                let not_values = strings(obj.get(*neg));
                (!values.is_empty() || !not_values.is_empty()).then(|| Cond {
                    field: field.clone(),
                    name: (*pos).to_string(),
                    not_name: (*neg).to_string(),
                    values,
                    not_values,
                    namespace: ns.to_string(),
                })
            })
            .collect()
    };
    let mut out = Vec::new();
    for p in policies {
        let rules = p.spec["rules"].as_array().cloned().unwrap_or_default();
        for (ri, rule) in rules.iter().enumerate() {
            let froms: Vec<Option<Value>> = match rule["from"].as_array() {
                Some(a) => a.iter().map(|f| Some(f["source"].clone())).collect(),
                None => vec![None],
            };
            let tos: Vec<Option<Value>> = match rule["to"].as_array() {
                Some(a) => a.iter().map(|t| Some(t["operation"].clone())).collect(),
                None => vec![None],
            };
            let whens: Vec<Cond> = rule["when"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|w| {
                    let key = w["key"].as_str().unwrap_or_default();
                    Cond {
                        field: when_field(key),
                        name: key.to_string(),
                        not_name: format!("{key} notValues"),
                        values: strings(w.get("values")),
                        not_values: strings(w.get("notValues")),
                        namespace: p.namespace.clone(),
                    }
                })
                .collect();
            for (fi, from) in froms.iter().enumerate() {
                for (ti, to) in tos.iter().enumerate() {
                    let mut conds = Vec::new();
                    if let Some(f) = from {
                        conds.extend(fields(f, SOURCE, &p.namespace));
                    }
                    if let Some(t) = to {
                        conds.extend(fields(t, OPERATION, &p.namespace));
                    }
                    conds.extend(whens.iter().cloned());
                    out.push(Combo {
                        label: format!("{} rules[{ri}] from[{fi}] to[{ti}]", p.name),
                        conds,
                    });
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A client certificate: URI SANs, DNS SANs, subject CN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Cert {
    uris: Vec<String>,
    dns: Vec<String>,
    cn: String,
}

impl Cert {
    fn uri(u: &str) -> Cert {
        Cert {
            uris: vec![u.to_string()],
            dns: Vec::new(),
            cn: "workload".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Tok {
    iss: String,
    sub: Option<String>,
    aud: Vec<String>,
    claims: Map<String, Value>,
    bad_signature: bool,
}

impl Default for Tok {
    fn default() -> Tok {
        Tok {
            iss: ISSUER.to_string(),
            sub: Some("alice".into()),
            aud: Vec::new(),
            claims: Map::new(),
            bad_signature: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Probe {
    method: String,
    host: String,
    path: String,
    /// A named port (its own listener pair); `None`: the default pair (a free port).
    port: Option<u16>,
    headers: Vec<(String, String)>,
    token: Option<Tok>,
    /// `None`: plaintext.
    cert: Option<Cert>,
}

impl Probe {
    /// GET / on example.com, plaintext, no token; `method` instead of GET.
    fn base(method: &str) -> Probe {
        Probe {
            method: method.into(),
            host: "example.com".into(),
            path: "/".into(),
            port: None,
            headers: Vec::new(),
            token: None,
            cert: None,
        }
    }

    /// The request as printed and as matched by [`KNOWN`].
    fn describe(&self) -> String {
        let mut s = format!("{} {} Host:{}", self.method, self.path, self.host);
        if let Some(p) = self.port {
            s.push_str(&format!(" port:{p}"));
        }
        for (n, v) in &self.headers {
            s.push_str(&format!(" {n}:{v:?}"));
        }
        if let Some(t) = &self.token {
            s.push_str(&format!(" jwt{{iss={:?}", t.iss));
            match &t.sub {
                Some(sub) => s.push_str(&format!(" sub={sub:?}")),
                None => s.push_str(" no-sub"),
            }
            if !t.aud.is_empty() {
                s.push_str(&format!(" aud={:?}", t.aud));
            }
            for (k, v) in &t.claims {
                s.push_str(&format!(" {k}={v}"));
            }
            if t.bad_signature {
                s.push_str(" BAD-SIGNATURE");
            }
            s.push('}');
        }
        match &self.cert {
            None => s.push_str(" plaintext"),
            Some(c) => {
                s.push_str(" mtls[");
                let mut parts: Vec<String> = c.uris.iter().map(|u| format!("URI={u}")).collect();
                parts.extend(c.dns.iter().map(|d| format!("DNS={d}")));
                parts.push(format!("CN={}", c.cn));
                s.push_str(&parts.join(" "));
                s.push(']');
            }
        }
        s
    }

    fn header(&mut self, name: &str, values: &[String]) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        for v in values {
            self.headers.push((name.to_string(), v.clone()));
        }
    }

    fn token(&mut self) -> &mut Tok {
        self.token.get_or_insert_with(Tok::default)
    }
}

/// One change to a request.
#[derive(Debug, Clone)]
enum Mut {
    Method(String),
    Host(String),
    Path(String),
    Port(u16),
    /// Replaces the header (no values: removes it).
    Header(String, Vec<String>),
    /// `iss` and `sub` (`None`: no `sub` claim).
    Principal(String, Option<String>),
    NoToken,
    Audiences(Vec<String>),
    /// A claim by path (`None`: absent).
    Claim(Vec<String>, Option<Value>),
    /// Adds a URI SAN to the client certificate (mTLS).
    Uri(String),
    /// The whole peer (`None`: plaintext).
    Peer(Option<Cert>),
}

impl Mut {
    fn apply(&self, p: &mut Probe) {
        match self {
            Mut::Method(m) => p.method = m.clone(),
            Mut::Host(h) => p.host = h.clone(),
            Mut::Path(x) => p.path = x.clone(),
            Mut::Port(n) => p.port = Some(*n),
            Mut::Header(n, vs) => p.header(n, vs),
            Mut::Principal(iss, sub) => {
                let t = p.token();
                t.iss = iss.clone();
                t.sub = sub.clone();
            }
            Mut::NoToken => p.token = None,
            Mut::Audiences(a) => p.token().aud = a.clone(),
            Mut::Claim(path, v) => set_claim(&mut p.token().claims, path, v.clone()),
            Mut::Uri(u) => match &mut p.cert {
                Some(c) if c.dns.is_empty() && c.cn == "workload" => {
                    if !c.uris.contains(u) {
                        c.uris.push(u.clone());
                    }
                }
                _ => p.cert = Some(Cert::uri(u)),
            },
            Mut::Peer(c) => p.cert = c.clone(),
        }
    }
}

fn set_claim(claims: &mut Map<String, Value>, path: &[String], v: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = claims;
    for k in parents {
        let entry = cur.entry(k.clone()).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        cur = entry.as_object_mut().unwrap();
    }
    match v {
        Some(v) => {
            cur.insert(last.clone(), v);
        }
        None => {
            cur.remove(last);
        }
    }
}

/// Istio's value syntax: `*`, `*suffix`, `prefix*`, exact (checked in Istio's order).
enum Pat<'a> {
    Any,
    Suffix(&'a str),
    Prefix(&'a str),
    Exact(&'a str),
}

fn pat(v: &str) -> Pat<'_> {
    if v == "*" {
        Pat::Any
    } else if let Some(s) = v.strip_prefix('*') {
        Pat::Suffix(s)
    } else if let Some(p) = v.strip_suffix('*') {
        Pat::Prefix(p)
    } else {
        Pat::Exact(v)
    }
}

/// Whether `s` matches the Istio value `v` (case-sensitive).
fn value_matches(v: &str, s: &str) -> bool {
    match pat(v) {
        Pat::Any => !s.is_empty(),
        Pat::Suffix(x) => s.ends_with(x),
        Pat::Prefix(x) => s.starts_with(x),
        Pat::Exact(x) => s == x,
    }
}

fn chop_last(s: &str) -> String {
    let mut c = s.chars();
    c.next_back();
    c.as_str().to_string()
}

fn chop_first(s: &str) -> String {
    let mut c = s.chars();
    c.next();
    c.as_str().to_string()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// What the generator needs to know and collects.
struct Gen<'a> {
    /// The case's trust domains (the bundle, or `cluster.local`).
    trust_domains: Vec<String>,
    bindable_ports: &'a BTreeSet<u16>,
    unbindable_ports: &'a BTreeMap<u16, String>,
    /// Issuers of the tokens the samples mint (each gets a provider / jwtRule).
    issuers: BTreeSet<String>,
    /// Values that cannot be driven here, with the reason.
    not_drivable: BTreeSet<String>,
}

impl Gen<'_> {
    fn principal(&mut self, iss: &str, sub: Option<&str>) -> Mut {
        self.issuers.insert(iss.to_string());
        Mut::Principal(iss.to_string(), sub.map(String::from))
    }

    fn nd(&mut self, cond: &Cond, value: &str, why: &str) {
        let name = if cond.values.iter().any(|v| v == value) {
            &cond.name
        } else {
            &cond.not_name
        };
        self.not_drivable.insert(format!("{name} {value:?}: {why}"));
    }

    /// Requests changes for one value of a condition; the first one is meant to match it.
    fn samples(&mut self, cond: &Cond, v: &str) -> Vec<Mut> {
        let mut out = Vec::new();
        match &cond.field {
            Field::Method => {
                let cands: Vec<String> = match pat(v) {
                    Pat::Any => vec!["GET".into()],
                    Pat::Exact(e) => vec![e.into(), e.to_lowercase(), format!("{e}X")],
                    Pat::Prefix(p) => vec![format!("{p}X"), chop_last(p)],
                    Pat::Suffix(s) => vec![format!("X{s}"), chop_first(s)],
                };
                for c in cands {
                    if is_token(&c) {
                        out.push(Mut::Method(c));
                    }
                }
                if out.is_empty() {
                    self.nd(
                        cond,
                        v,
                        "not an HTTP method token (Envoy's codec answers 400)",
                    );
                }
            }
            Field::Host => {
                let cands: Vec<String> = match pat(v) {
                    Pat::Any => vec!["any.example".into()],
                    Pat::Exact(e) => vec![
                        e.into(),
                        e.to_uppercase(),
                        format!("{e}:8080"),
                        format!("x{e}"),
                    ],
                    Pat::Suffix(s) => vec![
                        format!("x{s}"),
                        format!("X{s}").to_uppercase(),
                        format!("x{s}:8080"),
                        chop_first(s),
                    ],
                    Pat::Prefix(p) => vec![
                        format!("{p}x"),
                        format!("{p}X").to_uppercase(),
                        format!("{p}x:8080"),
                        chop_last(p),
                    ],
                };
                out.extend(cands.into_iter().filter(|c| !c.is_empty()).map(Mut::Host));
            }
            Field::Path => {
                if !v.starts_with('/') && !v.starts_with('*') {
                    self.nd(
                        cond,
                        v,
                        "does not start with '/': no HTTP/1.1 request target is that",
                    );
                    return out;
                }
                let cands: Vec<String> = match pat(v) {
                    Pat::Any => vec!["/any".into()],
                    Pat::Exact(e) if e.contains('{') => {
                        let mut c = Vec::new();
                        for (one, many) in [("x", "a/b"), ("x", "a"), ("x/y", "a"), ("", "")] {
                            c.push(e.replace("{**}", many).replace("{*}", one));
                        }
                        c.push(e.replace("/{**}", "").replace("{*}", "x"));
                        c.push(format!("/{}", e.replace("{**}", "a").replace("{*}", "x")));
                        c
                    }
                    Pat::Exact(e) => vec![
                        e.into(),
                        format!("{e}?q=1"),
                        format!("/{e}"),
                        format!("{e}/"),
                        e.to_uppercase(),
                        percent_encode_first_letter(e),
                        format!("/x/..{e}"),
                    ],
                    Pat::Prefix(p) => {
                        vec![format!("{p}x"), p.into(), chop_last(p), format!("/{p}x")]
                    }
                    Pat::Suffix(s) => vec![format!("/x{s}"), s.into(), format!("/x{s}/")],
                };
                let mut seen = BTreeSet::new();
                for c in cands {
                    if c.starts_with('/') && seen.insert(c.clone()) {
                        out.push(Mut::Path(c));
                    }
                }
            }
            Field::Port => match v.parse::<u16>() {
                Ok(p) if self.bindable_ports.contains(&p) => out.push(Mut::Port(p)),
                Ok(p) => {
                    let why = self
                        .unbindable_ports
                        .get(&p)
                        .cloned()
                        .unwrap_or_else(|| "not bound".into());
                    self.nd(cond, v, &format!("port {p} cannot be bound here: {why}"));
                }
                Err(_) => self.nd(cond, v, "not a port number"),
            },
            Field::Header(name) => {
                let cands: Vec<Vec<String>> = match pat(v) {
                    Pat::Any => vec![vec!["v".into()], vec![String::new()]],
                    Pat::Exact(e) => vec![
                        vec![e.into()],
                        vec![e.to_uppercase()],
                        vec![format!("{e}x")],
                        vec![e.into(), "other".into()],
                        vec!["other".into(), e.into()],
                        vec![format!("{e},other")],
                    ],
                    Pat::Prefix(p) => vec![
                        vec![format!("{p}x")],
                        vec![chop_last(p)],
                        vec!["other".into(), format!("{p}x")],
                    ],
                    Pat::Suffix(s) => vec![
                        vec![format!("x{s}")],
                        vec![chop_first(s)],
                        vec![format!("x{s}"), "other".into()],
                    ],
                };
                out.extend(cands.into_iter().map(|c| Mut::Header(name.clone(), c)));
            }
            Field::RequestPrincipal => {
                // Istio splits at the last '/' (requestPrincipalGenerator).
                let (iss, sub, slash) = match v.rfind('/') {
                    Some(i) => (&v[..i], &v[i + 1..], true),
                    None => (v, "", false),
                };
                if v == "*" {
                    out.push(self.principal(ISSUER, Some("alice")));
                    out.push(Mut::NoToken);
                } else if let Some(rest) = v.strip_prefix('*') {
                    if slash {
                        if iss == "*" {
                            out.push(self.principal(ISSUER, Some(sub)));
                            out.push(self.principal(ISSUER, Some(&format!("{sub}x"))));
                        } else {
                            let suffix = &iss[1..];
                            out.push(self.principal(&format!("x{suffix}"), Some(sub)));
                            out.push(self.principal(&format!("x{suffix}"), Some("other")));
                            out.push(self.principal(&chop_first(suffix), Some(sub)));
                        }
                    } else {
                        out.push(self.principal(ISSUER, Some(&format!("x{rest}"))));
                        out.push(self.principal(ISSUER, Some(&chop_first(rest))));
                    }
                } else if let Some(rest) = v.strip_suffix('*') {
                    if slash {
                        let sub_prefix = sub.trim_end_matches('*');
                        out.push(self.principal(iss, Some(&format!("{sub_prefix}x"))));
                        out.push(self.principal(iss, None));
                        if !sub_prefix.is_empty() {
                            out.push(self.principal(iss, Some(&chop_last(sub_prefix))));
                        }
                    } else {
                        out.push(self.principal(&format!("{rest}x"), Some("alice")));
                        out.push(self.principal(&chop_last(rest), Some("alice")));
                    }
                } else if slash {
                    out.push(self.principal(iss, Some(sub)));
                    out.push(self.principal(iss, Some(&format!("{sub}x"))));
                    out.push(self.principal(ISSUER, Some(sub)));
                } else {
                    // No '/': Istio matches iss = value and sub = "" exactly.
                    out.push(self.principal(v, Some("")));
                    out.push(self.principal(v, Some("alice")));
                    out.push(self.principal(v, None));
                }
            }
            Field::Claim(path) if path.len() == 1 && path[0] == "iss" => {
                let cands: Vec<String> = match pat(v) {
                    Pat::Any => vec![ISSUER.into()],
                    Pat::Exact(e) => vec![e.into(), format!("{e}x")],
                    Pat::Prefix(p) => vec![format!("{p}x"), chop_last(p)],
                    Pat::Suffix(s) => vec![format!("x{s}"), chop_first(s)],
                };
                for c in cands.into_iter().filter(|c| !c.is_empty()) {
                    out.push(self.principal(&c, Some("alice")));
                }
            }
            Field::Claim(path) => {
                let cands: Vec<Option<Value>> = match pat(v) {
                    Pat::Any => vec![Some(json!("v")), None],
                    Pat::Exact(e) => vec![
                        Some(json!(e)),
                        Some(json!(format!("{e}x"))),
                        Some(json!(["other", e])),
                        None,
                    ],
                    Pat::Prefix(p) => vec![
                        Some(json!(format!("{p}x"))),
                        Some(json!(chop_last(p))),
                        Some(json!(["other", format!("{p}x")])),
                    ],
                    Pat::Suffix(s) => {
                        vec![Some(json!(format!("x{s}"))), Some(json!(chop_first(s)))]
                    }
                };
                out.extend(cands.into_iter().map(|c| Mut::Claim(path.clone(), c)));
            }
            Field::Audience => {
                let cands: Vec<Vec<String>> = match pat(v) {
                    Pat::Any => vec![vec!["a".into()], vec![]],
                    Pat::Exact(e) => vec![
                        vec![e.into()],
                        vec![format!("{e}x")],
                        vec!["other".into(), e.into()],
                    ],
                    Pat::Prefix(p) => vec![vec![format!("{p}x")], vec![chop_last(p)]],
                    Pat::Suffix(s) => vec![vec![format!("x{s}")], vec![chop_first(s)]],
                };
                out.extend(cands.into_iter().map(Mut::Audiences));
            }
            Field::Presenter => {
                let cands: Vec<Option<Value>> = match pat(v) {
                    Pat::Any => vec![Some(json!("p")), None],
                    Pat::Exact(e) => vec![Some(json!(e)), Some(json!(format!("{e}x"))), None],
                    Pat::Prefix(p) => vec![Some(json!(format!("{p}x"))), Some(json!(chop_last(p)))],
                    Pat::Suffix(s) => {
                        vec![Some(json!(format!("x{s}"))), Some(json!(chop_first(s)))]
                    }
                };
                out.extend(cands.into_iter().map(|c| Mut::Claim(vec!["azp".into()], c)));
            }
            Field::Principal => {
                let mut uris = match pat(v) {
                    Pat::Any => vec!["spiffe://cluster.local/ns/default/sa/default".to_string()],
                    Pat::Exact(e) => vec![format!("spiffe://{e}"), format!("spiffe://{e}x")],
                    Pat::Prefix(p) => {
                        vec![
                            format!("spiffe://{p}x"),
                            format!("spiffe://{}", chop_last(p)),
                        ]
                    }
                    Pat::Suffix(s) => {
                        vec![
                            format!("spiffe://x{s}"),
                            format!("spiffe://{}", chop_first(s)),
                        ]
                    }
                };
                // `<td>/ns/<ns>/sa/<sa>`: the same identity in each trust domain of the bundle,
                // cluster.local and a foreign one.
                let parts: Vec<&str> = v.split('/').collect();
                if parts.len() == 5 {
                    let rest = parts[1..].join("/");
                    let mut tds = self.trust_domains.clone();
                    tds.push("cluster.local".into());
                    tds.push("other-td".into());
                    for td in tds {
                        uris.push(format!("spiffe://{td}/{rest}"));
                    }
                }
                let mut seen = BTreeSet::new();
                uris.retain(|u| seen.insert(u.clone()));
                out.extend(uris.into_iter().map(Mut::Uri));
            }
            Field::Namespace => {
                let ns = v.replace('*', "x");
                out.push(Mut::Uri(format!(
                    "spiffe://cluster.local/ns/{ns}/sa/default"
                )));
                out.push(Mut::Uri(format!("spiffe://cluster.local/ns/{ns}")));
                out.push(Mut::Uri(format!(
                    "spiffe://cluster.local/ns/{ns}-x/sa/default"
                )));
                out.push(Mut::Uri(
                    "spiffe://cluster.local/ns/other/sa/default".into(),
                ));
            }
            Field::ServiceAccount => {
                let (ns, sa) = v.split_once('/').unwrap_or((&cond.namespace, v));
                out.push(Mut::Uri(format!("spiffe://cluster.local/ns/{ns}/sa/{sa}")));
                out.push(Mut::Uri(format!(
                    "spiffe://cluster.local/ns/{ns}/k/v/sa/{sa}/x"
                )));
                out.push(Mut::Uri(format!(
                    "spiffe://cluster.local/ns/{ns}/sa/{sa}-junk"
                )));
                out.push(Mut::Uri(format!("spiffe://cluster.local/ns/other/sa/{sa}")));
            }
            Field::TrustDomain => {
                let mut uris = Vec::new();
                if v == "*" {
                    uris.push("spiffe://any.td/ns/a/sa/b".to_string());
                } else {
                    uris.push(format!("spiffe://{}/ns/a/sa/b", v.replace('*', "x")));
                    uris.push(format!("spiffe://{}/ns/a/sa/b", v.replace('*', "")));
                    uris.push(format!("spiffe://{}x.y/ns/a/sa/b", v.replace('*', "")));
                    uris.push(format!("spiffe://{}", v.replace('*', "x")));
                    uris.push(format!(
                        "spiffe://other/ns/{}/sa/b",
                        v.replace('*', "x").replace('.', "-")
                    ));
                }
                for td in self.trust_domains.clone() {
                    uris.push(format!("spiffe://{td}/ns/a/sa/b"));
                }
                let mut seen = BTreeSet::new();
                uris.retain(|u| seen.insert(u.clone()));
                out.extend(uris.into_iter().map(Mut::Uri));
            }
            Field::RemoteIp => match ip_block(v) {
                Some((ip, len)) => {
                    let inside = if len < 32 {
                        Ipv4Addr::from(u32::from(ip) | 1)
                    } else {
                        ip
                    };
                    let o = inside.octets();
                    let outside = Ipv4Addr::new(o[0], o[1] ^ 1, o[2], o[3]);
                    let xff = "X-Forwarded-For".to_string();
                    out.push(Mut::Header(xff.clone(), vec![inside.to_string()]));
                    out.push(Mut::Header(xff.clone(), vec![outside.to_string()]));
                    out.push(Mut::Header(
                        xff.clone(),
                        vec![format!("{inside}, {outside}")],
                    ));
                    out.push(Mut::Header(xff, vec![format!("{outside}, {inside}")]));
                }
                None => self.nd(cond, v, "not an IPv4 address or block"),
            },
            Field::SourceIp => match ip_block(v) {
                Some((ip, _)) => {
                    if first_sample_matches(cond, v) {
                        out.push(Mut::Header("X-Forwarded-For".into(), vec![]));
                    } else {
                        self.nd(
                            cond,
                            v,
                            "the direct peer is always 127.0.0.1 here (only 127.0.0.1 is drivable)",
                        );
                    }
                    // With an X-Forwarded-For, Envoy's source address is the XFF entry (no direct
                    // peer for meshguard): still 127.0.0.1 for Envoy RBAC's direct_remote_ip.
                    out.push(Mut::Header("X-Forwarded-For".into(), vec![ip.to_string()]));
                }
                None => self.nd(cond, v, "not an IPv4 address or block"),
            },
            Field::DestinationIp => {
                if v != "127.0.0.1" && !v.starts_with("127.") {
                    self.nd(cond, v, "the listeners are on 127.0.0.0/8 addresses");
                }
            }
            Field::Sni => {
                if v != "localhost" && v != "*" {
                    self.nd(
                        cond,
                        v,
                        "the kit's server certificate names only localhost, the only SNI sent",
                    );
                }
                out.push(Mut::Peer(Some(Cert::uri(
                    "spiffe://cluster.local/ns/default/sa/default",
                ))));
                out.push(Mut::Peer(None));
            }
            Field::Other(key) => {
                self.nd(
                    cond,
                    v,
                    &format!("{key}: no filter of this Envoy sets that metadata (see adaptations)"),
                );
            }
        }
        out
    }
}

/// Whether the first of [`Gen::samples`] for `v` meets it (else that value cannot be met here).
fn first_sample_matches(cond: &Cond, v: &str) -> bool {
    match cond.field {
        Field::SourceIp => ip_block(v).is_some_and(|(ip, len)| {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(Ipv4Addr::LOCALHOST) & mask == u32::from(ip) & mask
        }),
        Field::Sni => value_matches(v, "localhost"),
        Field::DestinationIp | Field::Other(_) => false,
        _ => true,
    }
}

fn ip_block(v: &str) -> Option<(Ipv4Addr, u32)> {
    let (a, len) = match v.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok().filter(|l| *l <= 32)?),
        None => (v, 32),
    };
    Some((a.parse().ok()?, len))
}

/// `/exact` → `/%65xact`: the first letter percent-encoded (an unreserved character, which
/// normalisation decodes).
fn percent_encode_first_letter(path: &str) -> String {
    match path.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, c)) => format!("{}%{:02X}{}", &path[..i], c as u32, &path[i + 1..]),
        None => path.to_string(),
    }
}

/// The requests of a case, deduplicated by their description, at most [`MAX_REQUESTS`].
#[derive(Default)]
struct Requests {
    /// The method of the requests that do not vary it: one no `methods` value matches, so that
    /// ALLOW policies on methods do not mask the other fields.
    base_method: String,
    list: Vec<(String, Probe)>,
    seen: BTreeSet<String>,
    dropped: usize,
}

impl Requests {
    fn push(&mut self, why: String, p: Probe) {
        if self.seen.insert(p.describe()) {
            if self.list.len() < MAX_REQUESTS {
                self.list.push((why, p));
            } else {
                self.dropped += 1;
            }
        }
    }

    fn generic(&mut self, why: &str, f: impl Fn(&mut Probe)) {
        let mut p = Probe::base(&self.base_method);
        f(&mut p);
        self.push(format!("generic: {why}"), p);
    }
}

/// Every request of a case, each with a note of why it is there.
fn probes(combos: &[Combo], g: &mut Gen, needs_tls: bool) -> Requests {
    let named: Vec<&str> = combos
        .iter()
        .flat_map(|c| &c.conds)
        .filter(|k| k.field == Field::Method)
        .flat_map(|k| &k.values)
        .map(String::as_str)
        .collect();
    let base_method = ["GET", "PATCH", "DELETE", "PUT"]
        .into_iter()
        .find(|m| !named.iter().any(|v| value_matches(v, m)))
        .unwrap_or("GET");
    let mut out = Requests {
        base_method: base_method.to_string(),
        ..Requests::default()
    };
    let spiffe = "spiffe://cluster.local/ns/default/sa/default";
    let mut first_uri: Option<String> = None;

    // Per rule and from/to entry: a request meeting every condition, then each condition varied.
    for combo in combos {
        let samples: Vec<(Vec<Mut>, Vec<Vec<Mut>>)> = combo
            .conds
            .iter()
            .map(|c| {
                let pos: Vec<Vec<Mut>> = c.values.iter().map(|v| g.samples(c, v)).collect();
                let neg: Vec<Vec<Mut>> = c.not_values.iter().map(|v| g.samples(c, v)).collect();
                let matching = c
                    .values
                    .iter()
                    .zip(&pos)
                    .filter(|(v, _)| first_sample_matches(c, v))
                    .find_map(|(_, s)| s.first().cloned())
                    .into_iter()
                    .collect::<Vec<_>>();
                let mut all = pos;
                all.extend(neg);
                (matching, all)
            })
            .collect();
        let target_without = |skip: Option<usize>| {
            let mut p = Probe::base(base_method);
            for (i, (matching, _)) in samples.iter().enumerate() {
                if Some(i) != skip {
                    for m in matching {
                        m.apply(&mut p);
                    }
                }
            }
            p
        };
        let target = target_without(None);
        if first_uri.is_none() {
            first_uri = target.cert.as_ref().and_then(|c| c.uris.first().cloned());
        }
        out.push(format!("{}: all conditions", combo.label), target.clone());
        if target.cert.is_some() {
            let mut p = target.clone();
            p.cert = None;
            out.push(format!("{}: plaintext", combo.label), p);
        }
        if target.token.is_some() {
            let mut p = target.clone();
            p.token = None;
            out.push(format!("{}: no token", combo.label), p);
        }
        for (i, (_, all)) in samples.iter().enumerate() {
            let cond = &combo.conds[i];
            if let Field::Header(name) = &cond.field {
                let mut p = target_without(Some(i));
                p.header(name, &[]);
                out.push(format!("{}: {} absent", combo.label, cond.name), p);
            }
            for m in all.iter().flatten() {
                let mut p = target_without(Some(i));
                m.apply(&mut p);
                out.push(format!("{}: {} {m:?}", combo.label, cond.name), p);
            }
        }
    }

    // Generic requests.
    out.generic("base", |_| {});
    out.generic("POST", |p| p.method = "POST".into());
    out.generic("valid token", |p| {
        p.token();
    });
    out.generic("bad signature", |p| p.token().bad_signature = true);
    out.generic("unknown issuer", |p| {
        p.token().iss = "https://unknown-issuer.example".into()
    });
    for (why, bad) in [
        ("CORS preflight", false),
        ("CORS preflight, bad token", true),
    ] {
        out.generic(why, |p| {
            p.method = "OPTIONS".into();
            p.header("Origin", &["https://web.example".into()]);
            p.header("Access-Control-Request-Method", &["GET".into()]);
            if bad {
                p.token().bad_signature = true;
            }
        });
    }
    out.generic("OPTIONS without preflight headers, bad token", |p| {
        p.method = "OPTIONS".into();
        p.token().bad_signature = true;
    });
    for path in ["//", "/a//b", "/a/../b", "/a/./b", "/%2e%2e/b"] {
        out.generic("path", |p| p.path = path.into());
    }
    for host in ["example.com:8080", "EXAMPLE.com"] {
        out.generic("host", |p| p.host = host.into());
    }
    out.generic("X-Forwarded-For", |p| {
        p.header("X-Forwarded-For", &["203.0.113.9".into()])
    });
    let first = first_uri.unwrap_or_else(|| spiffe.to_string());
    out.generic("forged XFCC on plaintext", |p| {
        p.header(
            "x-forwarded-client-cert",
            &[format!(
                "By=spiffe://cluster.local/ns/foo/sa/httpbin;URI={first}"
            )],
        );
    });
    if needs_tls {
        let peers = [
            Cert::uri(spiffe),
            Cert::uri(&first),
            Cert {
                uris: vec![],
                dns: vec!["svc.example".into()],
                cn: "workload".into(),
            },
            Cert {
                uris: vec![],
                dns: vec![],
                cn: "subject-only".into(),
            },
            Cert {
                uris: vec!["spiffe://other-td/ns/other/sa/other".into(), first.clone()],
                dns: vec![],
                cn: "workload".into(),
            },
            Cert {
                uris: vec![first.clone(), "spiffe://other-td/ns/other/sa/other".into()],
                dns: vec![],
                cn: "workload".into(),
            },
        ];
        for c in peers {
            out.generic("peer", |p| p.cert = Some(c.clone()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Envoy

/// Envoy's `jwt_authn` as Istio writes it for these issuers (`convertToEnvoyJwtConfig`), with the
/// JWKS inline (Istio's `BuildLocalJwks`).
fn istio_jwt_authn(issuers: &[String], jwks: &str) -> Value {
    let mut providers = Map::new();
    let mut any = Vec::new();
    let mut all = Vec::new();
    for (i, iss) in issuers.iter().enumerate() {
        let name = format!("origins-{i}");
        providers.insert(
            name.clone(),
            json!({
                "issuer": iss,
                "local_jwks": {"inline_string": jwks},
                "payload_in_metadata": "payload",
                "normalize_payload_in_metadata": {"space_delimited_claims": ["scope", "permission"]},
            }),
        );
        all.push(json!({"requires_any": {"requirements": [
            {"provider_name": name}, {"allow_missing": {}}
        ]}}));
        any.push(json!({"provider_name": name}));
    }
    let requires = if all.len() == 1 {
        all.remove(0)
    } else {
        any.push(json!({"requires_all": {"requirements": all}}));
        json!({"requires_any": {"requirements": any}})
    };
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "rules": [{"match": {"prefix": "/"}, "requires": requires}],
            "bypass_cors_preflight": true,
        },
    })
}

/// Both connection managers accept custom methods (for `methods` values such as `method`): not
/// Istio's setting, the same on both sides.
fn custom_methods() -> Value {
    json!({"allow_custom_methods": true})
}

fn istio_hcm() -> Value {
    let mut h = rbac::istio_hcm(false);
    h["http_protocol_options"] = custom_methods();
    h
}

fn meshguard_hcm() -> Value {
    json!({
        "use_remote_address": false,
        "forward_client_cert_details": "SANITIZE_SET",
        "set_current_client_cert_details": {"cert": true},
        "http_protocol_options": custom_methods(),
    })
}

fn at(mut listener: Value, ip: Ipv4Addr, port: u16) -> Value {
    listener["address"]["socket_address"] = json!({"address": ip.to_string(), "port_value": port});
    listener
}

/// The loopback addresses of case `index`'s port listeners: istio, mg, istio-tls, mg-tls.
fn case_addresses(index: usize) -> [Ipv4Addr; 4] {
    let pid = std::process::id();
    let a = u8::try_from(pid % 200 + 20).unwrap();
    let b = u8::try_from(pid / 200 % 250 + 1).unwrap();
    let base = u8::try_from(index * 4 + 1).unwrap();
    [0, 1, 2, 3].map(|i| Ipv4Addr::new(127, a, b, base + i))
}

fn envoy_version() -> String {
    std::env::var("MESHGUARD_ENVOY_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            paths::envoy()
                .map(|p| paths::envoy_version(&p))
                .unwrap_or_else(|_| "unknown".into())
        })
}

fn status(r: std::io::Result<Resp>) -> u16 {
    r.map(|r| r.status).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// One case

fn run(case_name: &str) {
    let started = Instant::now();
    let (index, case) = CASES
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == case_name)
        .unwrap();
    let policies = policies(case.input);
    let rbac_filters: Vec<Value> = case
        .outputs
        .iter()
        .map(|o| {
            let mut docs = yaml_docs(o);
            assert_eq!(docs.len(), 1, "{o}: one RBAC filter per file");
            docs.remove(0)
        })
        .collect();
    let mut adaptations = Vec::new();
    let mg_policies: Vec<Value> = policies
        .iter()
        .map(|p| meshguard_policy(p, &mut adaptations))
        .collect();
    let combos = combos(&policies);
    let needs_tls = combos
        .iter()
        .any(|c| c.conds.iter().any(|k| k.field.needs_tls()));

    // Named ports: a listener pair (two with mTLS) on each one that can be bound.
    let addrs = case_addresses(index);
    let mut named_ports = BTreeSet::new();
    for c in &combos {
        for k in c.conds.iter().filter(|k| k.field == Field::Port) {
            for v in k.values.iter().chain(&k.not_values) {
                if let Ok(p) = v.parse::<u16>() {
                    named_ports.insert(p);
                }
            }
        }
    }
    let mut bindable = BTreeSet::new();
    let mut unbindable = BTreeMap::new();
    for &port in &named_ports {
        let tried: Result<Vec<TcpListener>, String> = addrs
            .iter()
            .map(|a| TcpListener::bind((*a, port)).map_err(|e| format!("{a}:{port}: {e}")))
            .collect();
        match tried {
            Ok(_) => {
                bindable.insert(port);
            }
            Err(e) => {
                unbindable.insert(port, e);
            }
        }
    }

    let trust_domains: Vec<String> = match case.trust_domains {
        Some((td, aliases)) => std::iter::once(td)
            .chain(aliases.iter().copied())
            .map(String::from)
            .collect(),
        None => vec!["cluster.local".into()],
    };
    let mut g = Gen {
        trust_domains,
        bindable_ports: &bindable,
        unbindable_ports: &unbindable,
        issuers: BTreeSet::new(),
        not_drivable: BTreeSet::new(),
    };
    let requests = probes(&combos, &mut g, needs_tls);
    let (probes, dropped) = (requests.list, requests.dropped);
    let mut issuers = vec![ISSUER.to_string()];
    issuers.extend(g.issuers.iter().filter(|i| *i != ISSUER).cloned());

    let certs = TempDir::new("goldens-pki").unwrap();
    let pki = Pki::new(certs.path()).unwrap();
    let mut plugin_extra = Map::new();
    if let Some((td, aliases)) = case.trust_domains {
        plugin_extra.insert("trustDomain".into(), json!(td));
        plugin_extra.insert("trustDomainAliases".into(), json!(aliases));
    }
    let stack = Stack::start(StackOpts::default(), |p| {
        let jwks_resp = send_to(
            SocketAddr::from((Ipv4Addr::LOCALHOST, p.idp)),
            &Req::get("/.well-known/jwks.json").host("idp.meshguard.test"),
        )
        .map_err(|e| format!("JWKS from the demo IdP: {e}"))?;
        let jwks = jwks_resp.text();
        let mut plugin = json!({
            "jwtRules": issuers.iter().map(|i| json!({"issuer": i, "jwks": jwks})).collect::<Vec<_>>(),
            "policies": mg_policies,
        });
        for (k, v) in &plugin_extra {
            plugin[k] = v.clone();
        }
        let mut istio_filters = vec![istio_jwt_authn(&issuers, &jwks)];
        istio_filters.extend(rbac_filters.iter().cloned());
        let mtls = config::downstream_mtls(&pki.server_cert, &pki.server_key, &pki.ca_file);
        let istio = |name: &str, tls: bool| {
            rbac::listener_with(
                name,
                istio_filters.clone(),
                tls.then(|| mtls.clone()),
                &istio_hcm(),
            )
        };
        let mg = |name: &str, tls: bool| {
            rbac::listener_with(
                name,
                vec![config::meshguard(&p.wasm, &plugin)],
                tls.then(|| mtls.clone()),
                &meshguard_hcm(),
            )
        };
        let mut ls = vec![istio("istio", false), mg("mg", false)];
        if needs_tls {
            ls.push(istio("istio-tls", true));
            ls.push(mg("mg-tls", true));
        }
        for &port in &bindable {
            ls.push(at(istio(&format!("istio-p{port}"), false), addrs[0], port));
            ls.push(at(mg(&format!("mg-p{port}"), false), addrs[1], port));
            if needs_tls {
                ls.push(at(istio(&format!("istio-tls-p{port}"), true), addrs[2], port));
                ls.push(at(mg(&format!("mg-tls-p{port}"), true), addrs[3], port));
            }
        }
        Ok(config::bootstrap(
            ls,
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    })
    .unwrap_or_else(|e| {
        panic!(
            "golden {case_name}: Envoy did not start: {}",
            meshguard_e2e::envoy::start_failure(&e)
        )
    });
    let startup = started.elapsed();

    // Listener pair → (istio address, meshguard address).
    let pair = |port: Option<u16>, tls: bool| -> (SocketAddr, SocketAddr) {
        match port {
            None => {
                let (i, m) = if tls {
                    ("istio-tls", "mg-tls")
                } else {
                    ("istio", "mg")
                };
                (
                    SocketAddr::from((Ipv4Addr::LOCALHOST, stack.port(i))),
                    SocketAddr::from((Ipv4Addr::LOCALHOST, stack.port(m))),
                )
            }
            Some(p) => {
                let (i, m) = if tls { (2, 3) } else { (0, 1) };
                (
                    SocketAddr::new(IpAddr::V4(addrs[i]), p),
                    SocketAddr::new(IpAddr::V4(addrs[m]), p),
                )
            }
        }
    };
    let verbose = std::env::var_os("MESHGUARD_GOLDENS_VERBOSE").is_some();
    let version = envoy_version();
    let mut cert_cache: BTreeMap<Cert, Arc<rustls::ClientConfig>> = BTreeMap::new();
    let mut agree = 0usize;
    let mut both_400 = 0usize;
    let mut known = Vec::new();
    let mut disagree = Vec::new();
    for (why, probe) in &probes {
        let mut req = Req::new(&probe.method, &probe.path).host(&probe.host);
        req.headers = probe.headers.clone();
        if let Some(t) = &probe.token {
            let mut spec = TokenSpec::default().iss(&t.iss);
            spec.sub = t.sub.clone();
            spec.aud = t.aud.clone();
            spec.claims = t.claims.clone();
            if t.bad_signature {
                spec = spec.tamper();
            }
            req = req.bearer(&stack.idp.mint(&spec).unwrap());
        }
        let (istio_addr, mg_addr) = pair(probe.port, probe.cert.is_some());
        let (a, b) = match &probe.cert {
            None => (
                status(send_to(istio_addr, &req)),
                status(send_to(mg_addr, &req)),
            ),
            Some(c) => {
                let cfg = cert_cache
                    .entry(c.clone())
                    .or_insert_with(|| {
                        let uris: Vec<&str> = c.uris.iter().map(String::as_str).collect();
                        let dns: Vec<&str> = c.dns.iter().map(String::as_str).collect();
                        pki.client_with(&uris, &dns, &c.cn).unwrap()
                    })
                    .clone();
                (
                    status(send_tls_to(istio_addr, cfg.clone(), "localhost", &req)),
                    status(send_tls_to(mg_addr, cfg, "localhost", &req)),
                )
            }
        };
        let desc = probe.describe();
        if verbose {
            eprintln!("  {a} {b} {desc}  [{why}]");
        }
        if a == b {
            agree += 1;
            if a == 400 {
                both_400 += 1;
            }
        } else if let Some(k) = KNOWN.iter().find(|k| {
            k.case == case_name
                && k.request == desc
                && k.istio == a
                && k.meshguard == b
                && k.envoy.is_none_or(|v| version.starts_with(v))
        }) {
            known.push(format!("{desc}: istio {a}, meshguard {b} ({})", k.why));
        } else {
            disagree.push(format!("{desc}\n      [{why}]: istio {a}, meshguard {b}"));
        }
    }

    let wasm = paths::wasm()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut report = format!(
        "golden {case_name} (Envoy {version}, {wasm}): {} requests: {agree} agree ({both_400} of them 400 on both), {} known differences, {} DISAGREE; {} not drivable{}; {:.1} s (Envoy start {:.1} s)\n",
        probes.len(),
        known.len(),
        disagree.len(),
        g.not_drivable.len(),
        if dropped > 0 {
            format!("; {dropped} more generated requests not sent (limit {MAX_REQUESTS})")
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64(),
        startup.as_secs_f64(),
    );
    for a in &adaptations {
        report.push_str(&format!("  adaptation: {a}\n"));
    }
    for n in &g.not_drivable {
        report.push_str(&format!("  not drivable: {n}\n"));
    }
    for k in &known {
        report.push_str(&format!("  known difference: {k}\n"));
    }
    for d in &disagree {
        report.push_str(&format!("  DISAGREE: {d}\n"));
    }
    for k in KNOWN
        .iter()
        .filter(|k| k.case == case_name && k.envoy.is_none_or(|v| version.starts_with(v)))
    {
        if !known
            .iter()
            .any(|s| s.starts_with(&format!("{}:", k.request)))
        {
            report.push_str(&format!(
                "  (known difference not seen with this Envoy: {})\n",
                k.request
            ));
        }
    }
    eprintln!("{report}");
    assert!(
        disagree.is_empty(),
        "golden {case_name}: {} disagreement(s) between Envoy + Istio's RBAC and meshguard:\n{report}",
        disagree.len()
    );
}
