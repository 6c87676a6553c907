//! Configuration as Envoy sees it: a bad plugin config stops Envoy at startup with one line
//! naming the field; query-parameter tokens, `outputPayloadToHeader`, `forwardOriginalToken`.

use crate::common::*;
use base64::Engine as _;
use meshguard_demo_idp::TokenSpec;
use meshguard_e2e::stack::{ISSUER, JWKS_URI, StackOpts};
use meshguard_e2e::{Req, Stack, config, send};
use serde_json::json;

#[test]
fn invalid_plugin_config_refuses_to_start() {
    let mut r = rule();
    r["algorithms"] = json!(["ES256", "HS256"]);
    let err = match Stack::start(StackOpts::default(), |p| {
        Ok(config::bootstrap(
            vec![config::listener(
                LISTENER,
                vec![config::meshguard(&p.wasm, &json!({"jwtRules": [r]}))],
                None,
            )],
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    }) {
        Ok(_) => panic!("Envoy started with an invalid meshguard config"),
        Err(e) => e,
    };
    assert!(err.contains("envoy exited"), "{err}");
    assert!(
        err.contains(
            "meshguard: invalid configuration: jwtRules[0].algorithms[1]: \"HS256\" is not allowed"
        ),
        "{err}"
    );
}

#[test]
fn query_parameter_tokens_payload_header_and_forwarding() {
    let plugin = json!({"jwtRules": [
        {
            "issuer": ISSUER,
            "jwksUri": JWKS_URI,
            "jwksCluster": "idp",
            "fromParams": ["access_token"],
            "outputPayloadToHeader": "x-jwt-payload"
        },
        {
            "issuer": "https://second.meshguard.test",
            "jwksUri": JWKS_URI,
            "jwksCluster": "idp",
            "fromHeaders": [{"name": "x-second-token"}],
            "forwardOriginalToken": true,
            "outputClaimToHeaders": [{"header": "x-second-sub", "claim": "sub"}]
        }
    ]});
    let stack = meshguard_stack(StackOpts::default(), plugin);
    let port = stack.port(LISTENER);
    let t = stack.idp.mint(&TokenSpec::default()).unwrap();
    let r = send(port, &Req::get(&format!("/api?a=1&access_token={t}&b=2"))).unwrap();
    assert_echo(&r);
    assert_eq!(
        r.echoed_path(),
        "/api?a=1&b=2",
        "only the token parameter is removed"
    );
    let payload = t.split('.').nth(1).unwrap();
    assert_eq!(r.echoed("x-jwt-payload"), vec![payload]);
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "alice");

    // forwardOriginalToken: the header stays; the second issuer's claim is mapped.
    let t2 = stack
        .idp
        .mint(
            &TokenSpec::default()
                .iss("https://second.meshguard.test")
                .subject("carol"),
        )
        .unwrap();
    let r = send(port, &Req::get("/api").header("x-second-token", &t2)).unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-second-token"), vec![t2.as_str()]);
    assert_eq!(r.echoed("x-second-sub"), vec!["carol"]);
    // A token of the second issuer in the first rule's location is not attributed to it.
    let r = send(port, &Req::get(&format!("/api?access_token={t2}"))).unwrap();
    assert_401(&r, "/api", "Jwt issuer is not configured");
}
