//! Certificate-bound tokens (RFC 8705 §3) through the real module's host glue: the token's
//! `cnf.x5t#S256` against Envoy's `connection.sha256_peer_certificate_digest`, on every request
//! (the second request with the same token is a cache hit).

use meshguard_harness::{Exchange, Host, Result};
use meshguard_test_support as support;
use serde_json::{Value, json};

use crate::meshguard_wasm;
use crate::tokens::{ISSUER, claims, jwks, mint};

/// The SHA-256 of two client certificates (arbitrary bytes: only the digests matter here; the
/// e2e suite uses real certificates).
const CERT_A: [u8; 32] = [0x5a; 32];
const CERT_B: [u8; 32] = [0xc3; 32];
const SPIFFE: &str = "spiffe://cluster.local/ns/a/sa/client";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn host(extra: Value) -> Result<Host> {
    let mut rule = json!({
        "issuer": ISSUER,
        "jwks": jwks(),
        "outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}],
    });
    if let (Some(r), Some(extra)) = (rule.as_object_mut(), extra.as_object()) {
        r.extend(extra.clone());
    }
    Host::load(meshguard_wasm())?.configure(json!({ "jwtRules": [rule] }).to_string())
}

fn bound_token(h: &Host, cert: &[u8]) -> String {
    let mut c = claims(h.now_unix());
    c["cnf"] = json!({"x5t#S256": support::b64(cert)});
    mint("ES256", &c)
}

fn send(h: &Host, token: &str, cert: Option<&[u8]>) -> Result<Exchange> {
    let mut r = h.request().bearer(token);
    if let Some(cert) = cert {
        r = r.peer_spiffe(SPIFFE).property(
            "connection.sha256_peer_certificate_digest",
            hex(cert).as_str(),
        );
    }
    r.send()
}

fn assert_refused(r: &Exchange, description: &str) {
    r.assert_status(401).assert_body_contains(description);
    let www = r.response_header("www-authenticate").unwrap_or_default();
    assert!(
        www.contains("error=\"invalid_token\"")
            && www.ends_with(&format!("error_description=\"{description}\"")),
        "WWW-Authenticate {www:?}\n{}",
        r.describe()
    );
    assert!(!r.continued());
}

#[test]
fn a_certificate_bound_token_needs_its_certificate() -> Result<()> {
    let h = host(json!({}))?;
    let token = bound_token(&h, &CERT_A);
    send(&h, &token, Some(&CERT_A))?
        .assert_continued()
        .assert_upstream_header("x-jwt-sub", "alice")
        .assert_no_upstream_header("authorization");
    // The same token (now a cache hit) from another certificate, and without one.
    assert_refused(
        &send(&h, &token, Some(&CERT_B))?,
        "certificate-bound token presented by another client certificate",
    );
    assert_refused(
        &send(&h, &token, None)?,
        "certificate-bound token presented without a client certificate",
    );
    send(&h, &token, Some(&CERT_A))?.assert_continued();
    assert_eq!(h.metric("meshguard.denied.cnf_other_certificate"), Some(1));
    assert_eq!(h.metric("meshguard.denied.cnf_no_certificate"), Some(1));
    // One log line per denial, with the reason and never the token.
    let lines = h.logs_containing("reason=cnf_other_certificate");
    assert_eq!(lines.len(), 1, "{}", h.log_dump(None));
    assert!(!h.log_dump(None).contains(&token));
    // A malformed binding is a 401 whatever the certificate.
    let mut c = claims(h.now_unix());
    c["cnf"] = json!({"x5t#S256": hex(&CERT_A)});
    assert_refused(
        &send(&h, &mint("ES256", &c), Some(&CERT_A))?,
        "Jwt cnf x5t#S256 is not a base64url SHA-256 certificate thumbprint",
    );
    assert_eq!(h.metric("meshguard.denied.cnf_malformed"), Some(1));
    Ok(())
}

#[test]
fn require_certificate_binding_refuses_unbound_tokens() -> Result<()> {
    let h = host(json!({"requireCertificateBinding": true}))?;
    let unbound = mint("ES256", &claims(h.now_unix()));
    assert_refused(
        &send(&h, &unbound, Some(&CERT_A))?,
        "token is not certificate-bound",
    );
    assert_eq!(h.metric("meshguard.denied.cnf_not_bound"), Some(1));
    send(&h, &bound_token(&h, &CERT_A), Some(&CERT_A))?.assert_continued();
    // Without the requirement the unbound token goes on.
    let h = host(json!({}))?;
    send(&h, &unbound, Some(&CERT_A))?.assert_continued();
    Ok(())
}

#[test]
fn a_dpop_bound_token_presented_as_bearer_is_401() -> Result<()> {
    // RFC 9449 §7.2: a `cnf.jkt` token is refused as a bearer token under every rule (with or
    // without `dpop`), with or without a client certificate; the 401 challenges with `DPoP`.
    let h = host(json!({}))?;
    let mut c = claims(h.now_unix());
    c["cnf"] = json!({"jkt": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"});
    let token = mint("ES256", &c);
    let description = "DPoP-bound token presented as a bearer token";
    for cert in [Some(&CERT_A[..]), None] {
        let r = send(&h, &token, cert)?;
        r.assert_status(401).assert_body_contains(description);
        let www = r.response_header("www-authenticate").unwrap_or_default();
        assert!(
            www.contains("error=\"invalid_token\"")
                && www.contains(&format!("error_description=\"{description}\"")),
            "{www:?}"
        );
    }
    assert_eq!(h.metric("meshguard.denied.cnf_dpop_as_bearer"), Some(2));
    assert_eq!(h.logs_containing("reason=cnf_dpop_as_bearer").len(), 2);
    Ok(())
}

#[test]
fn behind_a_trusted_proxy_the_xfcc_hash_is_the_certificate() -> Result<()> {
    let mut rule = json!({"issuer": ISSUER, "jwks": jwks()});
    rule["outputClaimToHeaders"] = json!([{"header": "x-jwt-sub", "claim": "sub"}]);
    let h = Host::load(meshguard_wasm())?
        .configure(json!({"jwtRules": [rule], "trustXfcc": true}).to_string())?;
    let token = bound_token(&h, &CERT_A);
    let element = |cert: &[u8]| {
        format!(
            "By=spiffe://cluster.local/ns/gw/sa/gw;Hash={};URI={SPIFFE}",
            hex(cert)
        )
    };
    // The connection is the proxy's (CERT_B) and is ignored; the proxy's element names CERT_A.
    h.request()
        .bearer(&token)
        .peer_spiffe(SPIFFE)
        .property(
            "connection.sha256_peer_certificate_digest",
            hex(&CERT_B).as_str(),
        )
        .header("x-forwarded-client-cert", element(&CERT_A))
        .send()?
        .assert_continued();
    // A client-written element further left does not count.
    let spoofed = format!("{},{}", element(&CERT_A), element(&CERT_B));
    assert_refused(
        &h.request()
            .bearer(&token)
            .peer_spiffe(SPIFFE)
            .property(
                "connection.sha256_peer_certificate_digest",
                hex(&CERT_A).as_str(),
            )
            .header("x-forwarded-client-cert", spoofed)
            .send()?,
        "certificate-bound token presented by another client certificate",
    );
    // No header: no client certificate, whatever the connection.
    assert_refused(
        &send(&h, &token, Some(&CERT_A))?,
        "certificate-bound token presented without a client certificate",
    );
    Ok(())
}
