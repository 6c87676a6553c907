//! The `make run` demo config (envoy/demo.yaml, ports replaced as scripts/run-demo.sh does)
//! gives exactly the answers the demo prints next to its curl lines.

use crate::common::assert_echo;
use meshguard_demo_idp::{Alg, TokenSpec};
use meshguard_e2e::paths::{wasm, workspace_root};
use meshguard_e2e::stack::StackOpts;
use meshguard_e2e::{Req, Stack, send};
use serde_json::json;

#[test]
fn demo_config_answers_as_make_run_says() {
    let yaml = std::fs::read_to_string(workspace_root().join("envoy/demo.yaml")).unwrap();
    // The module under test (MESHGUARD_WASM, like every other e2e test), not always target/'s.
    let module = wasm().unwrap();
    let yaml = yaml.replace(
        "target/wasm32-unknown-unknown/release/meshguard.wasm",
        &module.display().to_string(),
    );
    let stack = Stack::start_yaml(StackOpts::default(), |p| {
        Ok(yaml
            .replace("port_value: 10000", "port_value: 0")
            .replace("port_value: 9901", "port_value: 0")
            .replace("18080", &p.idp.to_string())
            .replace("port_value: 18081", &format!("port_value: {}", p.echo)))
    })
    .unwrap();
    let port = stack.port("demo");
    let host = format!("127.0.0.1:{port}");
    let iss = format!("http://127.0.0.1:{}", stack.idp_port);
    let mint = |spec: TokenSpec| stack.idp.mint(&spec.iss(&iss)).unwrap();
    let get = |path: &str| Req::get(path).host(&host);

    // 1. valid token → 200, claims mapped, token removed.
    let t = mint(
        TokenSpec::default()
            .aud("api.demo")
            .claim("email", json!("alice@example.com")),
    );
    let r = send(port, &get("/api/hello").bearer(&t)).unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-user-id"), vec!["alice"]);
    assert_eq!(r.echoed("x-user-email"), vec!["alice@example.com"]);
    assert!(r.echoed("authorization").is_empty());
    // 2. expired → 401 with the realm of the request.
    let t = mint(TokenSpec::default().aud("api.demo").exp_in(Some(-3600)));
    let r = send(port, &get("/api/hello").bearer(&t)).unwrap();
    assert_eq!(r.status, 401, "{}", r.summary());
    let expected = format!(
        "Bearer realm=\"http://{host}/api/hello\", error=\"invalid_token\", error_description=\"Jwt is expired\""
    );
    assert_eq!(r.header("www-authenticate"), Some(expected.as_str()));
    // 3. no token on /api/ → 403; /public/ → 200.
    let r = send(port, &get("/api/hello")).unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, "RBAC: access denied"),
        "{}",
        r.summary()
    );
    assert_echo(&send(port, &get("/public/hello")).unwrap());
    // 4. spoofed x-user-id → removed.
    let r = send(port, &get("/public/hello").header("x-user-id", "admin")).unwrap();
    assert_echo(&r);
    assert!(r.echoed("x-user-id").is_empty(), "{}", r.summary());
    // 5. wrong audience → 401.
    let t = mint(TokenSpec::default().aud("someone-else"));
    let r = send(port, &get("/api/hello").bearer(&t)).unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (401, "Audiences in Jwt are not allowed"),
        "{}",
        r.summary()
    );
    // more: cookie, EdDSA and RS256.
    let t = mint(TokenSpec::default().aud("api.demo").subject("bob"));
    let r = send(
        port,
        &get("/api/hello").header("Cookie", &format!("demo_token={t}")),
    )
    .unwrap();
    assert_echo(&r);
    assert_eq!(r.echoed("x-user-id"), vec!["bob"]);
    for alg in [Alg::EdDsa, Alg::Rs256] {
        let r = send(
            port,
            &get("/api/hello").bearer(&mint(TokenSpec::default().alg(alg).aud("api.demo"))),
        )
        .unwrap();
        assert_echo(&r);
    }
}
