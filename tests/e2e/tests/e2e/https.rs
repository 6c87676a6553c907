//! JWKS over HTTPS (the minimal-https.yaml shape): the `idp` cluster has an upstream TLS transport
//! socket (SNI, CA, SAN check) in front of the demo IdP; a cluster that does not trust the IdP's
//! CA yields 401 "JWKS unavailable", and its fetch never reaches the IdP.

use crate::common::*;
use meshguard_demo_idp::TokenSpec;
use meshguard_e2e::stack::StackOpts;
use meshguard_e2e::tls::Pki;
use meshguard_e2e::tls_proxy::TlsProxy;
use meshguard_e2e::{Req, Stack, TempDir, config, send};
use serde_json::{Value, json};
use std::path::Path;

const IDP_HOST: &str = "idp.meshguard.test";
const UNTRUSTED_ISS: &str = "https://untrusted.meshguard.test";

fn tls_cluster(name: &str, port: u16, ca: &Path) -> Value {
    let mut c = config::cluster(name, port);
    c["transport_socket"] = json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": IDP_HOST,
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": ca.display().to_string()},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": IDP_HOST}}],
            }},
        },
    });
    c
}

#[test]
fn jwks_over_https_through_an_upstream_tls_cluster() {
    let dir = TempDir::new("pki").unwrap();
    std::fs::create_dir_all(dir.path().join("other")).unwrap();
    let pki = Pki::new(dir.path()).unwrap();
    let other = Pki::new(&dir.path().join("other")).unwrap();
    let mut trusted = rule();
    trusted["jwksUri"] = json!(format!("https://{IDP_HOST}/.well-known/jwks.json"));
    let mut untrusted = trusted.clone();
    untrusted["issuer"] = json!(UNTRUSTED_ISS);
    untrusted["jwksCluster"] = json!("idp-untrusted");
    let plugin = json!({"jwtRules": [trusted, untrusted]});
    let server_config = pki.server(IDP_HOST).unwrap();
    let mut proxy: Option<TlsProxy> = None;
    let stack = Stack::start(StackOpts::default(), |p| {
        let px = TlsProxy::start(server_config, p.idp).map_err(|e| e.to_string())?;
        let tls_port = px.port();
        proxy = Some(px);
        Ok(config::bootstrap(
            vec![config::listener(
                LISTENER,
                vec![config::meshguard(&p.wasm, &plugin)],
                None,
            )],
            vec![
                config::cluster("upstream", p.echo),
                tls_cluster("idp", tls_port, &pki.ca_file),
                tls_cluster("idp-untrusted", tls_port, &other.ca_file),
            ],
        ))
    })
    .unwrap();
    let port = stack.port(LISTENER);

    let t = stack.idp.mint(&TokenSpec::default().aud(AUD)).unwrap();
    let r = send(port, &Req::get("/api/tls").bearer(&t)).unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-user-id"), vec!["alice"]);

    let t = stack
        .idp
        .mint(&TokenSpec::default().aud(AUD).iss(UNTRUSTED_ISS))
        .unwrap();
    let r = send(port, &Req::get("/api/untrusted").bearer(&t)).unwrap();
    assert_401(&r, "/api/untrusted", "JWKS unavailable");
    assert_eq!(
        stack.idp.jwks_fetches(),
        1,
        "only the trusted cluster's fetch reached the IdP"
    );
    let failed = stack
        .envoy
        .stat("wasmcustom.meshguard.jwks.https___untrusted_meshguard_test.fetch_failed");
    assert!(failed >= 1, "fetch_failed = {failed}");
    let ssl_fail = stack
        .envoy
        .stat("cluster.idp-untrusted.ssl.fail_verify_error");
    assert!(
        ssl_fail >= 1,
        "cluster.idp-untrusted.ssl.fail_verify_error = {ssl_fail}"
    );
    drop(stack);
    drop(proxy);
}
