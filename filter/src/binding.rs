//! Sender-constrained tokens, host-free: certificate-bound (RFC 8705 §3) and DPoP-bound
//! (RFC 9449) access tokens.
//!
//! A token whose verified claims carry `cnf` with member `x5t#S256` (the base64url SHA-256 of the
//! DER client certificate it was issued to) is accepted only on a request whose client
//! certificate has that SHA-256. The certificate's SHA-256 is Envoy's
//! `connection.sha256_peer_certificate_digest` (lower-case hex), or, behind a TLS terminator and
//! only with `trustXfcc`, the `Hash=` of the trusted `X-Forwarded-Client-Cert` element; the engine
//! reads it (`engine::binding`), this module decides.
//!
//! A token whose `cnf` has `jkt` (the RFC 7638 thumbprint of the client's DPoP key) is accepted
//! only under the `DPoP` authorization scheme with a proof by that key (`crate::dpop`); as a
//! bearer token it is refused (RFC 9449 §7.2), and a token without `jkt` under the `DPoP`
//! scheme is refused too (§7.1: the scheme says the token is bound).
//!
//! A binding in the token is always checked, whatever the rule says (RFC 8705 §3: the resource
//! server MUST). A rule with `requireCertificateBinding` also refuses tokens without `x5t#S256`,
//! and one with `dpop.required` bearer presentations. Other `cnf` members (`jwk`, `kid`) are not
//! bindings meshguard knows and are not read.

use core::fmt;

use serde_json::Value;

use crate::hex;
use crate::jose::{ProofError, VerifiedClaims};

/// Why a token's binding refused the request: each a 401, `invalid_dpop_proof` for a proof's
/// fault and `invalid_token` otherwise (RFC 9449 §7.1, RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingError {
    /// `cnf` is present but not a JSON object.
    CnfNotObject,
    /// `cnf.x5t#S256` is not a string of 43 base64url characters (a SHA-256 thumbprint).
    BadThumbprint,
    /// `cnf.jkt` is not a string of 43 base64url characters (an RFC 7638 SHA-256 thumbprint).
    BadJkt,
    /// The token is certificate-bound and the request has no client certificate.
    NoCertificate,
    /// The token is certificate-bound to another client certificate.
    OtherCertificate,
    /// The rule requires certificate-bound tokens and this one is not.
    NotBound,
    /// The token is DPoP-bound (`cnf.jkt`) and was presented as a bearer token (RFC 9449 §7.2).
    DpopAsBearer,
    /// The rule requires DPoP (`dpop.required`) and the token was presented as a bearer token.
    DpopRequired,
    /// The token was presented under the `DPoP` scheme but has no `cnf.jkt`.
    NotDpopBound,
    /// The proof's key is not the one the token's `cnf.jkt` names.
    KeyMismatch,
    /// The DPoP proof is refused.
    Proof(ProofError),
}

impl BindingError {
    /// A short, stable code for metrics (`meshguard.denied.<reason>`) and logs.
    pub fn reason(self) -> &'static str {
        match self {
            BindingError::CnfNotObject | BindingError::BadThumbprint | BindingError::BadJkt => {
                "cnf_malformed"
            }
            BindingError::NoCertificate => "cnf_no_certificate",
            BindingError::OtherCertificate => "cnf_other_certificate",
            BindingError::NotBound => "cnf_not_bound",
            BindingError::DpopAsBearer => "cnf_dpop_as_bearer",
            BindingError::DpopRequired => "dpop_required",
            BindingError::NotDpopBound => "dpop_token_not_bound",
            BindingError::KeyMismatch => "dpop_key_mismatch",
            BindingError::Proof(e) => e.reason(),
        }
    }

    /// Whether the 401 challenges with the `DPoP` scheme (RFC 9449 §7.1) rather than `Bearer`.
    pub fn is_dpop(self) -> bool {
        matches!(
            self,
            BindingError::BadJkt
                | BindingError::DpopAsBearer
                | BindingError::DpopRequired
                | BindingError::NotDpopBound
                | BindingError::KeyMismatch
                | BindingError::Proof(_)
        )
    }

    /// The challenge's `error` code.
    pub fn error_code(self) -> &'static str {
        match self {
            BindingError::Proof(_) => "invalid_dpop_proof",
            _ => "invalid_token",
        }
    }
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BindingError::CnfNotObject => "Jwt cnf claim is not a JSON object",
            BindingError::BadThumbprint => {
                "Jwt cnf x5t#S256 is not a base64url SHA-256 certificate thumbprint"
            }
            BindingError::BadJkt => "Jwt cnf jkt is not a base64url SHA-256 key thumbprint",
            BindingError::NoCertificate => {
                "certificate-bound token presented without a client certificate"
            }
            BindingError::OtherCertificate => {
                "certificate-bound token presented by another client certificate"
            }
            BindingError::NotBound => "token is not certificate-bound",
            BindingError::DpopAsBearer => "DPoP-bound token presented as a bearer token",
            BindingError::DpopRequired => "DPoP-bound token required",
            BindingError::NotDpopBound => "token presented with DPoP is not DPoP-bound",
            BindingError::KeyMismatch => "DPoP proof key does not match the token's cnf.jkt",
            BindingError::Proof(e) => return write!(f, "{e}"),
        })
    }
}

