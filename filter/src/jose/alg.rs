//! The JWS algorithms we verify, and the per-rule allowlist.
//!
//! Supported: RS256/384/512 (RSASSA-PKCS1-v1_5), PS256/384/512 (RSASSA-PSS, salt = hash
//! length), ES256 (P-256), ES384 (P-384), ES512 (P-521) and EdDSA (Ed25519), which RFC 9864's
//! fully-specified name `Ed25519` also names (one algorithm under two names: a token or a JWK may
//! say either, an allowlist may list either). Ed448 (`alg: Ed448`, or EdDSA over an Ed448 key) is
//! not supported ([`JoseError::AlgUnsupported`]; such JWKS keys are skipped). Two families are refused outright
//! and with their own errors, whatever a rule says:
//! - `none`, in any spelling: an unsecured JWS has no signature, so it proves nothing;
//! - `HS256/384/512`: HMAC needs a shared secret. A JWKS verifier only has public keys, and a
//!   verifier that "uses the public key as the HMAC secret" accepts tokens anyone can mint from
//!   the published key (the classic algorithm-confusion attack).

use core::fmt;
use core::str::FromStr;

use super::error::JoseError;

/// A supported JWS `alg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256, 32-byte salt.
    Ps256,
    /// RSASSA-PSS with SHA-384 and MGF1-SHA-384, 48-byte salt.
    Ps384,
    /// RSASSA-PSS with SHA-512 and MGF1-SHA-512, 64-byte salt.
    Ps512,
    /// ECDSA on P-256 with SHA-256, raw 64-byte r||s signature.
    Es256,
    /// ECDSA on P-384 with SHA-384, raw 96-byte r||s signature.
    Es384,
    /// ECDSA on P-521 with SHA-512, raw 132-byte r||s signature.
    Es512,
    /// EdDSA with Ed25519 (RFC 8037), also named `Ed25519` (RFC 9864).
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm, in a stable order.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Es512,
        Algorithm::EdDsa,
    ];

    /// Whether the signature is over the SHA-256 of the signing input (RS256, PS256, ES256):
    /// those take a digest computed beforehand (`UnverifiedToken::with_signing_prefix`).
    pub(crate) fn hashes_with_sha256(self) -> bool {
        matches!(self, Algorithm::Rs256 | Algorithm::Ps256 | Algorithm::Es256)
    }

    /// The registered JWS name (`"RS256"`, `"EdDSA"`, ...). EdDSA is always `"EdDSA"`, also
    /// when the token or the allowlist said `"Ed25519"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = JoseError;

    /// Exact, case-sensitive names (RFC 7515 §4.1.1), except that `none` is recognised in any
    /// case so that `NONE` gets the precise error rather than "unsupported". `Ed25519` (RFC 9864)
    /// is EdDSA: meshguard's EdDSA is Ed25519 only. `Ed448` is [`JoseError::AlgUnsupported`].
    fn from_str(name: &str) -> Result<Self, JoseError> {
        Ok(match name {
            "RS256" => Algorithm::Rs256,
            "RS384" => Algorithm::Rs384,
            "RS512" => Algorithm::Rs512,
            "PS256" => Algorithm::Ps256,
            "PS384" => Algorithm::Ps384,
            "PS512" => Algorithm::Ps512,
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            "ES512" => Algorithm::Es512,
            "EdDSA" | "Ed25519" => Algorithm::EdDsa,
            _ if name.eq_ignore_ascii_case("none") => return Err(JoseError::AlgNone),
            _ if name.len() >= 2 && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) => {
                return Err(JoseError::AlgHmac);
            }
            _ => return Err(JoseError::AlgUnsupported),
        })
    }
}

/// A set of allowed algorithms (a rule's allowlist). The default is every supported one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// No algorithm.
    pub const fn empty() -> Self {
        AlgorithmSet(0)
    }

    /// Every supported algorithm.
    pub fn all() -> Self {
        Algorithm::ALL.into_iter().collect()
    }

    /// Adds one algorithm.
    pub fn insert(&mut self, alg: Algorithm) {
        self.0 |= alg.bit();
    }

    /// Whether `alg` is in the set.
    pub fn contains(&self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The members, in [`Algorithm::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = Algorithm> + '_ {
        Algorithm::ALL.into_iter().filter(|a| self.contains(*a))
    }

    /// Parses names such as `["RS256", "ES256"]`; the first refused name is the error.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, JoseError> {
        let mut set = AlgorithmSet::empty();
        for name in names {
            set.insert(name.parse()?);
        }
        Ok(set)
    }
}

impl Default for AlgorithmSet {
    fn default() -> Self {
        AlgorithmSet::all()
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        let mut set = AlgorithmSet::empty();
        for alg in iter {
            set.insert(alg);
        }
        set
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
        }
    }

    #[test]
    fn none_and_hmac_have_their_own_errors() {
        for none in ["none", "NONE", "nOnE", "None"] {
            assert_eq!(none.parse::<Algorithm>(), Err(JoseError::AlgNone));
        }
        for hs in ["HS256", "HS384", "HS512", "hs256"] {
            assert_eq!(hs.parse::<Algorithm>(), Err(JoseError::AlgHmac));
        }
        for other in ["rs256", "es512", "Ed448", "ed25519", "", "RS256 ", "H", "é"] {
            assert_eq!(other.parse::<Algorithm>(), Err(JoseError::AlgUnsupported));
        }
    }

    #[test]
    fn set_operations() {
        let all = AlgorithmSet::default();
        assert_eq!(all.iter().count(), Algorithm::ALL.len());
        let set = AlgorithmSet::from_names(["ES256", "RS256"]).unwrap();
        assert!(set.contains(Algorithm::Es256) && set.contains(Algorithm::Rs256));
        assert!(!set.contains(Algorithm::Ps256));
        assert_eq!(format!("{set:?}"), "{Rs256, Es256}");
        assert_eq!(AlgorithmSet::from_names(["HS256"]), Err(JoseError::AlgHmac));
        assert!(AlgorithmSet::empty().is_empty());
    }

    #[test]
    fn ed25519_is_eddsa_under_either_name() {
        assert_eq!("Ed25519".parse::<Algorithm>(), Ok(Algorithm::EdDsa));
        assert_eq!("ES512".parse::<Algorithm>(), Ok(Algorithm::Es512));
        for names in [["Ed25519"], ["EdDSA"]] {
            let set = AlgorithmSet::from_names(names).unwrap();
            assert_eq!(set.iter().collect::<Vec<_>>(), [Algorithm::EdDsa]);
        }
        assert_eq!(
            AlgorithmSet::from_names(["Ed448"]),
            Err(JoseError::AlgUnsupported)
        );
    }
}
