//! Shared pieces of the meshguard groups.

use meshguard_e2e::stack::{ISSUER, JWKS_URI, StackOpts};
use meshguard_e2e::{Resp, Stack, config};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The listener every meshguard group uses.
pub const LISTENER: &str = "mg";
pub const AUD: &str = "api.example.com";

/// A jwtRule for the demo IdP: header + cookie, sub/email mapped, the IdP's three algorithms.
pub fn rule() -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": [AUD],
        "jwksUri": JWKS_URI,
        "jwksCluster": "idp",
        "timeout": "3s",
        "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}],
        "fromCookies": ["np_scope_token"],
        "outputClaimToHeaders": [
            {"header": "x-user-id", "claim": "sub"},
            {"header": "x-user-email", "claim": "email"}
        ],
        "algorithms": ["ES256", "RS256", "EdDSA"],
    })
}

/// A stack with one plain listener running meshguard with `plugin` in front of the echo upstream.
pub fn meshguard_stack(opts: StackOpts, plugin: Value) -> Stack {
    Stack::start(opts, |p| {
        Ok(config::bootstrap(
            vec![config::listener(
                LISTENER,
                vec![config::meshguard(&p.wasm, &plugin)],
                None,
            )],
            vec![
                config::cluster("upstream", p.echo),
                config::cluster("idp", p.idp),
            ],
        ))
    })
    .unwrap()
}

/// The exact `WWW-Authenticate` of a 401 for `path` on host api.example.com.
pub fn www_authenticate(path: &str, description: &str) -> String {
    format!(
        "Bearer realm=\"http://{AUD}{path}\", error=\"invalid_token\", error_description=\"{description}\""
    )
}

/// Asserts a meshguard 401: status, `WWW-Authenticate`, body = the reason.
pub fn assert_401(r: &Resp, path: &str, description: &str) {
    assert_eq!(r.status, 401, "{}", r.summary());
    assert_eq!(
        r.header("www-authenticate"),
        Some(www_authenticate(path, description).as_str()),
        "{}",
        r.summary()
    );
    assert_eq!(r.text(), description, "{}", r.summary());
}

/// Asserts a 200 from the echo upstream.
pub fn assert_echo(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.summary());
    assert!(
        r.json().get("headers").is_some(),
        "not the echo upstream: {}",
        r.summary()
    );
}

/// meshguard's denial counter for `reason` (`meshguard.denied.<reason>`) in Envoy's stats
/// (`wasmcustom.` prefix), 0 when it was never counted.
pub fn denied(stats: &BTreeMap<String, u64>, reason: &str) -> u64 {
    stats
        .get(&format!("wasmcustom.meshguard.denied.{reason}"))
        .copied()
        .unwrap_or(0)
}
