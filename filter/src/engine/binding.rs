//! Sender-constrained tokens in the request path: after authentication (fresh or from the
//! verified-token cache, so a cached token is checked against every request's connection and
//! proof), before the token is removed and the claim headers are written.
//!
//! Certificate-bound tokens (RFC 8705 §3): the client certificate's SHA-256 is read once per
//! request and only when some token is bound. It is Envoy's
//! `connection.sha256_peer_certificate_digest`, or with `trustXfcc` the `Hash=` of the trusted
//! `x-forwarded-client-cert` element (the connection is then the proxy's and is ignored, as for
//! the peer identity of the policies).
//!
//! DPoP-bound tokens (RFC 9449): for a token under the `DPoP` scheme the one `DPoP` header is
//! read, checked against the request's method and URI and the token (`crate::dpop`), and its
//! `jti` recorded in the process-wide replay cache (proxy shared data) last.
//!
//! A request whose tokens carry no `cnf` under rules that require no binding makes no host
//! call here.

use std::cell::OnceCell;

use super::auth::{Subject, Verified};
use super::host::{Host, HostStore};
use crate::binding::{self, BindingError, Bindings, Presentation, Required};
use crate::config::CompiledConfig;
use crate::dpop::{self, DpopRule, RequestFacts};
use crate::extract::Found;
use crate::jose::{ProofError, ProofKeys};
use crate::output::Denial;
use crate::policy::xfcc_hash;

/// Checks the bindings of every verified token; the first refusal, with who it is about for
/// the log line. On success, the bindings of the first token (the request principal, whose
/// bindings the policies see as `request.auth.binding`). `now` is host seconds; `writer` this
/// VM's nonce (the replay cache's writer tag); `keys` the VM's recent proof keys.
pub(super) fn check<H: Host>(
    host: &H,
    config: &CompiledConfig,
    found: &[Found],
    verified: &[Verified],
    now: u64,
    writer: u64,
    keys: &mut ProofKeys,
) -> Result<Bindings, (Denial, Subject)> {
    let certificate: OnceCell<Option<String>> = OnceCell::new();
    let mut context = ProofCheck { now, writer, keys };
    let mut principal = Bindings::NONE;
    for (i, v) in verified.iter().enumerate() {
        let rule = config.rules.get(v.rule);
        let dpop_rule = rule.and_then(|r| r.dpop.as_ref());
        let required = Required {
            certificate: rule.is_some_and(|r| r.require_certificate_binding),
            dpop: dpop_rule.is_some_and(|d| d.required),
        };
        let candidate = found.get(v.found);
        let presentation = match candidate {
            Some(f) if config.presents_dpop(f.source) => Presentation::Dpop,
            _ => Presentation::Bearer,
        };
        let checked = binding::check(
            &v.claims,
            required,
            presentation,
            || {
                certificate
                    .get_or_init(|| presented_certificate(host, config))
                    .as_deref()
            },
            |jkt| match (dpop_rule, candidate) {
                (Some(rule), Some(candidate)) => {
                    check_proof(host, config, rule, &candidate.token, jkt, &mut context)
                }
                // A DPoP presentation is only read for rules with `dpop`.
                _ => Err(BindingError::NotDpopBound),
            },
        );
        match checked {
            Ok(bindings) if i == 0 => principal = bindings,
            Ok(_) => {}
            Err(error) => {
                let subject = Subject {
                    rule: Some(v.rule),
                    issuer: Some(v.claims.issuer().to_owned()),
                    kid: v.claims.kid().map(str::to_owned),
                    sub: v.claims.subject().map(str::to_owned),
                };
                return Err((Denial::Binding(error), subject));
            }
        }
    }
    Ok(principal)
}

/// What checking a request's proofs needs besides the request: its time (host seconds), this
/// VM's replay-cache writer tag, and the VM's remembered proof keys.
struct ProofCheck<'k> {
    now: u64,
    writer: u64,
    keys: &'k mut ProofKeys,
}

