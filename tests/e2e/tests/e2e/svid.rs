//! JWT-SVIDs through a real Envoy: a rule with `spiffe` whose SPIFFE bundle is fetched over HTTP
//! (one `jwt-svid` key, one `x509-svid` key, a `spiffe_refresh_hint`), tokens without `iss`
//! attributed by the trust domain of their `sub`, and a policy on the SPIFFE ID.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::common::*;
use meshguard_demo_idp::Alg;
use meshguard_demo_idp::Server;
use meshguard_demo_idp::http::{Handler, Reply, Request, Response};
use meshguard_demo_idp::idp::now_unix;
use meshguard_demo_idp::keys::KeyPair;
use meshguard_e2e::stack::StackOpts;
use meshguard_e2e::wait::poll;
use meshguard_e2e::{Req, Stack, config, send};
use serde_json::{Map, Value, json};

const TD: &str = "example.org";
const CLIENT: &str = "spiffe://example.org/ns/default/sa/client";

/// Serves one SPIFFE bundle at any path, counting the fetches.
struct BundleServer {
    bundle: Value,
    fetches: AtomicU64,
}

impl Handler for BundleServer {
    fn handle(&self, _req: &Request) -> Reply {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Reply::Respond(Response::json(200, &self.bundle))
    }
}

fn svid(key: &KeyPair, claims: Value) -> String {
    let claims: Map<String, Value> = claims.as_object().cloned().unwrap();
    key.mint(&claims, &Map::new())
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "aud": AUD, "exp": now_unix() + 300})
}

#[test]
fn jwt_svids_from_a_fetched_spiffe_bundle() {
    let jwt_key = KeyPair::generate(Alg::Es256).unwrap();
    let x509_key = KeyPair::generate(Alg::Es256).unwrap();
    let mut jwt = jwt_key.jwk();
    jwt["use"] = json!("jwt-svid");
    let mut x509 = x509_key.jwk();
    x509["use"] = json!("x509-svid");
    let bundle = Arc::new(BundleServer {
        bundle: json!({"keys": [x509, jwt], "spiffe_refresh_hint": 300, "spiffe_sequence": 1}),
        fetches: AtomicU64::new(0),
    });
    let server = Server::start("127.0.0.1:0", bundle.clone()).unwrap();
    let plugin = json!({
        "jwtRules": [{
            "spiffe": {"trustDomain": TD},
            "audiences": [AUD],
            "jwksUri": "http://spire.meshguard.test/bundle",
            "jwksCluster": "spire",
            "timeout": "3s",
            "outputClaimToHeaders": [{"header": "x-spiffe-id", "claim": "sub"}],
        }],
        "policies": [{
            "name": "svid-admin",
            "action": "ALLOW",
            "rules": [
                {"to": [{"operation": {"notPaths": ["/admin"]}}]},
                {
                    "from": [{"source": {"requestPrincipals": [CLIENT]}}],
                    "to": [{"operation": {"paths": ["/admin"]}}],
                    "when": [{"key": "request.auth.principal", "values": ["spiffe://example.org/ns/default/*"]}],
                },
            ],
        }],
    });
    let spire_port = server.port();
    let stack = Stack::start(StackOpts::default(), |p| {
        Ok(config::bootstrap(
            vec![config::listener(
                LISTENER,
                vec![config::meshguard(&p.wasm, &plugin)],
                None,
            )],
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("spire", spire_port),
            ],
        ))
    })
    .unwrap();
    let port = stack.port(LISTENER);
    let status = |path: &str, token: &str| {
        let r = send(port, &Req::get(path).bearer(token)).unwrap();
        assert!(
            r.status == 200 || r.status == 401 || r.status == 403,
            "{path}: {}",
            r.summary()
        );
        r
    };

    // The jwt-svid key: 200 (the first request waits for the bundle), the SPIFFE ID forwarded.
    let good = svid(&jwt_key, claims(CLIENT));
    poll(Duration::from_secs(20), Duration::from_millis(100), || {
        Ok::<_, String>((status("/api/svid", &good).status == 200).then_some(()))
    })
    .unwrap_or_else(|e| panic!("a valid JWT-SVID was not allowed: {e}"));
    let r = status("/api/svid", &good);
    assert_eq!(r.status, 200, "{}", r.summary());
    assert_eq!(r.echoed("x-spiffe-id"), vec![CLIENT.to_owned()]);
    assert!(bundle.fetches.load(Ordering::SeqCst) >= 1);

    // The x509-svid key of the same bundle never verifies a JWT-SVID.
    let r = status("/api/svid", &svid(&x509_key, claims(CLIENT)));
    assert_eq!(r.status, 401, "x509-svid key: {}", r.summary());

    // Another trust domain: no rule for it.
    let r = status(
        "/api/svid",
        &svid(&jwt_key, claims("spiffe://other.org/ns/default/sa/client")),
    );
    assert_eq!(r.status, 401, "wrong trust domain: {}", r.summary());

    // Missing aud / exp, not a SPIFFE ID.
    let mut no_aud = claims(CLIENT);
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(status("/api/svid", &svid(&jwt_key, no_aud)).status, 401);
    let mut no_exp = claims(CLIENT);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(status("/api/svid", &svid(&jwt_key, no_exp)).status, 401);
    assert_eq!(
        status(
            "/api/svid",
            &svid(&jwt_key, claims("spiffe://example.org/a/../b"))
        )
        .status,
        401
    );

    // The policy on the SPIFFE principal: the client may, another workload may not.
    assert_eq!(status("/admin", &good).status, 200);
    let other = svid(&jwt_key, claims("spiffe://example.org/ns/default/sa/other"));
    assert_eq!(status("/api/svid", &other).status, 200);
    assert_eq!(status("/admin", &other).status, 403);
    drop(stack);
    drop(server);
}
