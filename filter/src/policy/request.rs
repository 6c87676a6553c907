//! The request view policies are evaluated over, and the two header parsers that derive
//! attributes from it (X-Forwarded-For for `remote.ip`, X-Forwarded-Client-Cert for the peer).

use std::net::{IpAddr, SocketAddr};

pub use crate::peer::PeerIdentity;

/// What the host glue exposes to [`super::Policies::evaluate`]. Every method may return `None`
/// (attribute unavailable); see the module docs of [`super`] for how a missing attribute
/// matches.
///
/// Evaluation calls each non-header method at most once per `evaluate`, and only when a compiled
/// policy reads the attribute ([`super::Policies::needs`]), so an implementation may fetch lazily
/// (e.g. behind `std::cell::OnceCell`). Headers are read by name, possibly several times: fetch
/// [`super::Policies::required_headers`] once, up front.
pub trait RequestAttributes {
    /// A request header by lower-case name (pseudo-headers like `:authority` included), its
    /// values joined with `,` when it was sent more than once (how `x-forwarded-for` and
    /// `x-forwarded-client-cert` are read).
    fn header(&self, lower_name: &str) -> Option<&str>;
    /// Every value of a request header, one per time it was sent: `request.headers[...]`
    /// conditions match when any value matches, as Envoy 1.40's header matcher does.
    fn header_values(&self, lower_name: &str) -> Vec<&str> {
        self.header(lower_name).into_iter().collect()
    }
    /// `:authority` (`host`), as sent, port included.
    fn host(&self) -> Option<&str>;
    /// `:method`.
    fn method(&self) -> Option<&str>;
    /// `:path` as sent, query included; the policy code normalises it.
    fn path(&self) -> Option<&str>;
    /// The port the connection was accepted on (`destination.port`).
    fn destination_port(&self) -> Option<u16>;
    /// Envoy's `source.address` with its port: the downstream address as the connection
    /// manager determined it. That is the connection's peer, unless Envoy took the address from
    /// `x-forwarded-for` (`use_remote_address: false` with the header present, or
    /// `xff_num_trusted_hops` > 0): then the port is 0, and the direct peer is unknown.
    fn source_address(&self) -> Option<SocketAddr>;
    /// The local address the connection was accepted on (`destination.address`).
    fn destination_ip(&self) -> Option<IpAddr>;
    /// The identities of the peer's client certificate; `None` for plaintext or TLS without a
    /// client certificate.
    fn peer(&self) -> Option<&PeerIdentity>;
    /// The TLS SNI the client requested (`connection.requested_server_name`).
    fn sni(&self) -> Option<&str>;
}

/// `remote.ip` from `x-forwarded-for` with `hops` trusted proxies, as Envoy computes it with
/// `use_remote_address: true` and `xff_num_trusted_hops: hops` (Istio gateways with
/// `numTrustedProxies`): the `hops`-th address from the right. `None` means "use the source
/// address": `hops == 0`, no header, too few entries, or an entry that is not an IP address.
pub(crate) fn xff_client(xff: Option<&str>, hops: u32) -> Option<IpAddr> {
    let skip = usize::try_from(hops.checked_sub(1)?).ok()?;
    let entry = xff?.rsplit(',').nth(skip)?;
    entry.trim().parse().ok()
}

/// The `hop`-th element from the right (1 = the proxy next to us) of an
/// `x-forwarded-client-cert` header (Envoy's format: elements separated by `,`, key/value pairs by
/// `;`, values optionally double-quoted).
fn xfcc_element(xfcc: &str, hop: u32) -> Option<&str> {
    let skip = usize::try_from(hop.checked_sub(1)?).ok()?;
    let total = split_unquoted(xfcc, b',').count();
    let index = total.checked_sub(skip.checked_add(1)?)?;
    split_unquoted(xfcc, b',').nth(index)
}

/// Every `key=value` pair of every element, keys and values trimmed, values still quoted.
pub(crate) fn xfcc_pairs(xfcc: &str) -> impl Iterator<Item = (&str, &str)> {
    split_unquoted(xfcc, b',')
        .flat_map(|element| split_unquoted(element, b';'))
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.trim(), value.trim()))
        })
}

/// The peer identity a trusted proxy wrote into the `hop`-th element from the right: its `URI=`,
/// `DNS=` and `Subject=` values. `None` when the element is missing or names no URI or DNS SAN.
/// A value quoted with escapes is not unescaped: the identity is then marked incomplete (its
/// rules fail closed) rather than guessed.
pub(crate) fn xfcc_identity(xfcc: &str, hop: u32) -> Option<PeerIdentity> {
    let element = xfcc_element(xfcc, hop)?;
    let mut identity = PeerIdentity {
        complete: true,
        ..PeerIdentity::default()
    };
    for (key, value) in xfcc_pairs(element) {
        let list = if key.eq_ignore_ascii_case("uri") {
            &mut identity.uris
        } else if key.eq_ignore_ascii_case("dns") {
            &mut identity.dns
        } else if key.eq_ignore_ascii_case("subject") {
            match unquote(value) {
                Some(subject) => identity.subject = subject.to_owned(),
                None => identity.complete = false,
            }
            continue;
        } else {
            continue;
        };
        match unquote(value) {
            Some("") => {}
            Some(v) => {
                if !list.iter().any(|known| known == v) {
                    list.push(v.to_owned());
                }
            }
            None => identity.complete = false,
        }
    }
    if identity.uris.is_empty() && identity.dns.is_empty() {
        return None;
    }
    Some(identity)
}