/// A binding of a request's token, once checked: what the policies' `when` key
/// `request.auth.binding` reads (docs/policies.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Certificate-bound (RFC 8705 §3, `cnf.x5t#S256`), and presented over that certificate.
    Certificate,
    /// DPoP-bound (RFC 9449, `cnf.jkt`), and presented with a valid proof by that key.
    Dpop,
}

impl Binding {
    /// Every binding meshguard checks.
    pub const ALL: [Binding; 2] = [Binding::Certificate, Binding::Dpop];

    /// Its name in policies: the `cnf` member it comes from (`x5t#S256`, `jkt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Certificate => "x5t#S256",
            Binding::Dpop => "jkt",
        }
    }

    /// The binding named `text` in a policy value.
    pub fn parse(text: &str) -> Option<Binding> {
        Binding::ALL.into_iter().find(|b| b.as_str() == text)
    }

    fn bit(self) -> u8 {
        match self {
            Binding::Certificate => 1,
            Binding::Dpop => 2,
        }
    }
}

/// The checked bindings of a token (a token may carry both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bindings(u8);

impl Bindings {
    /// No checked binding: no token, or a bearer token without `cnf`.
    pub const NONE: Bindings = Bindings(0);

    pub fn with(self, binding: Binding) -> Bindings {
        Bindings(self.0 | binding.bit())
    }

    pub fn contains(self, binding: Binding) -> bool {
        self.0 & binding.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl From<Binding> for Bindings {
    fn from(binding: Binding) -> Bindings {
        Bindings::NONE.with(binding)
    }
}

/// The SHA-256 of the certificate a token is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thumbprint([u8; 32]);

impl Thumbprint {
    /// Whether `hex_digest` (Envoy's `sha256_peer_certificate_digest` or an XFCC `Hash=`, hex in
    /// either case) is this thumbprint.
    pub fn matches_hex(&self, hex_digest: &str) -> bool {
        hex::eq_bytes(&self.0, hex_digest)
    }
}

/// The bindings a token's `cnf` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cnf {
    /// `x5t#S256`: the client certificate's SHA-256.
    pub certificate: Option<Thumbprint>,
    /// `jkt`: the DPoP key's RFC 7638 SHA-256 thumbprint.
    pub jkt: Option<[u8; 32]>,
}

/// The token's `cnf`: empty without `cnf`; an error when `cnf` is not an object or a member we
/// read is not 43 characters of strict base64url (32 bytes). No allocation.
pub fn read_cnf(claims: &VerifiedClaims) -> Result<Cnf, BindingError> {
    let Some(cnf) = claims.claims().get("cnf") else {
        return Ok(Cnf::default());
    };
    let Value::Object(cnf) = cnf else {
        return Err(BindingError::CnfNotObject);
    };
    let member = |name: &str, bad: BindingError| match cnf.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => decode_sha256(text).map(Some).ok_or(bad),
        Some(_) => Err(bad),
    };
    Ok(Cnf {
        jkt: member("jkt", BindingError::BadJkt)?,
        certificate: member("x5t#S256", BindingError::BadThumbprint)?.map(Thumbprint),
    })
}

/// The token's certificate binding (`cnf.x5t#S256`), for callers that need no DPoP view.
pub fn thumbprint(claims: &VerifiedClaims) -> Result<Option<Thumbprint>, BindingError> {
    read_cnf(claims).map(|cnf| cnf.certificate)
}

/// 43 base64url characters (no padding) as the 32 bytes of a SHA-256. The last character's two
/// unused low bits are ignored: RFC 8705's own example (§3.1) sets them, and they carry no
/// information (the token's signature covers the text as written).
pub(crate) fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 43 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut written = 0usize;
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = u8::try_from((acc >> bits) & 0xff).ok()?;
            if let Some(slot) = out.get_mut(written) {
                *slot = byte;
                written += 1;
            }
            acc &= (1 << bits) - 1;
        }
    }
    (written == 32).then_some(out)
}

/// What a rule demands of its tokens' bindings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Required {
    /// `requireCertificateBinding`.
    pub certificate: bool,
    /// `dpop.required`.
    pub dpop: bool,
}

/// How the token was presented: the authorization scheme (or any other location: bearer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation {
    Bearer,
    Dpop,
}

