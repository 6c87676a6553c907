//! Istio parity on what a Wasm filter can see of the connection, through the real module's host
//! glue: the peer certificate's every SAN (Envoy 1.40's `connection.peer_certificate`, an
//! Envoy-set XFCC `Cert=` checked against `connection.sha256_peer_certificate_digest`, or only
//! the first-SAN properties, where rules fail closed), and `ipBlocks` over an
//! `x-forwarded-for`-derived source address (port 0: fail closed).

use meshguard_harness::{Host, Result};
use serde_json::json;

use crate::meshguard_wasm;

const ALLOW_SAN: &str = "spiffe://cluster.local/ns/a/sa/allow";
/// `filter/testdata/certs/two-uris.pem`: URI SANs `.../sa/allow` and `.../sa/deny`.
const TWO_URIS: &str = include_str!("../../../../filter/testdata/certs/two-uris.pem");
const TWO_URIS_SHA256: &str = "721fcca80dfe3d7600793f73be41f4b07d49b8b10f7d38e157690c5059d62f35";

/// URL-encoding as Envoy's `urlEncodedPemEncodedPeerCertificate` (every byte but
/// alphanumerics and `-._~`).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn host_with(policy: serde_json::Value) -> Result<Host> {
    Host::load(meshguard_wasm())?.configure(json!({ "policies": [policy] }).to_string())
}

fn principals(action: &str, sa: &str) -> serde_json::Value {
    json!({"name": "p", "action": action, "rules": [
        {"from": [{"source": {"principals": [format!("cluster.local/ns/a/sa/{sa}")]}}]}
    ]})
}

#[test]
fn every_san_from_connection_peer_certificate() -> Result<()> {
    let deny = host_with(principals("DENY", "deny"))?;
    let allow = host_with(principals("ALLOW", "deny"))?;
    for (h, status) in [(&deny, 403), (&allow, 200)] {
        let r = h
            .request()
            .peer_spiffe(ALLOW_SAN)
            .property("connection.peer_certificate", url_encode(TWO_URIS))
            .send()?;
        if status == 200 {
            r.assert_continued();
        } else {
            r.assert_status(status);
        }
    }
    Ok(())
}

#[test]
fn every_san_from_an_xfcc_cert_with_the_connections_digest() -> Result<()> {
    let deny = host_with(principals("DENY", "deny"))?;
    let xfcc = format!(
        "By=spiffe://cluster.local/ns/s/sa/server;Hash={TWO_URIS_SHA256};Cert=\"{}\"",
        url_encode(TWO_URIS)
    );
    deny.request()
        .peer_spiffe(ALLOW_SAN)
        .property("connection.sha256_peer_certificate_digest", TWO_URIS_SHA256)
        .header("x-forwarded-client-cert", xfcc.as_str())
        .send()?
        .assert_status(403);
    // A certificate in the header that is not the connection's is ignored: only the first SAN
    // is known, and the DENY on another SAN fails closed (still 403, for another reason).
    let other = "11".repeat(32);
    let h = host_with(principals("ALLOW", "deny"))?;
    h.request()
        .peer_spiffe(ALLOW_SAN)
        .property("connection.sha256_peer_certificate_digest", other.as_str())
        .header("x-forwarded-client-cert", xfcc.as_str())
        .send()?
        .assert_status(403);
    Ok(())
}

#[test]
fn only_the_first_san_fails_closed() -> Result<()> {
    // DENY on a SAN meshguard cannot see: denied, and the log says why.
    let deny = host_with(principals("DENY", "deny"))?;
    deny.request()
        .peer_spiffe(ALLOW_SAN)
        .send()?
        .assert_status(403);
    assert!(
        !deny.logs_containing("fail closed").is_empty(),
        "{}",
        deny.log_dump(None)
    );
    // ALLOW on the visible first SAN: decided.
    host_with(principals("ALLOW", "allow"))?
        .request()
        .peer_spiffe(ALLOW_SAN)
        .send()?
        .assert_continued();
    // ALLOW on a SAN it cannot see: not allowed.
    host_with(principals("ALLOW", "deny"))?
        .request()
        .peer_spiffe(ALLOW_SAN)
        .send()?
        .assert_status(403);
    Ok(())
}

#[test]
fn ip_blocks_over_an_xff_derived_source_fail_closed() -> Result<()> {
    let deny = host_with(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"ipBlocks": ["127.0.0.1"]}}]}
    ]}))?;
    let allow = host_with(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"ipBlocks": ["1.2.3.4"]}}]}
    ]}))?;
    // The connection's peer (a real port): decided on it.
    deny.request()
        .source_address("127.0.0.1:41000")
        .send()?
        .assert_status(403);
    deny.request()
        .source_address("10.1.1.1:41000")
        .send()?
        .assert_continued();
    allow
        .request()
        .source_address("1.2.3.4:41000")
        .send()?
        .assert_continued();
    // Envoy took the address from a client-sent X-Forwarded-For (port 0): DENY fails closed,
    // ALLOW is not opened.
    deny.request()
        .source_address("9.9.9.9:0")
        .header("x-forwarded-for", "9.9.9.9")
        .send()?
        .assert_status(403);
    allow
        .request()
        .source_address("1.2.3.4:0")
        .header("x-forwarded-for", "1.2.3.4")
        .send()?
        .assert_status(403);
    // Configure time says which policies may fail closed.
    assert!(
        !deny
            .logs_containing("ipBlocks/source.ip are the connection's direct peer")
            .is_empty()
    );
    Ok(())
}
