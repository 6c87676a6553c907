//! The downstream peer's identities, as Envoy RBAC's `authenticated` matcher reads them: every
//! URI SAN, every DNS SAN and the subject of the client certificate (a principal matcher matches
//! when any of them matches). Istio's `principals`, `namespaces`, `serviceAccounts` and
//! `trustDomains` all compile to that matcher.
//!
//! Envoy's connection properties name only the *first* URI SAN and the *first* DNS SAN, so a
//! certificate `[spiffe://…/allow, spiffe://…/deny]` would look like `allow` alone and walk
//! around `DENY principals: [deny]`. The whole certificate comes from, in this order:
//! 1. `connection.peer_certificate` (URL-encoded PEM; Envoy 1.40 has it, 1.36 does not);
//! 2. an `x-forwarded-client-cert` element's `Cert=` whose SHA-256 equals the connection's
//!    `connection.sha256_peer_certificate_digest`: Envoy writes it with
//!    `forward_client_cert_details: SANITIZE_SET` and `set_current_client_cert_details.cert`, and
//!    the digest check makes the header's origin irrelevant (a client can only ever show the
//!    certificate it authenticated with);
//! 3. otherwise the first SANs alone: [`PeerIdentity::complete`] is false and the policies treat
//!    "no match among these" as undetermined (fail closed: docs/policies.md).
//!
//! Host-free: the host reads the properties and the header, this module parses.

use std::fmt;

use percent_encoding::percent_decode;
use x509_cert::Certificate;
use x509_cert::der::{Decode, pem};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::hex;

/// Envoy sends at most a chain's worth of PEM; a larger property or `Cert=` is refused unread.
const MAX_CERT_TEXT: usize = 64 * 1024;

/// The identities of a peer that presented a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerIdentity {
    /// URI SANs in certificate order (`spiffe://td/ns/a/sa/b`).
    pub uris: Vec<String>,
    /// DNS SANs in certificate order.
    pub dns: Vec<String>,
    /// The subject as Envoy formats it (`connection.subject_peer_certificate`, RFC 2253 order);
    /// empty when unknown.
    pub subject: String,
    /// Whether `uris` and `dns` are all the certificate's SANs. False when only Envoy's
    /// first-SAN properties were available and the certificate may carry more.
    pub complete: bool,
}

/// Why a certificate text could not be read (the request is then treated as if only the
/// first-SAN properties were known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerCertError {
    /// Longer than [`MAX_CERT_TEXT`].
    TooLarge,
    /// Not one PEM `CERTIFICATE` block.
    Pem,
    /// The DER is not an X.509 certificate, or its SAN extension is malformed or repeated.
    Der,
}

impl fmt::Display for PeerCertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerCertError::TooLarge => "the peer certificate text is too large",
            PeerCertError::Pem => "the peer certificate is not one PEM CERTIFICATE block",
            PeerCertError::Der => "the peer certificate is not a well-formed X.509 certificate",
        })
    }
}

impl PeerIdentity {
    /// Only what Envoy's properties give: the first URI SAN, the first DNS SAN, the subject.
    /// Complete when there is no SAN at all (a certificate with a second SAN has a first one).
    pub fn from_first_sans(uri: Option<String>, dns: Option<String>, subject: String) -> Self {
        let complete = uri.is_none() && dns.is_none();
        PeerIdentity {
            uris: uri.into_iter().collect(),
            dns: dns.into_iter().collect(),
            subject,
            complete,
        }
    }

    /// Every name a principal matcher is tried against: URI SANs, DNS SANs, then the subject.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.uris
            .iter()
            .chain(&self.dns)
            .map(String::as_str)
            .chain(std::iter::once(self.subject.as_str()))
    }

    /// The certificate's SANs from its URL-encoded PEM (Envoy's `connection.peer_certificate`
    /// and XFCC `Cert=` encoding), with `subject` as Envoy formats it.
    pub fn from_url_encoded_pem(text: &[u8], subject: String) -> Result<Self, PeerCertError> {
        let der = der_from_url_encoded_pem(text)?;
        Self::from_der(&der, subject)
    }

    fn from_der(der: &[u8], subject: String) -> Result<Self, PeerCertError> {
        let cert = Certificate::from_der(der).map_err(|_| PeerCertError::Der)?;
        let mut identity = PeerIdentity {
            subject,
            complete: true,
            ..PeerIdentity::default()
        };
        let san = cert
            .tbs_certificate()
            .get_extension::<SubjectAltName>()
            .map_err(|_| PeerCertError::Der)?;
        for name in san.map(|(_, san)| san.0).unwrap_or_default() {
            match name {
                GeneralName::UniformResourceIdentifier(uri) => identity.uris.push(uri.to_string()),
                GeneralName::DnsName(dns) => identity.dns.push(dns.to_string()),
                _ => {}
            }
        }
        Ok(identity)
    }

    /// The certificate carried by an `x-forwarded-client-cert` header whose SHA-256 is
    /// `digest_hex` (the connection's own `sha256_peer_certificate_digest`, lower-case hex).
    /// `None` when no element's `Cert=` is that certificate.
    pub fn from_xfcc(xfcc: &str, digest_hex: &str, subject: String) -> Option<Self> {
        xfcc_certs(xfcc).find_map(|text| {
            let der = der_from_url_encoded_pem(text.as_bytes()).ok()?;
            if !hex::eq_bytes(&meshguard_crypto::sha256(&der), digest_hex) {
                return None;
            }
            Self::from_der(&der, subject.clone()).ok()
        })
    }
}

