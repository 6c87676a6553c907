//! DPoP at the resource server (RFC 9449 §4.3, §7), host-free: a token presented under the
//! `DPoP` authorization scheme is accepted only with one `DPoP` proof header that
//! [`crate::jose::DpopProof`] verifies with its own key, that names this request (`htm`, `htu`),
//! is recent (`iat`), covers this access token (`ath`), whose key the token names (`cnf.jkt`),
//! and that was not seen before ([`replay`]). The engine reads the request facts and records the
//! proof (`engine::binding`); this module decides.
//!
//! Server-provided nonces (§8, §9) are not supported: meshguard never sends `DPoP-Nonce`, and a
//! `nonce` claim in a proof is not read. The replay window is then the proof's age limit.

pub mod replay;
pub mod uri;

use crate::binding::{BindingError, decode_sha256};
use crate::jose::{AlgorithmSet, DpopProof, ProofError, ProofKeys, TokenLimits};

/// Default `dpop.maxAgeSeconds`: how old a proof's `iat` may be.
pub const DEFAULT_MAX_AGE_SECS: u64 = 60;

/// A rule's DPoP settings, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopRule {
    /// Refuse bearer presentations of this rule's tokens (`dpop.required`).
    pub required: bool,
    /// Oldest accepted proof, in seconds since its `iat` (`dpop.maxAgeSeconds`).
    pub max_age_secs: u64,
    /// How far in the future `iat` may be (the rule's `clockSkewSeconds`).
    pub skew_secs: u64,
    /// The normalised public origin `htu` names instead of `:scheme` and `:authority`
    /// (`dpop.publicOrigin`), for a gateway behind a TLS terminator or a host rewrite.
    pub public_origin: Option<String>,
    /// Proof algorithms: the rule's allowlist (asymmetric only, as every allowlist is).
    pub algorithms: AlgorithmSet,
}

/// What a proof is compared with: the request's pseudo-headers (`htm`, `htu`) and the time it
/// arrived (`iat`), in host seconds.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a [u8],
    pub scheme: &'a [u8],
    pub authority: &'a [u8],
    pub path: &'a [u8],
    pub now: u64,
}

/// Checks `proof` (the one `DPoP` header, trimmed) against `request` for the access token
/// `access_token` bound to key thumbprint `jkt`, with the VM's remembered proof `keys`. The
/// proof comes back for the replay record, which is the caller's last step.
pub fn check_proof(
    proof: &str,
    rule: &DpopRule,
    limits: &TokenLimits,
    request: &RequestFacts<'_>,
    access_token: &str,
    jkt: &[u8; 32],
    keys: &ProofKeys,
) -> Result<DpopProof, BindingError> {
    let proof = DpopProof::verify_with(proof, limits, &rule.algorithms, keys)
        .map_err(BindingError::Proof)?;
    if proof.htm().as_bytes() != request.method {
        return Err(BindingError::Proof(ProofError::Method));
    }
    let named = uri::normalize(proof.htu());
    let requested = uri::request_uri(
        rule.public_origin.as_deref(),
        request.scheme,
        request.authority,
        request.path,
    );
    if named.is_none() || named != requested {
        return Err(BindingError::Proof(ProofError::Uri));
    }
    let (iat, now) = (proof.iat(), request.now);
    if now > iat.saturating_add(rule.max_age_secs) || iat > now.saturating_add(rule.skew_secs) {
        return Err(BindingError::Proof(ProofError::Time));
    }
    let ath = proof.ath().and_then(decode_sha256);
    if ath != Some(meshguard_crypto::sha256(access_token.as_bytes())) {
        return Err(BindingError::Proof(ProofError::AccessTokenHash));
    }
    if proof.thumbprint() != jkt {
        return Err(BindingError::KeyMismatch);
    }
    Ok(proof)
}

/// The replay entry of a checked proof: live while the proof's age still admits it.
pub fn replay_entry(proof: &DpopProof, rule: &DpopRule) -> replay::Entry {
    let expires = proof
        .iat()
        .saturating_add(rule.max_age_secs)
        .saturating_add(1);
    replay::Entry::new(proof.thumbprint(), proof.jti(), expires)
}
