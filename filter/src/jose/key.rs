//! Public keys decoded once (at JWKS parse time) and the per-algorithm signature checks.
//!
//! Each key is stored ready to verify, validated on the way in: RSA moduli of 2048..=8192 bits
//! with an odd public exponent > 1, EC points on their curve, Ed25519 points that decompress,
//! are canonical and are not of small order. The size and exponent bounds are checked here; the
//! rest and the signature equation are the crypto provider's (`provider.rs`: meshguard's own
//! arithmetic by default, RustCrypto with the `rustcrypto` feature). Request-time work is then
//! only the hash and the signature equation.

use core::fmt;

#[path = "provider.rs"]
pub(crate) mod provider;

use super::alg::Algorithm;
#[cfg(any(test, feature = "rustcrypto-provider"))]
use provider::RustCrypto;
pub(crate) use provider::Signed;
use provider::{Material, MeshguardCrypto, Provider as _, ProviderId};

/// Smallest RSA modulus we accept, in bits (RFC 7518 §3.3 requires 2048).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus we accept, in bits: bounds the cost of one verification.
pub const RSA_MAX_BITS: usize = 8192;

/// What kind of key a JWK holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// ECDSA P-256.
    P256,
    /// ECDSA P-384.
    P384,
    /// ECDSA P-521.
    P521,
    /// Ed25519.
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyKind::P256 => f.write_str("EC P-256"),
            KeyKind::P384 => f.write_str("EC P-384"),
            KeyKind::P521 => f.write_str("EC P-521"),
            KeyKind::Ed25519 => f.write_str("OKP Ed25519"),
        }
    }
}

/// Why key material was refused (becomes a [`super::SkipReason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyIssue {
    RsaModulusSize,
    RsaExponent,
    RsaInvalid,
    EcPoint,
    Ed25519Point,
    Ed25519Weak,
}

/// A validated public key of the crypto provider selected when it was built
/// ([`provider::ACTIVE`] in the filter), ready to verify. Equal when the key material (and the
/// provider) is: the token cache keeps an entry across a JWKS refresh only while its key is
/// still listed.
#[derive(Clone, PartialEq)]
pub(crate) struct PublicKey(Inner);

#[derive(Clone, PartialEq)]
enum Inner {
    MeshguardCrypto(<MeshguardCrypto as provider::Provider>::Key),
    #[cfg(any(test, feature = "rustcrypto-provider"))]
    RustCrypto(<RustCrypto as provider::Provider>::Key),
}

impl PublicKey {
    /// Key material through the selected provider.
    fn admit(material: Material<'_>) -> Result<Self, KeyIssue> {
        let inner = match provider::selected() {
            ProviderId::MeshguardCrypto => Inner::MeshguardCrypto(MeshguardCrypto::key(material)?),
            #[cfg(any(test, feature = "rustcrypto-provider"))]
            ProviderId::RustCrypto => Inner::RustCrypto(RustCrypto::key(material)?),
        };
        Ok(PublicKey(inner))
    }

