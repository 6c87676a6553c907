//! The grammar of `when` keys (docs/policies.md, "`when` keys"): one parser, used by the policy
//! compiler and by `meshguard istio-convert`, so that the two cannot disagree on which keys exist.

use std::fmt;

/// A parsed `when` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionKey {
    /// `source.ip`: the direct peer, as `ipBlocks`.
    SourceIp,
    /// `remote.ip`: as `remoteIpBlocks`.
    RemoteIp,
    /// `source.namespace`: as `namespaces`.
    SourceNamespace,
    /// `source.principal`: as `principals`.
    SourcePrincipal,
    /// `source.serviceAccount`: as `serviceAccounts`.
    SourceServiceAccount,
    /// `source.trustDomain`: as `trustDomains` (meshguard extension).
    SourceTrustDomain,
    /// `request.auth.principal`: `<iss>/<sub>`, as `requestPrincipals`.
    RequestPrincipal,
    /// `request.auth.audiences`: `aud`.
    Audiences,
    /// `request.auth.presenter`: `azp`.
    Presenter,
    /// `request.auth.binding`: how the request's token is bound, once checked (`x5t#S256`);
    /// absent for an unbound token and without a token (meshguard extension).
    AuthBinding,
    /// `destination.ip`.
    DestinationIp,
    /// `destination.port`: as `ports`.
    DestinationPort,
    /// `connection.sni`.
    Sni,
    /// `request.headers[name]` (`per_element` false) or
    /// `request.experimental.inline.headers[name]` (true: each `,`-separated element matches on
    /// its own). `name` is lower-cased.
    Header {
        /// The header name, lower-cased.
        name: String,
        /// Whether each `,`-separated element is matched on its own.
        per_element: bool,
    },
    /// `request.auth.claims[a][b]…`: the claim path (at least one name).
    Claim(Vec<String>),
}

