//! Value matchers, built once at configure time and only read per request.
//!
//! Each matcher reproduces the Envoy matcher Istio generates for the field (see
//! `pilot/pkg/security/authz/model/generator.go` and `.../matcher/*.go` in istio/istio), written
//! as plain string operations instead of regexes: a request never re-parses a pattern and never
//! allocates for config-derived data.

use std::net::IpAddr;

use crate::binding::{Binding, Bindings};

/// A `request.auth.binding` value: one binding (`x5t#S256`, `jkt`) or `*`, any binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindingPattern {
    /// `*`: the token is bound, however.
    Any,
    /// This binding.
    Is(Binding),
}

impl BindingPattern {
    /// Whether the token's checked `bindings` satisfy the pattern (each binding is one value
    /// of the key, as each element of a list claim is).
    pub(crate) fn matches(self, bindings: Bindings) -> bool {
        match self {
            BindingPattern::Any => !bindings.is_empty(),
            BindingPattern::Is(b) => bindings.contains(b),
        }
    }
}

/// Istio's `StringMatcher`/`HeaderMatcher` value syntax: `abc` exact, `abc*` prefix, `*abc`
/// suffix, `*` presence. Case-sensitive unless built with [`StrPattern::ignore_case`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StrPattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// `*` in a string matcher: Istio emits the regex `.+` (present and non-empty).
    NonEmpty,
    /// `*` in a header matcher (methods, hosts, `request.headers[...]`): Envoy's
    /// `present_match`, which also matches an empty header value.
    Present,
}

impl StrPattern {
    /// Istio `matcher.StringMatcher(v)`: `*` is "non-empty".
    pub(crate) fn string(v: &str) -> Self {
        Self::classify(v, StrPattern::NonEmpty)
    }

    /// Istio `matcher.HeaderMatcher(k, v)`: `*` is "present".
    pub(crate) fn header(v: &str) -> Self {
        Self::classify(v, StrPattern::Present)
    }

    fn classify(v: &str, star: StrPattern) -> Self {
        if v == "*" {
            star
        } else if let Some(rest) = v.strip_prefix('*') {
            StrPattern::Suffix(rest.to_owned())
        } else if let Some(rest) = v.strip_suffix('*') {
            StrPattern::Prefix(rest.to_owned())
        } else {
            StrPattern::Exact(v.to_owned())
        }
    }

    /// Lower-cases the literal part, for matchers compared with [`Self::matches_ignore_case`].
    pub(crate) fn ignore_case(self) -> Self {
        match self {
            StrPattern::Exact(s) => StrPattern::Exact(s.to_ascii_lowercase()),
            StrPattern::Prefix(s) => StrPattern::Prefix(s.to_ascii_lowercase()),
            StrPattern::Suffix(s) => StrPattern::Suffix(s.to_ascii_lowercase()),
            other => other,
        }
    }

    pub(crate) fn matches(&self, v: &str) -> bool {
        match self {
            StrPattern::Exact(s) => v == s,
            StrPattern::Prefix(s) => v.starts_with(s.as_str()),
            StrPattern::Suffix(s) => v.ends_with(s.as_str()),
            StrPattern::NonEmpty => !v.is_empty(),
            StrPattern::Present => true,
        }
    }

    /// ASCII case-insensitive match; the pattern was lower-cased by [`Self::ignore_case`].
    pub(crate) fn matches_ignore_case(&self, v: &str) -> bool {
        let v = v.as_bytes();
        match self {
            StrPattern::Exact(s) => v.eq_ignore_ascii_case(s.as_bytes()),
            StrPattern::Prefix(s) => v
                .get(..s.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(s.as_bytes())),
            StrPattern::Suffix(s) => v
                .len()
                .checked_sub(s.len())
                .and_then(|start| v.get(start..))
                .is_some_and(|t| t.eq_ignore_ascii_case(s.as_bytes())),
            StrPattern::NonEmpty => !v.is_empty(),
            StrPattern::Present => true,
        }
    }
}

