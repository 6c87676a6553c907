//! JOSE: compact JWS parsing, JWK/JWKS, per-algorithm signature verification and claim checks.
//!
//! The only way to obtain a [`VerifiedClaims`] is [`verify`]; header mapping and policies take a
//! `&VerifiedClaims`, so "the token was verified" is proven by the type system. Nothing here
//! imports proxy-wasm or reads a clock: time is an argument.
//!
//! Flow: [`UnverifiedToken::parse`] (form only) → the caller picks the rule by the unverified
//! [`UnverifiedToken::issuer`] and its [`Jwks`] → [`verify`] (alg allowlist, `typ`, issuer,
//! signature, then claims) → [`VerifiedClaims`].
//!
//! # What is refused, and why
//! - `alg: none` in any case ([`JoseError::AlgNone`]): an unsecured JWS carries no signature,
//!   so accepting it would let anyone write any claims.
//! - `alg: HS256/384/512` ([`JoseError::AlgHmac`]): HMAC verifies with a shared secret. A JWKS
//!   holds public keys; a verifier that feeds a public key to HMAC accepts tokens that anyone
//!   can mint from the published key (the classic algorithm-confusion attack), and a shared
//!   secret has no place in a key set fetched over the network.
//! - Any `crit` header ([`JoseError::CritUnsupported`]): we implement no JWS extension, so we
//!   cannot honour one the signer marked critical (RFC 7515 §4.1.11).
//! - Non-canonical base64url, duplicate JSON member names, JSON nested deeper than
//!   [`TokenLimits::max_json_depth`], tokens over [`TokenLimits::max_token_bytes`]: each gives an
//!   attacker room to make two parsers disagree or to burn CPU; none occurs in honest tokens.
//! - ECDSA signatures that are not raw `r||s` of the exact size (e.g. DER): RFC 7518 §3.4.
//! - Keys from the token header (`jwk`, `jku`, `x5u`, `x5c`) are ignored: keys come only from
//!   the configured JWKS. The one exception is a DPoP proof ([`DpopProof`]), whose `jwk` is by
//!   definition the key it proves, and which the access token binds by its thumbprint.
//!
//! See `docs/jose.md` for the user-facing summary (algorithms table, limits).

mod alg;
mod claims;
mod dpop;
mod error;
mod jwk;
mod key;
mod spiffe;
mod token;
mod validation;
mod verify;

// The readers of token and JWKS text, in their own crate (filter/reader).
use meshguard_reader::{b64, json};

#[cfg(test)]
mod tests;

pub use alg::{Algorithm, AlgorithmSet};
pub use claims::VerifiedClaims;
pub use dpop::{DpopProof, MAX_JTI_BYTES, ProofError, ProofKeys, jwk_thumbprint};
pub use error::{JoseError, JwksError, Malformed, Segment};
pub use jwk::{Jwk, Jwks, KeySetKind, MAX_JWKS_ENTRIES, MAX_USABLE_KEYS, SkipReason, SkippedKey};
pub use key::{KeyKind, RSA_MAX_BITS, RSA_MIN_BITS};
pub use spiffe::{SpiffeBundle, SpiffeIdError, trust_domain_of, valid_trust_domain};
pub use token::{Claimed, DEFAULT_MAX_TOKEN_BYTES, TokenLimits, UnverifiedToken};
pub use validation::{DEFAULT_CLOCK_SKEW_SECS, Validation};
pub use verify::{verify, verify_owned};