/// Why a `when` key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// A known attribute whose `[...]` part is malformed; the text says what is expected.
    Malformed(&'static str),
    /// An Istio attribute meshguard cannot evaluate; the text says why.
    Unsupported(&'static str),
    /// Not an Istio attribute.
    Unknown,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed(expected) => f.write_str(expected),
            KeyError::Unsupported(why) => write!(f, "not supported: {why}"),
            KeyError::Unknown => f.write_str(
                "unknown attribute (see https://istio.io/latest/docs/reference/config/security/conditions/)",
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl ConditionKey {
    /// Parses a `when` key as written in a policy.
    pub fn parse(key: &str) -> Result<ConditionKey, KeyError> {
        let simple = match key {
            "source.ip" => Some(ConditionKey::SourceIp),
            "remote.ip" => Some(ConditionKey::RemoteIp),
            "source.namespace" => Some(ConditionKey::SourceNamespace),
            "source.principal" => Some(ConditionKey::SourcePrincipal),
            "source.serviceAccount" => Some(ConditionKey::SourceServiceAccount),
            "source.trustDomain" => Some(ConditionKey::SourceTrustDomain),
            "request.auth.principal" => Some(ConditionKey::RequestPrincipal),
            "request.auth.audiences" => Some(ConditionKey::Audiences),
            "request.auth.presenter" => Some(ConditionKey::Presenter),
            "request.auth.binding" => Some(ConditionKey::AuthBinding),
            "destination.ip" => Some(ConditionKey::DestinationIp),
            "destination.port" => Some(ConditionKey::DestinationPort),
            "connection.sni" => Some(ConditionKey::Sni),
            _ => None,
        };
        if let Some(k) = simple {
            return Ok(k);
        }
        if let Some(rest) = key.strip_prefix("request.headers") {
            let name = single_bracket(rest)
                .ok_or(KeyError::Malformed("expected request.headers[<name>]"))?;
            return Ok(ConditionKey::Header {
                name: name.to_ascii_lowercase(),
                per_element: false,
            });
        }
        if let Some(rest) = key.strip_prefix("request.experimental.inline.headers") {
            let name = single_bracket(rest).ok_or(KeyError::Malformed(
                "expected request.experimental.inline.headers[<name>]",
            ))?;
            return Ok(ConditionKey::Header {
                name: name.to_ascii_lowercase(),
                per_element: true,
            });
        }
        if let Some(rest) = key.strip_prefix("request.auth.claims") {
            let path = nested_brackets(rest).ok_or(KeyError::Malformed(
                "expected request.auth.claims[<name>] or [<a>][<b>]...",
            ))?;
            return Ok(ConditionKey::Claim(path));
        }
        if key.starts_with("experimental.envoy.filters.") {
            return Err(KeyError::Unsupported(
                "it reads Envoy dynamic metadata of another filter, which a Wasm filter cannot match like RBAC does",
            ));
        }
        match key {
            "destination.namespace" => Err(KeyError::Unsupported(
                "replaced by the policy's placement (metadata.namespace) in Istio",
            )),
            "destination.name" | "destination.user" => Err(KeyError::Unsupported(
                "deprecated: only supported in Istio's v1alpha1 RBAC",
            )),
            _ if key.starts_with("destination.labels") => Err(KeyError::Unsupported(
                "replaced by the workload selector in Istio",
            )),
            _ => Err(KeyError::Unknown),
        }
    }
}

/// `[name]` → `name` (non-empty, no nested brackets).
fn single_bracket(rest: &str) -> Option<&str> {
    let inner = rest.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() || inner.contains(['[', ']']) {
        None
    } else {
        Some(inner)
    }
}

/// `[a][b][c]` → `["a", "b", "c"]` (each non-empty).
fn nested_brackets(mut rest: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let body = rest.strip_prefix('[')?;
        let end = body.find(']')?;
        let name = body.get(..end)?;
        if name.is_empty() || name.contains('[') {
            return None;
        }
        parts.push(name.to_owned());
        rest = body.get(end + 1..)?;
    }
    if parts.is_empty() { None } else { Some(parts) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let header = |name: &str, per_element| ConditionKey::Header {
            name: name.to_owned(),
            per_element,
        };
        let claim =
            |path: &[&str]| ConditionKey::Claim(path.iter().map(|s| (*s).to_owned()).collect());
        for (key, want) in [
            ("source.ip", ConditionKey::SourceIp),
            ("connection.sni", ConditionKey::Sni),
            ("request.auth.binding", ConditionKey::AuthBinding),
            ("request.headers[X-Foo]", header("x-foo", false)),
            (
                "request.experimental.inline.headers[X-Foo]",
                header("x-foo", true),
            ),
            ("request.auth.claims[aud]", claim(&["aud"])),
            ("request.auth.claims[a.b][c]", claim(&["a.b", "c"])),
        ] {
            assert_eq!(ConditionKey::parse(key), Ok(want), "{key}");
        }
        for key in [
            "request.headers",
            "request.headers[]",
            "request.headers[a][b]",
            "request.headers[a",
            "request.experimental.inline.headers",
            "request.auth.claims",
            "request.auth.claims[]",
            "request.auth.claims[a",
            "request.auth.claims[a]b",
        ] {
            assert!(
                matches!(ConditionKey::parse(key), Err(KeyError::Malformed(_))),
                "{key}"
            );
        }
        for key in [
            "experimental.envoy.filters.network.mysql_proxy[db.table]",
            "destination.namespace",
            "destination.user",
            "destination.labels[app]",
        ] {
            assert!(
                matches!(ConditionKey::parse(key), Err(KeyError::Unsupported(_))),
                "{key}"
            );
        }
        for key in [
            "",
            "source.foo",
            "Source.ip",
            "request.auth.claim[a]",
            "request.auth.binding[x5t#S256]",
        ] {
            assert_eq!(ConditionKey::parse(key), Err(KeyError::Unknown), "{key}");
        }
    }
}
