//! Strict base64url (RFC 7515 §2 "Base64url Encoding", RFC 4648 §5 without padding).
//!
//! Lenient decoders accept several spellings of the same bytes (padding, whitespace, the `+/`
//! alphabet, non-zero trailing bits). A JWS is compared and cached by its text, so every token
//! must have exactly one accepted spelling: anything but the canonical encoding is refused.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The one engine we decode and encode with: URL-safe alphabet, no padding accepted or
/// produced, trailing bits must be zero (canonical).
const STRICT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes strict unpadded base64url; `None` for any other spelling.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    STRICT.decode(text.as_bytes()).ok()
}

/// Encodes as unpadded base64url (tests and fuzzing; unused functions are not linked into the module).
pub fn encode(bytes: &[u8]) -> String {
    STRICT.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        assert_eq!(decode("_-8").unwrap(), vec![0xff, 0xef]);
    }

    #[test]
    fn refuses_every_other_spelling() {
        // "QQ" is "A"; "QR" has non-zero trailing bits and would also decode to "A" leniently.
        assert_eq!(decode("QQ").unwrap(), b"A");
        assert!(decode("QR").is_none(), "non-canonical trailing bits");
        assert!(decode("QQ==").is_none(), "padding");
        assert!(decode("QQ=").is_none(), "partial padding");
        assert!(decode("Q Q").is_none(), "inner space");
        assert!(decode("QQ\n").is_none(), "trailing newline");
        assert!(decode(" QQ").is_none(), "leading space");
        assert!(decode("+/8").is_none(), "standard alphabet");
        assert!(decode("Q").is_none(), "impossible length");
        assert!(decode("QQ.").is_none(), "dot");
        assert!(decode("QQ\u{e9}").is_none(), "non-ASCII");
    }
}
