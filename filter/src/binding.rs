//! Certificate-bound access tokens (RFC 8705 §3), host-free.
//!
//! A token whose verified claims carry `cnf` with member `x5t#S256` (the base64url SHA-256 of the
//! DER client certificate it was issued to) is accepted only on a request whose client
//! certificate has that SHA-256. The certificate's SHA-256 is Envoy's
//! `connection.sha256_peer_certificate_digest` (lower-case hex), or, behind a TLS terminator and
//! only with `trustXfcc`, the `Hash=` of the trusted `X-Forwarded-Client-Cert` element; the engine
//! reads it (`engine::binding`), this module decides.
//!
//! A binding in the token is always checked, whatever the rule says (§3: the resource server
//! MUST). A rule with `requireCertificateBinding` also refuses unbound tokens.
//!
//! A DPoP-bound token (`cnf.jkt`, RFC 9449) is refused: meshguard verifies no DPoP proof, so
//! every presentation it sees is a bearer one, which §7.2 forbids. Other `cnf` members (`jwk`,
//! `kid`) are not bindings meshguard knows and are not read.

use core::fmt;

use serde_json::Value;

use crate::hex;
use crate::jose::VerifiedClaims;

/// Why a token's certificate binding refused the request (each a 401 `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingError {
    /// `cnf` is present but not a JSON object.
    CnfNotObject,
    /// `cnf.x5t#S256` is not a string of 43 base64url characters (a SHA-256 thumbprint).
    BadThumbprint,
    /// The token is certificate-bound and the request has no client certificate.
    NoCertificate,
    /// The token is certificate-bound to another client certificate.
    OtherCertificate,
    /// The rule requires certificate-bound tokens and this one is not.
    NotBound,
    /// The token is DPoP-bound (`cnf.jkt`) and was presented as a bearer token (RFC 9449 §7.2):
    /// meshguard does not verify DPoP proofs.
    DpopAsBearer,
}

impl BindingError {
    /// A short, stable code for metrics (`meshguard.denied.<reason>`) and logs.
    pub fn reason(self) -> &'static str {
        match self {
            BindingError::CnfNotObject | BindingError::BadThumbprint => "cnf_malformed",
            BindingError::NoCertificate => "cnf_no_certificate",
            BindingError::OtherCertificate => "cnf_other_certificate",
            BindingError::NotBound => "cnf_not_bound",
            BindingError::DpopAsBearer => "cnf_dpop_as_bearer",
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
            BindingError::NoCertificate => {
                "certificate-bound token presented without a client certificate"
            }
            BindingError::OtherCertificate => {
                "certificate-bound token presented by another client certificate"
            }
            BindingError::NotBound => "token is not certificate-bound",
            BindingError::DpopAsBearer => {
                "DPoP-bound token presented as a bearer token (DPoP proofs are not supported)"
            }
        })
    }
}

/// How a request's token is bound, once its binding was checked: what the policies' `when` key
/// `request.auth.binding` reads (docs/policies.md). A token without a checked binding has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Certificate-bound (RFC 8705 §3, `cnf.x5t#S256`), and presented over that certificate.
    Certificate,
}

impl Binding {
    /// Every binding meshguard checks (a future DPoP binding is added here, as `dpop`).
    pub const ALL: [Binding; 1] = [Binding::Certificate];

