//! Why a token or a JWKS was refused.
//!
//! Every variant names one exact reason. `Display` gives Envoy-like human text (what a 401 body
//! or a debug log shows); `reason()` gives a short, stable code for metrics and labels. Neither
//! ever contains the token, a signature or key material: only names that come from the
//! configuration or from this crate.

use core::fmt;

use super::alg::Algorithm;

/// Which part of a compact JWS a parse error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The JOSE header (first part).
    Header,
    /// The claims set (second part).
    Payload,
    /// The signature (third part).
    Signature,
}

impl Segment {
    fn as_str(self) -> &'static str {
        match self {
            Segment::Header => "header",
            Segment::Payload => "payload",
            Segment::Signature => "signature",
        }
    }
}

/// How a token failed to be a well-formed compact JWS whose header and payload are JSON objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not exactly three dot-separated parts.
    PartCount,
    /// A part is not strict unpadded base64url (padding, whitespace, foreign bytes, or
    /// non-canonical trailing bits).
    Base64(Segment),
    /// A part is not valid JSON (syntax, UTF-8, trailing bytes).
    Json(Segment),
    /// A part is JSON but not an object.
    NotObject(Segment),
    /// JSON nested deeper than [`super::TokenLimits::max_json_depth`].
    TooDeep(Segment),
    /// The same member name twice in one object: parsers disagree on which one wins, so an
    /// attacker could show one value to us and another to the upstream.
    DuplicateMember(Segment),
    /// `alg` is missing or not a string.
    Alg,
    /// `kid` is present but not a string.
    Kid,
    /// `typ` is present but not a string.
    Typ,
}

/// Why a token was refused. See the module docs of [`super`] for the policy behind each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoseError {
    /// The token is longer than [`super::TokenLimits::max_token_bytes`].
    TooLarge,
    /// Not a well-formed compact JWS (see [`Malformed`]).
    Malformed(Malformed),
    /// `alg` is `none` (in any case): an unsigned token proves nothing.
    AlgNone,
    /// `alg` is HS256/HS384/HS512: HMAC needs a shared secret, which has no place in a
    /// JWKS-based verifier; accepting it is the classic key-confusion attack.
    AlgHmac,
    /// `alg` names an algorithm this verifier does not implement.
    AlgUnsupported,
    /// `alg` is supported but not in the rule's allowlist.
    AlgNotAllowed(Algorithm),
    /// The header has `crit`: we implement no extension, so the token must be refused
    /// (RFC 7515 §4.1.11).
    CritUnsupported,
    /// `typ` is missing or not one of the rule's expected types.
    TypNotAllowed,
    /// The token names a `kid` that is not in the JWKS (the caller may refetch the JWKS).
    UnknownKid,
    /// No key in the JWKS fits the token's `alg` (and `kid`, when given).
    NoMatchingKey,
    /// No candidate key verifies the signature.
    BadSignature,
    /// `iss` is missing or is not the rule's issuer.
    IssuerMismatch,
    /// None of the token's audiences is allowed (or it has none while the rule lists some).
    AudienceNotAllowed,
    /// `exp` is missing and the rule requires it.
    MissingExpiration,
    /// `exp` (plus the clock skew) has passed.
    Expired,
    /// `nbf` (minus the clock skew) is still in the future.
    NotYetValid,
    /// `iat` is further in the future than the clock skew allows.
    IssuedInFuture,
    /// The token lives longer than the rule's maximum lifetime.
    LifetimeTooLong,
    /// A claim the rule requires is missing or null (the name comes from the configuration).
    MissingClaim(String),
    /// A registered claim has the wrong type or an impossible value (e.g. `exp: "soon"`).
    InvalidClaim(&'static str),
}

impl JoseError {
    /// A short, stable code for metrics and labels (never changes once released).
    pub fn reason(&self) -> &'static str {
        match self {
            JoseError::TooLarge => "too_large",
            JoseError::Malformed(_) => "malformed",
            JoseError::AlgNone => "alg_none",
            JoseError::AlgHmac => "alg_hmac",
            JoseError::AlgUnsupported => "alg_unsupported",
            JoseError::AlgNotAllowed(_) => "alg_not_allowed",
            JoseError::CritUnsupported => "crit_unsupported",
            JoseError::TypNotAllowed => "typ_not_allowed",
            JoseError::UnknownKid => "unknown_kid",
            JoseError::NoMatchingKey => "no_matching_key",
            JoseError::BadSignature => "bad_signature",
            JoseError::IssuerMismatch => "issuer_mismatch",
            JoseError::AudienceNotAllowed => "audience_not_allowed",
            JoseError::MissingExpiration => "missing_exp",
            JoseError::Expired => "expired",
            JoseError::NotYetValid => "not_yet_valid",
            JoseError::IssuedInFuture => "iat_in_future",
            JoseError::LifetimeTooLong => "lifetime_too_long",
            JoseError::MissingClaim(_) => "missing_claim",
            JoseError::InvalidClaim(_) => "invalid_claim",
        }
    }
}

