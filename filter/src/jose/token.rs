//! Compact JWS parsing (RFC 7515 §7.1) into an [`UnverifiedToken`].
//!
//! Parsing checks form only — size, three parts, strict base64url, JSON objects within the
//! depth limit and without duplicate members, a supported `alg`, no `crit` — and never trusts
//! what it reads: the accessors exist for routing (which rule, which key) before [`super::verify`].

use core::fmt;

use serde_json::{Map, Value};

use super::alg::Algorithm;
use super::b64;
use super::claims::{Times, VerifiedClaims};
use super::error::{JoseError, Malformed, Segment};
use super::json::{self, JsonIssue};
use super::key::Signed;
use meshguard_crypto::Sha256Prefix;

/// The default `maxTokenBytes`: 16 KiB, far above any sane JWT; bounds the base64 and JSON work
/// an attacker can force per request.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Size and shape limits applied before any cryptography.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLimits {
    /// Longest token accepted, in bytes (default [`DEFAULT_MAX_TOKEN_BYTES`]).
    pub max_token_bytes: usize,
    /// Deepest JSON nesting in the header or payload, counting the top object as 1 (default
    /// 32; serde_json alone would allow 128).
    pub max_json_depth: usize,
}

impl Default for TokenLimits {
    fn default() -> Self {
        TokenLimits {
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            max_json_depth: 32,
        }
    }
}

/// A syntactically valid compact JWS whose signature and claims are NOT yet verified.
#[derive(Clone)]
pub struct UnverifiedToken {
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the bytes that were signed.
    signing_input: String,
    /// Length of the header segment in `signing_input` (the payload starts one byte later).
    header_len: usize,
    claims: Map<String, Value>,
    signature: Vec<u8>,
    /// SHA-256 of `signing_input`, when it came with the token's cache key
    /// ([`UnverifiedToken::with_signing_prefix`]).
    signing_sha256: Option<[u8; 32]>,
}

impl UnverifiedToken {
    /// Parses a compact JWS. The text must be exactly the token: no `Bearer ` prefix and no
    /// surrounding whitespace (extraction strips those).
    pub fn parse(token: &str, limits: &TokenLimits) -> Result<UnverifiedToken, JoseError> {
        if token.len() > limits.max_token_bytes {
            return Err(JoseError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(Malformed::PartCount));
        };

        let header = decode_object(header_b64, Segment::Header, limits)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(malformed(Malformed::Alg))?
            .parse::<Algorithm>()?;
        // We implement no JWS extension, so any `crit` (even an empty or malformed one, which
        // RFC 7515 §4.1.11 forbids anyway) means we cannot process the token correctly.
        if header.contains_key("crit") {
            return Err(JoseError::CritUnsupported);
        }
        let kid = optional_header_str(&header, "kid", Malformed::Kid)?;
        let typ = optional_header_str(&header, "typ", Malformed::Typ)?;

        let claims = decode_object(payload_b64, Segment::Payload, limits)?;
        let signature =
            b64::decode(signature_b64).ok_or(malformed(Malformed::Base64(Segment::Signature)))?;

        let signing_len = header_b64
            .len()
            .saturating_add(1)
            .saturating_add(payload_b64.len());
        let signing_input = token
            .get(..signing_len)
            .ok_or(malformed(Malformed::PartCount))?
            .to_owned();
        Ok(UnverifiedToken {
            alg,
            kid,
            typ,
            signing_input,
            header_len: header_b64.len(),
            claims,
            signature,
            signing_sha256: None,
        })
    }

    /// The token with the SHA-256 of its signing input finished from `prefix`, the hash state
    /// over the first bytes of the text this token was parsed from (`cache.rs` computes it with
    /// the cache key, in one pass). Dropped unless it covers exactly the signing input (the text
    /// before the last `.`): then the verifier hashes the signing input itself. Not finished
    /// for an algorithm of another hash, which would not use it.
    pub(crate) fn with_signing_prefix(mut self, prefix: Sha256Prefix) -> Self {
        if self.alg.hashes_with_sha256() && prefix.absorbed() == self.signing_input.len() {
            self.signing_sha256 = Some(prefix.finish());
        }
        self
    }

