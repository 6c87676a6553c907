//! The fuzz corpora (`fuzz/corpus/<target>/`) replayed through the real meshguard.wasm:
//! a trap (panic, out-of-bounds, runaway loop, memory exhaustion) in any input fails the build.
//! Each input goes where the host would deliver it: tokens in `Authorization`, JWKS documents as
//! the fetch response, configurations to `on_configure`, policy requests as headers/properties,
//! extraction inputs as `:path`/`Cookie`/token headers. Every request must end decided (passed on,
//! 401 or 403) or, for a JWKS that lacks the token's key, paused for the refetch.

use std::path::PathBuf;
use std::time::Duration;

use meshguard_harness::{Exchange, Host, Result};
use meshguard_test_support::{self as support, Key};
use serde_json::{Value, json};

use crate::meshguard_wasm;

/// The fuzz targets' "now" (fuzz/src/lib.rs `NOW`).
const NOW: u64 = support::NOW;
const FUZZ_ISSUER: &str = "https://fuzz.example";

fn repo() -> PathBuf {
    support::repo_root()
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = repo().join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let inputs: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    assert!(!inputs.is_empty(), "{} is empty", dir.display());
    inputs
}

/// The fuzz targets' key (fuzz/src/lib.rs `fuzz_key`), kid `fuzz-ed`: the corpus's tokens are
/// signed with it.
fn fuzz_key() -> Key {
    Key::from(support::fuzz_ed25519_key())
}

fn fuzz_jwk() -> Value {
    fuzz_key().jwk("fuzz-ed")
}

/// Like fuzz/src/lib.rs `mint_ed25519`: any payload bytes, signed by the fuzz key.
fn mint(payload: &[u8]) -> String {
    support::compact(br#"{"alg":"EdDSA","kid":"fuzz-ed"}"#, payload, |m| {
        fuzz_key().sign("EdDSA", m)
    })
}

/// Ended with a decision: passed upstream, 401 or 403.
fn assert_decided(x: &Exchange, what: &str) {
    assert!(
        x.continued() || matches!(x.status(), Some(401 | 403)),
        "{what}: neither passed nor refused (paused: {}, status {:?})",
        x.is_paused(),
        x.status()
    );
}

/// `configure` failed: fine when the VM refused the configuration, a failure when it trapped.
fn assert_refused_not_trapped(err: &wasmtime::Error, what: &str) {
    let text = format!("{err:#}");
    assert!(
        !text.contains("trapped") && !text.contains("execution budget"),
        "{what}: the VM trapped: {text}"
    );
}

fn host(config: &Value) -> Result<Host> {
    Host::load(meshguard_wasm())?
        .clock_unix(NOW)
        .clusters(["idp"])
        .configure(config.to_string())
}

#[test]
fn token_corpus() -> Result<()> {
    let istio = support::istio_json;
    let rules = json!([
        {"issuer": "testing@secure.istio.io", "jwks": istio("jwks.json").to_string()},
        {"issuer": "test-issuer-1@istio.io", "jwks": istio("tests_common_jwt/jwks.json").to_string()},
        {"issuer": "test-issuer-2@istio.io", "jwks": istio("tests_common_jwt/jwks.json").to_string()},
        {"issuer": FUZZ_ISSUER, "jwks": json!({"keys": [fuzz_jwk()]}).to_string(),
         "outputClaimToHeaders": [{"header": "x-sub", "claim": "sub"}],
         "outputPayloadToHeader": "x-payload", "fromCookies": ["session"]},
    ]);
    let h = host(&json!({ "jwtRules": rules }))?;
    let mut passed = 0;
    for (name, bytes) in corpus("token") {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(&bytes);
        let x = h.request().header("authorization", value).send()?;
        assert_decided(&x, &name);
        passed += usize::from(x.continued());
        let mut cookie = b"session=".to_vec();
        cookie.extend_from_slice(&bytes);
        let x = h.request().header("cookie", cookie).send()?;
        assert_decided(&x, &name);
    }
    assert!(
        passed > 0,
        "no corpus token verified: the replay would prove little"
    );
    Ok(())
}

#[test]
fn jwks_corpus() -> Result<()> {
    let rule =
        json!({"issuer": FUZZ_ISSUER, "jwksUri": "https://idp.example/jwks", "jwksCluster": "idp"});
    let token = mint(
        json!({"iss": FUZZ_ISSUER, "exp": NOW + 600})
            .to_string()
            .as_bytes(),
    );
    for (name, body) in corpus("jwks") {
        let h = host(&json!({ "jwtRules": [rule] }))?;
        h.advance(Duration::from_millis(20))?;
        let call = h.expect_one_call();
        call.respond(200, &[("content-type", "application/json")], body)?;
        let x = h.request().bearer(&token).send()?;
        if !x.is_paused() {
            assert_decided(&x, &name);
        }
        // Whatever happened, the VM keeps serving (ticks, a refetch, its timeout).
        h.advance(Duration::from_secs(6))?;
        let x = h.request().path("/anonymous").send()?;
        assert_decided(&x, &name);
    }
    Ok(())
}