/// `hosts`: Istio's `HostMatcher`, a case-insensitive header matcher on `:authority` as sent,
/// port included (`example.com` misses `example.com:8080`; Istio's docs suggest adding
/// `example.com:*`). With the `hostsIgnorePort` option a pattern also matches the authority with
/// a trailing `:<digits>` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    pattern: StrPattern,
    ignore_port: bool,
}

impl HostPattern {
    pub(crate) fn new(v: &str, ignore_port: bool) -> Self {
        HostPattern {
            pattern: StrPattern::header(v).ignore_case(),
            ignore_port,
        }
    }

    pub(crate) fn matches(&self, authority: &str) -> bool {
        if self.pattern.matches_ignore_case(authority) {
            return true;
        }
        match strip_port(authority) {
            Some(host) if self.ignore_port => self.pattern.matches_ignore_case(host),
            _ => false,
        }
    }
}

/// `host:port` → `host` (also `[v6]:port` → `[v6]`); `None` when there is no numeric port.
pub(crate) fn strip_port(authority: &str) -> Option<&str> {
    let (host, port) = authority.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A bare IPv6 literal without brackets has colons but no port.
    if host.contains(':') && !host.ends_with(']') {
        return None;
    }
    Some(host)
}

/// An IPv4 or IPv6 range (a single address is a /32 or /128), stored masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.1`, `10.0.0.0/8`, `2001:db8::/32`. Host bits are masked off, like Envoy's
    /// `CidrRange` (so `10.1.2.3/8` means `10.0.0.0/8`).
    pub(crate) fn parse(v: &str) -> Result<Self, &'static str> {
        let (addr, prefix) = match v.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (v, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| "not an IPv4 or IPv6 address")?;
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("the prefix length must be a decimal number");
                }
                let n: u8 = p.parse().map_err(|_| "the prefix length is too long")?;
                if n > max {
                    return Err(if max == 32 {
                        "the prefix length exceeds 32 for an IPv4 address"
                    } else {
                        "the prefix length exceeds 128 for an IPv6 address"
                    });
                }
                n
            }
        };
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` is inside the range. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are
    /// compared as the IPv4 address they carry; otherwise families never match each other.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.addr
            }
            _ => false,
        }
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

/// A glob where each `*` matches any run of characters (possibly empty). Used where Istio
/// turns `*` into `.*` inside a regex (namespaces) or `[^/]*` (trust domains).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    /// The literal pieces between `*`s; `parts.len() == stars + 1`.
    parts: Vec<String>,
}

impl Glob {
    pub(crate) fn new(v: &str) -> Self {
        Glob {
            parts: v.split('*').map(str::to_owned).collect(),
        }
    }

    /// Whole-string match.
    pub(crate) fn matches(&self, s: &str) -> bool {
        let mut parts = self.parts.iter();
        let Some(first) = parts.next() else {
            return s.is_empty();
        };
        let Some(mut rest) = s.strip_prefix(first.as_str()) else {
            return false;
        };
        let mut pieces = parts.peekable();
        while let Some(piece) = pieces.next() {
            if pieces.peek().is_none() {
                // The last piece anchors at the end; the `*` before it absorbs the rest.
                return rest.len() >= piece.len() && rest.ends_with(piece.as_str());
            }
            // Leftmost occurrence is optimal for glob matching with only `*` wildcards.
            match rest.find(piece.as_str()) {
                Some(i) => rest = rest.get(i + piece.len()..).unwrap_or_default(),
                None => return false,
            }
        }
        // No `*` at all: exact match.
        rest.is_empty()
    }
}

/// `principals` / `source.principal`: Istio's `StringMatcherWithPrefix(v, "spiffe://")` over the
/// peer certificate's URI SAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalPattern {
    /// `*`: any authenticated peer with a non-empty identity (regex `.+`).
    Any,
    /// `*suffix`: regex `spiffe://.*suffix`.
    SpiffeSuffix(String),
    /// `prefix*`: `spiffe://prefix` as a prefix.
    Prefix(String),
    /// `td/ns/x/sa/y`: exactly `spiffe://td/ns/x/sa/y`.
    Exact(String),
}

