//! The request view policies are evaluated over, and the two header parsers that derive
//! attributes from it (X-Forwarded-For for `remote.ip`, X-Forwarded-Client-Cert for the peer).

use std::net::IpAddr;

/// What the host glue exposes to [`super::Policies::evaluate`]. Every method may return `None`
/// (attribute unavailable); see the module docs of [`super`] for how a missing attribute
/// matches.
///
/// Evaluation calls each non-header method at most once per `evaluate`, and only when a compiled
/// policy reads the attribute ([`super::Policies::needs`]), so an implementation may fetch lazily
/// (e.g. behind `std::cell::OnceCell`). Headers are read by name, possibly several times: fetch
/// [`super::Policies::required_headers`] once, up front.
pub trait RequestAttributes {
    /// A request header by lower-case name (pseudo-headers like `:authority` included). Several
    /// values of one header must be joined with `,` (Envoy's header matcher semantics).
    fn header(&self, lower_name: &str) -> Option<&str>;
    /// `:authority` (`host`), as sent, port included.
    fn host(&self) -> Option<&str>;
    /// `:method`.
    fn method(&self) -> Option<&str>;
    /// `:path` as sent, query included; the policy code normalises it.
    fn path(&self) -> Option<&str>;
    /// The port the connection was accepted on (`destination.port`).
    fn destination_port(&self) -> Option<u16>;
    /// The address of the directly connected peer (`source.address`, the physical connection
    /// address, not an X-Forwarded-For-derived one).
    fn source_ip(&self) -> Option<IpAddr>;
    /// The local address the connection was accepted on (`destination.address`).
    fn destination_ip(&self) -> Option<IpAddr>;
    /// The peer certificate's URI SAN (`connection.uri_san_peer_certificate`), e.g.
    /// `spiffe://cluster.local/ns/a/sa/b`; `None` for plaintext or a certificate without one.
    fn peer_principal(&self) -> Option<&str>;
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

/// The `URI=` value of the `hop`-th element from the right (1 = the proxy next to us) of an
/// `x-forwarded-client-cert` header (Envoy's format: elements separated by `,`, key/value pairs by
/// `;`, values optionally double-quoted). `None` when the element or its `URI` is missing, or
/// when the element carries several different URIs.
pub(crate) fn xfcc_uri(xfcc: &str, hop: u32) -> Option<&str> {
    let skip = usize::try_from(hop.checked_sub(1)?).ok()?;
    let mut elements = split_unquoted(xfcc, b',');
    // Count from the right: collect positions without allocating by walking twice.
    let total = split_unquoted(xfcc, b',').count();
    let index = total.checked_sub(skip + 1)?;
    let element = elements.nth(index)?;
    let mut found: Option<&str> = None;
    for pair in split_unquoted(element, b';') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("uri") {
            continue;
        }
        let value = unquote(value.trim())?;
        match found {
            Some(prev) if prev != value => return None,
            _ => found = Some(value),
        }
    }
    found.filter(|v| !v.is_empty())
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
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
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
        let one = r#"By=spiffe://td/ns/gw/sa/gw;Hash=abc;Subject="CN=a,O=b";URI=spiffe://td/ns/order/sa/order-service"#;
        assert_eq!(
            xfcc_uri(one, 1),
            Some("spiffe://td/ns/order/sa/order-service")
        );
        assert_eq!(xfcc_uri(one, 2), None);
        assert_eq!(xfcc_uri(one, 0), None);
        let two = format!(r#"Hash=x;URI="spiffe://td/ns/a/sa/first",{one}"#);
        assert_eq!(
            xfcc_uri(&two, 1),
            Some("spiffe://td/ns/order/sa/order-service")
        );
        assert_eq!(xfcc_uri(&two, 2), Some("spiffe://td/ns/a/sa/first"));
        assert_eq!(xfcc_uri("Hash=x;DNS=a.b", 1), None);
        assert_eq!(xfcc_uri("URI=spiffe://a/x;URI=spiffe://b/y", 1), None);
        assert_eq!(
            xfcc_uri("URI=spiffe://a/x;uri=spiffe://a/x", 1),
            Some("spiffe://a/x")
        );
        assert_eq!(xfcc_uri(r#"URI="spiffe://a/\"x""#, 1), None);
        assert_eq!(xfcc_uri("URI=", 1), None);
    }
}
