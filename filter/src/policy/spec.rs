//! The serde model of one entry of the plugin config's `policies` array: an Istio
//! `AuthorizationPolicy` spec with the same camelCase field names as the CRD
//! (`security.istio.io/v1`, `tests/fixtures/istio-crds/crds.yaml`), plus our `name` and `dryRun`.
//!
//! Every struct denies unknown fields so a typo is a configuration error, never a silently
//! ignored (and therefore wider or narrower) rule. `selector`, `targetRef`, `targetRefs` and
//! `provider` are accepted by the parser only so that [`super::compile`] can reject them with a
//! message that says why, instead of serde's generic "unknown field".
//!
//! The types also serialise, to the same camelCase JSON (absent fields stay absent; `selector`,
//! `targetRef` and `targetRefs`, which compile refuses, are never written): `meshguard
//! istio-convert` reads Istio's rules and writes its `policies` with them, so the converter and
//! the filter share one model of the spec (and one `when` grammar, [`super::ConditionKey`]).
//!
//! Absent vs empty matters and is kept: `rules: null`/absent and `rules: []` both mean "no rules"
//! (the policy never matches), while `from: []` is an error in Istio (`from` must not be empty)
//! and absent `from` means "any source".

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// The action of a policy. Istio's default when `action` is absent is `ALLOW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// Allow a request only if it matches the rules (deny-by-default once any ALLOW exists).
    #[default]
    Allow,
    /// Deny a request if it matches any rule.
    Deny,
    /// Report (log, count) a request that matches; never changes the decision.
    Audit,
    /// Delegation to an external authorizer: not supported (rejected at compile time).
    Custom,
}

impl Action {
    /// The CRD spelling, for messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Deny => "DENY",
            Action::Audit => "AUDIT",
            Action::Custom => "CUSTOM",
        }
    }
}

/// One policy of the plugin config (an `AuthorizationPolicy` spec plus `name` and `dryRun`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    /// Unique name, used in logs, metrics and the deny reason (Istio's `metadata.name`).
    pub name: String,
    /// `ALLOW` (default), `DENY`, `AUDIT`; `CUSTOM` is rejected.
    #[serde(default)]
    pub action: Action,
    /// The rules; `None` and `Some([])` both mean the policy never matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleSpec>>,
    /// Evaluate and report, never enforce (Istio's `istio.io/dry-run` annotation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Only accepted to reject `CUSTOM` policies with a clear message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderSpec>,
    /// Rejected: the WasmPlugin's own selector decides where meshguard runs.
    #[serde(default, skip_serializing)]
    pub selector: Option<IgnoredAny>,
    /// Rejected: the WasmPlugin's own targetRefs decide where meshguard runs.
    #[serde(default, skip_serializing)]
    pub target_ref: Option<IgnoredAny>,
    /// Rejected: the WasmPlugin's own targetRefs decide where meshguard runs.
    #[serde(default, skip_serializing)]
    pub target_refs: Option<IgnoredAny>,
}

/// `provider` of a CUSTOM policy (only read to name it in the error).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// The extension provider's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A rule: some `from` AND some `to` AND every `when`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Absent: any source. Present: at least one must match (must not be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<FromSpec>>,
    /// Absent: any operation. Present: at least one must match (must not be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<ToSpec>>,
    /// Every condition must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Vec<ConditionSpec>>,
}

/// `from[i]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FromSpec {
    /// Required by Istio (`from.source` must not be nil).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSpec>,
}

/// `to[i]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToSpec {
    /// Required by Istio (`to.operation` must not be nil).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationSpec>,
}

/// `from[i].source`: fields are ANDed, values inside a field ORed.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_principals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_principals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_request_principals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_service_accounts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_trust_domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_blocks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ip_blocks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip_blocks: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_remote_ip_blocks: Option<Vec<String>>,
}

/// `to[i].operation`: fields are ANDed, values inside a field ORed.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OperationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_hosts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ports: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_paths: Option<Vec<String>>,
}

/// `when[i]`: `key` with `values` (any matches) and/or `notValues` (none matches).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConditionSpec {
    /// An Istio attribute name, e.g. `request.auth.claims[aud]`.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_values: Option<Vec<String>>,
}
