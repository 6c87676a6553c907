//! The request as [`RequestAttributes`] for policy evaluation, read lazily through host calls.
//!
//! Headers the policies read ([`crate::policy::Policies::required_headers`]) are fetched once,
//! up front; every other attribute is fetched on first use only (the policy engine asks for
//! an attribute only when a compiled policy reads it), so a policy set that looks only at
//! claims costs no extra host call.

use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};

use super::abi;
use super::request::header;
use crate::policy::RequestAttributes;

/// A lazily-read view of the current request (the effective context's).
pub struct HostRequest {
    headers: Vec<(String, Option<String>)>,
    host: OnceCell<Option<String>>,
    method: OnceCell<Option<String>>,
    path: OnceCell<Option<String>>,
    peer: OnceCell<Option<String>>,
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

/// Envoy encodes an address property as `ip:port` (IPv6 bracketed), sometimes as a bare IP.
fn address_property(path: &[&str]) -> Option<IpAddr> {
    let text = text_property(path)?;
    text.parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| text.parse::<IpAddr>())
        .ok()
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

    fn source_ip(&self) -> Option<IpAddr> {
        address_property(&["source", "address"])
    }

    fn destination_ip(&self) -> Option<IpAddr> {
        address_property(&["destination", "address"])
    }

    fn peer_principal(&self) -> Option<&str> {
        self.peer
            .get_or_init(|| text_property(&["connection", "uri_san_peer_certificate"]))
            .as_deref()
    }

    fn sni(&self) -> Option<&str> {
        self.sni
            .get_or_init(|| text_property(&["connection", "requested_server_name"]))
            .as_deref()
    }
}
