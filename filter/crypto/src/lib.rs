//! meshguard's signature arithmetic: RSA (`rsa_mont`), P-256 and P-384 ECDSA (`ec_arith`,
//! `ec_curve`, `ecdsa`, `es256` with `p256_field`, `es384`), P-521 ECDSA through RustCrypto's
//! `p521` (`es512`), and SHA-256 of a token for the cache key.
//!
//! Why a crate of its own: it is the security-critical arithmetic, with its own external vectors
//! and differential tests against the RustCrypto crates (SECURITY.md), behind a small concrete
//! API: the keys and verify functions below; the generic curve code stays `pub(crate)`.
//!
//! Every function takes public data only (keys, signatures, messages) and is variable-time:
//! nothing here may be used with a secret.

mod ec_arith;
mod ec_curve;
mod ec_inverse;
#[cfg(test)]
mod ec_tests;
mod ecdsa;
mod es256;
mod es384;
mod es512;
mod p256_field;
mod rsa_mont;

#[cfg(test)]
mod test_rng;

use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// SHA-256 of `data` (the token cache's key).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of `data` and, from the same pass, the hash state after its first `prefix_len` bytes
/// (`None` when `data` is shorter). For a JWS the whole text is the token cache's key and the
/// prefix its signing input: an RS256, PS256 or ES256 token that misses the cache then needs no
/// second pass over its signing input ([`Sha256Prefix::finish`], one final block).
pub fn sha256_with_prefix(data: &[u8], prefix_len: usize) -> ([u8; 32], Option<Sha256Prefix>) {
    let Some((prefix, rest)) = data.split_at_checked(prefix_len) else {
        return (sha256(data), None);
    };
    let mut hasher = Sha256::new();
    hasher.update(prefix);
    let state = Sha256Prefix {
        state: hasher.clone(),
        len: prefix_len,
    };
    hasher.update(rest);
    (hasher.finalize().into(), Some(state))
}

/// SHA-256 absorbed over the first [`Sha256Prefix::absorbed`] bytes of a text, not yet finished.
#[derive(Clone)]
pub struct Sha256Prefix {
    state: Sha256,
    len: usize,
}

impl Sha256Prefix {
    /// How many bytes it has absorbed.
    pub fn absorbed(&self) -> usize {
        self.len
    }

    /// SHA-256 of those bytes.
    pub fn finish(self) -> [u8; 32] {
        self.state.finalize().into()
    }
}

/// A validated P-256 public key (ES256) with its lazily built table of multiples. Equal when
/// the points are.
#[derive(Clone, PartialEq)]
pub struct P256Key(es256::P256Key);

impl P256Key {
    /// A key from its big-endian affine coordinates (exactly 32 bytes each, RFC 7518 §6.2.1.2):
    /// `None` unless both are below `p` and the point is on the curve (the identity has no
    /// affine form).
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Option<P256Key> {
        es256::P256Key::from_coordinates(x, y).map(P256Key)
    }

    /// ES256 (RFC 7518 §3.4): SHA-256 of `msg`, `sig` raw `r || s` of exactly 64 bytes (DER or
    /// any other length is refused), both in [1, n−1].
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.0.verify(msg, sig)
    }

    /// [`P256Key::verify`] for a message whose SHA-256 the caller already has (`sha256`).
    pub fn verify_sha256(&self, sha256: &[u8; 32], sig: &[u8]) -> bool {
        self.0.verify_digest(sha256, sig)
    }
}

/// A validated P-384 public key (ES384) with its lazily built table of multiples. Equal when
/// the points are.
#[derive(Clone, PartialEq)]
pub struct P384Key(es384::P384Key);

impl P384Key {
    /// A key from its big-endian affine coordinates (exactly 48 bytes each): `None` unless both
    /// are below `p` and the point is on the curve.
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Option<P384Key> {
        es384::P384Key::from_coordinates(x, y).map(P384Key)
    }

    /// ES384 (RFC 7518 §3.4): SHA-384 of `msg`, `sig` raw `r || s` of exactly 96 bytes.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.0.verify(msg, sig)
    }
}

/// A validated P-521 public key (ES512), verified with RustCrypto's `p521` crate. Equal when
/// the points are.
#[derive(Clone, PartialEq)]
pub struct P521Key(es512::P521Key);

impl P521Key {
    /// A key from its big-endian affine coordinates (exactly 66 bytes each): `None` unless both
    /// are below `p` and the point is on the curve.
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Option<P521Key> {
        es512::P521Key::from_coordinates(x, y).map(P521Key)
    }

    /// ES512 (RFC 7518 §3.4): SHA-512 of `msg`, `sig` raw `r || s` of exactly 132 bytes, both
    /// in [1, n−1].
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.0.verify(msg, sig)
    }
}

/// The six RSA signature schemes of JWS (RFC 7518 §3.3, §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaScheme {
    /// RS256: RSASSA-PKCS1-v1_5 with SHA-256.
    Pkcs1Sha256,
    /// RS384: RSASSA-PKCS1-v1_5 with SHA-384.
    Pkcs1Sha384,
    /// RS512: RSASSA-PKCS1-v1_5 with SHA-512.
    Pkcs1Sha512,
    /// PS256: RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    PssSha256,
    /// PS384: RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt.
    PssSha384,
    /// PS512: RSASSA-PSS with SHA-512, MGF1-SHA-512 and a 64-byte salt.
    PssSha512,
}

