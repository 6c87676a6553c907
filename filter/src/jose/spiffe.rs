//! SPIFFE: SPIFFE IDs (SPIFFE ID spec §2) and SPIFFE bundles (SPIFFE Trust Domain and Bundle
//! spec §4), for JWT-SVIDs (JWT-SVID spec).
//!
//! A SPIFFE bundle is a JWKS with two more members, `spiffe_refresh_hint` (seconds) and
//! `spiffe_sequence`, whose keys each say which SVID type they verify (`use: "jwt-svid"` or
//! `"x509-svid"`). Only `jwt-svid` keys are kept; every other entry is skipped with
//! [`super::SkipReason::NotJwtSvid`], visible like any skipped JWKS key.

use serde_json::Value;

use super::error::JwksError;
use super::jwk::{Jwks, KeySetKind};

/// Longest SPIFFE ID, in bytes (SPIFFE ID spec §2.3: "2048 bytes").
pub const MAX_SPIFFE_ID_BYTES: usize = 2048;
/// Longest trust domain name, in bytes (SPIFFE ID spec §2.1: "255 bytes").
pub const MAX_TRUST_DOMAIN_BYTES: usize = 255;

const SCHEME: &str = "spiffe://";

/// Why a string is not a SPIFFE ID usable as a JWT-SVID's `sub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpiffeIdError {
    /// Does not start with `spiffe://` (the scheme is lower-case).
    Scheme,
    /// Longer than [`MAX_SPIFFE_ID_BYTES`].
    TooLong,
    /// The trust domain is empty, too long, or has a character outside `[a-z0-9._-]` (upper
    /// case, `:port`, `user@`, `%`-encoding, ...).
    TrustDomain,
    /// No path (a workload's SPIFFE ID has one), or a path with an empty, `.` or `..` segment, a
    /// trailing `/`, or a character outside `[a-zA-Z0-9._-]` (a `?query`, a `#fragment`, ...).
    Path,
}

impl core::fmt::Display for SpiffeIdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SpiffeIdError::Scheme => "does not start with spiffe://",
            SpiffeIdError::TooLong => "is longer than 2048 bytes",
            SpiffeIdError::TrustDomain => {
                "has a trust domain that is empty, longer than 255 bytes or not [a-z0-9._-]"
            }
            SpiffeIdError::Path => {
                "has no path, or a path segment that is empty, '.', '..' or not [a-zA-Z0-9._-]"
            }
        })
    }
}

/// Whether `name` is a trust domain name: non-empty, at most 255 bytes of `[a-z0-9._-]`.
pub fn valid_trust_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TRUST_DOMAIN_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Checks that `id` is a workload SPIFFE ID (`spiffe://<trust-domain>/<path>`, with a path)
/// and returns its trust domain.
pub fn trust_domain_of(id: &str) -> Result<&str, SpiffeIdError> {
    let rest = id.strip_prefix(SCHEME).ok_or(SpiffeIdError::Scheme)?;
    if id.len() > MAX_SPIFFE_ID_BYTES {
        return Err(SpiffeIdError::TooLong);
    }
    let (domain, path) = match rest.split_once('/') {
        Some(split) => split,
        None => (rest, ""),
    };
    if !valid_trust_domain(domain) {
        return Err(SpiffeIdError::TrustDomain);
    }
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    if path.is_empty() || !path.split('/').all(segment_ok) {
        return Err(SpiffeIdError::Path);
    }
    Ok(domain)
}

/// A parsed SPIFFE bundle.
#[derive(Debug, Clone)]
pub struct SpiffeBundle {
    /// The `jwt-svid` keys (every other entry is in [`Jwks::skipped`]).
    pub jwks: Jwks,
    /// `spiffe_refresh_hint` in seconds, when it is a non-negative integer (otherwise absent).
    pub refresh_hint_secs: Option<u64>,
    /// `spiffe_sequence`, when it is a non-negative integer: read for the log, not acted on.
    pub sequence: Option<u64>,
}