    /// An RSA key from the big-endian bytes of `n` and `e`.
    ///
    /// The checks, in this order (leading zero bytes of either number are ignored), the same
    /// for every provider:
    /// 1. `n` has 2048..=8192 bits, else [`KeyIssue::RsaModulusSize`];
    /// 2. `e` is odd and greater than 1, else [`KeyIssue::RsaExponent`];
    /// 3. `n` is odd, `e` ≤ 2³³ − 1 and `e` < `n`, else [`KeyIssue::RsaInvalid`] (the sanity
    ///    bounds of the `rsa` crate, which the tests compare against).
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<Self, KeyIssue> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let n_bits = match n.first() {
            Some(&top) => 8 * n.len() - top.leading_zeros() as usize,
            None => 0,
        };
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n_bits) {
            return Err(KeyIssue::RsaModulusSize);
        }
        let odd = e.last().is_some_and(|low| low & 1 == 1);
        // Odd and not 1 (leading zeros are gone, so a one-byte e is its value).
        if !odd || e == [1] {
            return Err(KeyIssue::RsaExponent);
        }
        // e ≤ 2³³ − 1 fits 5 bytes; below a modulus of ≥ 2048 bits, e < n follows.
        let e = match e.len() {
            0..=5 => e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
            _ => return Err(KeyIssue::RsaInvalid),
        };
        if e > RSA_MAX_EXPONENT || n.last().is_none_or(|low| low & 1 == 0) {
            return Err(KeyIssue::RsaInvalid);
        }
        Self::admit(Material::Rsa { n, e })
    }

    /// A P-256 key from its affine coordinates (exactly 32 bytes each, RFC 7518 §6.2.1.2): both
    /// below `p` and on the curve (the identity has no affine form).
    pub(crate) fn p256(x: &[u8], y: &[u8]) -> Result<Self, KeyIssue> {
        match (x.try_into(), y.try_into()) {
            (Ok(x), Ok(y)) => Self::admit(Material::P256 { x, y }),
            _ => Err(KeyIssue::EcPoint),
        }
    }

    /// A P-384 key from its affine coordinates (exactly 48 bytes each): both below `p` and on
    /// the curve.
    pub(crate) fn p384(x: &[u8], y: &[u8]) -> Result<Self, KeyIssue> {
        match (x.try_into(), y.try_into()) {
            (Ok(x), Ok(y)) => Self::admit(Material::P384 { x, y }),
            _ => Err(KeyIssue::EcPoint),
        }
    }

    /// A P-521 key from its affine coordinates (exactly 66 bytes each): both below `p` and on
    /// the curve.
    pub(crate) fn p521(x: &[u8], y: &[u8]) -> Result<Self, KeyIssue> {
        match (x.try_into(), y.try_into()) {
            (Ok(x), Ok(y)) => Self::admit(Material::P521 { x, y }),
            _ => Err(KeyIssue::EcPoint),
        }
    }

    /// An Ed25519 key from its 32-byte encoding: it decompresses, is canonical, and is not of
    /// small order ("weak": a signature by it can be forged for many messages).
    pub(crate) fn ed25519(x: &[u8]) -> Result<Self, KeyIssue> {
        let bytes: &[u8; 32] = x.try_into().map_err(|_| KeyIssue::Ed25519Point)?;
        Self::admit(Material::Ed25519(bytes))
    }

    pub(crate) fn kind(&self) -> KeyKind {
        match &self.0 {
            Inner::MeshguardCrypto(k) => MeshguardCrypto::kind(k),
            #[cfg(any(test, feature = "rustcrypto-provider"))]
            Inner::RustCrypto(k) => RustCrypto::kind(k),
        }
    }

    /// Whether this kind of key can verify `alg` at all (kty and crv agree with the alg).
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self.kind() {
            KeyKind::Rsa { .. } => matches!(alg, Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512),
            KeyKind::P256 => alg == Es256,
            KeyKind::P384 => alg == Es384,
            KeyKind::P521 => alg == Es512,
            KeyKind::Ed25519 => alg == EdDsa,
        }
    }

    /// Verifies `sig` over `msg` with `alg`; false for any mismatch or malformed signature.
    pub(crate) fn verify(&self, alg: Algorithm, msg: Signed<'_>, sig: &[u8]) -> bool {
        if !self.fits(alg) {
            return false;
        }
        match &self.0 {
            Inner::MeshguardCrypto(k) => MeshguardCrypto::verify(k, alg, msg, sig),
            #[cfg(any(test, feature = "rustcrypto-provider"))]
            Inner::RustCrypto(k) => RustCrypto::verify(k, alg, msg, sig),
        }
    }
}

/// Differential hooks for the fuzz target `provider_diff` (feature `test-util`, never in the
/// wasm build): the same JWKS document admitted by either provider, and a key's verification.
#[cfg(feature = "test-util")]
impl super::Jwks {
    /// [`super::Jwks::parse`] with keys built by the RustCrypto provider (`rustcrypto`) or by
    /// meshguard-crypto.
    pub fn parse_with_provider(bytes: &[u8], rustcrypto: bool) -> Result<Self, super::JwksError> {
        let id = if rustcrypto {
            ProviderId::RustCrypto
        } else {
            ProviderId::MeshguardCrypto
        };
        provider::with_provider(id, || super::Jwks::parse(bytes))
    }
}

#[cfg(feature = "test-util")]
impl super::Jwk {
    /// Whether this key verifies `sig` over `msg` with `alg` (as a token's signature is checked).
    pub fn verify_signature(&self, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
        self.verify(alg, msg, sig)
    }
}

