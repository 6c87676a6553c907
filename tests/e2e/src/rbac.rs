//! Envoy's native authentication and authorization as Istio configures them, for side-by-side
//! checks with meshguard: the `jwt_authn` filter as Istio's RequestAuthentication translator
//! writes it, Envoy's RBAC filter, and builders for the RBAC shapes Istio's AuthorizationPolicy
//! translator emits (istio/istio `pilot/pkg/security/authz/builder/testdata/http/*-out.yaml`,
//! e.g. `allow-full-rule-out.yaml`, `simple-policy-td-aliases-out.yaml`); plus an HTTP listener
//! whose connection manager takes extra fields (`use_remote_address`, `normalize_path`, XFCC).
//!
//! The builders are deliberately small: a test composes the RBAC config of its policy by hand
//! from them, field by field, the way Istio's translator would, so a reader can hold each one
//! against Istio's goldens.

use crate::config;
use serde_json::{Map, Value, json};

/// [`config::listener`] with `hcm_extra`'s fields merged into its HTTP connection manager.
pub fn listener_with(
    name: &str,
    http_filters: Vec<Value>,
    transport_socket: Option<Value>,
    hcm_extra: &Value,
) -> Value {
    let mut l = config::listener(name, http_filters, transport_socket);
    if let (Some(hcm), Some(extra)) = (
        l.pointer_mut("/filter_chains/0/filters/0/typed_config")
            .and_then(Value::as_object_mut),
        hcm_extra.as_object(),
    ) {
        for (k, v) in extra {
            hcm.insert(k.clone(), v.clone());
        }
    }
    l
}

/// The connection-manager fields of an Istio sidecar's inbound listener with the mesh defaults
/// (`pathNormalization: BASE`, no `numTrustedProxies`): RFC 3986 normalisation, slashes NOT
/// merged, escaped slashes kept, `use_remote_address: false` (istio/istio
/// `pilot/pkg/networking/core/listener_builder.go`). `use_remote_address` is a parameter because
/// gateways and some tests set it.
pub fn istio_hcm(use_remote_address: bool) -> Value {
    json!({
        "normalize_path": true,
        "merge_slashes": false,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "use_remote_address": use_remote_address,
    })
}

/// Envoy's `jwt_authn` as Istio generates it for one `jwtRules` entry
/// (`pilot/pkg/security/authn/policy_applier.go`, `convertToEnvoyJwtConfig`): provider
/// `origins-0` with the payload in dynamic metadata under `payload` (what the RBAC
/// `requestPrincipals` matchers read; `scope` and `permission` split on spaces, Istio's
/// default), the requirement "this provider OR `allow_missing`" on every path (no token passes,
/// a bad one is a 401), and `bypass_cors_preflight: true`. The default token locations
/// (`Authorization: Bearer`, `access_token`), as Istio leaves them.
pub fn istio_jwt_authn(issuer: &str, audiences: &[&str], jwks_uri: &str, cluster: &str) -> Value {
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"origins-0": {
                "issuer": issuer,
                "audiences": audiences,
                "remote_jwks": {
                    "http_uri": {"uri": jwks_uri, "cluster": cluster, "timeout": "5s"},
                    "cache_duration": "300s",
                },
                "payload_in_metadata": "payload",
                "normalize_payload_in_metadata": {"space_delimited_claims": ["permission", "scope"]},
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "origins-0"}, {"allow_missing": {}}
            ]}}}],
            "bypass_cors_preflight": true,
        },
    })
}

/// Envoy's RBAC filter with `action` (`ALLOW` or `DENY`) and named policies (Istio names them
/// `ns[<ns>]-policy[<name>]-rule[<i>]`, one per rule).
pub fn filter(action: &str, policies: Vec<(String, Value)>) -> Value {
    let policies: Map<String, Value> = policies.into_iter().collect();
    json!({
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": action, "policies": policies},
        },
    })
}

/// Istio's name of rule `rule` of policy `name` in namespace `default`.
pub fn policy_name(name: &str, rule: usize) -> String {
    format!("ns[default]-policy[{name}]-rule[{rule}]")
}

/// One RBAC policy = one Istio rule. Istio writes one `and_rules` per `to` entry (a rule without
/// `to`: `[and_rules [any]]`) and one `and_ids` per `from` entry (without `from`:
/// `[and_ids [any]]`).
pub fn policy(permissions: Vec<Value>, principals: Vec<Value>) -> Value {
    json!({"permissions": permissions, "principals": principals})
}

/// A permission that matches everything, in Istio's shape: `and_rules [any]`.
pub fn any_permission() -> Value {
    and_rules(vec![json!({"any": true})])
}

/// A principal that matches everything, in Istio's shape: `and_ids [any]`.
pub fn any_principal() -> Value {
    and_ids(vec![json!({"any": true})])
}

