//! JWK / JWKS parsing (RFC 7517, RFC 7518 §6, RFC 8037).
//!
//! A JWKS is fetched from an identity provider we do not control and often lists keys we
//! cannot or must not use (symmetric keys, encryption keys, other curves). Such entries are
//! skipped with a reason — visible through [`Jwks::skipped`] for logs and metrics — and the rest
//! of the set stays usable. Only a document with no usable key at all is an error.
//!
//! Limits: at most [`MAX_JWKS_ENTRIES`] entries in `keys` (more is an error: no IdP publishes
//! that many) and at most [`MAX_USABLE_KEYS`] usable keys (later ones are skipped, because each
//! key without a `kid` may be tried per request). The body size is the caller's to bound.

use core::fmt;

use serde_json::{Map, Value};

use super::alg::Algorithm;
use super::b64;
use super::error::{JoseError, JwksError};
use super::json::{self, JsonIssue};
use super::key::{KeyIssue, KeyKind, PublicKey, Signed};

/// Most entries a `keys` array may have.
pub const MAX_JWKS_ENTRIES: usize = 1000;
/// Most usable keys kept from one JWKS.
pub const MAX_USABLE_KEYS: usize = 100;
/// JSON nesting limit for JWKS documents (a JWKS is two levels deep; `x5c` etc. add one).
const JWKS_MAX_DEPTH: usize = 32;

/// One usable public key from a JWKS. Equal when `kid`, `alg` and the key material are.
#[derive(Clone, PartialEq)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: PublicKey,
}

impl Jwk {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's own `alg`, if it names one (then only that alg is verified with it).
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// What kind of key this is.
    pub fn kind(&self) -> KeyKind {
        self.key.kind()
    }

    /// Whether this key may verify a token signed with `alg`: the key type and curve fit the
    /// algorithm, and the JWK's own `alg`, when present, is that algorithm.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.key.fits(alg) && self.alg.is_none_or(|own| own == alg)
    }

    /// Verifies `sig` over `msg`; false when the key does not fit `alg` or the signature fails.
    pub(crate) fn verify(&self, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
        self.verify_signed(alg, Signed::new(msg), sig)
    }

    /// [`Jwk::verify`] over a signing input that may carry its SHA-256.
    pub(crate) fn verify_signed(&self, alg: Algorithm, msg: Signed<'_>, sig: &[u8]) -> bool {
        self.fits(alg) && self.key.verify(alg, msg, sig)
    }

    /// Parses one JWK object; `Err` says why it cannot be used.
    pub(super) fn parse(member: &Map<String, Value>) -> Result<Jwk, SkipReason> {
        Self::parse_in(member, KeySetKind::Jwks)
    }

    /// [`Jwk::parse`] for an entry of a key set of this kind.
    fn parse_in(member: &Map<String, Value>, set: KeySetKind) -> Result<Jwk, SkipReason> {
        let kid = optional_str(member, "kid")?.map(str::to_owned);
        match (set, optional_str(member, "use")?) {
            (KeySetKind::Jwks, Some(usage)) if usage != "sig" => {
                return Err(SkipReason::NotForSignatures);
            }
            // A SPIFFE bundle marks each key with its SVID type (SPIFFE Trust Domain and
            // Bundle §4.2.1); only `jwt-svid` keys verify JWT-SVIDs.
            (KeySetKind::SpiffeBundle, usage) if usage != Some("jwt-svid") => {
                return Err(SkipReason::NotJwtSvid);
            }
            _ => {}
        }
        if let Some(ops) = member.get("key_ops") {
            let ops = ops.as_array().ok_or(SkipReason::BadMember("key_ops"))?;
            let mut verify = false;
            for op in ops {
                let op = op.as_str().ok_or(SkipReason::BadMember("key_ops"))?;
                verify |= op == "verify";
            }
            if !verify {
                return Err(SkipReason::NotForSignatures);
            }
        }
        let alg = match optional_str(member, "alg")? {
            None => None,
            Some(name) => Some(name.parse::<Algorithm>().map_err(|e| match e {
                JoseError::AlgHmac | JoseError::AlgNone => SkipReason::RefusedAlg,
                _ => SkipReason::UnsupportedAlg,
            })?),
        };
        let key = match required_str(member, "kty")? {
            "RSA" => PublicKey::rsa(&coordinate(member, "n")?, &coordinate(member, "e")?),
            "EC" => match required_str(member, "crv")? {
                "P-256" => PublicKey::p256(&coordinate(member, "x")?, &coordinate(member, "y")?),
                "P-384" => PublicKey::p384(&coordinate(member, "x")?, &coordinate(member, "y")?),
                "P-521" => PublicKey::p521(&coordinate(member, "x")?, &coordinate(member, "y")?),
                _ => return Err(SkipReason::UnsupportedCurve),
            },
            "OKP" => match required_str(member, "crv")? {
                "Ed25519" => PublicKey::ed25519(&coordinate(member, "x")?),
                // RFC 8037's other signature curve: EdDSA here is Ed25519 only.
                "Ed448" => return Err(SkipReason::Ed448),
                _ => return Err(SkipReason::UnsupportedCurve),
            },
            "oct" => return Err(SkipReason::Symmetric),
            _ => return Err(SkipReason::UnsupportedKty),
        }
        .map_err(SkipReason::key)?;
        if let Some(own) = alg
            && !key.fits(own)
        {
            return Err(SkipReason::AlgKeyMismatch);
        }
        Ok(Jwk { kid, alg, key })
    }
}