    /// What the signature is over, for the verifier.
    pub(crate) fn signed(&self) -> Signed<'_> {
        match &self.signing_sha256 {
            Some(digest) => Signed::with_sha256(self.signing_input.as_bytes(), digest),
            None => Signed::new(self.signing_input.as_bytes()),
        }
    }

    #[cfg(test)]
    pub(crate) fn signed_sha256(&self) -> Option<&[u8; 32]> {
        self.signing_sha256.as_ref()
    }

    /// The header's `alg` (always a supported one: others fail to parse).
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The header's `kid`, when present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The header's `typ`, when present.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The UNVERIFIED `iss` claim, when it is a string: only for choosing the rule.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// The UNVERIFIED claims.
    pub fn unverified_claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The payload segment as it appeared in the token (base64url).
    pub fn payload_b64(&self) -> &str {
        self.signing_input
            .get(self.header_len.saturating_add(1)..)
            .unwrap_or_default()
    }

    pub(crate) fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The claims of this token, once `verify` has checked it (only it calls this): moved, not
    /// copied; the payload text is the signing input with what precedes [`Self::payload_b64`]
    /// cut off.
    pub(super) fn into_verified(self, times: Times) -> VerifiedClaims {
        // Empty for a JWT-SVID without `iss`: its principal is then the SPIFFE ID alone.
        let issuer = self.issuer().unwrap_or_default().to_owned();
        let at = self.signing_input.len() - self.payload_b64().len();
        let mut payload_b64 = self.signing_input;
        payload_b64.drain(..at);
        // The cache keeps it: give back the header's bytes (a shrink in place, not a copy).
        payload_b64.shrink_to_fit();
        VerifiedClaims::new(issuer, self.claims, payload_b64, self.kid, self.alg, times)
    }
}

/// What a token claims about itself, read leniently for a denial's log line only: `iss` and
/// `sub` from the payload and `kid` from the header, each when that part decodes and the value
/// is a string. Never used to decide anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    pub issuer: Option<String>,
    pub kid: Option<String>,
    pub sub: Option<String>,
}

impl Claimed {
    /// Reads what it can of a token that [`UnverifiedToken::parse`] refused (e.g. an
    /// unsupported `alg`) or that was decided without parsing (a cache hit refused for time),
    /// under the same limits: nothing from a token over `max_token_bytes` or not of three parts.
    pub fn peek(token: &str, limits: &TokenLimits) -> Claimed {
        if token.len() > limits.max_token_bytes {
            return Claimed::default();
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Claimed::default();
        };
        let text = |object: &Map<String, Value>, name: &str| {
            object.get(name).and_then(Value::as_str).map(str::to_owned)
        };
        let header = decode_object(header_b64, Segment::Header, limits).ok();
        let payload = decode_object(payload_b64, Segment::Payload, limits).ok();
        Claimed {
            issuer: payload.as_ref().and_then(|p| text(p, "iss")),
            kid: header.as_ref().and_then(|h| text(h, "kid")),
            sub: payload.as_ref().and_then(|p| text(p, "sub")),
        }
    }
}

impl fmt::Debug for UnverifiedToken {
    /// Header facts only: the token, its claims and its signature stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedToken")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("typ", &self.typ)
            .finish_non_exhaustive()
    }
}

fn malformed(kind: Malformed) -> JoseError {
    JoseError::Malformed(kind)
}

pub(super) fn decode_object(
    text: &str,
    segment: Segment,
    limits: &TokenLimits,
) -> Result<Map<String, Value>, JoseError> {
    let bytes = b64::decode(text).ok_or(malformed(Malformed::Base64(segment)))?;
    json::parse_object(&bytes, limits.max_json_depth).map_err(|issue| {
        malformed(match issue {
            JsonIssue::Syntax => Malformed::Json(segment),
            JsonIssue::NotObject => Malformed::NotObject(segment),
            JsonIssue::TooDeep => Malformed::TooDeep(segment),
            JsonIssue::Duplicate => Malformed::DuplicateMember(segment),
        })
    })
}

fn optional_header_str(
    header: &Map<String, Value>,
    name: &str,
    bad: Malformed,
) -> Result<Option<String>, JoseError> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(bad)),
    }
}
