//! Envoy bootstrap builders (JSON): loopback listeners on free ports, static clusters, the
//! meshguard wasm filter, Envoy's native `jwt_authn` (for side-by-side checks), downstream mTLS.

use serde_json::{Value, json};
use std::path::Path;

fn addr(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

/// A bootstrap with the admin API on a free loopback port.
pub fn bootstrap(listeners: Vec<Value>, clusters: Vec<Value>) -> Value {
    json!({
        "admin": {"address": addr(0)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    })
}

/// A STATIC plain-HTTP/1.1 cluster to 127.0.0.1:`port`.
pub fn cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": addr(port)}}]}],
        },
    })
}

/// A listener on a free loopback port: HTTP connection manager (stat prefix = `name`) with
/// `http_filters` then the router to cluster `upstream`; `transport_socket` for TLS.
pub fn listener(name: &str, http_filters: Vec<Value>, transport_socket: Option<Value>) -> Value {
    let mut filters = http_filters;
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    let mut chain = json!({
        "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "15s"}}],
                }]},
                "http_filters": filters,
            },
        }],
    });
    if let (Some(ts), Some(obj)) = (transport_socket, chain.as_object_mut()) {
        obj.insert("transport_socket".into(), ts);
    }
    json!({"name": name, "address": addr(0), "filter_chains": [chain]})
}

/// The meshguard filter: `envoy.filters.http.wasm` on V8 with `plugin_config` as its JSON
/// configuration (a `google.protobuf.StringValue`).
pub fn meshguard(wasm: &Path, plugin_config: &Value) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "meshguard",
                "root_id": "meshguard",
                "fail_open": false,
                "vm_config": {
                    "vm_id": "meshguard",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm.display().to_string()}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config.to_string(),
                },
            },
        },
    })
}

/// Envoy's native `jwt_authn`: one provider, remote JWKS from cluster `idp`, `sub` → `x-user-id`,
/// a JWT required on every path except those starting with `/public`.
pub fn jwt_authn(issuer: &str, audience: &str, jwks_uri: &str) -> Value {
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"idp": {
                "issuer": issuer,
                "audiences": [audience],
                "remote_jwks": {
                    "http_uri": {"uri": jwks_uri, "cluster": "idp", "timeout": "5s"},
                    "cache_duration": "300s",
                },
                "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
                "from_cookies": ["np_scope_token"],
                "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}],
            }},
            "rules": [
                {"match": {"prefix": "/public"}},
                {"match": {"prefix": "/"}, "requires": {"provider_name": "idp"}},
            ],
        },
    })
}

/// A downstream TLS transport socket requiring a client certificate signed by `ca`.
pub fn downstream_mtls(cert: &Path, key: &Path, ca: &Path) -> Value {
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": true,
            "common_tls_context": {
                "tls_certificates": [{
                    "certificate_chain": {"filename": cert.display().to_string()},
                    "private_key": {"filename": key.display().to_string()},
                }],
                "validation_context": {"trusted_ca": {"filename": ca.display().to_string()}},
            },
        },
    })
}
