//! What a rule requires of a token ([`Validation`]) and the registered-claim checks.
//!
//! Time rules (RFC 7519 §4.1.4–4.1.6), each with `clock_skew_secs` of tolerance:
//! - `exp`: required unless `require_expiration` is false; the token is expired once
//!   `now >= exp + skew`;
//! - `nbf`: not yet valid while `now + skew < nbf`;
//! - `iat`: refused when `iat > now + skew` (a token from the future means a broken issuer
//!   clock or a forged long-lived token);
//! - `max_lifetime_secs`: `exp - iat` (or `exp - now` without `iat`) must not exceed it, and
//!   a token without `exp` then fails.
//!
//! All arithmetic saturates: absurd dates cannot overflow.

use serde_json::{Map, Value};

use super::alg::AlgorithmSet;
use super::claims::{Times, claim_at};
use super::error::JoseError;

/// The default tolerance for `exp`, `nbf` and `iat` (`clockSkewSeconds`): Envoy `jwt_authn`'s
/// 60 s.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;

/// A rule's requirements for a token (one per `jwtRule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The `iss` the token must carry, compared exactly.
    pub issuer: String,
    /// Allowed audiences; the token's `aud` must contain at least one. Empty: not checked
    /// (Istio parity).
    pub audiences: Vec<String>,
    /// Allowed algorithms (default: all supported).
    pub algorithms: AlgorithmSet,
    /// Tolerance for `exp`, `nbf` and `iat`, in seconds (default [`DEFAULT_CLOCK_SKEW_SECS`]).
    pub clock_skew_secs: u64,
    /// Whether a token without `exp` is refused (default true).
    pub require_expiration: bool,
    /// Longest allowed token lifetime in seconds, if any.
    pub max_lifetime_secs: Option<u64>,
    /// Accepted `typ` header values (e.g. `at+jwt`), compared case-insensitively, with or
    /// without the `application/` prefix. Empty: `typ` is not checked.
    pub typ: Vec<String>,
    /// Claims that must be present and not null.
    pub required_claims: Vec<String>,
    /// A JWT-SVID rule's trust domain: `sub` must be a SPIFFE ID in it, `aud` and `exp` are
    /// required, and a token without `iss` is accepted (JWT-SVID spec §3).
    pub spiffe_trust_domain: Option<String>,
}

impl Validation {
    /// The defaults for `issuer`: any audience, all algorithms, 60 s skew, `exp` required, no
    /// lifetime cap, any `typ`, no extra required claims.
    pub fn new(issuer: impl Into<String>) -> Self {
        Validation {
            issuer: issuer.into(),
            audiences: Vec::new(),
            algorithms: AlgorithmSet::all(),
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
            require_expiration: true,
            max_lifetime_secs: None,
            typ: Vec::new(),
            required_claims: Vec::new(),
            spiffe_trust_domain: None,
        }
    }

    /// Whether a header `typ` is acceptable (RFC 7515 §4.1.9: media types are case-insensitive
    /// and `application/` may be omitted).
    pub(crate) fn typ_allowed(&self, typ: Option<&str>) -> bool {
        if self.typ.is_empty() {
            return true;
        }
        let Some(typ) = typ else {
            return false;
        };
        let typ = strip_application(typ);
        self.typ
            .iter()
            .any(|want| strip_application(want).eq_ignore_ascii_case(typ))
    }

