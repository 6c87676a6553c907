//! Path normalisation for `paths`/`notPaths`, following Istio's "Authorization Policy
//! Normalization" (https://istio.io/latest/docs/reference/config/security/normalization/).
//!
//! Why normalise in the filter at all: Istio configures Envoy's HTTP connection manager to
//! normalise `:path` before any filter runs (mesh-wide `pathNormalization`, default `BASE`), but a
//! plain Envoy does not unless `normalize_path`/`merge_slashes` are set. Matching the raw path
//! would let `/admin/../public`, `/%61dmin` or `//admin` walk around a `DENY paths: ["/admin*"]`.
//! Normalising an already-normalised path is a no-op, so doing it again under Istio is harmless.
//!
//! meshguard normalises only the copy it matches against; it does not rewrite the `:path` sent
//! upstream. Configure Envoy's own normalisation (Istio does by default) so the backend sees the
//! same path the policy saw.
//!
//! Steps, in Istio's order:
//! 1. drop the query (`?...`) and fragment (`#...`);
//! 2. percent-decode unreserved characters (`A-Z a-z 0-9 - . _ ~`), upper-case the hex of every
//!    other escape (RFC 3986 §6.2.2.1); `%00` makes the path invalid (Envoy answers 400);
//!    `DECODE_AND_MERGE_SLASHES` also decodes `%2F` and `%5C`;
//! 3. backslash → slash;
//! 4. remove `.` and `..` segments (RFC 3986 §5.2.4);
//! 5. merge repeated slashes (`MERGE_SLASHES` and `DECODE_AND_MERGE_SLASHES`).

use std::borrow::Cow;

use serde::Deserialize;

use crate::hex;

/// Which normalisation to apply before matching paths; the names are Istio's
/// `meshConfig.pathNormalization.normalization` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathNormalization {
    /// Only drop the query and fragment.
    None,
    /// RFC 3986 normalisation plus backslash → slash: Istio's default mesh setting, and so
    /// meshguard's default (the same decision as Istio for the same path).
    #[default]
    Base,
    /// `Base` plus merging `//` (closes the `//admin` bypass that Istio documents for `Base`,
    /// CVE-2021-31920, when Envoy itself does not merge slashes).
    MergeSlashes,
    /// `MergeSlashes` plus decoding `%2F`/`%5C` first: the strictest, may break applications
    /// that use encoded slashes in path segments.
    DecodeAndMergeSlashes,
}

impl PathNormalization {
    fn merges(self) -> bool {
        matches!(
            self,
            PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes
        )
    }
}

/// The path cannot be normalised (it encodes a NUL byte); Envoy rejects such requests with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidPath;

/// Normalises `raw` (the `:path` header, query included). Borrows when nothing changes.
pub(crate) fn normalize(raw: &str, mode: PathNormalization) -> Result<Cow<'_, str>, InvalidPath> {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let path = raw.get(..end).unwrap_or(raw);
    if contains_encoded_nul(path) {
        return Err(InvalidPath);
    }
    if mode == PathNormalization::None || !path.starts_with('/') {
        // `OPTIONS *` and other non-origin forms are matched as sent.
        return Ok(Cow::Borrowed(path));
    }
    let needs_work =
        path.contains(['%', '\\']) || path.contains("/.") || (mode.merges() && path.contains("//"));
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path, mode == PathNormalization::DecodeAndMergeSlashes)?;
    let mut out = remove_dot_segments(&decoded);
    if mode.merges() && out.contains("//") {
        out = merge_slashes(&out);
    }
    Ok(Cow::Owned(out))
}

fn contains_encoded_nul(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| w == b"%00")
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Steps 2 and 3. Only ASCII bytes are substituted, so the output stays valid UTF-8.
fn decode(path: &str, decode_slashes: bool) -> Result<String, InvalidPath> {
    let bytes = path.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex::digit);
                let lo = bytes.get(i + 2).copied().and_then(hex::digit);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        let v = h * 16 + l;
                        if v == 0 {
                            return Err(InvalidPath);
                        }
                        if is_unreserved(v) {
                            out.push(v);
                        } else if decode_slashes && (v == b'/' || v == b'\\') {
                            out.push(b'/');
                        } else {
                            out.push(b'%');
                            out.extend(hex::upper(v));
                        }
                        i += 3;
                    }
                    // A malformed escape is kept verbatim.
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'\\' => {
                out.push(b'/');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| InvalidPath)
}