    /// Its name in policies: the `cnf` member it comes from (`x5t#S256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Certificate => "x5t#S256",
        }
    }

    /// The binding named `text` in a policy value.
    pub fn parse(text: &str) -> Option<Binding> {
        Binding::ALL.into_iter().find(|b| b.as_str() == text)
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

/// The token's certificate binding: `Ok(None)` without `cnf` or without `cnf.x5t#S256`; an
/// error when `cnf` is not an object, when it has `jkt` (DPoP-bound, whatever else it has), or
/// when the thumbprint is not 43 characters of strict base64url (32 bytes). No allocation.
pub fn thumbprint(claims: &VerifiedClaims) -> Result<Option<Thumbprint>, BindingError> {
    let Some(cnf) = claims.claims().get("cnf") else {
        return Ok(None);
    };
    let Value::Object(cnf) = cnf else {
        return Err(BindingError::CnfNotObject);
    };
    if cnf.contains_key("jkt") {
        return Err(BindingError::DpopAsBearer);
    }
    let Some(x5t) = cnf.get("x5t#S256") else {
        return Ok(None);
    };
    let Value::String(text) = x5t else {
        return Err(BindingError::BadThumbprint);
    };
    decode_sha256(text)
        .map(|bytes| Some(Thumbprint(bytes)))
        .ok_or(BindingError::BadThumbprint)
}

/// 43 base64url characters (no padding) as the 32 bytes of a SHA-256. The last character's two
/// unused low bits are ignored: RFC 8705's own example (§3.1) sets them, and they carry no
/// information (the token's signature covers the text as written).
fn decode_sha256(text: &str) -> Option<[u8; 32]> {
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

/// Decides a token's binding against the request's client certificate: the binding it passed
/// (`None`: an unbound token that may go on). `certificate` is asked (once) only when the token
/// is bound; it gives the certificate's SHA-256 as hex, `None` when the request has no client
/// certificate.
pub fn check<'c>(
    claims: &VerifiedClaims,
    required: bool,
    certificate: impl FnOnce() -> Option<&'c str>,
) -> Result<Option<Binding>, BindingError> {
    match thumbprint(claims)? {
        None if required => Err(BindingError::NotBound),
        None => Ok(None),
        Some(bound) => match certificate() {
            None => Err(BindingError::NoCertificate),
            Some(digest) if bound.matches_hex(digest) => Ok(Some(Binding::Certificate)),
            Some(_) => Err(BindingError::OtherCertificate),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binding_names() {
        assert_eq!(Binding::parse("x5t#S256"), Some(Binding::Certificate));
        for b in Binding::ALL {
            assert_eq!(Binding::parse(b.as_str()), Some(b));
        }
        for bad in ["", "X5T#S256", "x5t", "jkt", "dpop", "*"] {
            assert_eq!(Binding::parse(bad), None, "{bad}");
        }
    }

    /// RFC 8705 §3.1's example thumbprint, and the same 32 bytes in hex.
    const X5T: &str = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
    const HEX: &str = "6f070ad1eb1cdc0082dc3076639fe5112b1713ca3d96d734e4ef3d8dd37e760d";

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
        assert_eq!(thumbprint(&none), Ok(None));
        assert_eq!(thumbprint(&claims(json!({"kid": "x"}))), Ok(None));
        // DPoP-bound (RFC 9449 §7.2), whatever the value and whatever else cnf has.
        for dpop in [
            json!({"jkt": "x"}),
            json!({"jkt": 1}),
            json!({"jkt": "x", "x5t#S256": X5T}),
        ] {
            assert_eq!(
                thumbprint(&claims(dpop.clone())),
                Err(BindingError::DpopAsBearer),
                "{dpop}"
            );
        }
        for bad in [json!("x"), json!([X5T]), json!(null), json!(1)] {
            assert_eq!(thumbprint(&claims(bad)), Err(BindingError::CnfNotObject));
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
        }
    }

    #[test]
    fn check_decides() {
        let bound = claims(json!({"x5t#S256": X5T}));
        let unbound = VerifiedClaims::for_tests(json!({"iss": "i"}));
        assert_eq!(
            check(&bound, false, || Some(HEX)),
            Ok(Some(Binding::Certificate))
        );
        assert_eq!(
            check(&bound, true, || Some(HEX)),
            Ok(Some(Binding::Certificate))
        );
        let other = HEX.replace("6f07", "6f08");
        assert_eq!(
            check(&bound, false, || Some(other.as_str())),
            Err(BindingError::OtherCertificate)
        );
        assert_eq!(
            check(&bound, false, || None),
            Err(BindingError::NoCertificate)
        );
        assert_eq!(
            check(&bound, false, || Some("not hex")),
            Err(BindingError::OtherCertificate)
        );
        assert_eq!(
            check(&unbound, true, || Some(HEX)),
            Err(BindingError::NotBound)
        );
        // An unbound token under a rule that does not require binding never reads the
        // certificate.
        assert_eq!(check(&unbound, false, || panic!("read")), Ok(None));
        assert_eq!(
            check(&claims(json!("x")), false, || panic!("read")),
            Err(BindingError::CnfNotObject)
        );
    }
}
