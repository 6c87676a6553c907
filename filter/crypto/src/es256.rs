//! P-256 (FIPS 186-5 / SP 800-186 §3.2.1.3, SEC 2 `secp256r1`) for ES256: the curve's constants
//! on the generic code of `ec_arith`, `ec_curve` and `ecdsa` (8 limbs, SHA-256). The `p256`
//! crate is only the reference of the tests.

use std::sync::OnceLock;

use sha2::Sha256;

use super::ec_arith::{Modulus, hex};
use super::ec_curve::{Affine, Curve};
use super::ecdsa::{Ecdsa, EcdsaKey, Table};
use super::p256_field::{self, Fe256};

/// The field prime `p = 2^256 − 2^224 + 2^192 + 2^96 − 1` (FIPS 186-5 / SP 800-186 §3.2.1.3).
pub(crate) static P: Modulus<8> = Modulus::new(
    hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"),
    hex("00000004fffffffdfffffffffffffffefffffffbffffffff0000000000000003"),
);

/// The group order `n` of P-256.
pub(crate) static N: Modulus<8> = Modulus::new(
    hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
    hex("66e12d94f3d956202845b2392b6bec594699799c49bd6fa683244c95be79eea2"),
);

/// Window width of P-256's generator table: 8 bits (33 windows × 128 points × 64 bytes ≈ 264 KiB
/// once per VM). With the key's table at 8 bits too, a signature is 33 + 33 mixed additions
/// instead of 38 + 38 at 7 bits: ES256 ~10 % faster in V8 (docs/performance.md).
const G_WINDOW_BITS: u32 = 8;

/// Window width of a P-256 key's table: 8 bits too (≈ 264 KiB per key, built on its second use:
/// ~4 ms once per VM and key); 7 bits would be 152 KiB and ~2.5 ms.
const KEY_WINDOW_BITS: u32 = 8;

/// P-256 as a type for the generic code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct P256;

impl Curve<8> for P256 {
    const P: &'static Modulus<8> = &P;
    const N: &'static Modulus<8> = &N;
    type Fe = Fe256;
    /// `b·R mod p` (the tests check it against `b = 5ac635d8…27d2604b` of FIPS 186-5 /
    /// SP 800-186 §3.2.1.3).
    const B: Fe256 = p256_field::B;
    const GX: [u32; 8] = hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
    const GY: [u32; 8] = hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
}

impl Ecdsa<8> for P256 {
    const KEY_WINDOW_BITS: u32 = KEY_WINDOW_BITS;
    type Hash = Sha256;

    fn generator_table() -> Option<&'static Table<P256, 8>> {
        static TABLE: OnceLock<Option<Table<P256, 8>>> = OnceLock::new();
        TABLE
            .get_or_init(|| Table::new(&Affine::generator(), G_WINDOW_BITS))
            .as_ref()
    }
}

/// A validated P-256 public key with its lazily built table (ES256).
pub(crate) type P256Key = EcdsaKey<P256, 8>;

#[cfg(test)]
crate::ec_tests::curve_tests! {
    curve: P256,
    key: P256Key,
    limbs: 8,
    reference: p256,
    // b of FIPS 186-5 / SP 800-186 §3.2.1.3.
    fips_b: "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
    // p − n ≈ 0x4319_0553 · 2^96: an r with 0x1234_5678 in limb 3 is below it.
    rare_r_limb: 3,
    rfc6979: {
        /// RFC 6979 A.2.5: the P-256 key and its deterministic SHA-256 signatures of "sample"
        /// and "test", typed from the RFC, as verification vectors.
        fn rfc6979_a25_vectors;
        ux: "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6",
        uy: "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
        x: "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
        sample: (
            "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
            "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
        ),
        test: (
            "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367",
            "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
        ),
    },
}