/// Largest public exponent accepted, 2³³ − 1 (the `rsa` crate's bound, kept so that the keys we
/// accept did not change when we stopped using it).
const RSA_MAX_EXPONENT: u64 = (1 << 33) - 1;

/// `bytes` without its leading zero bytes.
fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

impl fmt::Debug for PublicKey {
    /// Only the kind: key material stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::provider::with_provider;
    use super::*;
    use rsa::BigUint;

    /// The providers compared side by side.
    const PROVIDERS: [ProviderId; 2] = [ProviderId::MeshguardCrypto, ProviderId::RustCrypto];

    /// `admit` under each provider: the answers (kind or refusal reason) must be equal.
    fn under_both(
        what: &str,
        admit: impl Fn() -> Result<PublicKey, KeyIssue>,
    ) -> Result<KeyKind, KeyIssue> {
        let answers = PROVIDERS.map(|p| with_provider(p, || admit().map(|k| k.kind())));
        assert_eq!(answers[0], answers[1], "{what}: the providers disagree");
        answers[0]
    }

    /// The reference: the `rsa` crate's validation (`RsaPublicKey::new_with_max_size`) after the
    /// size and exponent checks of ours.
    fn reference(n: &[u8], e: &[u8]) -> Result<usize, KeyIssue> {
        let odd = e.last().is_some_and(|low| low & 1 == 1);
        let n = BigUint::from_bytes_be(n);
        let e = BigUint::from_bytes_be(e);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&n.bits()) {
            return Err(KeyIssue::RsaModulusSize);
        }
        if !odd || e <= BigUint::from(1u8) {
            return Err(KeyIssue::RsaExponent);
        }
        let bits = n.bits();
        rsa::RsaPublicKey::new_with_max_size(n, e, RSA_MAX_BITS)
            .map(|_| bits)
            .map_err(|_| KeyIssue::RsaInvalid)
    }

    /// Every accept/refuse decision (and its reason) equals the `rsa` crate's, over moduli and
    /// exponents at and around each bound.
    #[test]
    fn rsa_validation_matches_the_rsa_crate() {
        let modulus = |bits: usize, odd: bool, pad: usize| {
            let mut n = vec![0u8; pad];
            let len = bits.div_ceil(8);
            let mut body = vec![0x5au8; len];
            if len > 0 {
                body[0] = 0x80u8 >> ((8 * len - bits) as u32);
                let low = body.len() - 1;
                body[low] = if odd { 0x5b } else { 0x5a };
            }
            n.extend(body);
            n
        };
        let mut moduli = vec![vec![], vec![0], vec![0; 300], vec![1], vec![0xff; 256]];
        for bits in [2047, 2048, 2049, 3071, 4096, 8191, 8192, 8193] {
            for odd in [true, false] {
                for pad in [0, 1, 5] {
                    moduli.push(modulus(bits, odd, pad));
                }
            }
        }
        let big = |v: u64| v.to_be_bytes().to_vec();
        let mut exponents: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![1],
            vec![0, 1],
            vec![2],
            vec![3],
            vec![0, 0, 3],
            vec![1, 0, 1],
            vec![0xff; 9],
            vec![0x01; 9],
            vec![0xff; 300],
        ];
        for v in [
            (1u64 << 32) + 1,
            (1 << 33) - 1,
            (1 << 33) + 1,
            (1 << 33) - 2,
            (1 << 40) + 1,
            u64::MAX,
        ] {
            exponents.push(big(v));
        }
        let mut accepted = 0;
        for n in &moduli {
            for e in &exponents {
                let ours = under_both(&format!("n {} bytes, e {e:02x?}", n.len()), || {
                    PublicKey::rsa(n, e)
                })
                .map(|k| match k {
                    KeyKind::Rsa { bits } => bits,
                    _ => 0,
                });
                assert_eq!(ours, reference(n, e), "n {} bytes, e {e:02x?}", n.len());
                accepted += usize::from(ours.is_ok());
            }
        }
        assert!(
            accepted > 20,
            "the cases include accepted keys ({accepted})"
        );
        // e = n: refused as the rsa crate refuses e ≥ n (a 5-byte e is far below any n we take).
        assert!(reference(&modulus(2048, true, 0), &modulus(2048, true, 0)).is_err());
        assert!(PublicKey::rsa(&modulus(2048, true, 0), &modulus(2048, true, 0)).is_err());
    }

    /// A valid public key of a Wycheproof file (its first group), as the JWK coordinates.
    fn wycheproof_point(file: &str) -> (Vec<u8>, Vec<u8>) {
        let path = format!("{}/testdata/wycheproof/{file}", env!("CARGO_MANIFEST_DIR"));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let hex = doc["testGroups"][0]["publicKey"]["uncompressed"]
            .as_str()
            .unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(bytes[0], 4);
        let (x, y) = bytes[1..].split_at((bytes.len() - 1) / 2);
        (x.to_vec(), y.to_vec())
    }

    /// EC admission: a point on the curve, off it, coordinates ≥ p, the zero point, wrong
    /// lengths: the same answer under both providers, and the expected one.
    #[test]
    fn ec_validation_is_the_same_under_both_providers() {
        type Admit = fn(&[u8], &[u8]) -> Result<PublicKey, KeyIssue>;
        let curves: [(&str, Admit, KeyKind); 3] = [
            (
                "ecdsa_secp256r1_sha256_p1363_test.json",
                PublicKey::p256,
                KeyKind::P256,
            ),
            (
                "ecdsa_secp384r1_sha384_p1363_test.json",
                PublicKey::p384,
                KeyKind::P384,
            ),
            (
                "ecdsa_secp521r1_sha512_p1363_test.json",
                PublicKey::p521,
                KeyKind::P521,
            ),
        ];
        for (file, admit, kind) in curves {
            let (x, y) = wycheproof_point(file);
            let len = x.len();
            assert_eq!(under_both("valid", || admit(&x, &y)), Ok(kind), "{file}");
            let mut off = y.clone();
            off[len - 1] ^= 1;
            assert_eq!(
                under_both("off the curve", || admit(&x, &off)),
                Err(KeyIssue::EcPoint)
            );
            let zero = vec![0u8; len];
            assert_eq!(
                under_both("zero", || admit(&zero, &zero)),
                Err(KeyIssue::EcPoint)
            );
            let ones = vec![0xffu8; len];
            assert_eq!(
                under_both("x all ones", || admit(&ones, &y)),
                Err(KeyIssue::EcPoint)
            );
            assert_eq!(
                under_both("y all ones", || admit(&x, &ones)),
                Err(KeyIssue::EcPoint)
            );
            let mut long = vec![0u8];
            long.extend_from_slice(&x);
            assert_eq!(
                under_both("x too long", || admit(&long, &y)),
                Err(KeyIssue::EcPoint)
            );
            assert_eq!(
                under_both("x too short", || admit(&x[1..], &y)),
                Err(KeyIssue::EcPoint)
            );
            assert_eq!(
                under_both("swapped", || admit(&y, &x)),
                Err(KeyIssue::EcPoint)
            );
        }
    }

    /// Non-canonical EC coordinates: a point on the curve with a small x (so that x + p still
    /// fits the coordinate's length) is admitted, the same point with x + p (and, on P-521, where
    /// every y + p fits in 66 bytes, with y + p) is refused; the same answer under both providers.
    /// The coordinates are reduced mod p nowhere: one key, one spelling.
    #[test]
    fn ec_coordinates_not_below_p_are_refused_under_both_providers() {
        /// A point with a small x (y = sqrt(x³ − 3x + b) mod p for the smallest x > 0 that has
        /// one: 5, 2 and 1), hex, and its coordinates plus p.
        struct Case {
            curve: &'static str,
            admit: fn(&[u8], &[u8]) -> Result<PublicKey, KeyIssue>,
            kind: KeyKind,
            x: &'static str,
            y: &'static str,
            x_plus_p: &'static str,
            y_plus_p: Option<&'static str>,
        }
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let cases = [
            Case {
                curve: "P-256",
                admit: PublicKey::p256,
                kind: KeyKind::P256,
                x: "0000000000000000000000000000000000000000000000000000000000000005",
                y: "459243b9aa581806fe913bce99817ade11ca503c64d9a3c533415c083248fbcc",
                x_plus_p: "ffffffff00000001000000000000000000000001000000000000000000000004",
                y_plus_p: None,
            },
            Case {
                curve: "P-384",
                admit: PublicKey::p384,
                kind: KeyKind::P384,
                x: "000000000000000000000000000000000000000000000000\
                    000000000000000000000000000000000000000000000002",
                y: "8cdeadbbd04911a3c1931e26df3fa6439dca9c7eb286fbd4\
                    6fc319f0e2bb780232baf57825fc0c1912ada2fefe84024c",
                x_plus_p: "ffffffffffffffffffffffffffffffffffffffffffffffff\
                           fffffffffffffffeffffffff000000000000000100000001",
                y_plus_p: None,
            },
            Case {
                curve: "P-521",
                admit: PublicKey::p521,
                kind: KeyKind::P521,
                x: "000000000000000000000000000000000000000000000000000000000000000000\
                    000000000000000000000000000000000000000000000000000000000000000001",
                y: "0010e59be93c4f269c0269c79e2afd65d6aeaa9b701eacc194fb3ee03df47849bf\
                    550ec636ebee0ddd4a16f1cd9406605af38f584567770e3f272d688c832e843564",
                x_plus_p: "020000000000000000000000000000000000000000000000000000000000000000\
                           000000000000000000000000000000000000000000000000000000000000000000",
                y_plus_p: Some(
                    "0210e59be93c4f269c0269c79e2afd65d6aeaa9b701eacc194fb3ee03df47849bf\
                     550ec636ebee0ddd4a16f1cd9406605af38f584567770e3f272d688c832e843563",
                ),
            },
        ];
        for case in cases {
            let (curve, admit) = (case.curve, case.admit);
            let (x, y, x_plus_p) = (hex(case.x), hex(case.y), hex(case.x_plus_p));
            assert_eq!(
                under_both(curve, || admit(&x, &y)),
                Ok(case.kind),
                "{curve}"
            );
            assert_eq!(
                under_both(curve, || admit(&x_plus_p, &y)),
                Err(KeyIssue::EcPoint),
                "{curve}: x + p"
            );
            if let Some(y_plus_p) = case.y_plus_p.map(hex) {
                assert_eq!(
                    under_both(curve, || admit(&x, &y_plus_p)),
                    Err(KeyIssue::EcPoint),
                    "{curve}: y + p"
                );
            }
        }
    }

    /// Ed25519 admission: a valid key, small-order points, non-canonical encodings (y ≥ p),
    /// a y with no x, wrong lengths: the same answer under both providers, and the expected one.
    #[test]
    fn ed25519_validation_is_the_same_under_both_providers() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        // RFC 8032 §7.1 test 1.
        let valid = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(
            under_both("valid", || PublicKey::ed25519(&valid)),
            Ok(KeyKind::Ed25519)
        );
        // The identity (y = 1), order 2 (y = p − 1), order 4 (y = 0).
        let mut identity = vec![0u8; 32];
        identity[0] = 1;
        let mut minus_one = vec![0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        let zero = vec![0u8; 32];
        for (what, key) in [
            ("identity", &identity),
            ("order 2", &minus_one),
            ("order 4", &zero),
        ] {
            assert_eq!(
                under_both(what, || PublicKey::ed25519(key)),
                Err(KeyIssue::Ed25519Weak),
                "{what}"
            );
        }
        // y = p + 1 (non-canonical identity), y = p (non-canonical 0), y = 2^255 − 1.
        let mut p_plus_one = vec![0xffu8; 32];
        p_plus_one[0] = 0xee;
        p_plus_one[31] = 0x7f;
        let mut p = vec![0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut top = vec![0xffu8; 32];
        top[31] = 0x7f;
        for (what, key) in [("p + 1", &p_plus_one), ("p", &p), ("2^255 - 1", &top)] {
            assert_eq!(
                under_both(what, || PublicKey::ed25519(key)),
                Err(KeyIssue::Ed25519Point),
                "{what}"
            );
        }
        // y = 2 has no x on the curve.
        let mut two = vec![0u8; 32];
        two[0] = 2;
        assert_eq!(
            under_both("y = 2", || PublicKey::ed25519(&two)),
            Err(KeyIssue::Ed25519Point)
        );
        assert_eq!(
            under_both("31 bytes", || PublicKey::ed25519(&valid[1..])),
            Err(KeyIssue::Ed25519Point)
        );
        // A valid key with the sign bit flipped is another valid key (−A).
        let mut negated = valid.clone();
        negated[31] ^= 0x80;
        assert_eq!(
            under_both("-A", || PublicKey::ed25519(&negated)),
            Ok(KeyKind::Ed25519)
        );
    }
}
