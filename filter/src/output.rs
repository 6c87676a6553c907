//! What the filter writes: claim headers, 401 (`WWW-Authenticate`) and 403 responses.
//!
//! Every denial is a [`Denial`], and [`Denial::response`] is the one place where a denial
//! becomes a status, headers and body. Nothing here ever sees token bytes: the realm is built
//! from the scheme, authority and the path WITHOUT its query (a token may travel as a query
//! parameter), and descriptions come from error `Display`s that name reasons only.

use core::fmt;

use serde_json::Value;

use crate::binding::BindingError;
use crate::config::{ClaimHeader, CompiledRule};
use crate::hex;
use crate::jose::{JoseError, VerifiedClaims};

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// A token failed verification (401).
    Token(JoseError),
    /// A token's `iss` matches no rule that reads its location, and `unknownIssuer` is
    /// `reject` (401, Envoy's "Jwt issuer is not configured").
    UnknownIssuer,
    /// The token's issuer has no usable keys: never fetched, fetch failing with nothing
    /// cached, or the wait for the first fetch timed out (401, never 5xx).
    JwksUnavailable,
    /// The authorization policies denied the request (403); the text says why (which policy
    /// and rule index, or "no ALLOW policy matched"), for the log line only.
    Forbidden(String),
    /// A verified token's certificate binding (RFC 8705 §3) refused the request (401).
    Binding(BindingError),
    /// A token header other than `Authorization` arrived more than once (401): the host hands
    /// over only its first value, the upstream may read another, and `jwt_authn` verifies every
    /// value. The name is the configured one.
    RepeatedTokenHeader(String),
}

impl Denial {
    /// A short, stable code for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::Token(e) => e.reason(),
            Denial::UnknownIssuer => "unknown_issuer",
            Denial::JwksUnavailable => "jwks_unavailable",
            Denial::Forbidden(_) => "forbidden",
            Denial::Binding(e) => e.reason(),
            Denial::RepeatedTokenHeader(_) => "repeated_token_header",
        }
    }

    /// HTTP status of the local response.
    pub fn status(&self) -> u32 {
        match self {
            Denial::Forbidden(_) => 403,
            _ => 401,
        }
    }

    /// Whether this denial is about DPoP whatever the presentation: its 401 challenges with
    /// the `DPoP` scheme.
    pub fn is_dpop(&self) -> bool {
        matches!(self, Denial::Binding(e) if e.is_dpop())
    }

    /// The local response for this denial. `realm` is the request's `<scheme>://<host><path>`
    /// parts; `challenge` the 401's scheme; `unauthorized_body` and `forbidden_body` come from
    /// the configuration.
    pub fn response(
        &self,
        realm: &Realm<'_>,
        challenge: Challenge<'_>,
        unauthorized_body: bool,
        forbidden_body: &str,
    ) -> LocalResponse {
        match self {
            Denial::Forbidden(_) => LocalResponse {
                status: 403,
                headers: vec![("content-type", "text/plain".to_owned())],
                body: forbidden_body.as_bytes().to_vec(),
            },
            _ => {
                let description = self.to_string();
                let error = match self {
                    Denial::Binding(e) => e.error_code(),
                    _ => "invalid_token",
                };
                let mut value = String::with_capacity(128 + description.len());
                value.push_str(match challenge {
                    Challenge::Bearer => "Bearer",
                    Challenge::Dpop { .. } => "DPoP",
                });
                value.push_str(" realm=\"");
                realm.write_escaped(&mut value);
                value.push_str("\", error=\"");
                value.push_str(error);
                value.push_str("\", error_description=\"");
                push_quoted_content(&mut value, description.as_bytes());
                value.push('"');
                if let Challenge::Dpop { algs } = challenge {
                    value.push_str(", algs=\"");
                    push_quoted_content(&mut value, algs.as_bytes());
                    value.push('"');
                }
                let mut headers = vec![("www-authenticate", value)];
                let body = if unauthorized_body {
                    headers.push(("content-type", "text/plain".to_owned()));
                    description.into_bytes()
                } else {
                    Vec::new()
                };
                LocalResponse {
                    status: 401,
                    headers,
                    body,
                }
            }
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::Token(e) => write!(f, "{e}"),
            Denial::UnknownIssuer => f.write_str("Jwt issuer is not configured"),
            Denial::JwksUnavailable => f.write_str("JWKS unavailable"),
            Denial::Forbidden(why) => write!(f, "RBAC: {why}"),
            Denial::Binding(e) => write!(f, "{e}"),
            Denial::RepeatedTokenHeader(name) => {
                write!(f, "Jwt header [{name}] appears more than once")
            }
        }
    }
}