/// The request's one `DPoP` proof, checked for `access_token` bound to `jkt`, then recorded;
/// its key is remembered once everything passed.
fn check_proof<H: Host>(
    host: &H,
    config: &CompiledConfig,
    rule: &DpopRule,
    access_token: &str,
    jkt: &[u8; 32],
    context: &mut ProofCheck<'_>,
) -> Result<(), BindingError> {
    let mut proofs = host
        .request_header_pairs()
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("dpop"));
    let (Some((_, proof)), None) = (proofs.next(), proofs.next()) else {
        return Err(BindingError::Proof(
            if host.request_header("dpop").is_some() {
                ProofError::Repeated
            } else {
                ProofError::Missing
            },
        ));
    };
    let proof = std::str::from_utf8(&proof)
        .map_err(|_| BindingError::Proof(ProofError::Malformed))?
        .trim_matches([' ', '\t']);
    let method = host.request_header(":method").unwrap_or_default();
    let scheme = host.request_header(":scheme").unwrap_or_default();
    let authority = host.request_header(":authority").unwrap_or_default();
    let path = host.request_header(":path").unwrap_or_default();
    let request = RequestFacts {
        method: &method,
        scheme: &scheme,
        authority: &authority,
        path: &path,
        now: context.now,
    };
    let checked = dpop::check_proof(
        proof,
        rule,
        &config.token_limits,
        &request,
        access_token,
        jkt,
        context.keys,
    )?;
    let Some(replay) = &config.dpop_replay else {
        return Err(BindingError::Proof(ProofError::ReplayCheck));
    };
    replay
        .record(
            &mut HostStore(host),
            dpop::replay_entry(&checked, rule),
            context.now,
            context.writer,
        )
        .map_err(BindingError::Proof)?;
    context.keys.remember(&checked);
    Ok(())
}

/// The hex SHA-256 of the request's client certificate; `None` without one.
fn presented_certificate<H: Host>(host: &H, config: &CompiledConfig) -> Option<String> {
    match &config.policies.options().forwarded_client_cert {
        None => host
            .property(&["connection", "sha256_peer_certificate_digest"])
            .and_then(|digest| String::from_utf8(digest).ok())
            .filter(|digest| !digest.is_empty()),
        Some(trusted) => {
            // Every value, joined, as the policies read the header: the trusted element is
            // counted from the right of all of them.
            let values: Vec<String> = host
                .request_header_pairs()
                .into_iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case("x-forwarded-client-cert"))
                .filter_map(|(_, value)| String::from_utf8(value).ok())
                .collect();
            if values.is_empty() {
                return None;
            }
            xfcc_hash(&values.join(","), trusted.trusted_hop).map(str::to_owned)
        }
    }
}

#[cfg(test)]
mod tests {
    //! The engine with the fake host: the connection's certificate digest (or a trusted XFCC
    //! `Hash=`) against the token's `cnf.x5t#S256`.

    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;

    use meshguard_test_support as support;
    use serde_json::{Value, json};

    use super::super::testing::{FakeHost, ROOT_IDS};
    use super::super::{Decided, Engine};

    const ISSUER: &str = "https://idp.example";
    /// Two client certificates' SHA-256 (the values are arbitrary: only the digests matter).
    const CERT_A: [u8; 32] = [0xa1; 32];
    const CERT_B: [u8; 32] = [0xb2; 32];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn bound_to(cert: &[u8]) -> Value {
        json!({"x5t#S256": support::b64(cert)})
    }

    fn token(cnf: Option<Value>) -> String {
        let mut claims = json!({"iss": ISSUER, "sub": "alice", "exp": support::NOW + 3600});
        if let Some(cnf) = cnf {
            claims["cnf"] = cnf;
        }
        support::token("ES256", &claims)
    }

