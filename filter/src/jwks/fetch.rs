//! What a JWKS (or OIDC discovery) fetch sends and what it accepts back.

use std::fmt;

/// Largest JWKS or discovery body accepted (a real JWKS is a few KiB; a larger body is an
/// attack or a misconfiguration, and parsing it would cost every worker VM).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A fetch that did not produce a usable document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The host reset the call or it timed out (Envoy answers with no headers).
    NoResponse,
    /// The server answered with a status other than 200.
    Status(u32),
    /// The body exceeded [`MAX_BODY_BYTES`].
    TooLarge(usize),
    /// The body is not the expected JSON document.
    BadBody(String),
    /// `dispatch_http_call` itself failed (e.g. unknown cluster).
    Dispatch(String),
    /// An OIDC discovery document whose `issuer` is not the configured one (both texts
    /// quoted and made printable, for the log line).
    IssuerMismatch { configured: String, found: String },
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NoResponse => f.write_str("no response (reset or timeout)"),
            FetchError::Status(status) => write!(f, "HTTP status {status}"),
            FetchError::TooLarge(size) => {
                write!(
                    f,
                    "body of {size} bytes exceeds the {MAX_BODY_BYTES}-byte limit"
                )
            }
            FetchError::BadBody(why) => write!(f, "invalid body: {why}"),
            FetchError::Dispatch(why) => write!(f, "could not dispatch the call: {why}"),
            FetchError::IssuerMismatch { configured, found } => write!(
                f,
                "discovery document names issuer {found}, the configured issuer is {configured}"
            ),
        }
    }
}

impl FetchError {
    /// Short stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::NoResponse => "no_response",
            FetchError::Status(_) => "status",
            FetchError::TooLarge(_) => "too_large",
            FetchError::BadBody(_) => "bad_body",
            FetchError::Dispatch(_) => "dispatch",
            FetchError::IssuerMismatch { .. } => "issuer_mismatch",
        }
    }
}

/// Checks the transport-level outcome of a fetch: `status` is `None` when the call was reset or
/// timed out (Envoy delivers that as a response with zero headers). Returns the body to parse.
pub fn parse_response(
    status: Option<u32>,
    body: Option<&[u8]>,
    body_size: usize,
) -> Result<&[u8], FetchError> {
    let status = status.ok_or(FetchError::NoResponse)?;
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    if body_size > MAX_BODY_BYTES {
        return Err(FetchError::TooLarge(body_size));
    }
    let body = body.unwrap_or_default();
    if body.len() > MAX_BODY_BYTES {
        return Err(FetchError::TooLarge(body.len()));
    }
    Ok(body)
}

/// The `max-age` of a `Cache-Control` value, in seconds. `no-store`/`no-cache` yield `Some(0)`
/// (the caller clamps to its floor); malformed or absent directives yield `None`.
pub fn max_age_secs(cache_control: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            // Saturate absurd values; the caller clamps to its ceiling anyway.
            max_age = value.and_then(|v| {
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    Some(v.parse::<u64>().unwrap_or(u64::MAX))
                } else {
                    None
                }
            });
        }
    }
    max_age
}

/// Extracts `jwks_uri` from an OIDC discovery document (OpenID Connect Discovery 1.0 §3) for
/// the configured `issuer`. The document's `issuer` must equal it exactly (§4.3: no
/// trailing-slash or case folding); a missing or different one is [`FetchError::IssuerMismatch`],
/// so a document served for another issuer (a misrouted cluster, a shared host) never supplies
/// the keys.
pub fn parse_discovery(body: &[u8], issuer: &str) -> Result<String, FetchError> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: Option<serde_json::Value>,
        jwks_uri: Option<String>,
    }
    let doc: Discovery = serde_json::from_slice(body)
        .map_err(|e| FetchError::BadBody(format!("discovery document is not JSON: {e}")))?;
    match &doc.issuer {
        Some(serde_json::Value::String(found)) if found == issuer => {}
        other => {
            return Err(FetchError::IssuerMismatch {
                configured: printable(issuer),
                found: match other {
                    None => "(none)".to_owned(),
                    Some(serde_json::Value::String(found)) => printable(found),
                    Some(_) => "(not a string)".to_owned(),
                },
            });
        }
    }
    let uri = doc
        .jwks_uri
        .ok_or_else(|| FetchError::BadBody("discovery document has no jwks_uri".into()))?;
    JwksUri::parse(&uri).map_err(|e| FetchError::BadBody(format!("jwks_uri: {e}")))?;
    Ok(uri)
}