/// The authentication scheme of a 401's `WWW-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge<'a> {
    /// RFC 6750 §3.
    Bearer,
    /// RFC 9449 §7.1, with the proof algorithms the server accepts.
    Dpop { algs: &'a str },
}

/// A response the filter sends instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The parts of the 401 realm, as the request carried them (pseudo-headers).
#[derive(Debug, Clone, Copy, Default)]
pub struct Realm<'a> {
    pub scheme: &'a [u8],
    pub authority: &'a [u8],
    /// The `:path` WITHOUT query and fragment (see [`crate::extract::path_without_query`]).
    pub path: &'a [u8],
}

/// Longest realm written (a very long path must not make a huge response header).
const MAX_REALM_BYTES: usize = 512;

impl Realm<'_> {
    fn write_escaped(&self, out: &mut String) {
        let scheme: &[u8] = if self.scheme.is_empty() {
            b"http"
        } else {
            self.scheme
        };
        let mut realm =
            Vec::with_capacity(scheme.len() + 3 + self.authority.len() + self.path.len());
        realm.extend_from_slice(scheme);
        realm.extend_from_slice(b"://");
        realm.extend_from_slice(self.authority);
        realm.extend_from_slice(self.path);
        realm.truncate(MAX_REALM_BYTES);
        push_quoted_content(out, &realm);
    }
}

/// Appends bytes as the content of an RFC 7230 quoted-string: `"` and `\` are escaped, and
/// anything outside printable ASCII (controls, DEL, non-ASCII) is percent-encoded so the header
/// can never be split or corrupted.
fn push_quoted_content(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let [hi, lo] = hex::upper(b);
                out.push('%');
                out.push(char::from(hi));
                out.push(char::from(lo));
            }
        }
    }
}

/// A claim as a header value: strings as they are; numbers, booleans and objects as compact
/// JSON; arrays of strings joined with `,` (other arrays as compact JSON). `null` and values
/// that cannot be a header value (control characters) yield `None`: no header.
pub fn claim_header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let parts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            parts.join(",")
        }
        other => serde_json::to_string(other).ok()?,
    };
    is_header_value(&text).then_some(text)
}

