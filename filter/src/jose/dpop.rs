//! DPoP proof JWTs (RFC 9449 §4.2, and the form, key and signature checks of §4.3): what the
//! proof says and that its own key signed it. The checks against the request (method, URI,
//! time, access-token hash, key binding, replay) are `crate::dpop`'s, on the values read here.
//!
//! A proof is refused unless:
//! - it is a compact JWS within the token limits, base64url and JSON as strict as an access
//!   token's (no duplicate members, bounded depth);
//! - `typ` is `dpop+jwt` (media-type rules: ASCII case-insensitive, `application/` optional);
//! - `alg` is asymmetric and in the rule's allowlist (`none` and HMAC fail to parse at all);
//! - the key is the header's `jwk` and only that: `jku`, `x5u`, `x5c`, `x5t`, `x5t#S256` and
//!   `crit` are refused, and a `kid` must equal the `jwk`'s own `kid`;
//! - the `jwk` is a public key: any private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`)
//!   is refused — a client that leaks its private key in every request has no key to prove —
//!   and it passes the same admission as a JWKS key (curve point, RSA size and exponent, no
//!   small-order Ed25519 point) and fits `alg`;
//! - the signature verifies with that key;
//! - `jti`, `htm`, `htu` are non-empty strings and `iat` a NumericDate; `ath`, when present, a
//!   string.

use core::fmt;
use std::rc::Rc;

use serde_json::{Map, Value};

use super::alg::{Algorithm, AlgorithmSet};
use super::b64;
use super::claims::numeric_date;
use super::jwk::{Jwk, SkipReason};
use super::token::{TokenLimits, decode_object};

/// Longest `jti` accepted (RFC 9449 recommends 96 bits of randomness; a UUID is 36
/// characters): bounds what the replay cache hashes.
pub const MAX_JTI_BYTES: usize = 256;

/// JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Header members that name a key other than by `jwk`, or an extension we do not implement.
const REFUSED_HEADER_MEMBERS: [&str; 6] = ["jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"];