fn der_from_url_encoded_pem(text: &[u8]) -> Result<Vec<u8>, PeerCertError> {
    if text.len() > MAX_CERT_TEXT {
        return Err(PeerCertError::TooLarge);
    }
    let pem_text: Vec<u8> = percent_decode(text).collect();
    match pem::decode_vec(&pem_text) {
        Ok(("CERTIFICATE", der)) => Ok(der),
        _ => Err(PeerCertError::Pem),
    }
}

/// Every `Cert="…"` value of an XFCC header (elements split on `,`, pairs on `;`, outside quotes).
fn xfcc_certs(xfcc: &str) -> impl Iterator<Item = &str> {
    crate::policy::xfcc_pairs(xfcc)
        .filter(|(key, _)| key.eq_ignore_ascii_case("cert"))
        .map(|(_, value)| value.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

    /// The certificates of `filter/testdata/certs` (gen.sh there), URL-encoded as Envoy sends them.
    fn encoded(name: &str) -> String {
        let pem = match name {
            "two-uris" => include_str!("../testdata/certs/two-uris.pem"),
            "dns-only" => include_str!("../testdata/certs/dns-only.pem"),
            _ => include_str!("../testdata/certs/no-san.pem"),
        };
        utf8_percent_encode(pem, NON_ALPHANUMERIC).to_string()
    }

    /// SHA-256 of two-uris.pem's DER (`openssl x509 -outform der | sha256sum`).
    const TWO_URIS_SHA256: &str =
        "721fcca80dfe3d7600793f73be41f4b07d49b8b10f7d38e157690c5059d62f35";

    #[test]
    fn every_san_of_the_certificate() {
        let id = PeerIdentity::from_url_encoded_pem(encoded("two-uris").as_bytes(), "CN=x".into())
            .unwrap();
        assert_eq!(
            id.uris,
            [
                "spiffe://cluster.local/ns/a/sa/allow",
                "spiffe://cluster.local/ns/a/sa/deny"
            ]
        );
        assert_eq!(id.dns, ["two.example.com"]);
        assert!(id.complete);
        assert_eq!(id.names().last(), Some("CN=x"));
        let dns = PeerIdentity::from_url_encoded_pem(encoded("dns-only").as_bytes(), String::new())
            .unwrap();
        assert!(dns.uris.is_empty());
        assert_eq!(dns.dns, ["client.example.com", "alt.example.com"]);
        let none =
            PeerIdentity::from_url_encoded_pem(encoded("no-san").as_bytes(), "CN=no-san".into())
                .unwrap();
        assert!(none.uris.is_empty() && none.dns.is_empty() && none.complete);
        // Plain (not URL-encoded) PEM reads the same.
        let plain = include_str!("../testdata/certs/two-uris.pem");
        assert_eq!(
            PeerIdentity::from_url_encoded_pem(plain.as_bytes(), "CN=x".into()).unwrap(),
            id
        );
    }

    #[test]
    fn bad_certificate_texts_are_errors() {
        let too_large = vec![b'A'; MAX_CERT_TEXT + 1];
        assert_eq!(
            PeerIdentity::from_url_encoded_pem(&too_large, String::new()),
            Err(PeerCertError::TooLarge)
        );
        assert_eq!(
            PeerIdentity::from_url_encoded_pem(b"not pem", String::new()),
            Err(PeerCertError::Pem)
        );
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            PeerIdentity::from_url_encoded_pem(key.as_bytes(), String::new()),
            Err(PeerCertError::Pem)
        );
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            PeerIdentity::from_url_encoded_pem(junk.as_bytes(), String::new()),
            Err(PeerCertError::Der)
        );
    }

    #[test]
    fn xfcc_cert_only_with_the_connections_digest() {
        let cert = encoded("two-uris");
        let other = encoded("dns-only");
        // Envoy's SANITIZE_SET element, after a client-sent one that names another certificate.
        let xfcc = format!(
            r#"Hash=00;Cert="{other}";URI=spiffe://cluster.local/ns/a/sa/allow,By=spiffe://x;Hash={TWO_URIS_SHA256};Cert="{cert}""#
        );
        let id = PeerIdentity::from_xfcc(&xfcc, TWO_URIS_SHA256, String::new()).unwrap();
        assert_eq!(id.uris.len(), 2);
        assert!(id.complete);
        assert_eq!(
            PeerIdentity::from_xfcc(&xfcc, &TWO_URIS_SHA256.to_uppercase(), String::new()),
            Some(id)
        );
        // The connection is another certificate: nothing in the header is its.
        let wrong = "11".repeat(32);
        assert_eq!(PeerIdentity::from_xfcc(&xfcc, &wrong, String::new()), None);
        assert_eq!(
            PeerIdentity::from_xfcc("URI=spiffe://a", TWO_URIS_SHA256, String::new()),
            None
        );
    }

    #[test]
    fn first_sans_only() {
        let partial = PeerIdentity::from_first_sans(Some("spiffe://a".into()), None, "CN=a".into());
        assert!(!partial.complete);
        let none = PeerIdentity::from_first_sans(None, None, "CN=a".into());
        assert!(none.complete, "no first SAN means no SAN at all");
    }
}
