//! The policy module's one error type: everything that makes a policy set fail to compile.
//!
//! Each variant names the policy and the exact field (`rules[1].to[0].operation.ports[2]`) so an
//! operator can fix the config from the `on_configure` log line alone. Requests never produce a
//! `PolicyError`: evaluation cannot fail.

use std::fmt;

/// A policy (or the policy options) that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// `name` is empty.
    EmptyName {
        /// Index of the policy in the `policies` array.
        index: usize,
    },
    /// Two policies share a name (logs and metrics are keyed by it).
    DuplicateName {
        /// The repeated name.
        policy: String,
    },
    /// `action: CUSTOM` (external authorization) is not supported.
    Custom {
        /// The policy.
        policy: String,
        /// `provider.name`, when given.
        provider: Option<String>,
    },
    /// `provider` on a non-CUSTOM policy (Istio rejects it too).
    ProviderWithoutCustom {
        /// The policy.
        policy: String,
    },
    /// `selector`, `targetRef` or `targetRefs`: these belong to the resource, not the rules.
    ResourceField {
        /// The policy.
        policy: String,
        /// The field name as written.
        field: &'static str,
    },
    /// A DENY policy without rules would never match (Istio rejects it).
    DenyWithoutRules {
        /// The policy.
        policy: String,
    },
    /// A structural problem at `at` (empty `from`, nil `source`, empty operation, ...).
    Structure {
        /// The policy.
        policy: String,
        /// Field path, e.g. `rules[0].from[1].source`.
        at: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// An empty string in a value list.
    EmptyValue {
        /// The policy.
        policy: String,
        /// Field path of the value, e.g. `rules[0].to[0].operation.paths[1]`.
        at: String,
    },
    /// A value that is not an IP address or CIDR range.
    BadCidr {
        /// The policy.
        policy: String,
        /// Field path of the value.
        at: String,
        /// The value as written.
        value: String,
        /// Why it does not parse.
        reason: &'static str,
    },
    /// A value that is not a port number (0–65535).
    BadPort {
        /// The policy.
        policy: String,
        /// Field path of the value.
        at: String,
        /// The value as written.
        value: String,
    },
    /// A path using `{*}`/`{**}` that is not a valid template.
    BadPathTemplate {
        /// The policy.
        policy: String,
        /// Field path of the value.
        at: String,
        /// The value as written.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A `request.auth.binding` value that names no binding meshguard checks.
    BadBinding {
        /// The policy.
        policy: String,
        /// Field path of the value.
        at: String,
        /// The value as written.
        value: String,
    },
    /// A `serviceAccounts` value that is not `<namespace>/<name>`.
    BadServiceAccount {
        /// The policy.
        policy: String,
        /// Field path of the value.
        at: String,
        /// The value as written.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A `when` key that is not an Istio attribute.
    UnknownKey {
        /// The policy.
        policy: String,
        /// Field path of the condition, e.g. `rules[0].when[2].key`.
        at: String,
        /// The key as written.
        key: String,
    },
    /// A `when` key that Istio knows but meshguard cannot evaluate.
    UnsupportedKey {
        /// The policy.
        policy: String,
        /// Field path of the condition.
        at: String,
        /// The key as written.
        key: String,
        /// Why it is not supported.
        reason: &'static str,
    },
    /// A `when` key with a malformed `[...]` part (`request.headers[]`, missing `]`, ...).
    BadKey {
        /// The policy.
        policy: String,
        /// Field path of the condition.
        at: String,
        /// The key as written.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `when` condition with neither `values` nor `notValues`.
    NoValues {
        /// The policy.
        policy: String,
        /// Field path of the condition.
        at: String,
        /// The key.
        key: String,
    },
    /// An invalid [`super::PolicyOptions`] value.
    Option {
        /// The option's config name.
        option: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::EmptyName { index } => {
                write!(f, "policies[{index}]: `name` must not be empty")
            }
            PolicyError::DuplicateName { policy } => {
                write!(
                    f,
                    "policy {policy:?}: the name is used by more than one policy"
                )
            }
            PolicyError::Custom { policy, provider } => {
                write!(
                    f,
                    "policy {policy:?}: action CUSTOM (external authorization"
                )?;
                if let Some(p) = provider {
                    write!(f, " via provider {p:?}")?;
                }
                f.write_str(") is not supported by meshguard; use ALLOW, DENY or AUDIT")
            }
            PolicyError::ProviderWithoutCustom { policy } => write!(
                f,
                "policy {policy:?}: `provider` is only valid with action CUSTOM, which meshguard does not support"
            ),
            PolicyError::ResourceField { policy, field } => write!(
                f,
                "policy {policy:?}: `{field}` belongs to the AuthorizationPolicy resource, not its rules; \
                 where meshguard applies is decided by the WasmPlugin's selector/targetRefs"
            ),
            PolicyError::DenyWithoutRules { policy } => write!(
                f,
                "policy {policy:?}: a DENY policy without `rules` never matches; \
                 add an empty rule `{{}}` to deny every request"
            ),
            PolicyError::Structure {
                policy,
                at,
                problem,
            } => write!(f, "policy {policy:?}: {at}: {problem}"),
            PolicyError::EmptyValue { policy, at } => {
                write!(f, "policy {policy:?}: {at}: empty value not allowed")
            }
            PolicyError::BadCidr {
                policy,
                at,
                value,
                reason,
            } => write!(
                f,
                "policy {policy:?}: {at}: bad IP address or CIDR range {value:?}: {reason}"
            ),
            PolicyError::BadPort { policy, at, value } => write!(
                f,
                "policy {policy:?}: {at}: bad port {value:?}: must be a decimal number from 0 to 65535"
            ),
            PolicyError::BadBinding { policy, at, value } => write!(
                f,
                "policy {policy:?}: {at}: unknown token binding {value:?}: expected \"x5t#S256\" (certificate-bound), \"jkt\" (DPoP-bound) or \"*\" (any binding)"
            ),
            PolicyError::BadPathTemplate {
                policy,
                at,
                value,
                reason,
            } => write!(
                f,
                "policy {policy:?}: {at}: bad path template {value:?}: {reason}"
            ),
            PolicyError::BadServiceAccount {
                policy,
                at,
                value,
                reason,
            } => write!(
                f,
                "policy {policy:?}: {at}: bad service account {value:?}: {reason}"
            ),
            PolicyError::UnknownKey { policy, at, key } => write!(
                f,
                "policy {policy:?}: {at}: unknown attribute {key:?} \
                 (see https://istio.io/latest/docs/reference/config/security/conditions/)"
            ),
            PolicyError::UnsupportedKey {
                policy,
                at,
                key,
                reason,
            } => write!(
                f,
                "policy {policy:?}: {at}: attribute {key:?} is not supported: {reason}"
            ),
            PolicyError::BadKey {
                policy,
                at,
                key,
                reason,
            } => write!(f, "policy {policy:?}: {at}: bad key {key:?}: {reason}"),
            PolicyError::NoValues { policy, at, key } => write!(
                f,
                "policy {policy:?}: {at}: at least one of `values` or `notValues` must be set for key {key:?}"
            ),
            PolicyError::Option { option, problem } => {
                write!(f, "policy option `{option}`: {problem}")
            }
        }
    }
}

impl std::error::Error for PolicyError {}
