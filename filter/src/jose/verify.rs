//! [`verify`]: the one way to turn an [`UnverifiedToken`] into [`VerifiedClaims`] ([`verify_owned`]
//! is the same checks on a token given away, whose claims then move instead of being copied).
//!
//! Order: the cheap checks first, the signature last, as Envoy's `jwt_authn` does: the header
//! (alg allowlist, `typ`), the issuer, then the claims (`aud`, `exp`/`nbf`/`iat`, lifetime,
//! required claims), then key selection and the signature. A client that keeps sending an
//! expired token (a common failure: a cron job with a stale token) then costs a JSON read, not a
//! signature verification each time (a refused token is never cached), and an expired token
//! naming an unknown `kid` triggers no JWKS refetch. The price: a forged token with bad claims is
//! refused for its claims ("expired", "audience") rather than "bad signature"; either way it is a
//! 401 and nothing about the keys is revealed. [`VerifiedClaims`] is still only built after the
//! signature holds.

use super::claims::{Times, VerifiedClaims};
use super::error::JoseError;
use super::jwk::{Jwk, Jwks};
use super::token::UnverifiedToken;
use super::validation::Validation;

/// Verifies `token` against `jwks` and `validation` at `now_unix_secs` (host time).
///
/// Key selection: with a `kid`, only the keys with that `kid` are tried ([`JoseError::UnknownKid`]
/// when the JWKS does not list it at all, so the caller can refetch the JWKS;
/// [`JoseError::NoMatchingKey`] when it lists it only as a skipped entry); without one, every key whose type
/// fits `alg` is tried. A key fits when its kty/crv match `alg` and its own `alg`, if any, is
/// the same.
pub fn verify(
    token: &UnverifiedToken,
    jwks: &Jwks,
    validation: &Validation,
    now_unix_secs: u64,
) -> Result<VerifiedClaims, JoseError> {
    let times = check(token, jwks, validation, now_unix_secs)?;
    Ok(token.clone().into_verified(times))
}

/// [`verify`] on a token the caller gives away (the request path, which needs only the claims
/// afterwards): the claims and the payload text move into the [`VerifiedClaims`], where `verify`
/// copies them (a JSON tree of a dozen allocations per fresh token). On a refusal the token comes
/// back with the error, for a retry with newer keys.
// The refused token comes back by value (moved once, on the stack): boxing it to shrink the
// `Err` would allocate on every refusal.
#[allow(clippy::result_large_err)]
pub fn verify_owned(
    token: UnverifiedToken,
    jwks: &Jwks,
    validation: &Validation,
    now_unix_secs: u64,
) -> Result<VerifiedClaims, (JoseError, UnverifiedToken)> {
    match check(&token, jwks, validation, now_unix_secs) {
        Ok(times) => Ok(token.into_verified(times)),
        Err(error) => Err((error, token)),
    }
}

/// Every check of [`verify`], in its order; the token's `exp`/`nbf`/`iat` when all hold.
fn check(
    token: &UnverifiedToken,
    jwks: &Jwks,
    validation: &Validation,
    now_unix_secs: u64,
) -> Result<Times, JoseError> {
    let alg = token.alg();
    if !validation.algorithms.contains(alg) {
        return Err(JoseError::AlgNotAllowed(alg));
    }
    if !validation.typ_allowed(token.typ()) {
        return Err(JoseError::TypNotAllowed);
    }
    // A JWT-SVID may have no `iss` (JWT-SVID spec §3): its rule was found by the trust domain
    // of `sub`, which `check_claims` verifies. An `iss`, when present, is the rule's.
    match token.issuer() {
        None if validation.spiffe_trust_domain.is_some() => {}
        Some(iss) if !iss.is_empty() && iss == validation.issuer => {}
        _ => return Err(JoseError::IssuerMismatch),
    }
    let times = validation.check_claims(token.unverified_claims(), now_unix_secs)?;
    check_signature(token, jwks)?;
    Ok(times)
}

/// Finds a key that verifies the token's signature.
fn check_signature(token: &UnverifiedToken, jwks: &Jwks) -> Result<(), JoseError> {
    let alg = token.alg();
    let (msg, sig) = (token.signed(), token.signature());
    let candidates: Vec<&Jwk> = match token.kid() {
        Some(kid) => {
            let named: Vec<&Jwk> = jwks.find_kid(kid).collect();
            if named.is_empty() {
                // A kid the JWKS lists but whose key we skipped is known, not new: refetching
                // would not help, so it is "no matching key" rather than "unknown kid".
                return Err(if jwks.skipped_kid(kid) {
                    JoseError::NoMatchingKey
                } else {
                    JoseError::UnknownKid
                });
            }
            named.into_iter().filter(|k| k.fits(alg)).collect()
        }
        None => jwks.keys().iter().filter(|k| k.fits(alg)).collect(),
    };
    if candidates.is_empty() {
        return Err(JoseError::NoMatchingKey);
    }
    if candidates
        .iter()
        .any(|key| key.verify_signed(alg, msg, sig))
    {
        Ok(())
    } else {
        Err(JoseError::BadSignature)
    }
}
