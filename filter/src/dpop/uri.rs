//! The `htu` comparison of DPoP (RFC 9449 §4.3 check 9): the proof's URI and the request's,
//! each without query and fragment, compared after RFC 3986 normalisation — syntax-based
//! (§6.2.2: case of scheme and host, percent-encoding case, unreserved characters decoded, dot
//! segments removed) and scheme-based for http and https (§6.2.3: the default port dropped, an
//! empty path is `/`). A URI that does not parse as an absolute http(s) URI matches nothing.

/// `uri` normalised for comparison, without its query and fragment; `None` when it is not an
/// absolute `http` or `https` URI with a host (userinfo, a non-numeric port or a bad percent
/// escape also give `None`).
pub fn normalize(uri: &str) -> Option<String> {
    let uri = uri.split(['#', '?']).next().unwrap_or_default();
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return None;
    }
    let (host, port) = split_port(authority)?;
    if !valid_host(host) {
        return None;
    }
    let host = lower_case_host(&percent(host)?);
    let mut out = String::with_capacity(uri.len() + 1);
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host);
    if let Some(port) = port
        && port != default_port
    {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let path = if path.is_empty() { "/" } else { path };
    out.push_str(&remove_dot_segments(&percent(path)?));
    Some(out)
}

/// The request's URI as `htu` must name it: `origin` (a configured public origin, normalised)
/// or `<scheme>://<authority>`, then `:path` without its query. `None` when a part is not text
/// or `:path` is not absolute (`*`, an authority-form `CONNECT`).
pub fn request_uri(
    origin: Option<&str>,
    scheme: &[u8],
    authority: &[u8],
    path: &[u8],
) -> Option<String> {
    let path = std::str::from_utf8(path).ok()?;
    if !path.starts_with('/') {
        return None;
    }
    let uri = match origin {
        Some(origin) => format!("{origin}{path}"),
        None => {
            let scheme = std::str::from_utf8(scheme).ok()?;
            let authority = std::str::from_utf8(authority).ok()?;
            format!("{scheme}://{authority}{path}")
        }
    };
    normalize(&uri)
}

/// A configured public origin (`https://api.example.com`), normalised and without a trailing
/// `/`; `None` unless it is an absolute http(s) URI with no path, query or fragment.
pub fn origin(text: &str) -> Option<String> {
    if text.contains(['?', '#']) {
        return None;
    }
    let normalized = normalize(text)?;
    let origin = normalized.strip_suffix('/')?;
    // Only the root path: `https://host/` and `https://host` are origins, `https://host/a` is not.
    (origin.matches('/').count() == 2).then(|| origin.to_owned())
}

/// Host and port of an authority (`[v6]:port` included). A present port must be digits that
/// fit 16 bits; an empty one (`host:`) is absent (RFC 3986 §6.2.3).
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        match rest {
            "" => (host, ""),
            _ => (host, rest.strip_prefix(':')?),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => (authority, ""),
        }
    };
    if port.is_empty() {
        return Some((host, None));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse::<u16>().ok().map(|p| (host, Some(p)))
}

/// A host as RFC 3986 §3.2.2 writes it: a non-empty reg-name (unreserved characters,
/// sub-delims and `%` escapes, checked by [`percent`]) or an IP literal in brackets (hex digits,
/// `:` and `.`). Anything else, a `:` or a space in a name above all, makes no URI.
fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(literal) => {
            !literal.is_empty()
                && literal
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        }
        None => {
            !host.is_empty()
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'-' | b'.'
                                | b'_'
                                | b'~'
                                | b'%'
                                | b'!'
                                | b'$'
                                | b'&'
                                | b'\''
                                | b'('
                                | b')'
                                | b'*'
                                | b'+'
                                | b','
                                | b';'
                                | b'='
                        )
                })
        }
    }
}

