//! meshguard next to Envoy's native authorization as Istio configures it, in one real Envoy, on
//! the places where the two used to disagree.
//!
//! Each test starts one Envoy with listener pairs: `rbac-<key>` = Envoy's `jwt_authn` as Istio
//! writes it (a missing token passes, a bad one is a 401, `bypass_cors_preflight`, the payload in
//! metadata) + Envoy's RBAC filter with the config Istio's translator generates for the policy,
//! written out by hand ([`meshguard_e2e::rbac`], after istio/istio's
//! `pilot/pkg/security/authz/builder/testdata/http/*-out.yaml`), behind the connection manager of
//! an Istio sidecar (`normalize_path`, no `merge_slashes`); `mg-<key>` = meshguard with the same
//! AuthorizationPolicy, behind a plain connection manager (meshguard normalises its own copy of
//! the path). Every row states the status Istio/Envoy gives and meshguard's, which is the same
//! unless the row names a deliberate difference ([`Want::Differs`]).
//!
//! 1. `ipBlocks` (Envoy: `direct_remote_ip`, always the physical peer) against a client-sent
//!    X-Forwarded-For, under `use_remote_address: true` and `false`; `remoteIpBlocks` (Envoy:
//!    `remote_ip`, derived from XFF when `use_remote_address` is false).
//! 2. Peer certificates: several URI SANs, only a DNS SAN, only a subject (Envoy's
//!    `authenticated` matcher tries every URI SAN, every DNS SAN, then the subject). meshguard
//!    reads the whole certificate from `connection.peer_certificate` (Envoy 1.40) or from the
//!    X-Forwarded-Client-Cert `Cert=` Envoy sets on its listener (`SANITIZE_SET` + `cert`);
//!    rows without that setting depend on the Envoy version (`MESHGUARD_ENVOY_VERSION`).
//! 3. CORS preflight: Istio's `jwt_authn` does not look at the token of a preflight.
//! 4. `hosts`: exact `:authority` match, case-insensitive, the port is part of it.
//! 5. `paths` under Istio's default normalisation (`BASE`: no slash merging).
//! 6. Trust-domain aliases: Istio expands `principals` over the trust domain and its aliases.
//! 7. meshguard's opt-in departures (`hostsIgnorePort`, `bypassCorsPreflight: false`).

use crate::common::AUD;
use meshguard_demo_idp::TokenSpec;
use meshguard_e2e::stack::{ISSUER, JWKS_URI, Ports, StackOpts};
use meshguard_e2e::tls::Pki;
use meshguard_e2e::{Req, Resp, Stack, TempDir, config, paths, rbac, send, send_tls};
use serde_json::{Value, json};
use std::sync::Arc;

const DENIED: &str = "RBAC: access denied";

/// What a row expects.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Istio/Envoy and meshguard both answer this status.
    Same(u16),
    /// A deliberate, documented difference.
    Differs {
        envoy: u16,
        meshguard: u16,
        why: &'static str,
    },
}

struct Row {
    case: String,
    rbac: String,
    mg: String,
    req: Req,
    cert: Option<Arc<rustls::ClientConfig>>,
    want: Want,
}

/// A row sent to the pair `rbac-<pair>` / `mg-<pair>`.
fn row(case: &str, pair: &str, req: Req, want: Want) -> Row {
    Row {
        case: case.to_string(),
        rbac: format!("rbac-{pair}"),
        mg: format!("mg-{pair}"),
        req,
        cert: None,
        want,
    }
}

impl Row {
    /// Sends the meshguard half to another meshguard listener (same policy, other settings).
    fn mg(mut self, listener: &str) -> Row {
        self.mg = listener.to_string();
        self
    }
    /// Over TLS, presenting `cert`.
    fn cert(mut self, cert: &Arc<rustls::ClientConfig>) -> Row {
        self.cert = Some(cert.clone());
        self
    }
}

fn call(stack: &Stack, listener: &str, row: &Row) -> Result<Resp, String> {
    let port = stack.port(listener);
    if port == 0 {
        return Err(format!("no listener {listener}"));
    }
    match &row.cert {
        Some(c) => send_tls(port, c.clone(), "localhost", &row.req),
        None => send(port, &row.req),
    }
    .map_err(|e| format!("{listener}: {e}"))
}

/// Whether `r` is `want`: a 403 with Envoy RBAC's body, a 200 from the echo upstream, or that
/// status.
fn check(r: &Result<Resp, String>, want: u16) -> Result<(), String> {
    let r = r.as_ref().map_err(Clone::clone)?;
    if r.status != want {
        let body: String = r.text().chars().take(120).collect();
        return Err(format!("{} instead of {want}: {body:?}", r.status));
    }
    if want == 403 && r.text() != DENIED {
        return Err(format!("403 body {:?}", r.text()));
    }
    if want == 200 && r.json().get("headers").is_none() {
        return Err(format!("200 not from the echo upstream: {}", r.summary()));
    }
    Ok(())
}

fn status(r: &Result<Resp, String>) -> String {
    match r {
        Ok(r) => r.status.to_string(),
        Err(_) => "err".to_string(),
    }
}