impl fmt::Display for JoseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoseError::TooLarge => f.write_str("Jwt is too large"),
            JoseError::Malformed(m) => match m {
                Malformed::PartCount => {
                    f.write_str("Jwt is not in the form of Header.Payload.Signature")
                }
                Malformed::Base64(s) => write!(f, "Jwt {} is not strict base64url", s.as_str()),
                Malformed::Json(s) => write!(f, "Jwt {} is an invalid JSON", s.as_str()),
                Malformed::NotObject(s) => write!(f, "Jwt {} is not a JSON object", s.as_str()),
                Malformed::TooDeep(s) => write!(f, "Jwt {} JSON is nested too deeply", s.as_str()),
                Malformed::DuplicateMember(s) => {
                    write!(f, "Jwt {} has a duplicate member name", s.as_str())
                }
                Malformed::Alg => {
                    f.write_str("Jwt header [alg] field is required and must be a string")
                }
                Malformed::Kid => f.write_str("Jwt header [kid] field is not a string"),
                Malformed::Typ => f.write_str("Jwt header [typ] field is not a string"),
            },
            JoseError::AlgNone => {
                f.write_str("Jwt header [alg] none is not allowed: the Jwt is unsigned")
            }
            JoseError::AlgHmac => {
                f.write_str("Jwt header [alg] HMAC (HS*) is not allowed with public keys")
            }
            JoseError::AlgUnsupported => f.write_str("Jwt header [alg] is not supported"),
            JoseError::AlgNotAllowed(a) => {
                write!(
                    f,
                    "Jwt header [alg] {} is not allowed by the rule",
                    a.as_str()
                )
            }
            JoseError::CritUnsupported => {
                f.write_str("Jwt header [crit] lists extensions that are not supported")
            }
            JoseError::TypNotAllowed => f.write_str("Jwt header [typ] is not allowed"),
            JoseError::UnknownKid | JoseError::NoMatchingKey => {
                f.write_str("Jwks doesn't have key to match kid or alg from Jwt")
            }
            JoseError::BadSignature => f.write_str("Jwt verification fails"),
            JoseError::IssuerMismatch => f.write_str("Jwt issuer is not configured"),
            JoseError::AudienceNotAllowed => f.write_str("Audiences in Jwt are not allowed"),
            JoseError::MissingExpiration => f.write_str("Jwt is missing the required exp claim"),
            JoseError::Expired => f.write_str("Jwt is expired"),
            JoseError::NotYetValid => f.write_str("Jwt not yet valid"),
            JoseError::IssuedInFuture => f.write_str("Jwt iat is in the future"),
            JoseError::LifetimeTooLong => f.write_str("Jwt lifetime exceeds the allowed maximum"),
            JoseError::MissingClaim(name) => write!(f, "Jwt is missing the required claim {name}"),
            JoseError::InvalidClaim(name) => write!(f, "Jwt claim [{name}] is invalid"),
        }
    }
}

impl std::error::Error for JoseError {}

/// Why a JWKS document was refused as a whole. Single unusable keys are not errors: they are
/// skipped and listed in [`super::Jwks::skipped`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// Not valid JSON (syntax, UTF-8, trailing bytes).
    Json,
    /// Nested deeper than the JSON depth limit.
    TooDeep,
    /// The same member name twice in one object.
    DuplicateMember,
    /// The document is not an object with a `keys` array.
    NotAKeySet,
    /// More entries in `keys` than [`super::MAX_JWKS_ENTRIES`].
    TooManyEntries,
    /// No key could be used; `skipped` keys were refused (see their reasons).
    NoUsableKey {
        /// How many entries were skipped.
        skipped: usize,
    },
}

impl JwksError {
    /// A short, stable code for metrics and labels.
    pub fn reason(&self) -> &'static str {
        match self {
            JwksError::Json => "jwks_json",
            JwksError::TooDeep => "jwks_too_deep",
            JwksError::DuplicateMember => "jwks_duplicate_member",
            JwksError::NotAKeySet => "jwks_not_a_key_set",
            JwksError::TooManyEntries => "jwks_too_many_entries",
            JwksError::NoUsableKey { .. } => "jwks_no_usable_key",
        }
    }
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::Json => f.write_str("Jwks is an invalid JSON"),
            JwksError::TooDeep => f.write_str("Jwks JSON is nested too deeply"),
            JwksError::DuplicateMember => f.write_str("Jwks has a duplicate member name"),
            JwksError::NotAKeySet => f.write_str("Jwks is not an object with a [keys] array"),
            JwksError::TooManyEntries => write!(
                f,
                "Jwks has more than {} entries in [keys]",
                super::jwk::MAX_JWKS_ENTRIES
            ),
            JwksError::NoUsableKey { skipped } => {
                write!(f, "Jwks has no usable key ({skipped} skipped)")
            }
        }
    }
}

impl std::error::Error for JwksError {}
