//! SPIFFE IDs and Istio principal forms.
//!
//! A SPIFFE ID is `spiffe://<trust-domain>/<path>` (SPIFFE-ID.md, "SPIFFE Identity and
//! Verifiable Identity Document"). Istio issues workload identities of the form
//! `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>` and writes them in policies
//! without the scheme (`cluster.local/ns/foo/sa/bar`, the "principal" form).
//!
//! [`SpiffeId::parse`] validates strictly, as go-spiffe does: a lower-case scheme, a trust domain
//! of `[a-z0-9._-]` (no port, no user info), path segments of `[a-zA-Z0-9._-]` that are neither
//! empty nor `.`/`..`, no trailing slash, no query, fragment or percent-encoding. It borrows from
//! its input so a request-time parse never allocates.
//!
//! Policy matching does not depend on this parser: Istio matches its `namespaces`,
//! `serviceAccounts` and `trustDomains` fields with patterns over the raw URI SAN, and
//! `crate::policy` reproduces those patterns exactly (a non-conformant peer URI must match there
//! exactly as it would in Envoy). This module is for code that needs a *valid* identity: logging,
//! header output, the trusted-XFCC option's diagnostics.

use std::fmt;

/// The URI scheme prefix of every SPIFFE ID.
pub const SPIFFE_PREFIX: &str = "spiffe://";

/// Maximum length of a SPIFFE ID in bytes (SPIFFE-ID.md §2.3: URIs up to 2048 bytes).
pub const MAX_SPIFFE_ID_LEN: usize = 2048;

/// Maximum length of a trust domain name in bytes (SPIFFE-ID.md §2.1: 255 bytes).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// Why a string is not a valid SPIFFE ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityError {
    /// The input does not start with the lower-case `spiffe://` scheme.
    Scheme,
    /// Nothing between `spiffe://` and the path.
    EmptyTrustDomain,
    /// A trust domain byte outside `[a-z0-9._-]` (upper case, `:` port, `@` user info, ...).
    TrustDomainChar,
    /// The trust domain is longer than [`MAX_TRUST_DOMAIN_LEN`].
    TrustDomainTooLong,
    /// The whole ID is longer than [`MAX_SPIFFE_ID_LEN`].
    TooLong,
    /// An empty path segment (`//` or a trailing `/`).
    EmptySegment,
    /// A `.` or `..` path segment.
    DotSegment,
    /// A path byte outside `[a-zA-Z0-9._-]` (percent-encoding, `?`, `#`, ...).
    PathChar,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            IdentityError::Scheme => "SPIFFE ID must start with \"spiffe://\"",
            IdentityError::EmptyTrustDomain => "SPIFFE ID has an empty trust domain",
            IdentityError::TrustDomainChar => {
                "SPIFFE trust domain may only contain lower-case letters, digits, '.', '-' and '_'"
            }
            IdentityError::TrustDomainTooLong => "SPIFFE trust domain is longer than 255 bytes",
            IdentityError::TooLong => "SPIFFE ID is longer than 2048 bytes",
            IdentityError::EmptySegment => {
                "SPIFFE ID path has an empty segment (\"//\" or a trailing '/')"
            }
            IdentityError::DotSegment => "SPIFFE ID path has a '.' or '..' segment",
            IdentityError::PathChar => {
                "SPIFFE ID path may only contain letters, digits, '.', '-', '_' and '/'"
            }
        };
        f.write_str(text)
    }
}

impl std::error::Error for IdentityError {}

/// A validated SPIFFE ID borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiffeId<'a> {
    uri: &'a str,
    trust_domain: &'a str,
    path: &'a str,
}