/// The scheme of a SPIFFE ID, which Istio leaves out of `principals` values.
const SPIFFE: &str = "spiffe://";

impl PrincipalPattern {
    pub(crate) fn new(v: &str) -> Self {
        if v == "*" {
            PrincipalPattern::Any
        } else if let Some(rest) = v.strip_prefix('*') {
            PrincipalPattern::SpiffeSuffix(rest.to_owned())
        } else if let Some(rest) = v.strip_suffix('*') {
            PrincipalPattern::Prefix(format!("{SPIFFE}{rest}"))
        } else {
            PrincipalPattern::Exact(format!("{SPIFFE}{v}"))
        }
    }

    pub(crate) fn matches(&self, peer: &str) -> bool {
        match self {
            PrincipalPattern::Any => !peer.is_empty(),
            PrincipalPattern::SpiffeSuffix(s) => peer
                .strip_prefix(SPIFFE)
                .is_some_and(|rest| rest.ends_with(s.as_str())),
            PrincipalPattern::Prefix(p) => peer.starts_with(p.as_str()),
            PrincipalPattern::Exact(e) => peer == e,
        }
    }
}

/// `namespaces` / `source.namespace`: Istio's regex `.*/ns/<v>/.*` over the peer URI SAN, with
/// each `*` in the value meaning `.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamespacePattern(Glob);

impl NamespacePattern {
    pub(crate) fn new(v: &str) -> Self {
        NamespacePattern(Glob::new(v))
    }

    pub(crate) fn matches(&self, peer: &str) -> bool {
        // Some occurrence of "/ns/" followed by text matching the glob and then a '/'.
        let mut from = 0;
        while let Some(i) = peer.get(from..).and_then(|s| s.find("/ns/")) {
            let start = from + i + 4;
            let tail = peer.get(start..).unwrap_or_default();
            for (j, _) in tail.match_indices('/') {
                if self.0.matches(tail.get(..j).unwrap_or_default()) {
                    return true;
                }
            }
            from = from + i + 1;
        }
        false
    }
}

/// `serviceAccounts` / `source.serviceAccount` (`ns/sa`): Istio's regex
/// `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` over the peer URI SAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceAccountPattern {
    /// `/ns/<ns>/`
    ns_needle: String,
    /// `sa/<sa>`
    sa_needle: String,
}

impl ServiceAccountPattern {
    /// `value` is a validated `namespace/name`.
    pub(crate) fn new(namespace: &str, name: &str) -> Self {
        ServiceAccountPattern {
            ns_needle: format!("/ns/{namespace}/"),
            sa_needle: format!("sa/{name}"),
        }
    }

    pub(crate) fn matches(&self, peer: &str) -> bool {
        let Some(rest) = peer.strip_prefix(SPIFFE) else {
            return false;
        };
        // `.+` before "/ns/": the occurrence must not be at index 0.
        for (i, _) in rest.match_indices(self.ns_needle.as_str()) {
            if i == 0 {
                continue;
            }
            let tail = rest.get(i + self.ns_needle.len()..).unwrap_or_default();
            for (k, _) in tail.match_indices(self.sa_needle.as_str()) {
                // `(.+/|)`: nothing, or at least one char followed by '/'.
                let between_ok = k == 0 || (k >= 2 && tail.as_bytes().get(k - 1) == Some(&b'/'));
                if !between_ok {
                    continue;
                }
                let after = tail.get(k + self.sa_needle.len()..).unwrap_or_default();
                // `(/.+)?`: end, or '/' followed by at least one char.
                if after.is_empty() || (after.starts_with('/') && after.len() >= 2) {
                    return true;
                }
            }
        }
        false
    }
}

/// `trustDomains` / `source.trustDomain`: regex `spiffe://<v>/.*` with `*` meaning `[^/]*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrustDomainPattern(Glob);

impl TrustDomainPattern {
    pub(crate) fn new(v: &str) -> Self {
        TrustDomainPattern(Glob::new(v))
    }