    /// One inline-keys rule (`extra` added to it) and top-level `top`.
    fn engine(host: &FakeHost, extra: &str, top: &str) -> Engine {
        let jwks = Value::String(support::jwks().to_string());
        let config = format!(
            r#"{{"jwtRules":[{{"issuer":"{ISSUER}","jwks":{jwks},"outputClaimToHeaders":[{{"header":"x-sub","claim":"sub"}}]{extra}}}]{top}}}"#
        );
        host.set_current(ROOT_IDS);
        Engine::configure(host, config.as_bytes()).expect("configuration")
    }

    /// Sends request `id` with `token`, over a connection whose client certificate has SHA-256
    /// `cert` (none: no client certificate) and the extra `headers`.
    fn send(
        host: &FakeHost,
        engine: &Engine,
        id: u32,
        token: &str,
        cert: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Decided {
        send_to(host, engine, id, "/", Some(token), cert, headers)
    }

    /// [`send`] to `path`, with or without a token.
    fn send_to(
        host: &FakeHost,
        engine: &Engine,
        id: u32,
        path: &str,
        token: Option<&str>,
        cert: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Decided {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut all = vec![
            (":scheme", "https"),
            (":authority", "api"),
            (":path", path),
            (":method", "GET"),
        ];
        if let Some(auth) = &auth {
            all.push(("authorization", auth.as_str()));
        }
        all.extend_from_slice(headers);
        host.request(id, &all);
        if let Some(cert) = cert {
            let mut requests = host.requests.borrow_mut();
            let request = requests.get_mut(&id).unwrap();
            request
                .properties
                .insert("connection.mtls".to_owned(), vec![1]);
            request.properties.insert(
                "connection.sha256_peer_certificate_digest".to_owned(),
                hex(cert).into_bytes(),
            );
        }
        host.log.borrow_mut().clear();
        engine.on_request_headers(host, id)
    }

    fn fake() -> FakeHost {
        FakeHost::new(Rc::new(RefCell::new(HashMap::new())))
    }

    /// The 401's `error_description` and body, and the reason counter.
    fn assert_refused(host: &FakeHost, id: u32, description: &str, reason: &str) {
        let request = host.get(id);
        let (status, headers, body) = request.response.clone().expect("a local response");
        assert_eq!(status, 401, "{description}");
        let challenge = headers
            .iter()
            .find(|(n, _)| n == "www-authenticate")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer realm=\"https://api/\", error=\"invalid_token\""),
            "{challenge}"
        );
        assert!(
            challenge.ends_with(&format!("error_description=\"{description}\"")),
            "{challenge}"
        );
        assert_eq!(String::from_utf8_lossy(&body), description);
        assert!(
            host.counter(&format!("meshguard.denied.{reason}")) >= 1,
            "meshguard.denied.{reason}"
        );
        // Refused before the token is removed or a claim header written.
        assert!(request.header("authorization").is_some());
        assert_eq!(request.header("x-sub"), None);
    }

    #[test]
    fn the_right_certificate_goes_on() {
        let host = fake();
        let engine = engine(&host, "", "");
        let bound = token(Some(bound_to(&CERT_A)));
        assert_eq!(
            send(&host, &engine, 1, &bound, Some(&CERT_A), &[]),
            Decided::Continue
        );
        let r = host.get(1);
        assert_eq!(r.status(), None);
        assert_eq!(r.header("x-sub"), Some(&b"alice"[..]));
        assert_eq!(r.header("authorization"), None);
        // Envoy's digest is lower-case hex; upper case is the same digest.
        let upper = hex(&CERT_A).to_ascii_uppercase();
        host.request(
            2,
            &[
                (":path", "/"),
                ("authorization", &format!("Bearer {bound}")),
            ],
        );
        host.requests
            .borrow_mut()
            .get_mut(&2)
            .unwrap()
            .properties
            .insert(
                "connection.sha256_peer_certificate_digest".to_owned(),
                upper.into_bytes(),
            );
        assert_eq!(engine.on_request_headers(&host, 2), Decided::Continue);
    }

