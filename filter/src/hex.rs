//! Hexadecimal digits, in one place: percent-escapes (`extract`'s query parameters, the
//! policies' path normalisation, the 401 realm in `output`) and the peer certificate's digest
//! (`peer`).

/// The value of one hex digit (either case); `None` for any other byte.
pub(crate) fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A byte as two upper-case hex digits (RFC 3986 §2.1 prefers upper case in `%XX`).
pub(crate) fn upper(v: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let hi = DIGITS.get(usize::from(v >> 4)).copied().unwrap_or(b'0');
    let lo = DIGITS.get(usize::from(v & 0x0f)).copied().unwrap_or(b'0');
    [hi, lo]
}

/// Whether `text` is `bytes` written in hex (two digits per byte, either case), without
/// building the text.
pub(crate) fn eq_bytes(bytes: &[u8], text: &str) -> bool {
    let text = text.as_bytes();
    text.len() == bytes.len() * 2
        && bytes
            .iter()
            .zip(text.chunks_exact(2))
            .all(|(&b, pair)| match pair {
                [hi, lo] => digit(*hi) == Some(b >> 4) && digit(*lo) == Some(b & 0x0f),
                _ => false,
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_round_trip() {
        for v in 0..=255u8 {
            let [hi, lo] = upper(v);
            assert_eq!(digit(hi).zip(digit(lo)).map(|(h, l)| h << 4 | l), Some(v));
            let (hi, lo) = (hi.to_ascii_lowercase(), lo.to_ascii_lowercase());
            assert_eq!(digit(hi).zip(digit(lo)).map(|(h, l)| h << 4 | l), Some(v));
        }
        for b in [b'g', b'G', b'/', b':', b'@', b'`', b' ', 0, 0xff] {
            assert_eq!(digit(b), None, "{b}");
        }
        assert_eq!(upper(0x2f), *b"2F");
    }

    #[test]
    fn compares_bytes_with_their_hex() {
        assert!(eq_bytes(&[0x00, 0xab, 0x7f], "00ab7f"));
        assert!(eq_bytes(&[0x00, 0xab, 0x7f], "00AB7F"));
        assert!(eq_bytes(&[], ""));
        assert!(!eq_bytes(&[0x00, 0xab, 0x7f], "00ab7e"));
        assert!(!eq_bytes(&[0x00, 0xab], "00ab7f"));
        assert!(!eq_bytes(&[0x00, 0xab, 0x7f], "00ab7"));
        assert!(!eq_bytes(&[0x0a], "0g"));
        assert!(!eq_bytes(&[0x0a], "+a"));
    }
}