impl fmt::Debug for Jwk {
    /// kid, alg and kind only: no key material in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kind", &self.key.kind())
            .finish()
    }
}

/// Why a JWKS entry was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The entry is not a JSON object.
    NotAnObject,
    /// A member is missing, of the wrong type, or not strict base64url (member name given).
    BadMember(&'static str),
    /// `kty` is not RSA, EC or OKP.
    UnsupportedKty,
    /// `kty` is `oct`: shared secrets are never used by this verifier.
    Symmetric,
    /// The curve is not P-256, P-384, P-521 or Ed25519.
    UnsupportedCurve,
    /// `kty: OKP` with `crv: Ed448`: EdDSA is verified over Ed25519 only.
    Ed448,
    /// `use` is not `sig`, or `key_ops` does not include `verify`.
    NotForSignatures,
    /// The JWK's `alg` is `none` or HS*.
    RefusedAlg,
    /// The JWK's `alg` is not supported.
    UnsupportedAlg,
    /// The JWK's `alg` does not fit its key type or curve.
    AlgKeyMismatch,
    /// RSA modulus outside 2048..=8192 bits.
    RsaModulusSize,
    /// RSA public exponent even, 1, or absurdly large.
    RsaExponent,
    /// RSA parameters refused otherwise (e.g. even modulus, e >= n).
    RsaInvalid,
    /// EC coordinates of the wrong size, or not a point on the curve.
    EcPoint,
    /// Not a valid Ed25519 point encoding.
    Ed25519Point,
    /// An Ed25519 point of small order.
    Ed25519Weak,
    /// More than [`MAX_USABLE_KEYS`] usable keys: this one was not kept.
    TooManyKeys,
    /// In a SPIFFE bundle, a key whose `use` is not `jwt-svid` (e.g. `x509-svid`).
    NotJwtSvid,
}

/// How the `use` member of a key set's entries is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySetKind {
    /// A JWKS (RFC 7517): `use`, when present, must be `sig`.
    Jwks,
    /// A SPIFFE bundle: `use` must be `jwt-svid`.
    SpiffeBundle,
}

impl SkipReason {
    fn key(issue: KeyIssue) -> Self {
        match issue {
            KeyIssue::RsaModulusSize => SkipReason::RsaModulusSize,
            KeyIssue::RsaExponent => SkipReason::RsaExponent,
            KeyIssue::RsaInvalid => SkipReason::RsaInvalid,
            KeyIssue::EcPoint => SkipReason::EcPoint,
            KeyIssue::Ed25519Point => SkipReason::Ed25519Point,
            KeyIssue::Ed25519Weak => SkipReason::Ed25519Weak,
        }
    }