/// An RSA public key with its Montgomery parameters computed once (see `rsa_mont`). Equal when
/// the keys are.
#[derive(Clone, PartialEq)]
pub struct RsaKey(rsa_mont::MontKey);

impl RsaKey {
    /// The key with modulus `n` (big-endian, leading zeros allowed) and exponent `e`. `None` for
    /// an even or zero modulus, one longer than 13 797 bits (the bound of `rsa_mont`'s
    /// arithmetic) or `e = 0`; other size and exponent bounds are the caller's.
    pub fn new(n: &[u8], e: u64) -> Option<RsaKey> {
        rsa_mont::MontKey::new(n, e).map(RsaKey)
    }

    /// Modulus length in bits.
    pub fn bits(&self) -> usize {
        self.0.bits()
    }

    /// Verifies `sig` over `msg` with `scheme`; the signature must be exactly the modulus
    /// length (RFC 8017 §8.1.2, §8.2.2: `rsa_mont`'s public operation refuses any other).
    pub fn verify(&self, scheme: RsaScheme, msg: &[u8], sig: &[u8]) -> bool {
        let key = &self.0;
        use rsa_mont::{pkcs1v15_verify, pss_verify};
        match scheme {
            RsaScheme::Pkcs1Sha256 | RsaScheme::PssSha256 => {
                self.verify_sha256(scheme, &Sha256::digest(msg).into(), sig)
            }
            RsaScheme::Pkcs1Sha384 => {
                pkcs1v15_verify(key, &SHA384_DIGEST_INFO, &Sha384::digest(msg), sig)
            }
            RsaScheme::Pkcs1Sha512 => {
                pkcs1v15_verify(key, &SHA512_DIGEST_INFO, &Sha512::digest(msg), sig)
            }
            RsaScheme::PssSha384 => pss_verify::<Sha384>(key, &Sha384::digest(msg), sig),
            RsaScheme::PssSha512 => pss_verify::<Sha512>(key, &Sha512::digest(msg), sig),
        }
    }

    /// [`RsaKey::verify`] for a message whose SHA-256 the caller already has (`sha256`): RS256
    /// and PS256; false for the schemes of another hash.
    pub fn verify_sha256(&self, scheme: RsaScheme, sha256: &[u8; 32], sig: &[u8]) -> bool {
        use rsa_mont::{pkcs1v15_verify, pss_verify};
        match scheme {
            RsaScheme::Pkcs1Sha256 => pkcs1v15_verify(&self.0, &SHA256_DIGEST_INFO, sha256, sig),
            RsaScheme::PssSha256 => pss_verify::<Sha256>(&self.0, sha256, sig),
            _ => false,
        }
    }
}

/// DER of the DigestInfo before a SHA-256 digest (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// DER of the DigestInfo before a SHA-384 digest (RFC 8017 §9.2, note 1).
const SHA384_DIGEST_INFO: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
/// DER of the DigestInfo before a SHA-512 digest (RFC 8017 §9.2, note 1).
const SHA512_DIGEST_INFO: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The DigestInfo prefixes are the ones the `rsa` crate derives from sha2's OIDs.
    #[test]
    fn digest_info_prefixes_match_the_rsa_crate() {
        use rsa::Pkcs1v15Sign;
        use sha2_ref::{Sha256, Sha384, Sha512};
        assert_eq!(
            Pkcs1v15Sign::new::<Sha256>().prefix[..],
            SHA256_DIGEST_INFO[..]
        );
        assert_eq!(
            Pkcs1v15Sign::new::<Sha384>().prefix[..],
            SHA384_DIGEST_INFO[..]
        );
        assert_eq!(
            Pkcs1v15Sign::new::<Sha512>().prefix[..],
            SHA512_DIGEST_INFO[..]
        );
    }

    /// One pass gives SHA-256 of the whole text and of any prefix of it: every split of texts
    /// around the 64-byte block and the 55/56-byte padding boundaries.
    #[test]
    fn sha256_with_prefix_is_both_digests() {
        let text: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 129, 200] {
            let data = &text[..len];
            for split in 0..=len {
                let (whole, prefix) = sha256_with_prefix(data, split);
                assert_eq!(whole, sha256(data), "len {len}, split {split}");
                let prefix = prefix.unwrap();
                assert_eq!(prefix.absorbed(), split);
                assert_eq!(
                    prefix.finish(),
                    sha256(&data[..split]),
                    "len {len}, split {split}"
                );
            }
            let (whole, prefix) = sha256_with_prefix(data, len + 1);
            assert_eq!(whole, sha256(data));
            assert!(prefix.is_none(), "a prefix longer than the text");
        }
    }

    /// The cache key is plain SHA-256 (FIPS 180-4 test vector "abc").
    #[test]
    fn sha256_of_abc() {
        let hex: String = sha256(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
