//! The converter's output in a real Envoy: for each scenario of istio/testdata/expectations.json,
//! convert its Istio inputs, load the resulting `pluginConfig` into the real meshguard.wasm as the
//! first HTTP filter (where Istio puts an AUTHN-phase plugin; the converted resources replace
//! Istio's own jwt_authn/RBAC filters), send Istio's public sample tokens, and compare each status
//! with Istio's decision recorded there.
//!
//! Needs `make wasm` and the pinned Envoy (installed on demand by the e2e kit); run by
//! `make istio-check`. Without the module it fails with the kit's message.
// Helpers outside `#[test]` functions are not "in tests" for clippy.toml's allow-*-in-tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshguard_cli::convert::{self, Options};
use meshguard_demo_idp::TokenSpec;
use meshguard_e2e::config::{bootstrap, cluster, listener, meshguard};
use meshguard_e2e::stack::{ISSUER, JWKS_URI, StackOpts};
use meshguard_e2e::{Req, Stack, send};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
}

fn plugin_config(inputs: &[Value]) -> Value {
    let inputs: Vec<(String, String)> = inputs
        .iter()
        .map(|f| {
            let f = f.as_str().unwrap();
            (f.to_owned(), read(f))
        })
        .collect();
    let out = convert::convert_texts(&inputs, &Options::default()).unwrap();
    assert_eq!(out.plugins.len(), 1, "one workload, one plugin");
    serde_json::to_value(&out.plugins[0].spec.plugin_config).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs one scenario; returns the mismatches.
fn run(scenario: &Value) -> Vec<String> {
    let name = scenario["name"].as_str().unwrap();
    let mut cfg = plugin_config(scenario["inputs"].as_array().unwrap());
    // The listener's port is fixed up front so that a policy's destination port can name it.
    let port = free_port();
    if scenario.get("needs").is_some() {
        // Gateway case: the IdP is the e2e kit's demo IdP (its issuer, its JWKS through cluster
        // `idp`), and the policy's port 443 is this listener's port. Everything else verbatim.
        let rule = &mut cfg["jwtRules"][0];
        rule["issuer"] = json!(ISSUER);
        rule["jwksUri"] = json!(JWKS_URI);
        rule["jwksCluster"] = json!("idp");
        let text = cfg["policies"]
            .to_string()
            .replace("\"443\"", &format!("\"{port}\""));
        cfg["policies"] = serde_json::from_str(&text).unwrap();
    }
    let stack = Stack::start(StackOpts::default(), |p| {
        let mut l = listener("main", vec![meshguard(&p.wasm, &cfg)], None);
        l["address"]["socket_address"]["port_value"] = json!(port);
        Ok(bootstrap(
            vec![l],
            vec![cluster("upstream", p.echo), cluster("idp", p.idp)],
        ))
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    if scenario.get("needs").is_some() {
        // Warm-up: wait (bounded) until the filter has the demo IdP's keys. The first fetch and
        // requests that race it are the filter's own e2e subject; this test is about the config.
        let token = stack.idp.mint(&TokenSpec::default()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let r = send(
                port,
                &Req::get("/health").host("warm.example.com").bearer(&token),
            );
            if r.is_ok_and(|r| r.status != 401) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let fixtures = root().join("tests/fixtures/istio");
    let mut bad = Vec::new();
    for r in scenario["requests"].as_array().unwrap() {
        let path = r["path"].as_str().unwrap();
        let mut req = Req::get(path);
        if let Some(h) = r["host"].as_str() {
            req = req.host(h);
        }
        let token = match &r["token"] {
            Value::Null => None,
            Value::String(f) => Some(
                std::fs::read_to_string(fixtures.join(f))
                    .unwrap()
                    .trim()
                    .to_owned(),
            ),
            Value::Object(o) if o.contains_key("raw") => {
                Some(o["raw"].as_str().unwrap().to_owned())
            }
            Value::Object(o) if o.contains_key("mint") => {
                let c = &o["mint"];
                let mut spec = TokenSpec::default().subject(c["sub"].as_str().unwrap());
                if let Some(a) = c["aud"].as_str() {
                    spec = spec.aud(a);
                }
                if let Some(e) = c.get("email") {
                    spec = spec.claim("email", e.clone());
                }
                Some(stack.idp.mint(&spec).unwrap())
            }
            other => panic!("{name}: token {other}"),
        };
        let label = format!("{name}: GET {path} host={} token={}", req.host, r["token"]);
        if let Some(t) = &token {
            req = match r["token"]["in"].as_str() {
                Some(loc) => {
                    let cookie = loc.strip_prefix("cookie:").unwrap();
                    req.header("Cookie", &format!("other=1; {cookie}={t}"))
                }
                None => req.bearer(t),
            };
        }
        let resp = match send(port, &req) {
            Ok(r) => r,
            Err(e) => {
                bad.push(format!("{label}: {e}"));
                continue;
            }
        };
        let want = r["expect"].as_u64().unwrap();
        if u64::from(resp.status) != want {
            bad.push(format!(
                "{label}: got {} want {want} ({}) body {:?}",
                resp.status,
                r["why"].as_str().unwrap_or_default(),
                resp.text()
            ));
            continue;
        }
        if let Some(hs) = r
            .get("headers_upstream")
            .and_then(Value::as_object)
            .filter(|_| want == 200)
        {
            for (h, v) in hs {
                let got = resp.echoed(h);
                if got != [v.as_str().unwrap()] {
                    bad.push(format!("{label}: upstream saw {h}: {got:?}, want {v}"));
                }
            }
        }
    }
    if !bad.is_empty() {
        eprintln!("{name}: envoy log tail:\n{}", stack.envoy.log_tail(30));
    }
    bad
}

fn run_all() {
    let exp: Value = serde_json::from_str(&read("istio/testdata/expectations.json")).unwrap();
    let scenarios = exp["scenarios"].as_array().unwrap();
    assert!(scenarios.len() >= 4);
    let mut bad = Vec::new();
    let mut total = 0;
    for s in scenarios {
        total += s["requests"].as_array().unwrap().len();
        bad.extend(run(s));
    }
    assert!(
        bad.is_empty(),
        "{} of {total} decisions differ from Istio's:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// The whole decision (401 / 403 / 200, and the claim headers upstream) as Istio's resources
/// make it.
#[test]
fn converted_plugins_decide_like_istio_in_real_envoy() {
    run_all();
}