/// Why a DPoP proof is refused: 401 `invalid_dpop_proof` (RFC 9449 §7.1). The last group is
/// decided by `crate::dpop` against the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// The request has a DPoP access token and no `DPoP` header.
    Missing,
    /// More than one `DPoP` header (§4.3: "not more than one").
    Repeated,
    /// Not a compact JWS within the limits (size, parts, base64url, JSON).
    Malformed,
    /// `typ` is not `dpop+jwt`.
    Typ,
    /// `alg` is `none`, HMAC, unsupported, or not in the rule's allowlist.
    Alg,
    /// A header member we refuse (`jku`, `x5u`, `x5c`, `x5t`, `x5t#S256`, `crit`).
    Header(&'static str),
    /// No `jwk` object in the header.
    NoKey,
    /// The `jwk` carries private key members.
    PrivateKey,
    /// The `jwk` is not a usable public key, or does not fit `alg`.
    Key(SkipReason),
    /// The header's `kid` is not the `jwk`'s own `kid`.
    KidMismatch,
    /// The signature does not verify with the `jwk`.
    Signature,
    /// A required claim is missing or of the wrong type (`jti`, `htm`, `htu`, `iat`, `ath`).
    Claim(&'static str),
    /// `htm` is not the request's method.
    Method,
    /// `htu` is not the request's URI (RFC 3986 normalised, query and fragment ignored).
    Uri,
    /// `iat` is older than the rule's `maxAgeSeconds`, or later than now plus the clock skew.
    Time,
    /// `ath` is missing or not the base64url SHA-256 of the access token.
    AccessTokenHash,
    /// The proof's `jti` was seen before, within its validity, by this Envoy process.
    Replayed,
    /// The replay cache could not record the proof (full of live entries, or shared data kept
    /// failing): refused rather than accepted unchecked.
    ReplayCheck,
}

impl ProofError {
    /// A short, stable code for metrics (`meshguard.denied.<reason>`) and logs.
    pub fn reason(self) -> &'static str {
        match self {
            ProofError::Missing => "dpop_proof_missing",
            ProofError::Repeated => "dpop_proof_repeated",
            ProofError::Malformed => "dpop_proof_malformed",
            ProofError::Typ => "dpop_proof_typ",
            ProofError::Alg => "dpop_proof_alg",
            ProofError::Header(_) => "dpop_proof_header",
            ProofError::NoKey | ProofError::Key(_) => "dpop_proof_key",
            ProofError::PrivateKey => "dpop_proof_private_key",
            ProofError::KidMismatch => "dpop_proof_kid",
            ProofError::Signature => "dpop_proof_signature",
            ProofError::Claim(_) => "dpop_proof_claim",
            ProofError::Method => "dpop_proof_htm",
            ProofError::Uri => "dpop_proof_htu",
            ProofError::Time => "dpop_proof_iat",
            ProofError::AccessTokenHash => "dpop_proof_ath",
            ProofError::Replayed => "dpop_proof_replay",
            ProofError::ReplayCheck => "dpop_replay_unavailable",
        }
    }
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::Missing => f.write_str("DPoP proof is missing"),
            ProofError::Repeated => f.write_str("more than one DPoP proof"),
            ProofError::Malformed => f.write_str("DPoP proof is not a well-formed JWT"),
            ProofError::Typ => f.write_str("DPoP proof typ is not dpop+jwt"),
            ProofError::Alg => f.write_str("DPoP proof alg is not allowed"),
            ProofError::Header(name) => write!(f, "DPoP proof header [{name}] is not supported"),
            ProofError::NoKey => f.write_str("DPoP proof header has no jwk"),
            ProofError::PrivateKey => f.write_str("DPoP proof jwk holds private key members"),
            ProofError::Key(why) => write!(f, "DPoP proof jwk is not usable: {why}"),
            ProofError::KidMismatch => f.write_str("DPoP proof kid does not name its jwk"),
            ProofError::Signature => f.write_str("DPoP proof signature is invalid"),
            ProofError::Claim(name) => {
                write!(f, "DPoP proof claim [{name}] is missing or malformed")
            }
            ProofError::Method => f.write_str("DPoP proof htm does not match the request method"),
            ProofError::Uri => f.write_str("DPoP proof htu does not match the request URI"),
            ProofError::Time => f.write_str("DPoP proof iat is outside the acceptable window"),
            ProofError::AccessTokenHash => {
                f.write_str("DPoP proof ath does not match the access token")
            }
            ProofError::Replayed => f.write_str("DPoP proof was already used"),
            ProofError::ReplayCheck => f.write_str("DPoP proof replay check is unavailable"),
        }
    }
}

/// A DPoP proof whose signature holds under the key in its own header. Its claims are still to
/// be checked against the request (`crate::dpop`).
#[derive(Clone)]
pub struct DpopProof {
    alg: Algorithm,
    /// The header's `jwk` as written, and the key admitted from it (for [`ProofKeys`]).
    jwk: Map<String, Value>,
    key: Rc<Jwk>,
    thumbprint: [u8; 32],
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    ath: Option<String>,
}

impl DpopProof {
    /// Parses `text` (the `DPoP` header value, trimmed) and verifies its signature with its own
    /// `jwk`, under `limits` and with `alg` in `algorithms`.
    pub fn verify(
        text: &str,
        limits: &TokenLimits,
        algorithms: &AlgorithmSet,
    ) -> Result<DpopProof, ProofError> {
        Self::verify_with(text, limits, algorithms, &ProofKeys::default())
    }

