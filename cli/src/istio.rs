//! Istio's RequestAuthentication and AuthorizationPolicy specs (security.istio.io v1 and v1beta1,
//! which share one schema), as strict serde types: a field meshguard does not know is an error,
//! never silently dropped. Serialising them back writes the same camelCase JSON, which is the
//! filter's `jwtRules[]` vocabulary.
//!
//! An AuthorizationPolicy's rules are the filter's own types (`meshguard::policy::RuleSpec` and
//! below, with its `when` grammar `meshguard::policy::ConditionKey`): only what the filter has
//! no use for is declared here, the resource's targeting (`selector`, `targetRef(s)`).

use meshguard::policy::{Action, ProviderSpec, RuleSpec};
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

/// Istio's AuthorizationPolicy spec: its targeting, then the fields the filter's
/// `meshguard::policy::PolicySpec` has too, with the filter's types.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    #[serde(default)]
    pub selector: Option<Selector>,
    #[serde(default)]
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub target_refs: Option<Vec<TargetRef>>,
    /// Absent (or `null`): ALLOW, Istio's default.
    #[serde(default)]
    pub action: Option<Action>,
    #[serde(default)]
    pub provider: Option<ProviderSpec>,
    /// Absent, `null` and `[]` all mean "no rules".
    #[serde(default)]
    pub rules: Option<Vec<RuleSpec>>,
}
