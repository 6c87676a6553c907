//! Generated certificates (rcgen): a CA, a server certificate for `localhost`, client
//! certificates carrying SPIFFE URI SANs (any number of URI and DNS SANs, or none); and rustls
//! client configs that present them.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Pki {
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    /// PEM files for Envoy's listener.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub ca_file: PathBuf,
}

/// A client certificate: the rustls config presenting it, and the certificate as PEM.
pub struct ClientCert {
    pub config: Arc<rustls::ClientConfig>,
    pub pem: String,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Pki {
    /// A CA and a server certificate (`localhost`, 127.0.0.1), written as PEM into `dir`.
    pub fn new(dir: &Path) -> Result<Pki, String> {
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "meshguard e2e CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let server_key = KeyPair::generate().map_err(err)?;
        let mut sp = CertificateParams::new(vec!["localhost".to_string()]).map_err(err)?;
        sp.subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        sp.distinguished_name.push(DnType::CommonName, "localhost");
        let server_cert = sp.signed_by(&server_key, &ca_cert, &ca_key).map_err(err)?;
        let w = |name: &str, s: String| -> Result<PathBuf, String> {
            let p = dir.join(name);
            std::fs::write(&p, s).map_err(err)?;
            Ok(p)
        };
        Ok(Pki {
            server_cert: w("server.pem", server_cert.pem())?,
            server_key: w("server-key.pem", server_key.serialize_pem())?,
            ca_file: w("ca.pem", ca_cert.pem())?,
            ca_cert,
            ca_key,
        })
    }

    fn roots(&self) -> Result<rustls::RootCertStore, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_cert.der().clone()).map_err(err)?;
        Ok(roots)
    }

    fn builder(
        &self,
    ) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>, String>
    {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_root_certificates(self.roots()?))
    }

    /// A client config presenting a certificate whose only SAN is the URI `spiffe_id`.
    pub fn client(&self, spiffe_id: &str) -> Result<Arc<rustls::ClientConfig>, String> {
        self.client_with(&[spiffe_id], &[], "workload")
    }

    /// A client config presenting a certificate with subject `CN=<common_name>` and the SANs
    /// `uris` then `dns`, in that order (neither: no SAN extension at all).
    pub fn client_with(
        &self,
        uris: &[&str],
        dns: &[&str],
        common_name: &str,
    ) -> Result<Arc<rustls::ClientConfig>, String> {
        Ok(self.client_cert(uris, dns, common_name)?.config)
    }

    /// [`Pki::client_with`], also returning the certificate as PEM.
    pub fn client_cert(
        &self,
        uris: &[&str],
        dns: &[&str],
        common_name: &str,
    ) -> Result<ClientCert, String> {
        let key = KeyPair::generate().map_err(err)?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, common_name);
        p.subject_alt_names = Vec::with_capacity(uris.len() + dns.len());
        for uri in uris {
            p.subject_alt_names
                .push(SanType::URI((*uri).try_into().map_err(err)?));
        }
        for name in dns {
            p.subject_alt_names
                .push(SanType::DnsName((*name).try_into().map_err(err)?));
        }
        let cert = p
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .map_err(err)?;
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(ClientCert {
            config: Arc::new(
                self.builder()?
                    .with_client_auth_cert(chain, key_der)
                    .map_err(err)?,
            ),
            pem: cert.pem(),
        })
    }

    /// A rustls server config with a certificate for `dns_name`, signed by this CA.
    pub fn server(&self, dns_name: &str) -> Result<Arc<rustls::ServerConfig>, String> {
        let key = KeyPair::generate().map_err(err)?;
        let mut p = CertificateParams::new(vec![dns_name.to_string()]).map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, dns_name);
        let cert = p
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .map_err(err)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key_der)
            .map_err(err)?;
        Ok(Arc::new(config))
    }

    /// A client config with no client certificate.
    pub fn anonymous(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        Ok(Arc::new(self.builder()?.with_no_client_auth()))
    }
}