    /// A short, stable code for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            SkipReason::NotAnObject => "not_an_object",
            SkipReason::BadMember(_) => "bad_member",
            SkipReason::UnsupportedKty => "unsupported_kty",
            SkipReason::Symmetric => "symmetric_key",
            SkipReason::UnsupportedCurve => "unsupported_curve",
            SkipReason::Ed448 => "ed448_unsupported",
            SkipReason::NotForSignatures => "not_for_signatures",
            SkipReason::RefusedAlg => "refused_alg",
            SkipReason::UnsupportedAlg => "unsupported_alg",
            SkipReason::AlgKeyMismatch => "alg_key_mismatch",
            SkipReason::RsaModulusSize => "rsa_modulus_size",
            SkipReason::RsaExponent => "rsa_exponent",
            SkipReason::RsaInvalid => "rsa_invalid",
            SkipReason::EcPoint => "ec_point",
            SkipReason::Ed25519Point => "ed25519_point",
            SkipReason::Ed25519Weak => "ed25519_weak",
            SkipReason::TooManyKeys => "too_many_keys",
            SkipReason::NotJwtSvid => "not_jwt_svid",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotAnObject => f.write_str("the entry is not a JSON object"),
            SkipReason::BadMember(name) => write!(f, "member [{name}] is missing or malformed"),
            SkipReason::UnsupportedKty => f.write_str("kty is not RSA, EC or OKP"),
            SkipReason::Symmetric => f.write_str("symmetric (oct) keys are never used"),
            SkipReason::UnsupportedCurve => {
                f.write_str("curve is not P-256, P-384, P-521 or Ed25519")
            }
            SkipReason::Ed448 => f.write_str("Ed448 is not supported (EdDSA is Ed25519 only)"),
            SkipReason::NotForSignatures => f.write_str("use/key_ops do not allow verification"),
            SkipReason::RefusedAlg => f.write_str("alg none/HS* is refused"),
            SkipReason::UnsupportedAlg => f.write_str("alg is not supported"),
            SkipReason::AlgKeyMismatch => f.write_str("alg does not fit the key type"),
            SkipReason::RsaModulusSize => f.write_str("RSA modulus is not 2048 to 8192 bits"),
            SkipReason::RsaExponent => f.write_str("RSA exponent must be odd and greater than 1"),
            SkipReason::RsaInvalid => f.write_str("RSA key is invalid"),
            SkipReason::EcPoint => f.write_str("EC point is not on the curve or has a bad size"),
            SkipReason::Ed25519Point => f.write_str("Ed25519 key is not a valid point"),
            SkipReason::Ed25519Weak => f.write_str("Ed25519 key has small order"),
            SkipReason::TooManyKeys => {
                write!(f, "more than {MAX_USABLE_KEYS} usable keys")
            }
            SkipReason::NotJwtSvid => {
                f.write_str("SPIFFE bundle key whose use is not jwt-svid (e.g. x509-svid)")
            }
        }
    }
}

/// A JWKS entry that was not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array.
    pub index: usize,
    /// Its `kid`, when it had a string one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// A parsed JWKS: the usable keys, decoded once, plus the skipped entries.
#[derive(Debug, Clone)]
pub struct Jwks {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys":[...]}`). Members other than `keys` are ignored.
    pub fn parse(bytes: &[u8]) -> Result<Jwks, JwksError> {
        Self::parse_as(bytes, KeySetKind::Jwks).map(|(jwks, _)| jwks)
    }

    /// Parses a JWKS or a SPIFFE bundle; also returns the document's other members (a
    /// bundle's `spiffe_refresh_hint`, `spiffe_sequence`).
    pub fn parse_as(
        bytes: &[u8],
        set: KeySetKind,
    ) -> Result<(Jwks, Map<String, Value>), JwksError> {
        let doc = json::parse_object(bytes, JWKS_MAX_DEPTH).map_err(|issue| match issue {
            JsonIssue::Syntax => JwksError::Json,
            JsonIssue::NotObject => JwksError::NotAKeySet,
            JsonIssue::TooDeep => JwksError::TooDeep,
            JsonIssue::Duplicate => JwksError::DuplicateMember,
        })?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NotAKeySet)?;
        if entries.len() > MAX_JWKS_ENTRIES {
            return Err(JwksError::TooManyEntries);
        }
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
            let parsed = match entry.as_object() {
                None => Err(SkipReason::NotAnObject),
                Some(_) if keys.len() >= MAX_USABLE_KEYS => Err(SkipReason::TooManyKeys),
                Some(member) => Jwk::parse_in(member, set),
            };
            match parsed {
                Ok(jwk) => keys.push(jwk),
                Err(reason) => skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey {
                skipped: skipped.len(),
            });
        }
        let mut rest = doc;
        rest.remove("keys");
        Ok((Jwks { keys, skipped }, rest))
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Entries that were not kept, with reasons (for logs and metrics).
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Whether a usable key has this `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.find_kid(kid).next().is_some()
    }

    /// Whether an entry with this `kid` was skipped (listed, but unusable).
    pub fn skipped_kid(&self, kid: &str) -> bool {
        self.skipped.iter().any(|s| s.kid.as_deref() == Some(kid))
    }

    /// The usable keys with this `kid`.
    pub fn find_kid<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys.iter().filter(move |k| k.kid() == Some(kid))
    }

    /// Number of usable keys (never 0).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a JWKS without usable keys does not parse. Here for API completeness.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn optional_str<'a>(
    member: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, SkipReason> {
    match member.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SkipReason::BadMember(name)),
    }
}

fn required_str<'a>(
    member: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, SkipReason> {
    optional_str(member, name)?.ok_or(SkipReason::BadMember(name))
}

/// A strict-base64url key parameter (`n`, `e`, `x`, `y`).
fn coordinate(member: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, SkipReason> {
    b64::decode(required_str(member, name)?).ok_or(SkipReason::BadMember(name))
}
