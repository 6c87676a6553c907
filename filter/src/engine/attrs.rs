//! The request as [`RequestAttributes`] for policy evaluation, read lazily through host calls.
//!
//! Headers the policies read ([`crate::policy::Policies::required_headers`]) are fetched once,
//! up front; every other attribute is fetched on first use only (the policy engine asks for
//! an attribute only when a compiled policy reads it), so a policy set that looks only at
//! claims costs no extra host call.

use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};

use log::debug;

use super::abi;
use super::request::header;
use crate::policy::{PeerIdentity, RequestAttributes};

/// A lazily-read view of the current request (the effective context's).
pub struct HostRequest {
    headers: Vec<(String, Option<String>)>,
    host: OnceCell<Option<String>>,
    method: OnceCell<Option<String>>,
    path: OnceCell<Option<String>>,
    peer: OnceCell<Option<PeerIdentity>>,
    sni: OnceCell<Option<String>>,
}

fn text_header(name: &str) -> Option<String> {
    header(name).and_then(|v| String::from_utf8(v).ok())
}

fn property(path: &[&str]) -> Option<Vec<u8>> {
    abi::property(path).ok().flatten()
}

fn text_property(path: &[&str]) -> Option<String> {
    property(path)
        .and_then(|v| String::from_utf8(v).ok())
        .filter(|s| !s.is_empty())
}

/// Envoy encodes an address property as `ip:port` (IPv6 bracketed); a bare IP is read with
/// port 0 (for `source.address`: "not known to be the connection's peer").
fn socket_property(path: &[&str]) -> Option<SocketAddr> {
    let text = text_property(path)?;
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
        .ok()
}

/// The peer certificate's identities (see [`crate::peer`] for the three sources and why).
/// `connection.mtls` says whether a client certificate was presented at all.
fn read_peer() -> Option<PeerIdentity> {
    let presented = property(&["connection", "mtls"]).is_some_and(|v| v.first() == Some(&1));
    if !presented {
        return None;
    }
    let subject = text_property(&["connection", "subject_peer_certificate"]).unwrap_or_default();
    if let Some(pem) = property(&["connection", "peer_certificate"]) {
        match PeerIdentity::from_url_encoded_pem(&pem, subject.clone()) {
            Ok(identity) => return Some(identity),
            Err(e) => debug!("meshguard: connection.peer_certificate: {e}"),
        }
    }
    if let Some(xfcc) = text_header("x-forwarded-client-cert")
        && let Some(digest) = text_property(&["connection", "sha256_peer_certificate_digest"])
        && let Some(identity) = PeerIdentity::from_xfcc(&xfcc, &digest, subject.clone())
    {
        return Some(identity);
    }
    Some(PeerIdentity::from_first_sans(
        text_property(&["connection", "uri_san_peer_certificate"]),
        text_property(&["connection", "dns_san_peer_certificate"]),
        subject,
    ))
}

impl HostRequest {
    /// Fetches the `required` headers now (lower-case names).
    pub fn new(required: &[String]) -> HostRequest {
        HostRequest {
            headers: required
                .iter()
                .map(|name| (name.clone(), text_header(name)))
                .collect(),
            host: OnceCell::new(),
            method: OnceCell::new(),
            path: OnceCell::new(),
            peer: OnceCell::new(),
            sni: OnceCell::new(),
        }
    }
}

impl RequestAttributes for HostRequest {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| name == lower_name)
            .and_then(|(_, value)| value.as_deref())
    }

    fn host(&self) -> Option<&str> {
        self.host
            .get_or_init(|| text_header(":authority"))
            .as_deref()
    }

    fn method(&self) -> Option<&str> {
        self.method
            .get_or_init(|| text_header(":method"))
            .as_deref()
    }

    fn path(&self) -> Option<&str> {
        self.path.get_or_init(|| text_header(":path")).as_deref()
    }

    fn destination_port(&self) -> Option<u16> {
        // Envoy: a little-endian int64; some hosts give the decimal text.
        let bytes = property(&["destination", "port"])?;
        let port = match <[u8; 8]>::try_from(bytes.as_slice()) {
            Ok(raw) => u64::from_le_bytes(raw),
            Err(_) => std::str::from_utf8(&bytes).ok()?.trim().parse().ok()?,
        };
        u16::try_from(port).ok()
    }

    fn source_address(&self) -> Option<SocketAddr> {
        socket_property(&["source", "address"])
    }

    fn destination_ip(&self) -> Option<IpAddr> {
        socket_property(&["destination", "address"]).map(|a| a.ip())
    }

    fn peer(&self) -> Option<&PeerIdentity> {
        self.peer.get_or_init(read_peer).as_ref()
    }

    fn sni(&self) -> Option<&str> {
        self.sni
            .get_or_init(|| text_property(&["connection", "requested_server_name"]))
            .as_deref()
    }
}
