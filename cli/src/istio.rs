//! Istio's RequestAuthentication and AuthorizationPolicy specs (security.istio.io v1 and v1beta1,
//! which share one schema), as strict serde types: a field meshguard does not know is an error,
//! never silently dropped. Serialising them back writes the same camelCase JSON, which is the
//! filter's `jwtRules[]` / `policies[].rules` vocabulary.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FromHeader {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimToHeader {
    pub header: String,
    pub claim: String,
}

/// Istio's JWTRule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtRule {
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Istio's deprecated spelling of `jwksUri`; folded into it on output.
    #[serde(default, rename = "jwks_uri", skip_serializing)]
    pub jwks_uri_legacy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_headers: Option<Vec<FromHeader>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_params: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_cookies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_payload_to_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_original_token: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_claim_to_headers: Option<Vec<ClaimToHeader>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_delimited_claims: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestAuthenticationSpec {
    #[serde(default)]
    pub selector: Option<Selector>,
    #[serde(default)]
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub target_refs: Option<Vec<TargetRef>>,
    #[serde(default)]
    pub jwt_rules: Vec<JwtRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Action {
    #[serde(rename = "ALLOW")]
    Allow,
    #[serde(rename = "DENY")]
    Deny,
    #[serde(rename = "AUDIT")]
    Audit,
    #[serde(rename = "CUSTOM")]
    Custom,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Provider {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    #[serde(default)]
    pub selector: Option<Selector>,
    #[serde(default)]
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub target_refs: Option<Vec<TargetRef>>,
    #[serde(default)]
    pub action: Option<Action>,
    #[serde(default)]
    pub provider: Option<Provider>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

macro_rules! string_lists {
    ($(#[$m:meta])* $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $name {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<Vec<String>>,
            )*
        }
    };
}

string_lists!(
    /// `rules[].from[].source`.
    Source {
        principals, not_principals, request_principals, not_request_principals,
        namespaces, not_namespaces, service_accounts, not_service_accounts,
        trust_domains, not_trust_domains, ip_blocks, not_ip_blocks,
        remote_ip_blocks, not_remote_ip_blocks,
    }
);

string_lists!(
    /// `rules[].to[].operation`.
    Operation { hosts, not_hosts, ports, not_ports, methods, not_methods, paths, not_paths }
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleFrom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleTo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Condition {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<RuleFrom>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<RuleTo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Vec<Condition>>,
}

/// `when[].key` values the filter evaluates (issue 5). `Err` carries why a key is refused.
pub fn check_condition_key(key: &str) -> Result<(), &'static str> {
    const EXACT: &[&str] = &[
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "source.ip",
        "remote.ip",
        "source.namespace",
        "source.principal",
        "source.trustDomain",
        "source.serviceAccount",
        "destination.ip",
        "destination.port",
        "connection.sni",
    ];
    if EXACT.contains(&key) {
        return Ok(());
    }
    if key.starts_with("experimental.") {
        return Err("experimental.* keys are Envoy-filter-specific and not supported by meshguard");
    }
    if let Some(rest) = key.strip_prefix("request.auth.claims") {
        return if bracket_groups(rest).is_some_and(|n| n >= 1) {
            Ok(())
        } else {
            Err("expected request.auth.claims[name] or request.auth.claims[a][b]...")
        };
    }
    if let Some(rest) = key.strip_prefix("request.headers") {
        return if bracket_groups(rest) == Some(1) {
            Ok(())
        } else {
            Err("expected request.headers[name]")
        };
    }
    Err("unknown condition key")
}

/// Counts `[x]` groups making up all of `s` (None when malformed or a group is empty).
fn bracket_groups(s: &str) -> Option<usize> {
    let mut n = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        let name = inner.get(..end)?;
        if name.is_empty() || name.contains('[') {
            return None;
        }
        rest = inner.get(end + 1..)?;
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_keys() {
        for ok in [
            "request.auth.claims[aud]",
            "request.auth.claims[nested][key1]",
            "request.headers[x-foo]",
            "source.ip",
            "destination.port",
        ] {
            assert_eq!(check_condition_key(ok), Ok(()), "{ok}");
        }
        for bad in [
            "request.auth.claims",
            "request.auth.claims[]",
            "request.auth.claims[a",
            "request.headers[a][b]",
            "experimental.envoy.filters.network.mysql_proxy[db.table]",
            "source.foo",
        ] {
            assert!(check_condition_key(bad).is_err(), "{bad}");
        }
    }
}