    /// Checks `aud`, the NumericDate claims and the required claims of a token whose
    /// signature was verified; returns the dates it read.
    pub(crate) fn check_claims(
        &self,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<Times, JoseError> {
        self.check_audience(claims)?;
        check_string_claims(claims)?;
        if let Some(domain) = &self.spiffe_trust_domain {
            check_svid_claims(claims, domain)?;
        }
        let times = Times::read(claims)?;
        if self.spiffe_trust_domain.is_some() && times.exp.is_none() {
            return Err(JoseError::MissingExpiration);
        }
        self.check_times(&times, now)?;
        for name in &self.required_claims {
            if claim_at(claims, core::slice::from_ref(name)).is_none_or(Value::is_null) {
                return Err(JoseError::MissingClaim(name.clone()));
            }
        }
        Ok(times)
    }

    /// The time rules alone (`exp`, `nbf`, `iat`, lifetime), in this order. The token cache runs
    /// this same code on every hit, so a cached decision is a fresh one (`crate::cache`).
    pub(crate) fn check_times(&self, times: &Times, now: u64) -> Result<(), JoseError> {
        let skew = self.clock_skew_secs;
        match times.exp {
            None if self.require_expiration => return Err(JoseError::MissingExpiration),
            Some(exp) if now >= exp.saturating_add(skew) => return Err(JoseError::Expired),
            _ => {}
        }
        if times.nbf.is_some_and(|nbf| now.saturating_add(skew) < nbf) {
            return Err(JoseError::NotYetValid);
        }
        if times.iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
            return Err(JoseError::IssuedInFuture);
        }
        if let Some(max) = self.max_lifetime_secs {
            let lifetime = times
                .exp
                .map(|exp| exp.saturating_sub(times.iat.unwrap_or(now)));
            if lifetime.is_none_or(|lifetime| lifetime > max) {
                return Err(JoseError::LifetimeTooLong);
            }
        }
        Ok(())
    }

    /// `aud` must be a string or an array of strings whenever present (so that
    /// `VerifiedClaims::audiences` never hides a malformed entry); with configured audiences
    /// at least one must match exactly.
    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), JoseError> {
        let invalid = JoseError::InvalidClaim("aud");
        let token_auds: Vec<&str> = match claims.get("aud") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or_else(|| invalid.clone()))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid),
        };
        if self.audiences.is_empty()
            || token_auds
                .iter()
                .any(|aud| self.audiences.iter().any(|want| want == aud))
        {
            Ok(())
        } else {
            Err(JoseError::AudienceNotAllowed)
        }
    }
}

/// `sub` and `jti` are StringOrURI / case-sensitive strings (RFC 7519 §4.1.2, §4.1.7) whenever
/// present: a number or object there is refused (as by `jwt_authn`), so that no reader (claim
/// headers, policies, the upstream) can take a different value for the subject than the rule saw.
fn check_string_claims(claims: &Map<String, Value>) -> Result<(), JoseError> {
    for name in ["sub", "jti"] {
        if claims.get(name).is_some_and(|v| !v.is_string()) {
            return Err(JoseError::InvalidClaim(name));
        }
    }
    Ok(())
}

/// A JWT-SVID's `sub` is a SPIFFE ID of the rule's trust domain, and it has an `aud` (the
/// audiences themselves are matched by [`Validation::check_audience`]: a JWT-SVID rule always
/// lists some).
fn check_svid_claims(claims: &Map<String, Value>, domain: &str) -> Result<(), JoseError> {
    if !claims.contains_key("aud") {
        return Err(JoseError::MissingClaim("aud".to_owned()));
    }
    let sub = claims
        .get("sub")
        .ok_or_else(|| JoseError::MissingClaim("sub".to_owned()))?
        .as_str()
        .ok_or(JoseError::InvalidClaim("sub"))?;
    match super::spiffe::trust_domain_of(sub) {
        Ok(td) if td == domain => Ok(()),
        _ => Err(JoseError::InvalidClaim("sub")),
    }
}