pub fn and_rules(rules: Vec<Value>) -> Value {
    json!({"and_rules": {"rules": rules}})
}

/// One field of an operation: its values ORed (Istio wraps even a single value).
pub fn or_rules(rules: Vec<Value>) -> Value {
    json!({"or_rules": {"rules": rules}})
}

/// A negative field (`notHosts`, …): `not_rule` around the ORed values.
pub fn not_rule(rule: Value) -> Value {
    json!({"not_rule": rule})
}

pub fn and_ids(ids: Vec<Value>) -> Value {
    json!({"and_ids": {"ids": ids}})
}

/// One field of a source: its values ORed (Istio wraps even a single value).
pub fn or_ids(ids: Vec<Value>) -> Value {
    json!({"or_ids": {"ids": ids}})
}

pub fn not_id(id: Value) -> Value {
    json!({"not_id": id})
}

/// Go's `regexp.QuoteMeta`, which Istio applies to literal parts of a regex.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn regex(re: &str) -> Value {
    json!({"safe_regex": {"regex": re}})
}

/// `authenticated.principal_name` with a string matcher: Envoy tries every URI SAN, every DNS
/// SAN, then the subject of the peer certificate.
pub fn authenticated(matcher: Value) -> Value {
    json!({"authenticated": {"principal_name": matcher}})
}

/// A `principals` value as Istio translates it (`matcher.StringMatcherWithPrefix(v,
/// "spiffe://")`): `*` → regex `.+`; `x*` → prefix `spiffe://x`; `*x` → regex `spiffe://.*x`;
/// otherwise exact `spiffe://x`.
pub fn principal(value: &str) -> Value {
    let m = if value == "*" {
        regex(".+")
    } else if let Some(prefix) = value.strip_suffix('*') {
        json!({"prefix": format!("spiffe://{prefix}")})
    } else if let Some(suffix) = value.strip_prefix('*') {
        regex(&format!("spiffe://.*{}", quote_meta(suffix)))
    } else {
        json!({"exact": format!("spiffe://{value}")})
    };
    authenticated(m)
}

/// A `principals` value under trust-domain aliases, as Istio expands it: a value in any of
/// `domains` (the trust domain and its aliases) is repeated for each of them, the trust domain
/// first (`simple-policy-td-aliases-out.yaml`). Returns the ORed alternatives.
pub fn principal_with_aliases(value: &str, domains: &[&str]) -> Vec<Value> {
    let rest = domains
        .iter()
        .find_map(|td| value.strip_prefix(&format!("{td}/")));
    match rest {
        Some(rest) => domains
            .iter()
            .map(|td| principal(&format!("{td}/{rest}")))
            .collect(),
        None => vec![principal(value)],
    }
}

/// A `namespaces` value without wildcards, as Istio translates it: regex `.*/ns/<ns>/.*`.
pub fn namespace(ns: &str) -> Value {
    authenticated(regex(&format!(".*/ns/{}/.*", quote_meta(ns))))
}

fn cidr(block: &str) -> Value {
    let (addr, len) = match block.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().unwrap_or(0)),
        None => (block, if block.contains(':') { 128 } else { 32 }),
    };
    json!({"address_prefix": addr, "prefix_len": len})
}

/// An `ipBlocks` value: `direct_remote_ip` (always the physical peer, never X-Forwarded-For).
pub fn direct_remote_ip(block: &str) -> Value {
    json!({"direct_remote_ip": cidr(block)})
}

/// A `remoteIpBlocks` value: `remote_ip` (the address the connection manager derived, from
/// X-Forwarded-For when `use_remote_address` is false or trusted hops are configured).
pub fn remote_ip(block: &str) -> Value {
    json!({"remote_ip": cidr(block)})
}

/// A `hosts` value without wildcards: `:authority` exact, case-insensitive (the port is part
/// of the value matched).
pub fn host(value: &str) -> Value {
    json!({"header": {"name": ":authority", "string_match": {"exact": value, "ignore_case": true}}})
}

/// A `paths` value without wildcards or templates: `url_path` exact (path without query).
pub fn path(value: &str) -> Value {
    json!({"url_path": {"path": {"exact": value}}})
}

fn payload(claim: &str, matcher: Value) -> Value {
    json!({"metadata": {
        "filter": "envoy.filters.http.jwt_authn",
        "path": [{"key": "payload"}, {"key": claim}],
        "value": {"string_match": matcher},
    }})
}

/// A `requestPrincipals` value `*`: `iss` and `sub` both present (`.+`), read from the
/// `jwt_authn` payload metadata.
pub fn request_principal_any() -> Value {
    and_ids(vec![
        payload("iss", regex(".+")),
        payload("sub", regex(".+")),
    ])
}