    /// [`DpopProof::verify`], taking the key from `keys` when its `jwk` is one of theirs.
    pub fn verify_with(
        text: &str,
        limits: &TokenLimits,
        algorithms: &AlgorithmSet,
        keys: &ProofKeys,
    ) -> Result<DpopProof, ProofError> {
        if text.len() > limits.max_token_bytes {
            return Err(ProofError::Malformed);
        }
        let mut parts = text.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ProofError::Malformed);
        };
        let header = decode_object(header_b64, super::Segment::Header, limits)
            .map_err(|_| ProofError::Malformed)?;
        if !header
            .get("typ")
            .and_then(Value::as_str)
            .is_some_and(is_dpop_typ)
        {
            return Err(ProofError::Typ);
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|name| name.parse::<Algorithm>().ok())
            .filter(|alg| algorithms.contains(*alg))
            .ok_or(ProofError::Alg)?;
        if let Some(name) = REFUSED_HEADER_MEMBERS
            .into_iter()
            .find(|name| header.contains_key(*name))
        {
            return Err(ProofError::Header(name));
        }
        let Some(Value::Object(jwk_json)) = header.get("jwk") else {
            return Err(ProofError::NoKey);
        };
        if PRIVATE_MEMBERS.iter().any(|m| jwk_json.contains_key(*m)) {
            return Err(ProofError::PrivateKey);
        }
        let jwk = match keys.get(jwk_json) {
            Some(known) => known,
            None => Rc::new(Jwk::parse(jwk_json).map_err(ProofError::Key)?),
        };
        if !jwk.fits(alg) {
            return Err(ProofError::Key(SkipReason::AlgKeyMismatch));
        }
        match header.get("kid") {
            None => {}
            Some(Value::String(kid)) if jwk.kid() == Some(kid.as_str()) => {}
            Some(_) => return Err(ProofError::KidMismatch),
        }
        let thumbprint =
            jwk_thumbprint(jwk_json).ok_or(ProofError::Key(SkipReason::BadMember("kty")))?;

        let claims = decode_object(payload_b64, super::Segment::Payload, limits)
            .map_err(|_| ProofError::Malformed)?;
        let jti = required_text(&claims, "jti")?;
        if jti.len() > MAX_JTI_BYTES {
            return Err(ProofError::Claim("jti"));
        }
        let htm = required_text(&claims, "htm")?;
        let htu = required_text(&claims, "htu")?;
        let iat = numeric_date(&claims, "iat")
            .ok()
            .flatten()
            .ok_or(ProofError::Claim("iat"))?;
        let ath = match claims.get("ath") {
            None => None,
            Some(Value::String(ath)) => Some(ath.clone()),
            Some(_) => return Err(ProofError::Claim("ath")),
        };

        let signature = b64::decode(signature_b64).ok_or(ProofError::Malformed)?;
        let signing_len = header_b64.len().saturating_add(1) + payload_b64.len();
        let signing_input = text.get(..signing_len).ok_or(ProofError::Malformed)?;
        if !jwk.verify(alg, signing_input.as_bytes(), &signature) {
            return Err(ProofError::Signature);
        }
        Ok(DpopProof {
            alg,
            jwk: jwk_json.clone(),
            key: jwk,
            thumbprint,
            jti,
            htm,
            htu,
            iat,
            ath,
        })
    }

    /// The proof's `alg`.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The RFC 7638 SHA-256 thumbprint of the proof's key (what `cnf.jkt` names).
    pub fn thumbprint(&self) -> &[u8; 32] {
        &self.thumbprint
    }

    pub fn jti(&self) -> &str {
        &self.jti
    }

    pub fn htm(&self) -> &str {
        &self.htm
    }

    pub fn htu(&self) -> &str {
        &self.htu
    }

    pub fn iat(&self) -> u64 {
        self.iat
    }

    /// The `ath` claim as written, when present.
    pub fn ath(&self) -> Option<&str> {
        self.ath.as_deref()
    }
}

impl fmt::Debug for DpopProof {
    /// The algorithm and times only: `jti` and the URI stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopProof")
            .field("alg", &self.alg)
            .field("iat", &self.iat)
            .finish_non_exhaustive()
    }
}

/// The keys of a VM's recent DPoP proofs that passed every check, most recent first. A client
/// signs all its proofs with one key: taking it from here skips its admission and keeps its
/// precomputation (an EC key builds its multiplication table on its second verification; a key
/// seen once never gets one). A key is looked up by its whole `jwk` object, so a proof whose
/// `jwk` differs in any member (`alg`, `kid`, ...) is admitted afresh.
///
/// Only proofs that passed every check, replay included, are remembered (the engine's call, by
/// [`ProofKeys::remember`]): only holders of a bound token's key can fill it, and
/// [`ProofKeys::CAPACITY`] bounds its memory (P-384, the largest table: ≈ 200 KiB per key).
#[derive(Default)]
pub struct ProofKeys {
    entries: Vec<(Map<String, Value>, Rc<Jwk>)>,
}

