//! The request as [`RequestAttributes`] for policy evaluation, read lazily through host calls.
//!
//! Headers the policies read ([`crate::policy::Policies::required_headers`]) are fetched once,
//! up front; every other attribute is fetched on first use only (the policy engine asks for
//! an attribute only when a compiled policy reads it), so a policy set that looks only at
//! claims costs no extra host call.

use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};

use log::debug;

use super::host::Host;
use crate::policy::{PeerIdentity, RequestAttributes};

/// One header a policy reads, as sent: every value, and all of them joined with `,`.
struct RequiredHeader {
    name: String,
    joined: Option<String>,
    values: Vec<String>,
}

/// The `required` headers (lower-case names) from one read of the whole header map: a header
/// sent twice must be seen twice, and the host's single-header read gives only the first value.
/// Values that are not UTF-8 are left out, as an unreadable header is.
fn required_headers<H: Host>(host: &H, required: &[String]) -> Vec<RequiredHeader> {
    if required.is_empty() {
        return Vec::new();
    }
    let pairs = host.request_header_pairs();
    required
        .iter()
        .map(|name| {
            let values: Vec<String> = pairs
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .filter_map(|(_, v)| String::from_utf8(v.clone()).ok())
                .collect();
            RequiredHeader {
                name: name.clone(),
                joined: (!values.is_empty()).then(|| values.join(",")),
                values,
            }
        })
        .collect()
}

/// A lazily-read view of the current request (the effective context's).
pub struct HostRequest<'h, H: Host> {
    proxy: &'h H,
    /// Each required header: its values joined with `,` (absent: `None`), and each value.
    headers: Vec<RequiredHeader>,
    host: OnceCell<Option<String>>,
    method: OnceCell<Option<String>>,
    path: OnceCell<Option<String>>,
    peer: OnceCell<Option<PeerIdentity>>,
    sni: OnceCell<Option<String>>,
}

fn text_header<H: Host>(host: &H, name: &str) -> Option<String> {
    host.request_header(name)
        .and_then(|v| String::from_utf8(v).ok())
}

fn text_property<H: Host>(host: &H, path: &[&str]) -> Option<String> {
    host.property(path)
        .and_then(|v| String::from_utf8(v).ok())
        .filter(|s| !s.is_empty())
}

/// Envoy encodes an address property as `ip:port` (IPv6 bracketed); a bare IP is read with
/// port 0 (for `source.address`: "not known to be the connection's peer").
fn socket_property<H: Host>(host: &H, path: &[&str]) -> Option<SocketAddr> {
    let text = text_property(host, path)?;
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
        .ok()
}

/// The peer certificate's identities (see [`crate::peer`] for the three sources and why).
/// `connection.mtls` says whether a client certificate was presented at all.
fn read_peer<H: Host>(host: &H) -> Option<PeerIdentity> {
    let presented = host
        .property(&["connection", "mtls"])
        .is_some_and(|v| v.first() == Some(&1));
    if !presented {
        return None;
    }
    let subject =
        text_property(host, &["connection", "subject_peer_certificate"]).unwrap_or_default();
    if let Some(pem) = host.property(&["connection", "peer_certificate"]) {
        match PeerIdentity::from_url_encoded_pem(&pem, subject.clone()) {
            Ok(identity) => return Some(identity),
            Err(e) => debug!("meshguard: connection.peer_certificate: {e}"),
        }
    }
    if let Some(xfcc) = text_header(host, "x-forwarded-client-cert")
        && let Some(digest) = text_property(host, &["connection", "sha256_peer_certificate_digest"])
        && let Some(identity) = PeerIdentity::from_xfcc(&xfcc, &digest, subject.clone())
    {
        return Some(identity);
    }
    Some(PeerIdentity::from_first_sans(
        text_property(host, &["connection", "uri_san_peer_certificate"]),
        text_property(host, &["connection", "dns_san_peer_certificate"]),
        subject,
    ))
}

impl<'h, H: Host> HostRequest<'h, H> {
    /// Fetches the `required` headers now (lower-case names).
    pub fn new(host: &'h H, required: &[String]) -> Self {
        HostRequest {
            proxy: host,
            headers: required_headers(host, required),
            host: OnceCell::new(),
            method: OnceCell::new(),
            path: OnceCell::new(),
            peer: OnceCell::new(),
            sni: OnceCell::new(),
        }
    }
}

impl<H: Host> RequestAttributes for HostRequest<'_, H> {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == lower_name)
            .and_then(|h| h.joined.as_deref())
    }

    fn header_values(&self, lower_name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .find(|h| h.name == lower_name)
            .map(|h| h.values.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn host(&self) -> Option<&str> {
        self.host
            .get_or_init(|| text_header(self.proxy, ":authority"))
            .as_deref()
    }

    fn method(&self) -> Option<&str> {
        self.method
            .get_or_init(|| text_header(self.proxy, ":method"))
            .as_deref()
    }

    fn path(&self) -> Option<&str> {
        self.path
            .get_or_init(|| text_header(self.proxy, ":path"))
            .as_deref()
    }

    fn destination_port(&self) -> Option<u16> {
        // Envoy: a little-endian int64; some hosts give the decimal text.
        let bytes = self.proxy.property(&["destination", "port"])?;
        let port = match <[u8; 8]>::try_from(bytes.as_slice()) {
            Ok(raw) => u64::from_le_bytes(raw),
            Err(_) => std::str::from_utf8(&bytes).ok()?.trim().parse().ok()?,
        };
        u16::try_from(port).ok()
    }

    fn source_address(&self) -> Option<SocketAddr> {
        socket_property(self.proxy, &["source", "address"])
    }

    fn destination_ip(&self) -> Option<IpAddr> {
        socket_property(self.proxy, &["destination", "address"]).map(|a| a.ip())
    }

    fn peer(&self) -> Option<&PeerIdentity> {
        self.peer.get_or_init(|| read_peer(self.proxy)).as_ref()
    }

    fn sni(&self) -> Option<&str> {
        self.sni
            .get_or_init(|| text_property(self.proxy, &["connection", "requested_server_name"]))
            .as_deref()
    }
}