/// Sends every row to both listeners, prints the table, fails with every mismatch at once.
fn run(stack: &Stack, title: &str, rows: &[Row]) {
    let mut table = format!("{title} (Envoy {})\n", envoy_version());
    let mut mismatches = Vec::new();
    for row in rows {
        let envoy = call(stack, &row.rbac, row);
        let mg = call(stack, &row.mg, row);
        let (want_envoy, want_mg, why) = match row.want {
            Want::Same(s) => (s, s, ""),
            Want::Differs {
                envoy,
                meshguard,
                why,
            } => (envoy, meshguard, why),
        };
        let mut verdict = "ok";
        if let Err(e) = check(&envoy, want_envoy) {
            mismatches.push(format!("{}: Envoy RBAC ({}): {e}", row.case, row.rbac));
            verdict = "MISMATCH";
        }
        if let Err(e) = check(&mg, want_mg) {
            mismatches.push(format!("{}: meshguard ({}): {e}", row.case, row.mg));
            verdict = "MISMATCH";
        }
        let note = if why.is_empty() {
            String::new()
        } else {
            format!("  [differs: {why}]")
        };
        table.push_str(&format!(
            "  {:62} envoy {} (want {want_envoy})  meshguard {} (want {want_mg})  {verdict}{note}\n",
            row.case,
            status(&envoy),
            status(&mg),
        ));
    }
    eprintln!("{table}");
    assert!(
        mismatches.is_empty(),
        "{} row(s) differ:\n{}\n{table}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// `MESHGUARD_ENVOY_VERSION`, else the version of the Envoy binary the tests run.
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

/// Whether this Envoy gives a Wasm filter the whole peer certificate
/// (`connection.peer_certificate`): 1.40 does, 1.36 does not (the two pinned versions).
fn has_peer_certificate_property() -> bool {
    let v = envoy_version();
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 40)
}

/// The JWT rule of both sides: the demo IdP, Istio's default token locations.
fn jwt_rule() -> Value {
    json!({"issuer": ISSUER, "audiences": [AUD], "jwksUri": JWKS_URI, "jwksCluster": "idp"})
}

/// meshguard's plugin configuration: the JWT rule, `policies`, and `settings`' top-level fields.
fn plugin(policies: &[Value], settings: &Value) -> Value {
    let mut p = json!({"jwtRules": [jwt_rule()], "policies": policies});
    if let (Some(obj), Some(extra)) = (p.as_object_mut(), settings.as_object()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    p
}

/// One Istio rule's worth of RBAC: a filter with `action` and the one policy.
fn rbac_filter(action: &str, name: &str, permissions: Vec<Value>, principals: Vec<Value>) -> Value {
    rbac::filter(
        action,
        vec![(
            rbac::policy_name(name, 0),
            rbac::policy(permissions, principals),
        )],
    )
}

/// The Envoy side: Istio's `jwt_authn`, then the RBAC filter (none: no policy).
fn rbac_listener(
    name: &str,
    rbac_filter: Option<&Value>,
    hcm: &Value,
    tls: Option<&Value>,
) -> Value {
    let mut filters = vec![rbac::istio_jwt_authn(ISSUER, &[AUD], JWKS_URI, "idp")];
    filters.extend(rbac_filter.cloned());
    rbac::listener_with(name, filters, tls.cloned(), hcm)
}

fn mg_listener(p: &Ports, name: &str, plugin: &Value, hcm: &Value, tls: Option<&Value>) -> Value {
    rbac::listener_with(
        name,
        vec![config::meshguard(&p.wasm, plugin)],
        tls.cloned(),
        hcm,
    )
}

fn start(listeners: impl FnOnce(&Ports) -> Vec<Value>) -> Stack {
    Stack::start(StackOpts::default(), |p| {
        Ok(config::bootstrap(
            listeners(p),
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    })
    .unwrap_or_else(|e| {
        panic!(
            "Envoy did not start: {}",
            meshguard_e2e::envoy::start_failure(&e)
        )
    })
}

/// One policy on both sides: the AuthorizationPolicy for meshguard and Istio's RBAC for it.
struct Pair {
    key: &'static str,
    policy: Option<Value>,
    rbac: Option<Value>,
}

fn pair(key: &'static str, action: &str, policy_rule: Value, rbac: Value) -> Pair {
    Pair {
        key,
        policy: Some(json!({"name": key, "action": action, "rules": [policy_rule]})),
        rbac: Some(rbac),
    }
}

/// Both listeners of each pair, with these connection-manager settings and transport socket.
fn pair_listeners(
    p: &Ports,
    pairs: &[Pair],
    settings: &Value,
    rbac_hcm: &Value,
    mg_hcm: &Value,
    tls: Option<&Value>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for pr in pairs {
        out.push(rbac_listener(
            &format!("rbac-{}", pr.key),
            pr.rbac.as_ref(),
            rbac_hcm,
            tls,
        ));
        let policies: Vec<Value> = pr.policy.iter().cloned().collect();
        out.push(mg_listener(
            p,
            &format!("mg-{}", pr.key),
            &plugin(&policies, settings),
            mg_hcm,
            tls,
        ));
    }
    out
}

fn policy_of<'a>(pairs: &'a [Pair], key: &str) -> &'a [Value] {
    pairs
        .iter()
        .find(|p| p.key == key)
        .and_then(|p| p.policy.as_ref())
        .map(std::slice::from_ref)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// 1. ipBlocks / remoteIpBlocks and X-Forwarded-For

fn ip_pairs() -> Vec<Pair> {
    let from = |field: &str, block: &str| json!({"from": [{"source": {field: [block]}}]});
    let principal = |id: Value| vec![rbac::and_ids(vec![rbac::or_ids(vec![id])])];
    let any = || vec![rbac::any_permission()];
    vec![
        pair(
            "deny-ip-local",
            "DENY",
            from("ipBlocks", "127.0.0.1"),
            rbac_filter(
                "DENY",
                "deny-ip-local",
                any(),
                principal(rbac::direct_remote_ip("127.0.0.1")),
            ),
        ),
        pair(
            "allow-ip-1234",
            "ALLOW",
            from("ipBlocks", "1.2.3.4"),
            rbac_filter(
                "ALLOW",
                "allow-ip-1234",
                any(),
                principal(rbac::direct_remote_ip("1.2.3.4")),
            ),
        ),
        pair(
            "deny-ip-1234",
            "DENY",
            from("ipBlocks", "1.2.3.4"),
            rbac_filter(
                "DENY",
                "deny-ip-1234",
                any(),
                principal(rbac::direct_remote_ip("1.2.3.4")),
            ),
        ),
        pair(
            "allow-remote-1234",
            "ALLOW",
            from("remoteIpBlocks", "1.2.3.4"),
            rbac_filter(
                "ALLOW",
                "allow-remote-1234",
                any(),
                principal(rbac::remote_ip("1.2.3.4")),
            ),
        ),
        pair(
            "deny-remote-local",
            "DENY",
            from("remoteIpBlocks", "127.0.0.1"),
            rbac_filter(
                "DENY",
                "deny-remote-local",
                any(),
                principal(rbac::remote_ip("127.0.0.1")),
            ),
        ),
    ]
}

const XFF_SOURCE: &str = "use_remote_address false and an X-Forwarded-For: Envoy's source address is \
the XFF entry (port 0) and meshguard cannot see the direct peer, so ipBlocks fail closed (a DENY \
rule matches); Envoy RBAC's direct_remote_ip still reads the physical peer";

#[test]
fn ip_blocks_against_x_forwarded_for() {
    let pairs = ip_pairs();
    let stack = start(|p| {
        let mut ls = Vec::new();
        for ura in [true, false] {
            for pr in &pairs {
                let suffix = if ura { "ura" } else { "xff" };
                ls.push(rbac_listener(
                    &format!("rbac-{}-{suffix}", pr.key),
                    pr.rbac.as_ref(),
                    &rbac::istio_hcm(ura),
                    None,
                ));
                ls.push(mg_listener(
                    p,
                    &format!("mg-{}-{suffix}", pr.key),
                    &plugin(policy_of(&pairs, pr.key), &json!({})),
                    &json!({"use_remote_address": ura}),
                    None,
                ));
            }
        }
        ls
    });
    let get = || Req::get("/ip");
    let xff = |ip: &str| Req::get("/ip").header("X-Forwarded-For", ip);
    let mut rows = Vec::new();
    for (suffix, ura) in [("ura", true), ("xff", false)] {
        let p = |key: &str| format!("{key}-{suffix}");
        let tag = |case: &str| format!("use_remote_address {ura}: {case}");
        rows.extend([
            row(
                &tag("DENY ipBlocks [127.0.0.1], XFF 9.9.9.9"),
                &p("deny-ip-local"),
                xff("9.9.9.9"),
                Want::Same(403),
            ),
            row(
                &tag("DENY ipBlocks [127.0.0.1], no XFF"),
                &p("deny-ip-local"),
                get(),
                Want::Same(403),
            ),
            row(
                &tag("ALLOW ipBlocks [1.2.3.4], XFF 1.2.3.4"),
                &p("allow-ip-1234"),
                xff("1.2.3.4"),
                Want::Same(403),
            ),
            row(
                &tag("ALLOW ipBlocks [1.2.3.4], no XFF"),
                &p("allow-ip-1234"),
                get(),
                Want::Same(403),
            ),
            row(
                &tag("DENY ipBlocks [1.2.3.4], no XFF"),
                &p("deny-ip-1234"),
                get(),
                Want::Same(200),
            ),
            row(
                &tag("DENY ipBlocks [1.2.3.4], XFF 1.2.3.4"),
                &p("deny-ip-1234"),
                xff("1.2.3.4"),
                if ura {
                    Want::Same(200)
                } else {
                    Want::Differs {
                        envoy: 200,
                        meshguard: 403,
                        why: XFF_SOURCE,
                    }
                },
            ),
            // remoteIpBlocks: both read the address the connection manager derived.
            row(
                &tag("ALLOW remoteIpBlocks [1.2.3.4], XFF 1.2.3.4"),
                &p("allow-remote-1234"),
                xff("1.2.3.4"),
                Want::Same(if ura { 403 } else { 200 }),
            ),
            row(
                &tag("ALLOW remoteIpBlocks [1.2.3.4], no XFF"),
                &p("allow-remote-1234"),
                get(),
                Want::Same(403),
            ),
            row(
                &tag("DENY remoteIpBlocks [127.0.0.1], XFF 9.9.9.9"),
                &p("deny-remote-local"),
                xff("9.9.9.9"),
                Want::Same(if ura { 403 } else { 200 }),
            ),
            row(
                &tag("DENY remoteIpBlocks [127.0.0.1], no XFF"),
                &p("deny-remote-local"),
                get(),
                Want::Same(403),
            ),
        ]);
    }
    run(
        &stack,
        "ipBlocks / remoteIpBlocks vs X-Forwarded-For",
        &rows,
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Peer certificates

const SA_ALLOW: &str = "spiffe://cluster.local/ns/a/sa/allow";
const SA_DENY: &str = "spiffe://cluster.local/ns/a/sa/deny";

/// The meshguard listener's connection manager for mTLS: Envoy replaces any client-sent
/// X-Forwarded-Client-Cert with one element carrying the peer certificate (`Cert=`), which is
/// where meshguard reads the whole certificate on an Envoy without `connection.peer_certificate`.
fn xfcc_set() -> Value {
    json!({
        "forward_client_cert_details": "SANITIZE_SET",
        "set_current_client_cert_details": {"cert": true},
    })
}

/// Istio's sidecar setting: client-sent elements are kept, Envoy appends its own.
fn xfcc_append() -> Value {
    json!({
        "forward_client_cert_details": "APPEND_FORWARD",
        "set_current_client_cert_details": {"cert": true},
    })
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cert_pairs() -> Vec<Pair> {
    let from = |field: &str, v: &str| json!({"from": [{"source": {field: [v]}}]});
    let principal = |id: Value| vec![rbac::and_ids(vec![rbac::or_ids(vec![id])])];
    let any = || vec![rbac::any_permission()];
    let deny_sa = "cluster.local/ns/a/sa/deny";
    vec![
        pair(
            "deny-second",
            "DENY",
            from("principals", deny_sa),
            rbac_filter(
                "DENY",
                "deny-second",
                any(),
                principal(rbac::principal(deny_sa)),
            ),
        ),
        pair(
            "allow-second",
            "ALLOW",
            from("principals", deny_sa),
            rbac_filter(
                "ALLOW",
                "allow-second",
                any(),
                principal(rbac::principal(deny_sa)),
            ),
        ),
        pair(
            "allow-any",
            "ALLOW",
            from("principals", "*"),
            rbac_filter("ALLOW", "allow-any", any(), principal(rbac::principal("*"))),
        ),
        pair(
            "deny-any",
            "DENY",
            from("principals", "*"),
            rbac_filter("DENY", "deny-any", any(), principal(rbac::principal("*"))),
        ),
        pair(
            "allow-ns",
            "ALLOW",
            from("namespaces", "b"),
            rbac_filter("ALLOW", "allow-ns", any(), principal(rbac::namespace("b"))),
        ),
        pair(
            "deny-ns",
            "DENY",
            from("namespaces", "b"),
            rbac_filter("DENY", "deny-ns", any(), principal(rbac::namespace("b"))),
        ),
    ]
}

const FIRST_SAN_ONLY: &str = "no XFCC Cert= on the meshguard listener and Envoy < 1.40 has no \
connection.peer_certificate: meshguard sees only the first URI SAN and cannot rule out a \
matching later one, so the principal fails closed (a DENY matches, an ALLOW does not)";

#[test]
fn peer_certificates_with_several_or_no_uri_sans() {
    let certs = TempDir::new("pki").unwrap();
    let pki = Pki::new(certs.path()).unwrap();
    let pairs = cert_pairs();
    let stack = start(|p| {
        let mtls = config::downstream_mtls(&pki.server_cert, &pki.server_key, &pki.ca_file);
        let mut ls = pair_listeners(
            p,
            &pairs,
            &json!({}),
            &rbac::istio_hcm(false),
            &xfcc_set(),
            Some(&mtls),
        );
        for key in ["deny-second", "allow-second"] {
            let plugin = plugin(policy_of(&pairs, key), &json!({}));
            ls.push(mg_listener(
                p,
                &format!("mg-{key}-no-xfcc"),
                &plugin,
                &json!({}),
                Some(&mtls),
            ));
            ls.push(mg_listener(
                p,
                &format!("mg-{key}-append"),
                &plugin,
                &xfcc_append(),
                Some(&mtls),
            ));
        }
        ls
    });
    let two = pki
        .client_cert(&[SA_ALLOW, SA_DENY], &[], "workload")
        .unwrap();
    let only_allow = pki.client_cert(&[SA_ALLOW], &[], "workload").unwrap();
    let only_deny = pki.client(SA_DENY).unwrap();
    let dns_only = pki
        .client_with(&[], &["workload.example.com"], "workload")
        .unwrap();
    let subject_only = pki.client_with(&[], &[], "workload").unwrap();
    let ns_b_second = pki
        .client_with(
            &[
                "spiffe://cluster.local/ns/a/sa/x",
                "spiffe://cluster.local/ns/b/sa/y",
            ],
            &[],
            "workload",
        )
        .unwrap();
    let get = || Req::get("/peer");
    let full_cert = has_peer_certificate_property();
    // A client-sent XFCC element carrying the two-SAN certificate while the connection presents
    // the allow-only one (kept by APPEND_FORWARD, dropped by SANITIZE / SANITIZE_SET).
    let spoof = format!("Hash=00;Cert=\"{}\";URI={SA_DENY}", url_encode(&two.pem));
    // What Envoy hands meshguard's listener (SANITIZE_SET, `cert: true`): one XFCC element with
    // the connection's own certificate, whatever the client sent.
    let r = send_tls(
        stack.port("mg-allow-any"),
        only_allow.config.clone(),
        "localhost",
        &get().header("X-Forwarded-Client-Cert", &spoof),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.summary());
    let xfcc = r.echoed("x-forwarded-client-cert");
    assert_eq!(xfcc.len(), 1, "{xfcc:?}");
    let cert = xfcc[0]
        .split(';')
        .find_map(|kv| kv.strip_prefix("Cert=\"")?.strip_suffix('"'))
        .map(url_decode);
    assert_eq!(
        cert.as_deref(),
        Some(only_allow.pem.as_str()),
        "XFCC upstream of meshguard's listener: {xfcc:?}"
    );
    let two = two.config;
    let only_allow = only_allow.config;
    let rows = vec![
        row(
            "DENY principals [a/sa/deny], cert [allow, deny]",
            "deny-second",
            get(),
            Want::Same(403),
        )
        .cert(&two),
        row(
            "DENY principals [a/sa/deny], cert [deny]",
            "deny-second",
            get(),
            Want::Same(403),
        )
        .cert(&only_deny),
        row(
            "DENY principals [a/sa/deny], cert [allow]",
            "deny-second",
            get(),
            Want::Same(200),
        )
        .cert(&only_allow),
        row(
            "ALLOW principals [a/sa/deny], cert [allow, deny]",
            "allow-second",
            get(),
            Want::Same(200),
        )
        .cert(&two),
        row(
            "ALLOW principals [a/sa/deny], cert [deny]",
            "allow-second",
            get(),
            Want::Same(200),
        )
        .cert(&only_deny),
        row(
            "ALLOW principals [a/sa/deny], cert [allow]",
            "allow-second",
            get(),
            Want::Same(403),
        )
        .cert(&only_allow),
        row(
            "ALLOW principals [*], cert [allow, deny]",
            "allow-any",
            get(),
            Want::Same(200),
        )
        .cert(&two),
        row(
            "ALLOW principals [*], cert with only a DNS SAN",
            "allow-any",
            get(),
            Want::Same(200),
        )
        .cert(&dns_only),
        row(
            "ALLOW principals [*], cert with no SAN (subject only)",
            "allow-any",
            get(),
            Want::Same(200),
        )
        .cert(&subject_only),
        row(
            "DENY principals [*], cert with only a DNS SAN",
            "deny-any",
            get(),
            Want::Same(403),
        )
        .cert(&dns_only),
        row(
            "DENY principals [*], cert with no SAN (subject only)",
            "deny-any",
            get(),
            Want::Same(403),
        )
        .cert(&subject_only),
        row(
            "ALLOW namespaces [b], cert [ns/a/sa/x, ns/b/sa/y]",
            "allow-ns",
            get(),
            Want::Same(200),
        )
        .cert(&ns_b_second),
        row(
            "ALLOW namespaces [b], cert [allow, deny] (ns a)",
            "allow-ns",
            get(),
            Want::Same(403),
        )
        .cert(&two),
        row(
            "DENY namespaces [b], cert [ns/a/sa/x, ns/b/sa/y]",
            "deny-ns",
            get(),
            Want::Same(403),
        )
        .cert(&ns_b_second),
        row(
            "DENY namespaces [b], cert [allow, deny] (ns a)",
            "deny-ns",
            get(),
            Want::Same(200),
        )
        .cert(&two),
        // Without the XFCC Cert= on meshguard's listener.
        row(
            "no XFCC: DENY principals [a/sa/deny], cert [allow, deny]",
            "deny-second",
            get(),
            Want::Same(403),
        )
        .mg("mg-deny-second-no-xfcc")
        .cert(&two),
        row(
            "no XFCC: ALLOW principals [a/sa/deny], cert [allow, deny]",
            "allow-second",
            get(),
            if full_cert {
                Want::Same(200)
            } else {
                Want::Differs {
                    envoy: 200,
                    meshguard: 403,
                    why: FIRST_SAN_ONLY,
                }
            },
        )
        .mg("mg-allow-second-no-xfcc")
        .cert(&two),
        row(
            "no XFCC: DENY principals [a/sa/deny], cert [allow]",
            "deny-second",
            get(),
            if full_cert {
                Want::Same(200)
            } else {
                Want::Differs {
                    envoy: 200,
                    meshguard: 403,
                    why: FIRST_SAN_ONLY,
                }
            },
        )
        .mg("mg-deny-second-no-xfcc")
        .cert(&only_allow),
        row(
            "no XFCC: ALLOW principals [a/sa/deny], cert [deny]",
            "allow-second",
            get(),
            Want::Same(200),
        )
        .mg("mg-allow-second-no-xfcc")
        .cert(&only_deny),
        // A client-sent XFCC element with another certificate changes nothing.
        row(
            "spoofed XFCC Cert=[allow, deny], SANITIZE_SET: ALLOW [a/sa/deny], cert [allow]",
            "allow-second",
            get().header("X-Forwarded-Client-Cert", &spoof),
            Want::Same(403),
        )
        .cert(&only_allow),
        row(
            "spoofed XFCC Cert=[allow, deny], APPEND_FORWARD: ALLOW [a/sa/deny], cert [allow]",
            "allow-second",
            get().header("X-Forwarded-Client-Cert", &spoof),
            Want::Same(403),
        )
        .mg("mg-allow-second-append")
        .cert(&only_allow),
        row(
            "spoofed XFCC Cert=[allow, deny], APPEND_FORWARD: DENY [a/sa/deny], cert [allow]",
            "deny-second",
            get().header("X-Forwarded-Client-Cert", &spoof),
            Want::Same(200),
        )
        .mg("mg-deny-second-append")
        .cert(&only_allow),
        row(
            "APPEND_FORWARD: DENY principals [a/sa/deny], cert [allow, deny]",
            "deny-second",
            get(),
            Want::Same(403),
        )
        .mg("mg-deny-second-append")
        .cert(&two),
    ];
    run(&stack, "peer certificates", &rows);
}

// ---------------------------------------------------------------------------------------------
// 3. CORS preflight

#[test]
fn cors_preflight_skips_authentication() {
    let pairs = vec![
        Pair {
            key: "none",
            policy: None,
            rbac: None,
        },
        pair(
            "allow-jwt",
            "ALLOW",
            json!({"from": [{"source": {"requestPrincipals": ["*"]}}]}),
            rbac_filter(
                "ALLOW",
                "allow-jwt",
                vec![rbac::any_permission()],
                vec![rbac::and_ids(vec![rbac::or_ids(vec![
                    rbac::request_principal_any(),
                ])])],
            ),
        ),
    ];
    let stack = start(|p| {
        pair_listeners(
            p,
            &pairs,
            &json!({}),
            &rbac::istio_hcm(false),
            &json!({}),
            None,
        )
    });
    let good = stack.idp.mint(&TokenSpec::default().aud(AUD)).unwrap();
    let bad = stack
        .idp
        .mint(&TokenSpec::default().aud(AUD).tamper())
        .unwrap();
    let options = || Req::new("OPTIONS", "/api");
    let preflight = || {
        options()
            .header("Origin", "https://app.example.com")
            .header("Access-Control-Request-Method", "GET")
    };
    let rows = vec![
        row(
            "no policy: preflight, bad token",
            "none",
            preflight().bearer(&bad),
            Want::Same(200),
        ),
        row(
            "no policy: preflight, good token",
            "none",
            preflight().bearer(&good),
            Want::Same(200),
        ),
        row(
            "no policy: OPTIONS with Origin, no ACRM, bad token",
            "none",
            options()
                .header("Origin", "https://app.example.com")
                .bearer(&bad),
            Want::Same(401),
        ),
        row(
            "no policy: OPTIONS with ACRM, no Origin, bad token",
            "none",
            options()
                .header("Access-Control-Request-Method", "GET")
                .bearer(&bad),
            Want::Same(401),
        ),
        row(
            "no policy: GET with Origin and ACRM, bad token",
            "none",
            Req::get("/api")
                .header("Origin", "https://app.example.com")
                .header("Access-Control-Request-Method", "GET")
                .bearer(&bad),
            Want::Same(401),
        ),
        row(
            "ALLOW requestPrincipals [*]: preflight, bad token",
            "allow-jwt",
            preflight().bearer(&bad),
            Want::Same(403),
        ),
        row(
            "ALLOW requestPrincipals [*]: preflight, good token (ignored)",
            "allow-jwt",
            preflight().bearer(&good),
            Want::Same(403),
        ),
        row(
            "ALLOW requestPrincipals [*]: preflight, no token",
            "allow-jwt",
            preflight(),
            Want::Same(403),
        ),
        row(
            "ALLOW requestPrincipals [*]: OPTIONS (not preflight), good token",
            "allow-jwt",
            options()
                .header("Origin", "https://app.example.com")
                .bearer(&good),
            Want::Same(200),
        ),
        row(
            "ALLOW requestPrincipals [*]: OPTIONS (not preflight), bad token",
            "allow-jwt",
            options()
                .header("Origin", "https://app.example.com")
                .bearer(&bad),
            Want::Same(401),
        ),
        row(
            "ALLOW requestPrincipals [*]: GET, good token",
            "allow-jwt",
            Req::get("/api").bearer(&good),
            Want::Same(200),
        ),
        row(
            "ALLOW requestPrincipals [*]: GET, no token",
            "allow-jwt",
            Req::get("/api"),
            Want::Same(403),
        ),
    ];
    run(&stack, "CORS preflight", &rows);
}

// ---------------------------------------------------------------------------------------------
// 4. hosts

fn host_pairs() -> Vec<Pair> {
    let hosts = || rbac::or_rules(vec![rbac::host("google.com")]);
    vec![
        pair(
            "allow-host",
            "ALLOW",
            json!({"to": [{"operation": {"hosts": ["google.com"]}}]}),
            rbac_filter(
                "ALLOW",
                "allow-host",
                vec![rbac::and_rules(vec![hosts()])],
                vec![rbac::any_principal()],
            ),
        ),
        pair(
            "deny-not-host",
            "DENY",
            json!({"to": [{"operation": {"notHosts": ["google.com"]}}]}),
            rbac_filter(
                "DENY",
                "deny-not-host",
                vec![rbac::and_rules(vec![rbac::not_rule(hosts())])],
                vec![rbac::any_principal()],
            ),
        ),
    ]
}

#[test]
fn hosts_match_the_authority_with_its_port() {
    let pairs = host_pairs();
    let stack = start(|p| {
        pair_listeners(
            p,
            &pairs,
            &json!({}),
            &rbac::istio_hcm(false),
            &json!({}),
            None,
        )
    });
    let at = |host: &str| Req::get("/").host(host);
    let mut rows = Vec::new();
    for (key, policy) in [
        ("allow-host", "ALLOW hosts [google.com]"),
        ("deny-not-host", "DENY notHosts [google.com]"),
    ] {
        rows.extend([
            row(
                &format!("{policy}: Host google.com"),
                key,
                at("google.com"),
                Want::Same(200),
            ),
            row(
                &format!("{policy}: Host google.com:8080"),
                key,
                at("google.com:8080"),
                Want::Same(403),
            ),
            row(
                &format!("{policy}: Host GOOGLE.COM"),
                key,
                at("GOOGLE.COM"),
                Want::Same(200),
            ),
            row(
                &format!("{policy}: Host other.com"),
                key,
                at("other.com"),
                Want::Same(403),
            ),
        ]);
    }
    run(&stack, "hosts", &rows);
}

// ---------------------------------------------------------------------------------------------
// 5. paths

#[test]
fn paths_under_istio_default_normalisation() {
    let policy = json!({"to": [{"operation": {"paths": ["/v1"]}}]});
    let rbac_allow = |name: &str| {
        rbac_filter(
            "ALLOW",
            name,
            vec![rbac::and_rules(vec![rbac::or_rules(vec![rbac::path(
                "/v1",
            )])])],
            vec![rbac::any_principal()],
        )
    };
    let pairs = vec![pair(
        "allow-v1",
        "ALLOW",
        policy.clone(),
        rbac_allow("allow-v1"),
    )];
    let merge = vec![pair(
        "allow-v1-merge",
        "ALLOW",
        policy,
        rbac_allow("allow-v1-merge"),
    )];
    let stack = start(|p| {
        let mut ls = pair_listeners(
            p,
            &pairs,
            &json!({}),
            &rbac::istio_hcm(false),
            &json!({}),
            None,
        );
        // Istio's meshConfig.pathNormalization MERGE_SLASHES next to meshguard's.
        let mut merge_hcm = rbac::istio_hcm(false);
        merge_hcm["merge_slashes"] = json!(true);
        ls.extend(pair_listeners(
            p,
            &merge,
            &json!({"pathNormalization": "MERGE_SLASHES"}),
            &merge_hcm,
            &json!({}),
            None,
        ));
        ls
    });
    let mut rows = Vec::new();
    for (path, want) in [
        ("/v1", 200),
        ("//v1", 403),
        ("/v1/../v1", 200),
        ("/./v1", 200),
        ("/v1?x=1", 200),
        ("/V1", 403),
        ("/v1/", 403),
        ("/%76%31", 200),
    ] {
        rows.push(row(
            &format!("BASE: ALLOW paths [/v1]: {path}"),
            "allow-v1",
            Req::get(path),
            Want::Same(want),
        ));
    }
    for (path, want) in [("//v1", 200), ("/v1//", 403), ("//v1/../v1", 200)] {
        rows.push(row(
            &format!("MERGE_SLASHES: ALLOW paths [/v1]: {path}"),
            "allow-v1-merge",
            Req::get(path),
            Want::Same(want),
        ));
    }
    run(&stack, "paths", &rows);
}

// ---------------------------------------------------------------------------------------------
// 6. Trust-domain aliases

#[test]
fn trust_domain_aliases_expand_principals() {
    let certs = TempDir::new("pki").unwrap();
    let pki = Pki::new(certs.path()).unwrap();
    let settings = json!({"trustDomain": "td1", "trustDomainAliases": ["cluster.local"]});
    let domains = ["td1", "cluster.local"];
    let value = "cluster.local/ns/a/sa/x";
    let principal = || {
        vec![rbac::and_ids(vec![rbac::or_ids(
            rbac::principal_with_aliases(value, &domains),
        )])]
    };
    let from = json!({"from": [{"source": {"principals": [value]}}]});
    let pairs = vec![
        pair(
            "allow-td",
            "ALLOW",
            from.clone(),
            rbac_filter(
                "ALLOW",
                "allow-td",
                vec![rbac::any_permission()],
                principal(),
            ),
        ),
        pair(
            "deny-td",
            "DENY",
            from,
            rbac_filter("DENY", "deny-td", vec![rbac::any_permission()], principal()),
        ),
    ];
    let stack = start(|p| {
        let mtls = config::downstream_mtls(&pki.server_cert, &pki.server_key, &pki.ca_file);
        pair_listeners(
            p,
            &pairs,
            &settings,
            &rbac::istio_hcm(false),
            &xfcc_set(),
            Some(&mtls),
        )
    });
    let td1 = pki.client("spiffe://td1/ns/a/sa/x").unwrap();
    let local = pki.client("spiffe://cluster.local/ns/a/sa/x").unwrap();
    let other_td = pki.client("spiffe://other.td/ns/a/sa/x").unwrap();
    let other_sa = pki.client("spiffe://td1/ns/a/sa/y").unwrap();
    let get = || Req::get("/td");
    let mut rows = Vec::new();
    for (key, action, yes, no) in [
        ("allow-td", "ALLOW", 200, 403),
        ("deny-td", "DENY", 403, 200),
    ] {
        let case = |cert: &str| format!("{action} principals [{value}], cert {cert}");
        rows.extend([
            row(&case("spiffe://td1/ns/a/sa/x"), key, get(), Want::Same(yes)).cert(&td1),
            row(
                &case("spiffe://cluster.local/ns/a/sa/x"),
                key,
                get(),
                Want::Same(yes),
            )
            .cert(&local),
            row(
                &case("spiffe://other.td/ns/a/sa/x"),
                key,
                get(),
                Want::Same(no),
            )
            .cert(&other_td),
            row(&case("spiffe://td1/ns/a/sa/y"), key, get(), Want::Same(no)).cert(&other_sa),
        ]);
    }
    run(&stack, "trust-domain aliases", &rows);
}

// ---------------------------------------------------------------------------------------------
// meshguard's opt-in departures from Istio (each off by default)

#[test]
fn opt_in_settings_depart_from_istio_as_documented() {
    let hosts = host_pairs();
    let stack = start(|p| {
        let mut ls = pair_listeners(
            p,
            &hosts[..1],
            &json!({}),
            &rbac::istio_hcm(false),
            &json!({}),
            None,
        );
        ls.push(mg_listener(
            p,
            "mg-allow-host-ignore-port",
            &plugin(
                policy_of(&hosts, "allow-host"),
                &json!({"hostsIgnorePort": true}),
            ),
            &json!({}),
            None,
        ));
        ls.push(rbac_listener(
            "rbac-none",
            None,
            &rbac::istio_hcm(false),
            None,
        ));
        ls.push(mg_listener(
            p,
            "mg-none-no-bypass",
            &plugin(&[], &json!({"bypassCorsPreflight": false})),
            &json!({}),
            None,
        ));
        ls
    });
    let bad = stack
        .idp
        .mint(&TokenSpec::default().aud(AUD).tamper())
        .unwrap();
    let rows = vec![
        row(
            "hostsIgnorePort: ALLOW hosts [google.com]: Host google.com:8080",
            "allow-host",
            Req::get("/").host("google.com:8080"),
            Want::Differs {
                envoy: 403,
                meshguard: 200,
                why: "hostsIgnorePort: true matches hosts with the :port removed",
            },
        )
        .mg("mg-allow-host-ignore-port"),
        row(
            "hostsIgnorePort: ALLOW hosts [google.com]: Host google.com",
            "allow-host",
            Req::get("/").host("google.com"),
            Want::Same(200),
        )
        .mg("mg-allow-host-ignore-port"),
        row(
            "hostsIgnorePort: ALLOW hosts [google.com]: Host google.org:8080",
            "allow-host",
            Req::get("/").host("google.org:8080"),
            Want::Same(403),
        )
        .mg("mg-allow-host-ignore-port"),
        row(
            "bypassCorsPreflight false: preflight, bad token",
            "none",
            Req::new("OPTIONS", "/api")
                .header("Origin", "https://app.example.com")
                .header("Access-Control-Request-Method", "GET")
                .bearer(&bad),
            Want::Differs {
                envoy: 200,
                meshguard: 401,
                why: "bypassCorsPreflight: false verifies the token of a preflight too",
            },
        )
        .mg("mg-none-no-bypass"),
    ];
    run(&stack, "opt-in settings", &rows);
}