impl<'a> SpiffeId<'a> {
    /// Parses and validates `uri` (e.g. a peer certificate's URI SAN).
    pub fn parse(uri: &'a str) -> Result<Self, IdentityError> {
        if uri.len() > MAX_SPIFFE_ID_LEN {
            return Err(IdentityError::TooLong);
        }
        let rest = uri
            .strip_prefix(SPIFFE_PREFIX)
            .ok_or(IdentityError::Scheme)?;
        let (trust_domain, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        validate_trust_domain(trust_domain)?;
        validate_path(path)?;
        Ok(SpiffeId {
            uri,
            trust_domain,
            path,
        })
    }

    /// The full URI, `spiffe://td/path`.
    pub fn as_str(&self) -> &'a str {
        self.uri
    }

    /// The trust domain, e.g. `cluster.local`.
    pub fn trust_domain(&self) -> &'a str {
        self.trust_domain
    }

    /// The path including its leading `/`, or `""` for a trust-domain-only ID.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// Istio's principal form: the ID without the scheme, `cluster.local/ns/foo/sa/bar`.
    pub fn istio_principal(&self) -> &'a str {
        self.uri.get(SPIFFE_PREFIX.len()..).unwrap_or_default()
    }

    /// The namespace of an Istio identity (`/ns/<ns>/...`), when the path starts that way.
    pub fn namespace(&self) -> Option<&'a str> {
        let mut segments = self.segments();
        match (segments.next(), segments.next()) {
            (Some("ns"), Some(ns)) => Some(ns),
            _ => None,
        }
    }

    /// The service account of an Istio identity: the path is exactly `/ns/<ns>/sa/<sa>`.
    pub fn service_account(&self) -> Option<&'a str> {
        let mut segments = self.segments();
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("ns"), Some(_), Some("sa"), Some(sa), None) => Some(sa),
            _ => None,
        }
    }

    fn segments(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let path = self.path;
        path.strip_prefix('/')
            .unwrap_or(path)
            .split('/')
            .filter(|s| !s.is_empty())
    }
}

impl fmt::Display for SpiffeId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri)
    }
}

fn validate_trust_domain(td: &str) -> Result<(), IdentityError> {
    if td.is_empty() {
        return Err(IdentityError::EmptyTrustDomain);
    }
    if td.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(IdentityError::TrustDomainTooLong);
    }
    let ok = td
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(IdentityError::TrustDomainChar)
    }
}

