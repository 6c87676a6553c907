//! JOSE: compact JWS parsing, JWK/JWKS, per-algorithm signature verification and claim checks.
//!
//! The only way to obtain a [`VerifiedClaims`] is [`verify`]; header mapping and policies take a
//! `&VerifiedClaims`, so "the token was verified" is proven by the type system.
//!
//! CONTRACT (other modules code against this; the jose owner fills in the bodies):
//! - `UnverifiedToken::parse(token: &str, limits: &TokenLimits) -> Result<UnverifiedToken, JoseError>`
//!   with `.issuer() -> Option<&str>` and `.kid() -> Option<&str>` (unverified, used for routing);
//! - `Jwks::parse(bytes: &[u8]) -> Result<Jwks, JwksError>` (+ `.skipped()` reasons, `.find_kid()`);
//! - `verify(&UnverifiedToken, &Jwks, &Validation, now_unix_secs) -> Result<VerifiedClaims, JoseError>`;
//! - `JoseError::reason()` → short stable metric/label text; `Display` → Envoy-like description.

mod claims;
pub use claims::VerifiedClaims;