/// A remote (or configured) text made safe for one log line: quoted, at most 128 characters,
/// anything but printable ASCII as `?`.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(128) + 2);
    out.push('"');
    for c in text.chars().take(128) {
        out.push(if c.is_ascii_graphic() || c == ' ' {
            c
        } else {
            '?'
        });
    }
    out.push('"');
    out
}

/// `<issuer>/.well-known/openid-configuration`, as OIDC discovery derives it from the issuer.
pub fn discovery_uri(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// A parsed `http(s)://host[:port]/path` URI: what a fetch sends as `:authority` and `:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUri {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// `:authority` to send (host, plus the port when it is not the scheme's default).
    pub authority: String,
    /// `:path` to send, including any query.
    pub path: String,
}

/// Why a URI is not usable as a JWKS or issuer location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriError {
    Scheme,
    Host,
    Port,
    Userinfo,
    Fragment,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriError::Scheme => "must start with http:// or https://",
            UriError::Host => "has no valid host",
            UriError::Port => "has an invalid port",
            UriError::Userinfo => "must not contain credentials (user@)",
            UriError::Fragment => "must not contain a #fragment",
        })
    }
}

impl JwksUri {
    pub fn parse(uri: &str) -> Result<JwksUri, UriError> {
        let (scheme, rest) = if let Some(rest) = uri.strip_prefix("https://") {
            ("https", rest)
        } else if let Some(rest) = uri.strip_prefix("http://") {
            ("http", rest)
        } else {
            return Err(UriError::Scheme);
        };
        if uri.contains('#') {
            return Err(UriError::Fragment);
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(UriError::Userinfo);
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)?;
        let valid_host = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
            });
        if !valid_host {
            return Err(UriError::Host);
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(JwksUri {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
        })
    }

    /// Istio's name for the outbound cluster of this host: `outbound|<port>||<host>`. With a
    /// ServiceEntry for the host, this cluster exists in every sidecar and gateway.
    pub fn istio_cluster(&self) -> String {
        format!(
            "outbound|{}||{}",
            self.port,
            self.host.trim_start_matches('[').trim_end_matches(']')
        )
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(&str, u16), UriError> {
    // IPv6 literal: [::1]:8080
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or(UriError::Host)?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, parse_port(port)?)),
            None if rest.is_empty() => Ok((host, default_port)),
            None => Err(UriError::Host),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host, parse_port(port)?)),
        None => Ok((authority, default_port)),
    }
}