    pub(crate) fn matches(&self, peer: &str) -> bool {
        let Some(rest) = peer.strip_prefix(SPIFFE) else {
            return false;
        };
        let Some((td, _)) = rest.split_once('/') else {
            return false;
        };
        self.0.matches(td)
    }
}

/// `requestPrincipals` / `request.auth.principal` (`<iss>/<sub>`): Istio splits the value at its
/// last `/` and matches `iss` and `sub` separately (generator.go, `requestPrincipalGenerator`).
/// A JWT-SVID without `iss` has its SPIFFE ID (`sub`) as principal: the whole value is matched
/// against it (`spiffe://example.org/ns/default/sa/client`, `spiffe://example.org/*`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestPrincipalPattern {
    iss: StrPattern,
    sub: StrPattern,
    whole: StrPattern,
}

impl RequestPrincipalPattern {
    pub(crate) fn new(v: &str) -> Self {
        let split = v.rsplit_once('/');
        let (iss, sub) = match split {
            Some((i, s)) => (i, s),
            None => (v, ""),
        };
        let (iss, sub) = if v == "*" {
            (StrPattern::NonEmpty, StrPattern::NonEmpty)
        } else if v.starts_with('*') {
            match split {
                Some(_) => {
                    let iss = if iss == "*" {
                        StrPattern::NonEmpty
                    } else {
                        StrPattern::Suffix(iss.trim_start_matches('*').to_owned())
                    };
                    (iss, StrPattern::Exact(sub.to_owned()))
                }
                None => (
                    StrPattern::NonEmpty,
                    StrPattern::Suffix(v.trim_start_matches('*').to_owned()),
                ),
            }
        } else if v.ends_with('*') {
            match split {
                Some(_) => {
                    let sub = if sub == "*" {
                        StrPattern::NonEmpty
                    } else {
                        StrPattern::Prefix(sub.trim_end_matches('*').to_owned())
                    };
                    (StrPattern::Exact(iss.to_owned()), sub)
                }
                None => (
                    StrPattern::Prefix(v.trim_end_matches('*').to_owned()),
                    StrPattern::NonEmpty,
                ),
            }
        } else {
            (
                StrPattern::Exact(iss.to_owned()),
                StrPattern::Exact(sub.to_owned()),
            )
        };
        RequestPrincipalPattern {
            iss,
            sub,
            whole: StrPattern::string(v),
        }
    }

    /// `sub` is `None` when the token has no string `sub` claim (Envoy's metadata matcher then
    /// finds no value and does not match). An empty `iss` is a JWT-SVID's without `iss` (no
    /// other verified token has one): its principal is `sub`, the SPIFFE ID.
    pub(crate) fn matches(&self, iss: &str, sub: Option<&str>) -> bool {
        if iss.is_empty() {
            return sub.is_some_and(|s| self.whole.matches(s));
        }
        self.iss.matches(iss) && sub.is_some_and(|s| self.sub.matches(s))
    }
}

/// `paths`: exact / `prefix*` / `*suffix` / `*` (non-empty) on the normalised path, or an Envoy
/// URI template when the value contains `{*}` or `{**}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathPattern {
    Str(StrPattern),
    Template(PathTemplate),
}

impl PathPattern {
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Str(p) => p.matches(path),
            PathPattern::Template(t) => t.matches(path),
        }
    }
}

/// A compiled `{*}`/`{**}` template. Envoy's `uri_template` turns `{*}` into `[pchar]+` and
/// `{**}` into `[pchar/]*`, literals verbatim, anchored at both ends. Istio only accepts
/// templates whose operators fill whole segments and allows no operator after `{**}`, so the
/// match is a left-to-right scan with no backtracking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathTemplate {
    /// Tokens before `{**}` (or all of them).
    head: Vec<TemplateToken>,
    /// `Some(suffix)` when the template has `{**}`: the literal text after it.
    tail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplateToken {
    Literal(String),
    /// `{*}`: one or more pchars (never `/`).
    Segment,
}