/// The `Hash=` (hex SHA-256 of the client certificate) of the `hop`-th element from the right:
/// the certificate a trusted proxy saw, for certificate-bound tokens (`crate::binding`). `None`
/// when the element or its `Hash=` is missing, or the value is quoted with escapes.
pub(crate) fn xfcc_hash(xfcc: &str, hop: u32) -> Option<&str> {
    let element = xfcc_element(xfcc, hop)?;
    xfcc_pairs(element)
        .find(|(key, _)| key.eq_ignore_ascii_case("hash"))
        .and_then(|(_, value)| unquote(value))
        .filter(|value| !value.is_empty())
}

/// Splits on `sep` outside double quotes (a backslash escapes the next byte inside quotes).
fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0usize;
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut in_quotes = false;
        let mut escaped = false;
        while let Some(&b) = bytes.get(pos) {
            if escaped {
                escaped = false;
            } else if in_quotes && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = !in_quotes;
            } else if b == sep && !in_quotes {
                let piece = s.get(start..pos);
                pos += 1;
                start = pos;
                return piece;
            }
            pos += 1;
        }
        done = true;
        s.get(start..)
    })
}

/// Strips surrounding quotes. A quoted value with escapes is refused (`None`) rather than
/// unescaped: URI SANs never need them, and refusing keeps this allocation-free.
fn unquote(v: &str) -> Option<&str> {
    match v.strip_prefix('"') {
        None => Some(v),
        Some(rest) => {
            let inner = rest.strip_suffix('"')?;
            if inner.contains(['\\', '"']) {
                None
            } else {
                Some(inner)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xff() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(xff_client(Some("1.1.1.1, 2.2.2.2"), 0), None);
        assert_eq!(xff_client(Some("1.1.1.1, 2.2.2.2"), 1), Some(ip("2.2.2.2")));
        assert_eq!(xff_client(Some("1.1.1.1, 2.2.2.2"), 2), Some(ip("1.1.1.1")));
        assert_eq!(xff_client(Some("1.1.1.1, 2.2.2.2"), 3), None);
        assert_eq!(
            xff_client(Some("1.1.1.1,2001:db8::1"), 1),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(xff_client(Some("garbage"), 1), None);
        assert_eq!(xff_client(None, 1), None);
    }

    #[test]
    fn xfcc() {
        let uris = |x: &str, hop| xfcc_identity(x, hop).map(|i| i.uris);
        let one = r#"By=spiffe://td/ns/gw/sa/gw;Hash=abc;Subject="CN=a,O=b";URI=spiffe://td/ns/order/sa/order-service"#;
        let id = xfcc_identity(one, 1).unwrap();
        assert_eq!(id.uris, ["spiffe://td/ns/order/sa/order-service"]);
        assert_eq!(id.subject, "CN=a,O=b");
        assert!(id.complete);
        assert_eq!(uris(one, 2), None);
        assert_eq!(uris(one, 0), None);
        let two = format!(r#"Hash=x;URI="spiffe://td/ns/a/sa/first",{one}"#);
        assert_eq!(
            uris(&two, 1),
            Some(vec!["spiffe://td/ns/order/sa/order-service".to_owned()])
        );
        assert_eq!(
            uris(&two, 2),
            Some(vec!["spiffe://td/ns/a/sa/first".to_owned()])
        );
        // A DNS SAN alone is an identity (Envoy RBAC falls back to it).
        let dns = xfcc_identity("Hash=x;DNS=a.b;DNS=c.d", 1).unwrap();
        assert_eq!(dns.dns, ["a.b", "c.d"]);
        // Every URI of the element is the peer's: a DENY on the second must see it.
        assert_eq!(
            uris("URI=spiffe://a/x;URI=spiffe://b/y", 1),
            Some(vec!["spiffe://a/x".to_owned(), "spiffe://b/y".to_owned()])
        );
        assert_eq!(
            uris("URI=spiffe://a/x;uri=spiffe://a/x", 1),
            Some(vec!["spiffe://a/x".to_owned()])
        );
        // An escaped value is not guessed at: the identity is incomplete.
        let escaped = xfcc_identity(r#"URI="spiffe://a/\"x";URI=spiffe://a/y"#, 1).unwrap();
        assert!(!escaped.complete);
        assert_eq!(escaped.uris, ["spiffe://a/y"]);
        assert_eq!(uris("URI=", 1), None);
    }

    #[test]
    fn xfcc_pairs_cross_elements() {
        let pairs: Vec<_> = xfcc_pairs(r#"Hash=a;Cert="x,y",URI=u"#).collect();
        assert_eq!(pairs, [("Hash", "a"), ("Cert", "\"x,y\""), ("URI", "u")]);
    }
}