fn parse_port(port: &str) -> Result<u16, UriError> {
    match port.parse::<u16>() {
        Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(UriError::Port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts_and_istio_cluster() {
        let u = JwksUri::parse("https://idp.example.com/.well-known/jwks.json").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str(), u.port),
            ("idp.example.com", "/.well-known/jwks.json", 443)
        );
        assert_eq!(u.istio_cluster(), "outbound|443||idp.example.com");

        let u = JwksUri::parse("http://127.0.0.1:8081/keys?x=1").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("127.0.0.1:8081", "/keys?x=1")
        );
        assert_eq!(u.istio_cluster(), "outbound|8081||127.0.0.1");

        let u = JwksUri::parse("http://idp").unwrap();
        assert_eq!((u.path.as_str(), u.port), ("/", 80));

        let u = JwksUri::parse("https://[::1]:9443/jwks").unwrap();
        assert_eq!(u.istio_cluster(), "outbound|9443||::1");
    }

    #[test]
    fn bad_uris() {
        assert_eq!(JwksUri::parse("ftp://x/"), Err(UriError::Scheme));
        assert_eq!(JwksUri::parse("https:///jwks"), Err(UriError::Host));
        assert_eq!(JwksUri::parse("https://a:0/"), Err(UriError::Port));
        assert_eq!(JwksUri::parse("https://a:99999/"), Err(UriError::Port));
        assert_eq!(JwksUri::parse("https://a:+1/"), Err(UriError::Port));
        assert_eq!(JwksUri::parse("https://u:p@a/"), Err(UriError::Userinfo));
        assert_eq!(JwksUri::parse("https://a/#f"), Err(UriError::Fragment));
        assert_eq!(JwksUri::parse("https://a b/"), Err(UriError::Host));
    }

    #[test]
    fn cache_control() {
        assert_eq!(max_age_secs("public, max-age=300"), Some(300));
        assert_eq!(max_age_secs("max-age=\"60\""), Some(60));
        assert_eq!(max_age_secs("MAX-AGE=7"), Some(7));
        assert_eq!(max_age_secs("no-store"), Some(0));
        assert_eq!(max_age_secs("max-age=300, no-cache"), Some(0));
        assert_eq!(max_age_secs("max-age=-1"), None);
        assert_eq!(max_age_secs("max-age=abc"), None);
        assert_eq!(max_age_secs("max-age="), None);
        assert_eq!(max_age_secs("public"), None);
        assert_eq!(
            max_age_secs("max-age=99999999999999999999999"),
            Some(u64::MAX)
        );
    }

    #[test]
    fn responses() {
        assert_eq!(parse_response(None, None, 0), Err(FetchError::NoResponse));
        assert_eq!(
            parse_response(Some(503), Some(b"x"), 1),
            Err(FetchError::Status(503))
        );
        assert_eq!(
            parse_response(Some(200), None, MAX_BODY_BYTES + 1),
            Err(FetchError::TooLarge(MAX_BODY_BYTES + 1))
        );
        assert_eq!(parse_response(Some(200), Some(b"{}"), 2), Ok(&b"{}"[..]));
        assert_eq!(parse_response(Some(200), None, 0), Ok(&b""[..]));
    }

    #[test]
    fn discovery() {
        let doc = br#"{"issuer":"https://idp","jwks_uri":"https://idp/keys"}"#;
        assert_eq!(
            parse_discovery(doc, "https://idp").unwrap(),
            "https://idp/keys"
        );
        assert!(matches!(
            parse_discovery(br#"{"issuer":"x"}"#, "x"),
            Err(FetchError::BadBody(_))
        ));
        assert!(matches!(
            parse_discovery(br#"{"issuer":"x","jwks_uri":"file:///etc/passwd"}"#, "x"),
            Err(FetchError::BadBody(_))
        ));
        assert!(matches!(
            parse_discovery(b"<html>", "x"),
            Err(FetchError::BadBody(_))
        ));
    }

    /// OpenID Connect Discovery §4.3: the document's `issuer` is exactly the configured one.
    #[test]
    fn discovery_issuer_must_match_exactly() {
        let doc = |issuer: &str| {
            format!(r#"{{"issuer":{issuer},"jwks_uri":"https://idp/keys"}}"#).into_bytes()
        };
        let mismatch = |configured: &str, found: &str| {
            Err(FetchError::IssuerMismatch {
                configured: configured.to_owned(),
                found: found.to_owned(),
            })
        };
        assert_eq!(
            parse_discovery(&doc(r#""https://idp/""#), "https://idp"),
            mismatch(r#""https://idp""#, r#""https://idp/""#),
            "no trailing-slash folding"
        );
        assert_eq!(
            parse_discovery(&doc(r#""https://idp""#), "https://idp/"),
            mismatch(r#""https://idp/""#, r#""https://idp""#)
        );
        assert_eq!(
            parse_discovery(&doc(r#""https://IDP""#), "https://idp"),
            mismatch(r#""https://idp""#, r#""https://IDP""#),
            "no case folding"
        );
        assert_eq!(
            parse_discovery(&doc(r#""https://evil\n\u0000""#), "https://idp"),
            mismatch(r#""https://idp""#, r#""https://evil??""#),
            "printable in the log line"
        );
        assert_eq!(
            parse_discovery(&doc("7"), "https://idp"),
            mismatch(r#""https://idp""#, "(not a string)")
        );
        assert_eq!(
            parse_discovery(br#"{"jwks_uri":"https://idp/keys"}"#, "https://idp"),
            mismatch(r#""https://idp""#, "(none)"),
            "issuer is REQUIRED (§3)"
        );
        let e = parse_discovery(&doc(r#""https://other""#), "https://idp").unwrap_err();
        assert_eq!(e.reason(), "issuer_mismatch");
        assert_eq!(
            e.to_string(),
            r#"discovery document names issuer "https://other", the configured issuer is "https://idp""#
        );
        assert_eq!(
            parse_discovery(&doc(r#""https://idp/""#), "https://idp/").unwrap(),
            "https://idp/keys"
        );
        assert_eq!(
            discovery_uri("https://idp/"),
            "https://idp/.well-known/openid-configuration"
        );
    }
}