#[test]
fn config_corpus() -> Result<()> {
    let demo = support::ISTIO_DEMO_JWT;
    for (name, bytes) in corpus("config") {
        let started = Host::load(meshguard_wasm())?
            .clock_unix(NOW)
            .clusters(["idp"])
            .configure(bytes);
        match started {
            Err(e) => assert_refused_not_trapped(&e, &name),
            Ok(h) => {
                let x = h.request().send()?;
                assert!(
                    x.continued() || x.status().is_some() || x.is_paused(),
                    "{name}"
                );
                let x = h.request().bearer(demo).send()?;
                assert!(
                    x.continued() || x.status().is_some() || x.is_paused(),
                    "{name}"
                );
                h.advance(Duration::from_secs(6))?;
            }
        }
    }
    Ok(())
}

#[test]
fn policy_corpus() -> Result<()> {
    let text = std::fs::read_to_string(repo().join("fuzz/src/policy_config.json")).unwrap();
    let jwks = json!({"keys": [fuzz_jwk()]})
        .to_string()
        .replace('"', "\\\"");
    let config: Value = serde_json::from_str(&text.replace("FUZZ_JWKS", &jwks)).unwrap();
    let h = host(&config)?;
    for (name, bytes) in corpus("policy") {
        // fuzz/src/lib.rs `policy`: method, path, host, peer, source ip, destination ip, port,
        // sni, claims JSON, then `name: value` headers.
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.split('\n');
        let mut field = || lines.next().filter(|l| !l.is_empty()).map(str::to_owned);
        let (method, path, authority, peer) = (field(), field(), field(), field());
        let (source, destination, port, sni, claims) =
            (field(), field(), field(), field(), field());
        let mut req = h.request();
        if let Some(m) = method {
            req = req.method(&m);
        }
        if let Some(p) = path {
            req = req.path(&p);
        }
        if let Some(a) = authority {
            req = req.authority(&a);
        }
        if let Some(p) = peer {
            req = req.peer_spiffe(&p);
        }
        if let Some(s) = source {
            req = req.source_address(&format!("{s}:40000"));
        }
        if let Some(d) = destination {
            req = req.property("destination.address", format!("{d}:8080").as_str());
        }
        if let Some(p) = port.and_then(|p| p.parse::<u16>().ok()) {
            req = req.destination_port(p);
        }
        if let Some(s) = sni {
            req = req.property("connection.requested_server_name", s.as_str());
        }
        if let Some(c) = claims {
            req = req.bearer(&mint(c.as_bytes()));
        }
        for line in lines.take(64) {
            if let Some((n, v)) = line.split_once(':') {
                let n = n.trim().to_ascii_lowercase();
                if !n.is_empty() && !n.starts_with(':') {
                    req = req.header(&n, v.trim());
                }
            }
        }
        let x = req.send()?;
        assert_decided(&x, &name);
    }
    Ok(())
}

#[test]
fn extract_corpus() -> Result<()> {
    let jwks = json!({"keys": [fuzz_jwk()]}).to_string();
    let config = json!({"jwtRules": [
        {"issuer": FUZZ_ISSUER, "jwks": jwks,
         "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}, {"name": "x-jwt"}],
         "fromParams": ["access_token", "tok%en"], "fromCookies": ["session", "np_scope_token"]},
        {"issuer": "b", "jwks": jwks,
         "fromHeaders": [{"name": "authorization", "prefix": "Bearer "}, {"name": "X-Token", "prefix": "tok "}],
         "fromCookies": ["session"]}
    ]});
    let h = host(&config)?;
    for (name, bytes) in corpus("extract") {
        // fuzz/src/lib.rs `extract`: NUL-separated :path, cookie, authorization, x-jwt, x-token,
        // :authority.
        let mut parts = bytes.split(|b| *b == 0);
        let mut req = h.request();
        for header in [
            ":path",
            "cookie",
            "authorization",
            "x-jwt",
            "x-token",
            ":authority",
        ] {
            if let Some(value) = parts.next() {
                req = if header.starts_with(':') {
                    req.set_header(header, value)
                } else {
                    req.header(header, value)
                };
            }
        }
        let x = req.send()?;
        assert_decided(&x, &name);
    }
    Ok(())
}