/// A host with its escapes already normalised ([`percent`]), in lower case except the escapes'
/// hex digits, which stay upper case: decoding first, so that `%44` (`D`) ends up `d` as a
/// second normalisation would have it.
fn lower_case_host(host: &str) -> String {
    let mut out = String::with_capacity(host.len());
    let mut escape = 0;
    for c in host.chars() {
        if escape > 0 {
            escape -= 1;
            out.push(c);
        } else {
            if c == '%' {
                escape = 2;
            }
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Percent-encoding normalised: escapes of unreserved characters decoded, others in upper case.
/// `None` for a `%` not followed by two hex digits.
fn percent(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let hi = chars.next()?.to_digit(16)?;
        let lo = chars.next()?.to_digit(16)?;
        let byte = u8::try_from(hi * 16 + lo).ok()?;
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push_str(&format!("{byte:02X}"));
        }
    }
    Some(out)
}

/// RFC 3986 §5.2.4 for an absolute path: `.` segments dropped, `..` drops the segment before
/// it (never above the root); a path ending in either keeps its trailing `/`.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => {
                out.push(other);
                continue;
            }
        }
        if i == last {
            out.push("");
        }
    }
    let mut text = String::with_capacity(path.len());
    for segment in out {
        text.push('/');
        text.push_str(segment);
    }
    if text.is_empty() {
        text.push('/');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_cases() {
        let same = [
            (
                "https://server.example.com/token",
                "https://server.example.com/token",
            ),
            (
                "HTTPS://Server.Example.COM/token",
                "https://server.example.com/token",
            ),
            (
                "https://server.example.com:443/token",
                "https://server.example.com/token",
            ),
            (
                "http://server.example.com:80/token",
                "http://server.example.com/token",
            ),
            (
                "https://server.example.com:/token",
                "https://server.example.com/token",
            ),
            ("https://server.example.com", "https://server.example.com/"),
            (
                "https://server.example.com/a/./b/../c",
                "https://server.example.com/a/c",
            ),
            (
                "https://server.example.com/a/b/..",
                "https://server.example.com/a/",
            ),
            (
                "https://server.example.com/../../a",
                "https://server.example.com/a",
            ),
            (
                "https://server.example.com/%7Euser/%2e%2E/x",
                "https://server.example.com/x",
            ),
            (
                "https://server.example.com/a%2fb",
                "https://server.example.com/a%2Fb",
            ),
            (
                "https://server.example.com/a?b=c#d",
                "https://server.example.com/a",
            ),
            (
                "https://server.example.com/a#frag?x",
                "https://server.example.com/a",
            ),
            ("https://[::1]:443/a", "https://[::1]/a"),
            ("https://[::1]:8443/a", "https://[::1]:8443/a"),
            ("https://h:0443/a", "https://h/a"),
            ("https://A%44b%3a/x", "https://adb%3A/x"),
        ];
        for (uri, want) in same {
            assert_eq!(normalize(uri).as_deref(), Some(want), "{uri}");
        }
        let differ = [
            (
                "https://server.example.com:8443/token",
                "https://server.example.com/token",
            ),
            (
                "http://server.example.com/token",
                "https://server.example.com/token",
            ),
            (
                "https://server.example.com/Token",
                "https://server.example.com/token",
            ),
            (
                "https://server.example.com/a%2Fb",
                "https://server.example.com/a/b",
            ),
            (
                "https://server.example.com/a/",
                "https://server.example.com/a",
            ),
        ];
        // Normalisation is idempotent (found by the `dpop` fuzz target: an authority with inner
        // colons and an empty port lost its last colon and became another, invalid, one).
        for (uri, _) in same {
            let once = normalize(uri).unwrap();
            assert_eq!(normalize(&once).as_deref(), Some(once.as_str()), "{uri}");
        }
        for (a, b) in differ {
            assert_ne!(normalize(a), normalize(b), "{a} vs {b}");
        }
        for bad in [
            "",
            "/token",
            "server.example.com/token",
            "ftp://server.example.com/x",
            "https:///x",
            "https://user@server.example.com/x",
            "https://server.example.com:https/x",
            "https://server.example.com:99999/x",
            "https://server.example.com/%zz",
            "https://server.example.com/%4",
            "https://[::1/x",
            // A host that is no reg-name: a `:` inside (which would make `a:b:` normalise to a
            // host `a:b`, then to nothing), spaces, quotes, braces, control characters.
            "https://a:b:/x",
            "https://a b/x",
            "https://a\"b/x",
            "https://{a}/x",
            "https://a\nb/x",
            "https://[]/x",
            "https://[::g]/x",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_uri_and_origin() {
        assert_eq!(
            request_uri(None, b"https", b"API.example:443", b"/r/./x?q=1").as_deref(),
            Some("https://api.example/r/x")
        );
        let origin = origin("HTTPS://Public.Example:443/").unwrap();
        assert_eq!(origin, "https://public.example");
        assert_eq!(
            request_uri(Some(&origin), b"http", b"internal:8080", b"/r").as_deref(),
            Some("https://public.example/r")
        );
        assert_eq!(request_uri(None, b"https", b"h", b"*"), None);
        assert_eq!(request_uri(None, b"https", b"h", b"h:443"), None);
        for bad in ["https://h/a", "https://h?x", "https://h#x", "h", "ftp://h"] {
            assert_eq!(super::origin(bad), None, "{bad}");
        }
        assert_eq!(
            super::origin("http://h:8080").as_deref(),
            Some("http://h:8080")
        );
    }
}