/// Decides a token's bindings against the request: the bindings it passed. `certificate` is
/// asked (once) only for a certificate-bound token; it gives the certificate's SHA-256 as hex,
/// `None` when the request has no client certificate. `proof` is asked only for a DPoP-bound
/// token under the DPoP scheme, with its `cnf.jkt`: it checks the proof (`crate::dpop`).
pub fn check<'c>(
    claims: &VerifiedClaims,
    required: Required,
    presentation: Presentation,
    certificate: impl FnOnce() -> Option<&'c str>,
    proof: impl FnOnce(&[u8; 32]) -> Result<(), BindingError>,
) -> Result<Bindings, BindingError> {
    let cnf = read_cnf(claims)?;
    match (presentation, cnf.jkt) {
        (Presentation::Bearer, Some(_)) => return Err(BindingError::DpopAsBearer),
        (Presentation::Bearer, None) if required.dpop => return Err(BindingError::DpopRequired),
        (Presentation::Dpop, None) => return Err(BindingError::NotDpopBound),
        _ => {}
    }
    let mut bindings = Bindings::NONE;
    match cnf.certificate {
        None if required.certificate => return Err(BindingError::NotBound),
        None => {}
        Some(bound) => match certificate() {
            None => return Err(BindingError::NoCertificate),
            Some(digest) if bound.matches_hex(digest) => {
                bindings = bindings.with(Binding::Certificate);
            }
            Some(_) => return Err(BindingError::OtherCertificate),
        },
    }
    if let Some(jkt) = &cnf.jkt {
        proof(jkt)?;
        bindings = bindings.with(Binding::Dpop);
    }
    Ok(bindings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binding_names() {
        assert_eq!(Binding::parse("x5t#S256"), Some(Binding::Certificate));
        assert_eq!(Binding::parse("jkt"), Some(Binding::Dpop));
        for b in Binding::ALL {
            assert_eq!(Binding::parse(b.as_str()), Some(b));
        }
        for bad in ["", "X5T#S256", "x5t", "JKT", "dpop", "*"] {
            assert_eq!(Binding::parse(bad), None, "{bad}");
        }
        let both = Bindings::NONE
            .with(Binding::Certificate)
            .with(Binding::Dpop);
        assert!(both.contains(Binding::Certificate) && both.contains(Binding::Dpop));
        assert!(!Bindings::from(Binding::Dpop).contains(Binding::Certificate));
        assert!(Bindings::NONE.is_empty());
    }

    /// RFC 8705 §3.1's example thumbprint, and the same 32 bytes in hex.
    const X5T: &str = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
    const HEX: &str = "6f070ad1eb1cdc0082dc3076639fe5112b1713ca3d96d734e4ef3d8dd37e760d";
    /// RFC 9449 §6.1's example `cnf.jkt`.
    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    fn claims(cnf: serde_json::Value) -> VerifiedClaims {
        VerifiedClaims::for_tests(json!({"iss": "i", "sub": "s", "cnf": cnf}))
    }

    #[test]
    fn thumbprint_is_read_strictly() {
        assert!(
            thumbprint(&claims(json!({"x5t#S256": X5T})))
                .unwrap()
                .unwrap()
                .matches_hex(HEX)
        );
        assert!(
            thumbprint(&claims(json!({"x5t#S256": X5T})))
                .unwrap()
                .unwrap()
                .matches_hex(&HEX.to_ascii_uppercase())
        );
        let none = VerifiedClaims::for_tests(json!({"iss": "i"}));
        assert_eq!(read_cnf(&none), Ok(Cnf::default()));
        assert_eq!(thumbprint(&claims(json!({"kid": "x"}))), Ok(None));
        let both = read_cnf(&claims(json!({"jkt": JKT, "x5t#S256": X5T}))).unwrap();
        assert!(both.certificate.is_some() && both.jkt.is_some());
        for bad in [json!("x"), json!([X5T]), json!(null), json!(1)] {
            assert_eq!(read_cnf(&claims(bad)), Err(BindingError::CnfNotObject));
        }
        // RFC 8705's example sets the two unused bits of its last character: the same
        // thumbprint as the canonical spelling.
        let canonical = X5T.replace("dg2", "dg0");
        assert_eq!(
            thumbprint(&claims(json!({"x5t#S256": canonical}))),
            thumbprint(&claims(json!({"x5t#S256": X5T})))
        );
        let padded = format!("{X5T}=");
        let std_alphabet = X5T.replace('_', "/");
        let spaced = X5T.replacen('b', " ", 1);
        for bad in [
            json!(1),
            json!(null),
            json!([X5T]),
            json!(""),
            json!(&X5T[1..]),
            json!(padded),
            json!(std_alphabet),
            json!(spaced),
            json!(format!("{X5T}A")),
            json!(HEX),
        ] {
            assert_eq!(
                thumbprint(&claims(json!({"x5t#S256": bad}))),
                Err(BindingError::BadThumbprint),
                "{bad}"
            );
            assert_eq!(
                read_cnf(&claims(json!({"jkt": bad}))),
                Err(BindingError::BadJkt),
                "{bad}"
            );
        }
    }

    fn no_proof(_: &[u8; 32]) -> Result<(), BindingError> {
        panic!("proof read")
    }

    const CERT: Required = Required {
        certificate: true,
        dpop: false,
    };
    const DPOP: Required = Required {
        certificate: false,
        dpop: true,
    };
    const NONE: Required = Required {
        certificate: false,
        dpop: false,
    };

    #[test]
    fn check_decides_certificates() {
        use Presentation::Bearer;
        let bound = claims(json!({"x5t#S256": X5T}));
        let unbound = VerifiedClaims::for_tests(json!({"iss": "i"}));
        let cert = Bindings::from(Binding::Certificate);
        assert_eq!(
            check(&bound, NONE, Bearer, || Some(HEX), no_proof),
            Ok(cert)
        );
        assert_eq!(
            check(&bound, CERT, Bearer, || Some(HEX), no_proof),
            Ok(cert)
        );
        let other = HEX.replace("6f07", "6f08");
        assert_eq!(
            check(&bound, NONE, Bearer, || Some(other.as_str()), no_proof),
            Err(BindingError::OtherCertificate)
        );
        assert_eq!(
            check(&bound, NONE, Bearer, || None, no_proof),
            Err(BindingError::NoCertificate)
        );
        assert_eq!(
            check(&bound, NONE, Bearer, || Some("not hex"), no_proof),
            Err(BindingError::OtherCertificate)
        );
        assert_eq!(
            check(&unbound, CERT, Bearer, || Some(HEX), no_proof),
            Err(BindingError::NotBound)
        );
        // An unbound token under a rule that does not require binding never reads the
        // certificate.
        assert_eq!(
            check(&unbound, NONE, Bearer, || panic!("read"), no_proof),
            Ok(Bindings::NONE)
        );
        assert_eq!(
            check(
                &claims(json!("x")),
                NONE,
                Bearer,
                || panic!("read"),
                no_proof
            ),
            Err(BindingError::CnfNotObject)
        );
    }

    #[test]
    fn check_decides_dpop() {
        use Presentation::{Bearer, Dpop};
        let bound = claims(json!({"jkt": JKT}));
        let unbound = VerifiedClaims::for_tests(json!({"iss": "i"}));
        let no_cert = || -> Option<&'static str> { panic!("certificate read") };
        // §7.2: a DPoP-bound token as a bearer token, whatever the rule says.
        for required in [NONE, DPOP, CERT] {
            assert_eq!(
                check(&bound, required, Bearer, no_cert, no_proof),
                Err(BindingError::DpopAsBearer)
            );
        }
        assert_eq!(
            check(&unbound, DPOP, Bearer, no_cert, no_proof),
            Err(BindingError::DpopRequired)
        );
        assert_eq!(
            check(&unbound, NONE, Dpop, no_cert, no_proof),
            Err(BindingError::NotDpopBound)
        );
        // The proof sees the token's jkt and decides.
        let jkt = decode_sha256(JKT).unwrap();
        let ok = check(&bound, DPOP, Dpop, no_cert, |got| {
            assert_eq!(got, &jkt);
            Ok(())
        });
        assert_eq!(ok, Ok(Bindings::from(Binding::Dpop)));
        let refused = check(&bound, NONE, Dpop, no_cert, |_| {
            Err(BindingError::Proof(ProofError::Replayed))
        });
        assert_eq!(refused, Err(BindingError::Proof(ProofError::Replayed)));
        // Both bindings: both checked, both reported.
        let both = claims(json!({"jkt": JKT, "x5t#S256": X5T}));
        assert_eq!(
            check(&both, NONE, Dpop, || None, |_| Ok(())),
            Err(BindingError::NoCertificate)
        );
        assert_eq!(
            check(&both, NONE, Dpop, || Some(HEX), |_| Ok(())),
            Ok(Bindings::from(Binding::Certificate).with(Binding::Dpop))
        );
    }

    #[test]
    fn challenges() {
        assert!(!BindingError::OtherCertificate.is_dpop());
        assert_eq!(BindingError::OtherCertificate.error_code(), "invalid_token");
        assert!(BindingError::KeyMismatch.is_dpop());
        assert_eq!(BindingError::KeyMismatch.error_code(), "invalid_token");
        let proof = BindingError::Proof(ProofError::Method);
        assert!(proof.is_dpop());
        assert_eq!(proof.error_code(), "invalid_dpop_proof");
        assert_eq!(proof.reason(), "dpop_proof_htm");
    }
}