fn strip_application(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => typ.get(12..).unwrap_or(typ),
        _ => typ,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn check(v: &Validation, claims: Value) -> Result<Times, JoseError> {
        v.check_claims(claims.as_object().unwrap(), NOW)
    }

    #[test]
    fn expiration_with_skew() {
        let v = Validation::new("i");
        assert!(check(&v, json!({"exp": NOW + 1})).is_ok());
        assert!(
            check(&v, json!({"exp": NOW - 59})).is_ok(),
            "inside the skew"
        );
        assert_eq!(check(&v, json!({"exp": NOW - 60})), Err(JoseError::Expired));
        assert_eq!(check(&v, json!({})), Err(JoseError::MissingExpiration));
        assert_eq!(
            check(&v, json!({"exp": "x"})),
            Err(JoseError::InvalidClaim("exp"))
        );
        assert_eq!(
            check(&v, json!({"exp": 1e300})),
            Err(JoseError::InvalidClaim("exp")),
            "beyond any representable time: invalid, never \"no expiry\""
        );
        let lax_exp = Validation {
            require_expiration: false,
            ..Validation::new("i")
        };
        assert_eq!(
            check(&lax_exp, json!({"exp": 1e300})),
            Err(JoseError::InvalidClaim("exp"))
        );
        let lax = Validation {
            require_expiration: false,
            ..Validation::new("i")
        };
        assert!(check(&lax, json!({})).is_ok());
    }

    #[test]
    fn not_before_and_issued_at() {
        let v = Validation::new("i");
        let exp = NOW + 3600;
        assert!(check(&v, json!({"exp": exp, "nbf": NOW + 60})).is_ok());
        assert_eq!(
            check(&v, json!({"exp": exp, "nbf": NOW + 61})),
            Err(JoseError::NotYetValid)
        );
        assert!(check(&v, json!({"exp": exp, "iat": NOW + 60})).is_ok());
        assert_eq!(
            check(&v, json!({"exp": exp, "iat": NOW + 61})),
            Err(JoseError::IssuedInFuture)
        );
        assert_eq!(
            check(&v, json!({"exp": exp, "nbf": -3})),
            Err(JoseError::InvalidClaim("nbf"))
        );
        assert_eq!(
            check(&v, json!({"exp": exp, "iat": 1e300})),
            Err(JoseError::InvalidClaim("iat"))
        );
        assert_eq!(
            check(&v, json!({"exp": exp, "nbf": 1e19})),
            Err(JoseError::InvalidClaim("nbf"))
        );
    }

    #[test]
    fn sub_and_jti_must_be_strings() {
        let v = Validation::new("i");
        let exp = NOW + 3600;
        assert!(check(&v, json!({"exp": exp, "sub": "alice", "jti": "j-1"})).is_ok());
        for bad in [
            json!(42),
            json!(null),
            json!(true),
            json!(["a"]),
            json!({"a": 1}),
        ] {
            assert_eq!(
                check(&v, json!({"exp": exp, "sub": bad})),
                Err(JoseError::InvalidClaim("sub")),
                "sub {bad}"
            );
            assert_eq!(
                check(&v, json!({"exp": exp, "jti": bad})),
                Err(JoseError::InvalidClaim("jti")),
                "jti {bad}"
            );
        }
    }

    #[test]
    fn max_lifetime() {
        let v = Validation {
            max_lifetime_secs: Some(3600),
            require_expiration: false,
            ..Validation::new("i")
        };
        assert!(check(&v, json!({"exp": NOW + 3600, "iat": NOW})).is_ok());
        assert_eq!(
            check(&v, json!({"exp": NOW + 3601, "iat": NOW})),
            Err(JoseError::LifetimeTooLong)
        );
        assert!(
            check(&v, json!({"exp": NOW + 3600})).is_ok(),
            "exp - now without iat"
        );
        assert_eq!(
            check(&v, json!({"exp": NOW + 3601})),
            Err(JoseError::LifetimeTooLong)
        );
        assert_eq!(
            check(&v, json!({})),
            Err(JoseError::LifetimeTooLong),
            "no exp: unbounded"
        );
    }

    #[test]
    fn audiences() {
        let exp = NOW + 10;
        let open = Validation::new("i");
        assert!(check(&open, json!({"exp": exp, "aud": "anything"})).is_ok());
        assert!(check(&open, json!({"exp": exp})).is_ok());
        assert_eq!(
            check(&open, json!({"exp": exp, "aud": 5})),
            Err(JoseError::InvalidClaim("aud"))
        );
        let v = Validation {
            audiences: vec!["foo".into(), "bar".into()],
            ..Validation::new("i")
        };
        assert!(check(&v, json!({"exp": exp, "aud": "foo"})).is_ok());
        assert!(check(&v, json!({"exp": exp, "aud": ["x", "bar"]})).is_ok());
        assert_eq!(
            check(&v, json!({"exp": exp, "aud": ["x"]})),
            Err(JoseError::AudienceNotAllowed)
        );
        assert_eq!(
            check(&v, json!({"exp": exp, "aud": []})),
            Err(JoseError::AudienceNotAllowed)
        );
        assert_eq!(
            check(&v, json!({"exp": exp})),
            Err(JoseError::AudienceNotAllowed)
        );
        assert_eq!(
            check(&v, json!({"exp": exp, "aud": "FOO"})),
            Err(JoseError::AudienceNotAllowed)
        );
        assert_eq!(
            check(&v, json!({"exp": exp, "aud": ["foo", 1]})),
            Err(JoseError::InvalidClaim("aud"))
        );
        assert_eq!(
            check(&v, json!({"exp": exp, "aud": {"foo": true}})),
            Err(JoseError::InvalidClaim("aud"))
        );
    }

    #[test]
    fn required_claims() {
        let v = Validation {
            required_claims: vec!["sub".into(), "scope".into()],
            ..Validation::new("i")
        };
        let exp = NOW + 10;
        assert!(check(&v, json!({"exp": exp, "sub": "s", "scope": ""})).is_ok());
        assert_eq!(
            check(&v, json!({"exp": exp, "sub": "s", "scope": null})),
            Err(JoseError::MissingClaim("scope".into()))
        );
        assert_eq!(
            check(&v, json!({"exp": exp})),
            Err(JoseError::MissingClaim("sub".into()))
        );
    }

    #[test]
    fn typ_matching() {
        let any = Validation::new("i");
        assert!(any.typ_allowed(None));
        let v = Validation {
            typ: vec!["at+jwt".into()],
            ..Validation::new("i")
        };
        assert!(v.typ_allowed(Some("at+jwt")));
        assert!(v.typ_allowed(Some("AT+JWT")));
        assert!(v.typ_allowed(Some("application/at+jwt")));
        assert!(v.typ_allowed(Some("Application/At+Jwt")));
        assert!(!v.typ_allowed(Some("JWT")));
        assert!(!v.typ_allowed(Some("application/")));
        assert!(!v.typ_allowed(None));
        let prefixed = Validation {
            typ: vec!["application/at+jwt".into()],
            ..Validation::new("i")
        };
        assert!(prefixed.typ_allowed(Some("at+jwt")));
    }

    #[test]
    fn jwt_svid_claims() {
        // Even if a rule said otherwise (configuration refuses both), a JWT-SVID needs aud and exp.
        let v = Validation {
            spiffe_trust_domain: Some("example.org".to_owned()),
            require_expiration: false,
            ..Validation::new("")
        };
        let sub = "spiffe://example.org/ns/default/sa/client";
        assert!(check(&v, json!({"sub": sub, "aud": "a", "exp": NOW + 1})).is_ok());
        assert_eq!(
            check(&v, json!({"sub": sub, "exp": NOW + 1})),
            Err(JoseError::MissingClaim("aud".to_owned()))
        );
        assert_eq!(
            check(&v, json!({"sub": sub, "aud": "a"})),
            Err(JoseError::MissingExpiration)
        );
        assert_eq!(
            check(&v, json!({"aud": "a", "exp": NOW + 1})),
            Err(JoseError::MissingClaim("sub".to_owned()))
        );
        for bad in [
            "spiffe://other.org/ns/default/sa/client",
            "spiffe://example.org",
            "spiffe://example.org/a/../b",
            "client",
        ] {
            assert_eq!(
                check(&v, json!({"sub": bad, "aud": "a", "exp": NOW + 1})),
                Err(JoseError::InvalidClaim("sub")),
                "{bad}"
            );
        }
    }
}