    #[test]
    fn another_certificate_is_401() {
        let host = fake();
        let engine = engine(&host, "", "");
        let bound = token(Some(bound_to(&CERT_A)));
        assert_eq!(
            send(&host, &engine, 1, &bound, Some(&CERT_B), &[]),
            Decided::Answered
        );
        assert_refused(
            &host,
            1,
            "certificate-bound token presented by another client certificate",
            "cnf_other_certificate",
        );
        assert_eq!(
            host.counter(&format!("meshguard.jwt.{}.denied", "https___idp_example")),
            1
        );
    }

    #[test]
    fn no_certificate_is_401() {
        let host = fake();
        let engine = engine(&host, "", "");
        let bound = token(Some(bound_to(&CERT_A)));
        assert_eq!(
            send(&host, &engine, 1, &bound, None, &[]),
            Decided::Answered
        );
        assert_refused(
            &host,
            1,
            "certificate-bound token presented without a client certificate",
            "cnf_no_certificate",
        );
    }

    #[test]
    fn an_unbound_token_is_401_where_the_rule_requires_a_binding() {
        let host = fake();
        let engine = engine(&host, r#","requireCertificateBinding":true"#, "");
        let unbound = token(None);
        assert_eq!(
            send(&host, &engine, 1, &unbound, Some(&CERT_A), &[]),
            Decided::Answered
        );
        assert_refused(&host, 1, "token is not certificate-bound", "cnf_not_bound");
        // A cnf without x5t#S256 (a DPoP jkt) is not a certificate binding either (and is
        // refused as DPoP-bound first).
        let jkt = token(Some(json!({"jkt": JKT})));
        assert_eq!(
            send(&host, &engine, 2, &jkt, Some(&CERT_A), &[]),
            Decided::Answered
        );
        assert_refused(&host, 2, DPOP_AS_BEARER, "cnf_dpop_as_bearer");
        // The bound token still goes on.
        let bound = token(Some(bound_to(&CERT_A)));
        assert_eq!(
            send(&host, &engine, 3, &bound, Some(&CERT_A), &[]),
            Decided::Continue
        );
    }

    /// RFC 7638's example thumbprint (the `cnf.jkt` of a DPoP-bound token).
    const JKT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    const DPOP_AS_BEARER: &str = "DPoP-bound token presented as a bearer token";

    #[test]
    fn a_dpop_bound_token_as_bearer_is_401() {
        // RFC 9449 §7.2: a DPoP-bound token as a bearer token is refused under every rule, with
        // `dpop` or without, certificate-bound or not.
        let host = fake();
        let engine = engine(&host, "", "");
        let jkt = token(Some(json!({"jkt": JKT})));
        assert_eq!(
            send(&host, &engine, 1, &jkt, Some(&CERT_A), &[]),
            Decided::Answered
        );
        assert_refused(&host, 1, DPOP_AS_BEARER, "cnf_dpop_as_bearer");
        assert_eq!(send(&host, &engine, 2, &jkt, None, &[]), Decided::Answered);
        assert_refused(&host, 2, DPOP_AS_BEARER, "cnf_dpop_as_bearer");
        // Also bound to the presenting certificate: still DPoP-bound, still refused.
        let both = token(Some(json!({"jkt": JKT, "x5t#S256": support::b64(CERT_A)})));
        assert_eq!(
            send(&host, &engine, 3, &both, Some(&CERT_A), &[]),
            Decided::Answered
        );
        assert_refused(&host, 3, DPOP_AS_BEARER, "cnf_dpop_as_bearer");
        assert_eq!(host.counter("meshguard.denied.cnf_dpop_as_bearer"), 3);
        // A cnf with neither member is no binding: the token goes on.
        let other = token(Some(json!({"kid": "k1"})));
        assert_eq!(
            send(&host, &engine, 4, &other, Some(&CERT_A), &[]),
            Decided::Continue
        );
    }

    #[test]
    fn policies_see_the_checked_binding() {
        // A DENY rule refusing unbound tokens on /admin only (request.auth.binding).
        let host = fake();
        let policies = r#","policies":[{"name":"bound-admin","action":"DENY","rules":[{"to":[{"operation":{"paths":["/admin/*"]}}],"when":[{"key":"request.auth.binding","notValues":["x5t#S256"]}]}]}]"#;
        let engine = engine(&host, "", policies);
        let bound = token(Some(bound_to(&CERT_A)));
        let unbound = token(None);
        let admin = "/admin/users";
        // Bound and presented over its certificate (fresh, then a cache hit): goes on.
        for id in [1, 2] {
            assert_eq!(
                send_to(&host, &engine, id, admin, Some(&bound), Some(&CERT_A), &[]),
                Decided::Continue
            );
            assert_eq!(host.get(id).header("x-sub"), Some(&b"alice"[..]));
        }
        // Unbound, with or without a client certificate, and no token at all: 403.
        for (id, token, cert) in [
            (3, Some(unbound.as_str()), Some(&CERT_A[..])),
            (4, Some(unbound.as_str()), None),
            (5, None, Some(&CERT_A[..])),
        ] {
            assert_eq!(
                send_to(&host, &engine, id, admin, token, cert, &[]),
                Decided::Answered
            );
            assert_eq!(host.get(id).status(), Some(403), "request {id}");
        }
        assert_eq!(host.counter("meshguard.policy.bound-admin.denied"), 3);
        // The bound token from another certificate is refused before the policies (401).
        assert_eq!(
            send_to(&host, &engine, 6, admin, Some(&bound), Some(&CERT_B), &[]),
            Decided::Answered
        );
        assert_eq!(host.get(6).status(), Some(401));
        assert_eq!(host.counter("meshguard.denied.cnf_other_certificate"), 1);
        assert_eq!(host.counter("meshguard.policy.bound-admin.denied"), 3);
        // Another path: the rule does not apply, bound or not.
        for (id, token) in [(7, Some(bound.as_str())), (8, Some(&unbound)), (9, None)] {
            assert_eq!(
                send_to(&host, &engine, id, "/public", token, Some(&CERT_A), &[]),
                Decided::Continue,
                "request {id}"
            );
        }
    }

    #[test]
    fn a_cached_token_from_another_certificate_is_401() {
        let host = fake();
        let engine = engine(&host, "", "");
        let bound = token(Some(bound_to(&CERT_A)));
        assert_eq!(
            send(&host, &engine, 1, &bound, Some(&CERT_A), &[]),
            Decided::Continue
        );
        assert_eq!(
            send(&host, &engine, 2, &bound, Some(&CERT_B), &[]),
            Decided::Answered
        );
        assert_refused(
            &host,
            2,
            "certificate-bound token presented by another client certificate",
            "cnf_other_certificate",
        );
        assert_eq!(
            send(&host, &engine, 3, &bound, None, &[]),
            Decided::Answered
        );
        assert_eq!(
            send(&host, &engine, 4, &bound, Some(&CERT_A), &[]),
            Decided::Continue
        );
        // Requests 2–4 were cache hits (the counters are flushed on the tick).
        host.set_current(ROOT_IDS);
        engine.on_tick(&host, ROOT_IDS);
        assert_eq!(host.counter("meshguard.cache.hit"), 3);
    }

    #[test]
    fn a_malformed_cnf_is_401() {
        let host = fake();
        let engine = engine(&host, "", "");
        let not_object = token(Some(json!(support::b64(CERT_A))));
        assert_eq!(
            send(&host, &engine, 1, &not_object, Some(&CERT_A), &[]),
            Decided::Answered
        );
        assert_refused(
            &host,
            1,
            "Jwt cnf claim is not a JSON object",
            "cnf_malformed",
        );
        for (id, x5t) in [
            (2, json!(hex(&CERT_A))),
            (3, json!(support::b64(&CERT_A[..31]))),
            (4, json!(format!("{}=", support::b64(CERT_A)))),
            (5, json!(7)),
        ] {
            let bad = token(Some(json!({"x5t#S256": x5t})));
            assert_eq!(
                send(&host, &engine, id, &bad, Some(&CERT_A), &[]),
                Decided::Answered
            );
            assert_refused(
                &host,
                id,
                "Jwt cnf x5t#S256 is not a base64url SHA-256 certificate thumbprint",
                "cnf_malformed",
            );
        }
        assert_eq!(host.counter("meshguard.denied.cnf_malformed"), 5);
    }

    #[test]
    fn behind_a_trusted_proxy_the_xfcc_hash_decides() {
        let host = fake();
        let engine = engine(&host, "", r#","trustXfcc":true"#);
        let bound = token(Some(bound_to(&CERT_A)));
        let element = |cert: &[u8]| {
            format!(
                r#"By=spiffe://td/ns/gw/sa/gw;Hash={};Subject="CN=client";URI=spiffe://td/ns/a/sa/client"#,
                hex(cert)
            )
        };
        // The connection is the proxy's (CERT_B): ignored; the trusted element names CERT_A.
        let right = element(&CERT_A);
        assert_eq!(
            send(
                &host,
                &engine,
                1,
                &bound,
                Some(&CERT_B),
                &[("x-forwarded-client-cert", &right)]
            ),
            Decided::Continue
        );
        let other = element(&CERT_B);
        assert_eq!(
            send(
                &host,
                &engine,
                2,
                &bound,
                Some(&CERT_A),
                &[("x-forwarded-client-cert", &other)]
            ),
            Decided::Answered
        );
        assert_refused(
            &host,
            2,
            "certificate-bound token presented by another client certificate",
            "cnf_other_certificate",
        );
        // Only the element the proxy appended (rightmost) is trusted: a client-written one
        // further left does not count.
        let spoofed = format!("{right},{other}");
        assert_eq!(
            send(
                &host,
                &engine,
                3,
                &bound,
                Some(&CERT_A),
                &[("x-forwarded-client-cert", &spoofed)]
            ),
            Decided::Answered
        );
        // No header, or an element without Hash=: no client certificate.
        assert_eq!(
            send(&host, &engine, 4, &bound, Some(&CERT_A), &[]),
            Decided::Answered
        );
        assert_refused(
            &host,
            4,
            "certificate-bound token presented without a client certificate",
            "cnf_no_certificate",
        );
        let no_hash = "By=spiffe://td/ns/gw/sa/gw;URI=spiffe://td/ns/a/sa/client";
        assert_eq!(
            send(
                &host,
                &engine,
                5,
                &bound,
                Some(&CERT_A),
                &[("x-forwarded-client-cert", no_hash)]
            ),
            Decided::Answered
        );
        assert_refused(
            &host,
            5,
            "certificate-bound token presented without a client certificate",
            "cnf_no_certificate",
        );
    }

    #[test]
    fn an_unbound_token_costs_no_host_call() {
        let host = fake();
        let engine = engine(&host, "", "");
        let unbound = token(None);
        assert_eq!(
            send(&host, &engine, 1, &unbound, Some(&CERT_A), &[]),
            Decided::Continue
        );
        let calls = host.log.borrow().clone();
        assert!(
            !calls.contains(&"property") && !calls.contains(&"request_header_pairs"),
            "{calls:?}"
        );
        // A bound token reads the connection's digest, once.
        let bound = token(Some(bound_to(&CERT_A)));
        assert_eq!(
            send(&host, &engine, 2, &bound, Some(&CERT_A), &[]),
            Decided::Continue
        );
        let reads = host
            .log
            .borrow()
            .iter()
            .filter(|c| **c == "property")
            .count();
        assert_eq!(reads, 1);
    }
}