impl SpiffeBundle {
    /// Parses a SPIFFE bundle; the errors are a JWKS's (no usable key: no `jwt-svid` key).
    pub fn parse(bytes: &[u8]) -> Result<SpiffeBundle, JwksError> {
        let (jwks, rest) = Jwks::parse_as(bytes, KeySetKind::SpiffeBundle)?;
        let number = |name: &str| rest.get(name).and_then(Value::as_u64);
        Ok(SpiffeBundle {
            refresh_hint_secs: number("spiffe_refresh_hint"),
            sequence: number("spiffe_sequence"),
            jwks,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::jose::SkipReason;

    #[test]
    fn spiffe_id_validation() {
        let ok = [
            ("spiffe://example.org/ns/default/sa/client", "example.org"),
            ("spiffe://example.org/a", "example.org"),
            (
                "spiffe://trust-domain_1.example/A.b-c_d",
                "trust-domain_1.example",
            ),
        ];
        for (id, td) in ok {
            assert_eq!(trust_domain_of(id), Ok(td), "{id}");
        }
        let bad = [
            ("", SpiffeIdError::Scheme),
            ("https://example.org/a", SpiffeIdError::Scheme),
            ("SPIFFE://example.org/a", SpiffeIdError::Scheme),
            ("spiffe:/example.org/a", SpiffeIdError::Scheme),
            ("spiffe://example.org", SpiffeIdError::Path),
            ("spiffe://example.org/", SpiffeIdError::Path),
            ("spiffe://Example.org/a", SpiffeIdError::TrustDomain),
            ("spiffe://example.org:8443/a", SpiffeIdError::TrustDomain),
            ("spiffe://user@example.org/a", SpiffeIdError::TrustDomain),
            ("spiffe:///a", SpiffeIdError::TrustDomain),
            ("spiffe://exa%6dple.org/a", SpiffeIdError::TrustDomain),
            ("spiffe://example.org/a?x=1", SpiffeIdError::Path),
            ("spiffe://example.org/a#f", SpiffeIdError::Path),
            ("spiffe://example.org/a//b", SpiffeIdError::Path),
            ("spiffe://example.org/a/./b", SpiffeIdError::Path),
            ("spiffe://example.org/a/../b", SpiffeIdError::Path),
            ("spiffe://example.org/a/", SpiffeIdError::Path),
            ("spiffe://example.org/a%2Fb", SpiffeIdError::Path),
            ("spiffe://example.org/é", SpiffeIdError::Path),
        ];
        for (id, why) in bad {
            assert_eq!(trust_domain_of(id), Err(why), "{id}");
        }
        let long = format!("spiffe://example.org/{}", "a".repeat(MAX_SPIFFE_ID_BYTES));
        assert_eq!(trust_domain_of(&long), Err(SpiffeIdError::TooLong));
        let long_td = format!("spiffe://{}/a", "a".repeat(MAX_TRUST_DOMAIN_BYTES + 1));
        assert_eq!(trust_domain_of(&long_td), Err(SpiffeIdError::TrustDomain));
        assert!(valid_trust_domain("example.org"));
        assert!(!valid_trust_domain("example.org:1"));
        assert!(!valid_trust_domain(""));
    }

    #[test]
    fn bundle_with_both_key_uses_and_refresh_hint() {
        let (jwt, x509) = two_keys();
        let bundle = serde_json::json!({
            "keys": [x509, jwt],
            "spiffe_refresh_hint": 300,
            "spiffe_sequence": 7,
        });
        let parsed = SpiffeBundle::parse(bundle.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.refresh_hint_secs, Some(300));
        assert_eq!(parsed.sequence, Some(7));
        assert_eq!(parsed.jwks.len(), 1);
        assert_eq!(parsed.jwks.keys()[0].kid(), Some("jwt"));
        assert_eq!(parsed.jwks.skipped().len(), 1);
        assert_eq!(parsed.jwks.skipped()[0].reason, SkipReason::NotJwtSvid);
        assert!(parsed.jwks.skipped_kid("x509"));

        // The same keys as a plain JWKS: `use` other than `sig` is refused there.
        assert!(Jwks::parse(bundle.to_string().as_bytes()).is_err());

        // No hint, or a malformed one: absent (the rule's cache duration applies).
        let no_hint =
            serde_json::json!({"keys": [bundle["keys"][1].clone()], "spiffe_refresh_hint": "5m"});
        let parsed = SpiffeBundle::parse(no_hint.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.refresh_hint_secs, None);

        // A key without `use` is not a jwt-svid key; a bundle of x509-svid keys only is unusable.
        let mut bare = bundle["keys"][1].clone();
        bare.as_object_mut().unwrap().remove("use");
        let only_x509 = serde_json::json!({"keys": [bundle["keys"][0].clone(), bare]});
        assert!(matches!(
            SpiffeBundle::parse(only_x509.to_string().as_bytes()),
            Err(JwksError::NoUsableKey { skipped: 2 })
        ));
    }

    fn two_keys() -> (Value, Value) {
        use meshguard_test_support::{Key, p256_key_from};
        let mut jwt = Key::p256().jwk("jwt");
        jwt["use"] = "jwt-svid".into();
        let mut x509 = Key::from(p256_key_from(9)).jwk("x509");
        x509["use"] = "x509-svid".into();
        (jwt, x509)
    }
}