/// Step 4 on a path starting with '/'.
fn remove_dot_segments(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let body = path.strip_prefix('/').unwrap_or(path);
    let mut segments = body.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            "." => {
                if last {
                    out.push('/');
                }
            }
            ".." => {
                let cut = out.rfind('/').unwrap_or(0);
                out.truncate(cut);
                if last {
                    out.push('/');
                }
            }
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Step 5.
fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut prev_slash = false;
    for c in path.chars() {
        if c == '/' {
            if !prev_slash {
                out.push(c);
            }
            prev_slash = true;
        } else {
            out.push(c);
            prev_slash = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(raw: &str, mode: PathNormalization) -> String {
        normalize(raw, mode).unwrap().into_owned()
    }

    #[test]
    fn istio_normalization_examples() {
        use PathNormalization::*;
        // Examples from https://istio.io/latest/docs/reference/config/security/normalization/
        assert_eq!(
            n("/some%2fdata/%61%62%63", DecodeAndMergeSlashes),
            "/some/data/abc"
        );
        assert_eq!(n("/some%2fdata/%61%62%63", Base), "/some%2Fdata/abc");
        assert_eq!(n("/some\\data", Base), "/some/data");
        assert_eq!(n("/some//data///abc", MergeSlashes), "/some/data/abc");
        assert_eq!(n("/some//data///abc", Base), "/some//data///abc");
        assert_eq!(n("/public/./data/abc/../xyz", Base), "/public/data/xyz");
        assert_eq!(n("/foo?v=1", Base), "/foo");
        // Red Hat / Istio pathNormalization table.
        assert_eq!(n("/a/../b", Base), "/b");
        assert_eq!(n("\\da", Base), "\\da"); // not origin-form: matched as sent
        assert_eq!(n("/\\da", Base), "//da");
        assert_eq!(n("/a//b", MergeSlashes), "/a/b");
        assert_eq!(n("/a%2fb", DecodeAndMergeSlashes), "/a/b");
    }

    #[test]
    fn dot_segments() {
        use PathNormalization::Base;
        assert_eq!(n("/a/b/..", Base), "/a/");
        assert_eq!(n("/a/.", Base), "/a/");
        assert_eq!(n("/..", Base), "/");
        assert_eq!(n("/../../x", Base), "/x");
        assert_eq!(n("/a/%2e%2e/b", Base), "/b");
        assert_eq!(n("/a/%2E/b", Base), "/a/b");
        assert_eq!(n("/.hidden/x", Base), "/.hidden/x");
        assert_eq!(n("/", Base), "/");
    }

    #[test]
    fn escapes_and_no_ops() {
        use PathNormalization::*;
        assert!(matches!(
            normalize("/plain/path", MergeSlashes),
            Ok(Cow::Borrowed("/plain/path"))
        ));
        assert!(matches!(
            normalize("/p?q=/../x", MergeSlashes),
            Ok(Cow::Borrowed("/p"))
        ));
        assert_eq!(n("/a%2fb", MergeSlashes), "/a%2Fb");
        assert_eq!(n("/%7euser/%5F", Base), "/~user/_");
        assert_eq!(n("/%e2%82%ac", Base), "/%E2%82%AC");
        assert_eq!(n("/bad%zz/%4", Base), "/bad%zz/%4");
        assert_eq!(n("/caf\u{e9}/./x", Base), "/caf\u{e9}/x");
        assert_eq!(n("/a//../b", MergeSlashes), "/a/b");
        assert_eq!(n("/x#frag", None), "/x");
        assert_eq!(n("//x/../y", None), "//x/../y");
        assert_eq!(n("*", MergeSlashes), "*");
        assert_eq!(normalize("/a%00b", Base), Err(InvalidPath));
        assert_eq!(normalize("/a%00b", None), Err(InvalidPath));
        // %00 after the query is not part of the path.
        assert!(normalize("/a?x=%00", Base).is_ok());
    }
}