fn validate_path(path: &str) -> Result<(), IdentityError> {
    if path.is_empty() {
        return Ok(());
    }
    // `path` starts with '/' (split at the first one); every segment after it is checked.
    for segment in path.split('/').skip(1) {
        if segment.is_empty() {
            return Err(IdentityError::EmptySegment);
        }
        if segment == "." || segment == ".." {
            return Err(IdentityError::DotSegment);
        }
        let ok = segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !ok {
            return Err(IdentityError::PathChar);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    // Vectors from the SPIFFE ID specification (github.com/spiffe/spiffe, standards/SPIFFE-ID.md
    // §2 "SPIFFE Identity", §2.1 "Trust Domain", §2.2 "Path") and the validation cases of
    // go-spiffe's spiffeid package that implement it.
    #[test]
    fn valid_ids() {
        let cases: &[(&str, &str, &str)] = &[
            ("spiffe://trustdomain", "trustdomain", ""),
            ("spiffe://trustdomain/path", "trustdomain", "/path"),
            (
                "spiffe://trustdomain/path/element",
                "trustdomain",
                "/path/element",
            ),
            ("spiffe://example.org/service", "example.org", "/service"),
            (
                "spiffe://staging.example.com/payments/mysql",
                "staging.example.com",
                "/payments/mysql",
            ),
            (
                "spiffe://k8s-west.example.com/ns/staging/sa/default",
                "k8s-west.example.com",
                "/ns/staging/sa/default",
            ),
            ("spiffe://td_1-2.x/P.a-t_h/9", "td_1-2.x", "/P.a-t_h/9"),
            // A segment merely containing dots is fine; only "." and ".." are reserved.
            ("spiffe://td/.../a..b", "td", "/.../a..b"),
        ];
        for (uri, td, path) in cases {
            let id = SpiffeId::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(id.trust_domain(), *td, "{uri}");
            assert_eq!(id.path(), *path, "{uri}");
            assert_eq!(id.as_str(), *uri);
            assert_eq!(id.to_string(), *uri);
        }
    }

    #[test]
    fn invalid_ids() {
        use IdentityError::*;
        let cases: &[(&str, IdentityError)] = &[
            ("", Scheme),
            ("spiffe", Scheme),
            ("spiffe:/", Scheme),
            ("https://trustdomain/path", Scheme),
            ("SPIFFE://trustdomain/path", Scheme),
            ("spiffe://", EmptyTrustDomain),
            ("spiffe:///path", EmptyTrustDomain),
            ("spiffe://Trustdomain/path", TrustDomainChar),
            ("spiffe://trustdomain:8080/path", TrustDomainChar),
            ("spiffe://user@trustdomain/path", TrustDomainChar),
            ("spiffe://trust%20domain/path", TrustDomainChar),
            ("spiffe://trustdomain/", EmptySegment),
            ("spiffe://trustdomain/path/", EmptySegment),
            ("spiffe://trustdomain//path", EmptySegment),
            ("spiffe://trustdomain/./path", DotSegment),
            ("spiffe://trustdomain/path/..", DotSegment),
            ("spiffe://trustdomain/path?query=1", PathChar),
            ("spiffe://trustdomain/path#fragment", PathChar),
            ("spiffe://trustdomain/%41", PathChar),
            ("spiffe://trustdomain/pa th", PathChar),
        ];
        for (uri, want) in cases {
            assert_eq!(SpiffeId::parse(uri), Err(*want), "{uri}");
        }
    }

    #[test]
    fn length_limits() {
        let td = "a".repeat(MAX_TRUST_DOMAIN_LEN);
        assert!(SpiffeId::parse(&format!("spiffe://{td}/x")).is_ok());
        let td = "a".repeat(MAX_TRUST_DOMAIN_LEN + 1);
        assert_eq!(
            SpiffeId::parse(&format!("spiffe://{td}/x")),
            Err(IdentityError::TrustDomainTooLong)
        );
        let long = format!("spiffe://td/{}", "p".repeat(MAX_SPIFFE_ID_LEN));
        assert_eq!(SpiffeId::parse(&long), Err(IdentityError::TooLong));
        let exact = format!("spiffe://td/{}", "p".repeat(MAX_SPIFFE_ID_LEN - 12));
        assert_eq!(exact.len(), MAX_SPIFFE_ID_LEN);
        assert!(SpiffeId::parse(&exact).is_ok());
    }

    #[test]
    fn istio_accessors() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/order/sa/order-service").unwrap();
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.namespace(), Some("order"));
        assert_eq!(id.service_account(), Some("order-service"));
        assert_eq!(
            id.istio_principal(),
            "cluster.local/ns/order/sa/order-service"
        );

        let other = SpiffeId::parse("spiffe://example.org/payments/mysql").unwrap();
        assert_eq!(other.namespace(), None);
        assert_eq!(other.service_account(), None);

        let ns_only = SpiffeId::parse("spiffe://td/ns/foo").unwrap();
        assert_eq!(ns_only.namespace(), Some("foo"));
        assert_eq!(ns_only.service_account(), None);

        let longer = SpiffeId::parse("spiffe://td/ns/foo/sa/bar/extra").unwrap();
        assert_eq!(longer.service_account(), None);

        let bare = SpiffeId::parse("spiffe://td").unwrap();
        assert_eq!(bare.istio_principal(), "td");
        assert_eq!(bare.namespace(), None);
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            IdentityError::Scheme.to_string(),
            "SPIFFE ID must start with \"spiffe://\""
        );
        assert!(IdentityError::DotSegment.to_string().contains("'..'"));
    }
}