/// Whether `text` can be sent as a header value as is: no control character except tab.
fn is_header_value(text: &str) -> bool {
    !text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// The headers to set for a verified token of `rule`: each `outputClaimToHeaders` entry whose
/// claim is present, then `outputPayloadToHeader` (the base64url payload as the token carried
/// it, which is base64url of the JSON claims).
pub fn claim_headers<'r>(
    rule: &'r CompiledRule,
    claims: &VerifiedClaims,
) -> Vec<(&'r str, String)> {
    let mut out = Vec::with_capacity(rule.claim_headers.len() + 1);
    for ClaimHeader { header, claim } in &rule.claim_headers {
        if let Some(value) = claims.claim(claim).and_then(claim_header_value) {
            out.push((header.as_str(), value));
        }
    }
    if let Some(header) = &rule.payload_header {
        out.push((header.as_str(), claims.payload_b64().to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_values() {
        assert_eq!(claim_header_value(&json!("alice")).unwrap(), "alice");
        assert_eq!(claim_header_value(&json!(42)).unwrap(), "42");
        assert_eq!(claim_header_value(&json!(1.5)).unwrap(), "1.5");
        assert_eq!(claim_header_value(&json!(true)).unwrap(), "true");
        assert_eq!(claim_header_value(&json!(["a", "b"])).unwrap(), "a,b");
        assert_eq!(claim_header_value(&json!([])).unwrap(), "");
        assert_eq!(claim_header_value(&json!([1, "a"])).unwrap(), "[1,\"a\"]");
        assert_eq!(
            claim_header_value(&json!({"b": 1, "a": [true]})).unwrap(),
            "{\"a\":[true],\"b\":1}"
        );
        assert_eq!(claim_header_value(&json!(null)), None);
        assert_eq!(claim_header_value(&json!("a\r\nx-admin: 1")), None);
        assert_eq!(claim_header_value(&json!(["a\nb"])), None);
        assert_eq!(
            claim_header_value(&json!({"k": "a\nb"})).unwrap(),
            "{\"k\":\"a\\nb\"}"
        );
    }

    #[test]
    fn rule_headers() {
        let json = r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://idp/k",
            "outputClaimToHeaders":[
                {"header":"X-Sub","claim":"sub"},
                {"header":"x-roles","claim":"realm.roles"},
                {"header":"x-missing","claim":"nope"},
                {"header":"x-admin","claim":"admin"}],
            "outputPayloadToHeader":"x-payload"}]}"#;
        let config = crate::config::CompiledConfig::from_json(json.as_bytes()).unwrap();
        let claims = VerifiedClaims::for_tests(json!({
            "iss": "i", "sub": "alice", "realm": {"roles": ["a", "b"]}, "admin": false
        }));
        let headers = claim_headers(&config.rules[0], &claims);
        let names: Vec<_> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(
            names[..3],
            [("x-sub", "alice"), ("x-roles", "a,b"), ("x-admin", "false")]
        );
        assert_eq!(names[3].0, "x-payload");
        assert_eq!(names.len(), 4);
    }

    #[test]
    fn unauthorized_response() {
        let realm = Realm {
            scheme: b"https",
            authority: b"api.example.com",
            path: b"/a\"b\\c\r\n",
        };
        let r = Denial::Token(JoseError::Expired).response(&realm, Challenge::Bearer, true, "x");
        assert_eq!(r.status, 401);
        assert_eq!(r.headers[0].0, "www-authenticate");
        assert_eq!(
            r.headers[0].1,
            "Bearer realm=\"https://api.example.com/a\\\"b\\\\c%0D%0A\", error=\"invalid_token\", error_description=\"Jwt is expired\""
        );
        assert_eq!(r.body, b"Jwt is expired");

        let r = Denial::JwksUnavailable.response(&Realm::default(), Challenge::Bearer, false, "x");
        assert!(r.headers[0].1.starts_with("Bearer realm=\"http://\""));
        assert!(
            r.headers[0]
                .1
                .ends_with("error_description=\"JWKS unavailable\"")
        );
        assert!(r.body.is_empty());
        assert_eq!(r.headers.len(), 1);
    }

    #[test]
    fn challenge_is_always_a_safe_header_value() {
        for b in 0u8..=255 {
            let path = [b'/', b, b'"', b'\\', b];
            let realm = Realm {
                scheme: &[b],
                authority: &[b, b'h'],
                path: &path,
            };
            let r = Denial::Token(JoseError::BadSignature).response(
                &realm,
                Challenge::Bearer,
                true,
                "",
            );
            let value = &r.headers[0].1;
            assert!(
                value.bytes().all(|c| (0x20..0x7f).contains(&c)),
                "{b}: {value}"
            );
            // Walk the quoted-strings honouring backslash escapes: exactly three of them
            // (realm, error, error_description), so nothing from the request escaped its quotes.
            let (mut quoted, mut escaped, mut strings) = (false, false, 0);
            for c in value.bytes() {
                match (quoted, escaped, c) {
                    (true, true, _) => escaped = false,
                    (true, false, b'\\') => escaped = true,
                    (true, false, b'"') => quoted = false,
                    (false, _, b'"') => {
                        quoted = true;
                        strings += 1;
                    }
                    _ => {}
                }
            }
            assert!(!quoted && strings == 3, "{b}: {value}");
        }
    }

    #[test]
    fn realm_is_bounded() {
        let long = vec![b'a'; 5000];
        let realm = Realm {
            scheme: b"http",
            authority: b"h",
            path: &long,
        };
        let r = Denial::UnknownIssuer.response(&realm, Challenge::Bearer, true, "");
        assert!(r.headers[0].1.len() < MAX_REALM_BYTES + 200);
    }

    #[test]
    fn forbidden_response() {
        let d = Denial::Forbidden("denied by policy \"p\" rule 1".into());
        let r = d.response(
            &Realm::default(),
            Challenge::Bearer,
            true,
            "RBAC: access denied",
        );
        assert_eq!(
            (r.status, r.body.as_slice()),
            (403, &b"RBAC: access denied"[..])
        );
        assert_eq!(d.reason(), "forbidden");
    }
}