impl ProofKeys {
    /// Keys remembered per VM.
    pub const CAPACITY: usize = 8;

    fn get(&self, jwk: &Map<String, Value>) -> Option<Rc<Jwk>> {
        self.entries
            .iter()
            .find(|(known, _)| known == jwk)
            .map(|(_, key)| Rc::clone(key))
    }

    /// Remembers the key of `proof`, which passed every check, as the most recent.
    pub fn remember(&mut self, proof: &DpopProof) {
        self.entries.retain(|(known, _)| *known != proof.jwk);
        self.entries
            .insert(0, (proof.jwk.clone(), Rc::clone(&proof.key)));
        self.entries.truncate(Self::CAPACITY);
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `dpop+jwt`, as a media type may be written in `typ` (RFC 7515 §4.1.9).
fn is_dpop_typ(typ: &str) -> bool {
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => typ.get(12..).unwrap_or(""),
        _ => typ,
    };
    typ.eq_ignore_ascii_case("dpop+jwt")
}

fn required_text(claims: &Map<String, Value>, name: &'static str) -> Result<String, ProofError> {
    match claims.get(name) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        _ => Err(ProofError::Claim(name)),
    }
}

/// The RFC 7638 JWK thumbprint with SHA-256: the hash of the JSON object of the key type's
/// required members (EC: `crv`, `kty`, `x`, `y`; RSA: `e`, `kty`, `n`; OKP: `crv`, `kty`, `x`),
/// in lexicographic order, without whitespace, each value as written in the JWK. `None` when a
/// member is missing or not a string, or the type is none of those.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<[u8; 32]> {
    let members: &[&str] = match jwk.get("kty").and_then(Value::as_str)? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::with_capacity(160);
    canonical.push('{');
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name).and_then(Value::as_str)?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        // serde_json writes the string with RFC 8259's minimal escaping, as RFC 7638 §3.3 asks.
        canonical.push_str(&serde_json::to_string(value).ok()?);
    }
    canonical.push('}');
    Some(meshguard_crypto::sha256(canonical.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Proofs by `byte`'s P-256 key; `kid` in the `jwk` when given.
    fn proof_by(byte: u8, jti: &str, kid: Option<&str>) -> String {
        use meshguard_test_support::{self as support, Key};
        let key = Key::from(support::p256_key_from(byte));
        let mut jwk = support::dpop_jwk(&key);
        if let Some(kid) = kid {
            jwk["kid"] = json!(kid);
        }
        support::dpop_proof_with(
            &key,
            "ES256",
            &json!({ "jwk": jwk }),
            &json!({"jti": jti, "htm": "GET", "htu": "https://a/", "iat": 1}),
        )
    }

    #[test]
    fn remembered_keys_are_reused_by_their_whole_jwk_and_bounded() {
        let limits = TokenLimits::default();
        let all = AlgorithmSet::all();
        let mut keys = ProofKeys::default();
        let first = DpopProof::verify_with(&proof_by(1, "a", None), &limits, &all, &keys).unwrap();
        keys.remember(&first);
        // The same jwk: the remembered key itself (its table survives between proofs).
        let second = DpopProof::verify_with(&proof_by(1, "b", None), &limits, &all, &keys).unwrap();
        assert!(Rc::ptr_eq(&first.key, &second.key));
        // The same key with another member: admitted afresh, same thumbprint.
        let named =
            DpopProof::verify_with(&proof_by(1, "c", Some("k1")), &limits, &all, &keys).unwrap();
        assert!(!Rc::ptr_eq(&first.key, &named.key));
        assert_eq!(named.thumbprint(), first.thumbprint());
        // A remembered key verifies nothing it did not sign.
        let mut forged = proof_by(1, "d", None);
        forged.replace_range(forged.len() - 4.., "AAAA");
        assert_eq!(
            DpopProof::verify_with(&forged, &limits, &all, &keys).err(),
            Some(ProofError::Signature)
        );
        // At most CAPACITY keys, the most recent kept.
        for byte in 2..20u8 {
            let p =
                DpopProof::verify_with(&proof_by(byte, "e", None), &limits, &all, &keys).unwrap();
            keys.remember(&p);
        }
        assert_eq!(keys.len(), ProofKeys::CAPACITY);
        let last = DpopProof::verify_with(&proof_by(19, "f", None), &limits, &all, &keys).unwrap();
        assert!(keys.get(&last.jwk).is_some());
        assert!(keys.get(&first.jwk).is_none());
    }

    /// RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let thumbprint = jwk_thumbprint(jwk.as_object().unwrap()).unwrap();
        assert_eq!(
            b64::encode(&thumbprint),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// RFC 9449 §6.1: the example proof key of §4.2 and its `cnf.jkt`.
    #[test]
    fn rfc9449_example_jkt() {
        let jwk = json!({
            "kty": "EC",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
            "crv": "P-256"
        });
        let thumbprint = jwk_thumbprint(jwk.as_object().unwrap()).unwrap();
        assert_eq!(
            b64::encode(&thumbprint),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
        for bad in [
            json!({"kty": "EC", "crv": "P-256", "x": "a"}),
            json!({"kty": "oct", "k": "a"}),
            json!({"kty": "RSA", "n": 1, "e": "AQAB"}),
            json!({"crv": "Ed25519", "x": "a"}),
        ] {
            assert_eq!(jwk_thumbprint(bad.as_object().unwrap()), None, "{bad}");
        }
    }

    /// RFC 9449 §4.2, Figure 3: the example proof (a token request, so no `ath`) verifies with
    /// the key in its header, and any change to the signed bytes breaks it.
    const RFC_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";

    #[test]
    fn rfc9449_example_proof_verifies() {
        let limits = TokenLimits::default();
        let es256: AlgorithmSet = [Algorithm::Es256].into_iter().collect();
        let proof = DpopProof::verify(RFC_PROOF, &limits, &es256).unwrap();
        assert_eq!(proof.alg(), Algorithm::Es256);
        assert_eq!(proof.jti(), "-BwC3ESc6acc2lTc");
        assert_eq!(proof.htm(), "POST");
        assert_eq!(proof.htu(), "https://server.example.com/token");
        assert_eq!(proof.iat(), 1_562_262_616);
        assert_eq!(proof.ath(), None);
        assert_eq!(
            b64::encode(proof.thumbprint()),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
        // Not in the allowlist: refused before any key work.
        let rs256: AlgorithmSet = [Algorithm::Rs256].into_iter().collect();
        assert_eq!(
            DpopProof::verify(RFC_PROOF, &limits, &rs256).err(),
            Some(ProofError::Alg)
        );
        let (signed, signature) = RFC_PROOF.rsplit_once('.').unwrap();
        let (header, _) = signed.split_once('.').unwrap();
        let payload = b64::encode(
            br#"{"jti":"-BwC3ESc6acc2lTc","htm":"GET","htu":"https://server.example.com/token","iat":1562262616}"#,
        );
        let tampered = format!("{header}.{payload}.{signature}");
        assert_eq!(
            DpopProof::verify(&tampered, &limits, &es256).err(),
            Some(ProofError::Signature)
        );
    }

    /// RFC 9449 §7.1: the example access token and its `ath`.
    #[test]
    fn rfc9449_example_ath() {
        let token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
        assert_eq!(
            b64::encode(&meshguard_crypto::sha256(token.as_bytes())),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn typ_is_a_media_type() {
        for good in [
            "dpop+jwt",
            "DPoP+JWT",
            "application/dpop+jwt",
            "Application/DPOP+jwt",
        ] {
            assert!(is_dpop_typ(good), "{good}");
        }
        for bad in [
            "",
            "jwt",
            "at+jwt",
            "dpop",
            "application/",
            "xapplication/dpop+jwt",
            "dpop+jwt ",
        ] {
            assert!(!is_dpop_typ(bad), "{bad}");
        }
    }
}
