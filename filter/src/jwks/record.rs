//! The last good JWKS as one VM wrote it for all the others.
//!
//! Encoding: `meshguard-jwks v1 <seq> <fetched_at_ms> <expires_at_ms>\n` followed by the JWKS body
//! exactly as the identity provider served it (so every VM parses the same bytes).

const MAGIC: &str = "meshguard-jwks v1 ";

/// A JWKS body with the times that govern its use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRecord<'a> {
    /// The version the lease announces ([`super::Lease::record_seq`]).
    pub seq: u64,
    pub fetched_at_ms: u64,
    pub expires_at_ms: u64,
    pub body: &'a [u8],
}

impl<'a> SharedRecord<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let head = format!(
            "{MAGIC}{} {} {}\n",
            self.seq, self.fetched_at_ms, self.expires_at_ms
        );
        let mut out = Vec::with_capacity(head.len() + self.body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(self.body);
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Option<SharedRecord<'a>> {
        let newline = bytes.iter().position(|b| *b == b'\n')?;
        let (head, rest) = bytes.split_at(newline);
        let body = rest.get(1..)?;
        let head = std::str::from_utf8(head).ok()?.strip_prefix(MAGIC)?;
        let (seq, rest) = head.split_once(' ')?;
        let (fetched, expires) = rest.split_once(' ')?;
        Some(SharedRecord {
            seq: seq.parse().ok()?,
            fetched_at_ms: fetched.parse().ok()?,
            expires_at_ms: expires.parse().ok()?,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_binary_body() {
        let body = b"{\"keys\":[]}\n\x00\xff";
        let record = SharedRecord {
            seq: 3,
            fetched_at_ms: 5,
            expires_at_ms: 600_005,
            body,
        };
        assert_eq!(SharedRecord::decode(&record.encode()), Some(record));
    }

    #[test]
    fn garbage_is_absent() {
        for bad in [
            &b""[..],
            b"no newline",
            b"meshguard-jwks v1 1 2\n{}",
            b"meshguard-jwks v2 1 2\n{}",
            b"meshguard-jwks v1 a 2\n",
        ] {
            assert_eq!(SharedRecord::decode(bad), None);
        }
    }
}