/// RFC 3986 pchar without `/`, as Envoy's uri_template `kLiteral` (note: no `*`).
fn is_pchar(b: u8) -> bool {
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
                | b'+'
                | b','
                | b';'
                | b':'
                | b'@'
                | b'='
        )
}

pub(crate) fn contains_template(v: &str) -> bool {
    v.contains("{*}") || v.contains("{**}")
}

impl PathTemplate {
    /// Validates like Istio's `CheckValidPathTemplate` plus Envoy's parser (leading `/`, no
    /// empty segment except a trailing `/`).
    pub(crate) fn parse(v: &str) -> Result<Self, &'static str> {
        let Some(body) = v.strip_prefix('/') else {
            return Err("a path template must start with '/'");
        };
        let segments: Vec<&str> = body.split('/').collect();
        let last = segments.len().saturating_sub(1);
        let mut head = Vec::new();
        let mut tail: Option<String> = None;
        let mut literal = String::from("/");
        for (i, seg) in segments.iter().enumerate() {
            let is_last = i == last;
            match *seg {
                "{*}" | "{**}" if tail.is_some() => {
                    return Err("{**} must be the last operator");
                }
                "{*}" => {
                    head.push(TemplateToken::Literal(std::mem::take(&mut literal)));
                    head.push(TemplateToken::Segment);
                }
                "{**}" => {
                    head.push(TemplateToken::Literal(std::mem::take(&mut literal)));
                    tail = Some(String::new());
                }
                "" if is_last && i > 0 => {
                    // A trailing '/' is a literal slash already pushed below; nothing to add.
                }
                "" => return Err("empty path segment ('//') is not allowed"),
                s => {
                    if s.contains(['{', '}']) {
                        return Err(
                            "'{' or '}' outside {*} or {**}, or other characters in a segment with an operator",
                        );
                    }
                    if s.contains('*') {
                        return Err("'*' outside {*} or {**}");
                    }
                    if !s.bytes().all(is_pchar) {
                        return Err(
                            "a literal segment contains a character that is not an RFC 3986 pchar",
                        );
                    }
                    let target = match tail.as_mut() {
                        Some(t) => t,
                        None => &mut literal,
                    };
                    target.push_str(s);
                }
            }
            if !is_last {
                match tail.as_mut() {
                    Some(t) => t.push('/'),
                    None => literal.push('/'),
                }
            }
        }
        if !literal.is_empty() && tail.is_none() {
            head.push(TemplateToken::Literal(literal));
        }
        head.retain(|t| !matches!(t, TemplateToken::Literal(l) if l.is_empty()));
        Ok(PathTemplate { head, tail })
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        let mut rest = path;
        for token in &self.head {
            match token {
                TemplateToken::Literal(l) => match rest.strip_prefix(l.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                },
                TemplateToken::Segment => {
                    let n = rest.bytes().take_while(|b| is_pchar(*b)).count();
                    if n == 0 {
                        return false;
                    }
                    rest = rest.get(n..).unwrap_or_default();
                }
            }
        }
        match &self.tail {
            None => rest.is_empty(),
            Some(suffix) => {
                let Some(middle_len) = rest.len().checked_sub(suffix.len()) else {
                    return false;
                };
                rest.ends_with(suffix.as_str())
                    && rest
                        .as_bytes()
                        .get(..middle_len)
                        .is_some_and(|m| m.iter().all(|b| *b == b'/' || is_pchar(*b)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_patterns() {
        assert!(StrPattern::string("abc").matches("abc"));
        assert!(!StrPattern::string("abc").matches("abcd"));
        assert!(StrPattern::string("abc*").matches("abc"));
        assert!(StrPattern::string("abc*").matches("abcd"));
        assert!(StrPattern::string("*abc").matches("abc"));
        assert!(StrPattern::string("*abc").matches("xabc"));
        assert!(StrPattern::string("*").matches("x"));
        assert!(!StrPattern::string("*").matches(""));
        assert!(StrPattern::header("*").matches(""));
        let p = StrPattern::string("*.Example.com").ignore_case();
        assert!(p.matches_ignore_case("API.example.COM"));
        assert!(!p.matches_ignore_case("example.com"));
    }

    #[test]
    fn hosts_exact_as_istio() {
        let h = HostPattern::new("my-app.example.com", false);
        assert!(h.matches("my-app.example.com"));
        assert!(h.matches("MY-APP.example.COM"));
        // Istio compares the authority as sent: the port is part of it.
        assert!(!h.matches("my-app.example.com:443"));
        assert!(!h.matches("my-app.example.com.evil"));
        let with_port = HostPattern::new("my-app.example.com:8080", false);
        assert!(with_port.matches("my-app.example.com:8080"));
        assert!(!with_port.matches("my-app.example.com"));
        let istio_style = HostPattern::new("my-app.example.com:*", false);
        assert!(istio_style.matches("my-app.example.com:1"));
        assert!(!HostPattern::new("[::1]", false).matches("[::1]:8443"));
    }

    #[test]
    fn hosts_ignore_port_option() {
        let h = HostPattern::new("my-app.example.com", true);
        assert!(h.matches("my-app.example.com"));
        assert!(h.matches("MY-APP.example.com:443"));
        assert!(!h.matches("my-app.example.com.evil"));
        assert!(!h.matches("other.example.com"));
        let with_port = HostPattern::new("my-app.example.com:8080", true);
        assert!(with_port.matches("my-app.example.com:8080"));
        assert!(!with_port.matches("my-app.example.com"));
        let v6 = HostPattern::new("[::1]", true);
        assert!(v6.matches("[::1]:8443"));
        assert_eq!(strip_port("::1"), None);
        assert_eq!(strip_port("a:"), None);
        assert_eq!(strip_port("a:b"), None);
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.255.0.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(
            Cidr::parse("10.1.2.3/8")
                .unwrap()
                .contains("10.9.9.9".parse().unwrap())
        );
        let single = Cidr::parse("203.0.113.4").unwrap();
        assert!(single.contains("203.0.113.4".parse().unwrap()));
        assert!(!single.contains("203.0.113.5".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "x",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "010.0.0.1",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(Glob::new("abc").matches("abc"));
        assert!(!Glob::new("abc").matches("abcd"));
        assert!(Glob::new("a*c").matches("abbbc"));
        assert!(Glob::new("a*c").matches("ac"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("*b*").matches("abc"));
        assert!(!Glob::new("*b*").matches("ac"));
        assert!(Glob::new("a*b*c").matches("aXbYbZc"));
        assert!(!Glob::new("a*b*c").matches("aXc"));
        assert!(!Glob::new("ab*ab").matches("ab"));
        assert!(Glob::new("ab*ab").matches("abab"));
    }

    #[test]
    fn principals() {
        let peer = "spiffe://cluster.local/ns/foo/sa/bar";
        assert!(PrincipalPattern::new("cluster.local/ns/foo/sa/bar").matches(peer));
        assert!(!PrincipalPattern::new("cluster.local/ns/foo/sa/ba").matches(peer));
        assert!(PrincipalPattern::new("cluster.local/ns/foo/*").matches(peer));
        assert!(PrincipalPattern::new("*/sa/bar").matches(peer));
        assert!(!PrincipalPattern::new("*/sa/bar").matches("https://x/sa/bar"));
        assert!(PrincipalPattern::new("*").matches(peer));
        assert!(PrincipalPattern::new("*").matches("https://not-spiffe"));
    }

    #[test]
    fn namespaces() {
        let p = NamespacePattern::new("foo");
        assert!(p.matches("spiffe://cluster.local/ns/foo/sa/bar"));
        assert!(!p.matches("spiffe://cluster.local/ns/foobar/sa/bar"));
        assert!(!p.matches("spiffe://cluster.local/ns/foo"));
        assert!(NamespacePattern::new("foo*").matches("spiffe://td/ns/foobar/sa/x"));
        assert!(NamespacePattern::new("*").matches("spiffe://td/ns/x/sa/y"));
        // A later "/ns/" also counts (the regex starts with `.*`).
        assert!(p.matches("spiffe://td/ns/other/x/ns/foo/y"));
    }

    #[test]
    fn service_accounts() {
        let p = ServiceAccountPattern::new("order", "order-service");
        assert!(p.matches("spiffe://cluster.local/ns/order/sa/order-service"));
        assert!(p.matches("spiffe://td/ns/order/x/sa/order-service"));
        assert!(p.matches("spiffe://td/ns/order/sa/order-service/extra"));
        assert!(!p.matches("spiffe://td/ns/order/sa/order-service-2"));
        assert!(!p.matches("spiffe://td/ns/order/sa/order-service/"));
        assert!(!p.matches("spiffe:///ns/order/sa/order-service"));
        assert!(!p.matches("spiffe://td/ns/orders/sa/order-service"));
        assert!(!p.matches("spiffe://td/ns/order/xsa/order-service"));
    }

    #[test]
    fn trust_domains() {
        let p = TrustDomainPattern::new("cluster.local");
        assert!(p.matches("spiffe://cluster.local/ns/a/sa/b"));
        assert!(!p.matches("spiffe://cluster.local"));
        assert!(!p.matches("spiffe://cluster.localx/ns/a"));
        assert!(TrustDomainPattern::new("cluster*").matches("spiffe://cluster2.local/x"));
        assert!(!TrustDomainPattern::new("cluster*").matches("spiffe://other/cluster/x"));
    }

    #[test]
    fn request_principals() {
        let m = |v: &str, iss: &str, sub: Option<&str>| {
            RequestPrincipalPattern::new(v).matches(iss, sub)
        };
        let iss = "https://accounts.example.com";
        assert!(m("https://accounts.example.com/alice", iss, Some("alice")));
        assert!(!m("https://accounts.example.com/alice", iss, Some("bob")));
        assert!(m("*", iss, Some("alice")));
        assert!(!m("*", iss, None));
        assert!(m("https://accounts.example.com/*", iss, Some("x")));
        assert!(m("https://accounts.example.com/al*", iss, Some("alice")));
        assert!(m("*/alice", iss, Some("alice")));
        assert!(m("*.example.com/alice", iss, Some("alice")));
        assert!(!m("*.example.org/alice", iss, Some("alice")));
        assert!(m("*ice", "any", Some("alice")));
        assert!(m("https*", iss, Some("anyone")));
        // The issuer may itself contain '/': split at the last one.
        assert!(m(
            "https://e.com/tenant/1/sub",
            "https://e.com/tenant/1",
            Some("sub")
        ));
    }

    #[test]
    fn templates() {
        let t = |v: &str| PathTemplate::parse(v).unwrap();
        // Istio reference examples (authorization-policy.html, Operation.paths).
        assert!(t("/foo/{*}").matches("/foo/bar"));
        assert!(!t("/foo/{*}").matches("/foo/bar/baz"));
        assert!(!t("/foo/{*}").matches("/foo/"));
        assert!(t("/foo/{**}/").matches("/foo/bar/"));
        assert!(t("/foo/{**}/").matches("/foo//"));
        assert!(!t("/foo/{**}/").matches("/foo/bar"));
        assert!(t("/foo/{*}/bar/{**}").matches("/foo/buzz/bar/"));
        assert!(t("/foo/{*}/bar/{**}").matches("/foo/buzz/bar/baz"));
        assert!(!t("/foo/{*}/bar/{**}").matches("/foo/buzz/baz/x"));
        assert!(t("/{**}").matches("/"));
        assert!(t("/{**}").matches("/a/b/c"));
        assert!(t("/a/{**}/z").matches("/a/b/c/z"));
        assert!(!t("/a/{**}/z").matches("/a/z"));
        assert!(t("/a/{*}/").matches("/a/b/"));
        assert!(!t("/a/{*}/").matches("/a/b"));
        for bad in [
            "/*/baz/{*}",
            "/**/baz/{*}",
            "/{**}/foo/{*}",
            "/foo/{*}.txt",
            "foo/{*}",
            "/a//{*}",
            "/a/{x}/{*}",
            "/a b/{*}",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
