//! P-384 (FIPS 186-5 / SP 800-186 §3.2.1.4, SEC 2 `secp384r1`) for ES384: the curve's constants
//! on the generic code of `ec_arith`, `ec_curve` and `ecdsa` (12 limbs, SHA-384).

use std::sync::OnceLock;

use sha2::Sha384;

use super::ec_arith::{Limbs, Modulus, hex};
use super::ec_curve::{Affine, Curve};
use super::ecdsa::{Ecdsa, EcdsaKey, Table};

/// The field prime `p = 2^384 − 2^128 − 2^96 + 2^32 − 1` (FIPS 186-5 / SP 800-186 §3.2.1.4).
pub(crate) static P: Modulus<12> = Modulus::new(
    hex(
        "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    ),
    hex(
        "000000000000000000000000000000010000000200000000fffffffe000000000000000200000000fffffffe00000001",
    ),
);

/// The group order `n` of P-384.
pub(crate) static N: Modulus<12> = Modulus::new(
    hex(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    ),
    hex(
        "0c84ee012b39bf213fb05b7a28266895d40d49174aab1cc5bc3e483afcb82947ff3d81e5df1aa4192d319b2419b409a9",
    ),
);

/// Window width of P-384's generator table (65 windows × 32 points × 96 bytes ≈ 200 KiB once per
/// VM).
const G_WINDOW_BITS: u32 = 6;

/// Window width of a P-384 key's table: 6 bits (65 × 32 × 96 bytes ≈ 200 KiB per key, built on
/// its second use), 65 mixed additions per signature instead of 78 with 5 bits: ES384 ~7 % faster
/// in V8; 7 bits would be ~344 KiB per key for 5 % more.
const KEY_WINDOW_BITS: u32 = 6;

/// P-384 as a type for the generic code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct P384;

impl Curve<12> for P384 {
    const P: &'static Modulus<12> = &P;
    const N: &'static Modulus<12> = &N;
    type Fe = Fe384;
    /// `b·2^384 mod p` (the tests check it against `b = b3312fa7…d3ec2aef` of FIPS 186-5 /
    /// SP 800-186 §3.2.1.4).
    const B: Fe384 = Fe384(hex(
        "cd08114b604fbff9b62b21f41f022094e3374bee94938ae277f2209b1920022ef729add87a4c32ec081188719d412dcc",
    ));
    const GX: [u32; 12] = hex(
        "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
    );
    const GY: [u32; 12] = hex(
        "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
    );
}

/// An element of P-384's field on `ec_arith`'s 32-bit Montgomery arithmetic (`R = 2^384`) over
/// the `static` prime, whose limbs the product folds in. Its products, sums and differences stay
/// out of line: one copy each instead of one per call site in the tables' construction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Fe384(Limbs<12>);

impl super::ec_curve::Field<12> for Fe384 {
    fn from_limbs(a: &Limbs<12>) -> Self {
        Fe384(P.to_mont(a))
    }

    fn to_limbs(&self) -> Limbs<12> {
        P.mul(&self.0, &super::ec_arith::one())
    }

    fn zero() -> Self {
        Fe384([0; 12])
    }

    fn one() -> Self {
        Fe384(P.one_mont())
    }

    #[inline(never)]
    fn mul(&self, other: &Self) -> Self {
        Fe384(P.mul_inline(&self.0, &other.0))
    }

    fn square(&self) -> Self {
        self.mul(self)
    }

    #[inline(never)]
    fn add(&self, other: &Self) -> Self {
        Fe384(P.add(&self.0, &other.0))
    }

    #[inline(never)]
    fn sub(&self, other: &Self) -> Self {
        Fe384(P.sub(&self.0, &other.0))
    }

    fn neg(&self) -> Self {
        Fe384(P.neg(&self.0))
    }

    fn is_zero(&self) -> bool {
        super::ec_arith::is_zero(&self.0)
    }

    fn invert(&self) -> Self {
        Fe384(P.invert(&self.0))
    }
}

impl Ecdsa<12> for P384 {
    const KEY_WINDOW_BITS: u32 = KEY_WINDOW_BITS;
    type Hash = Sha384;

    fn generator_table() -> Option<&'static Table<P384, 12>> {
        static TABLE: OnceLock<Option<Table<P384, 12>>> = OnceLock::new();
        TABLE
            .get_or_init(|| Table::new(&Affine::generator(), G_WINDOW_BITS))
            .as_ref()
    }
}

/// A validated P-384 public key with its lazily built table (ES384).
pub(crate) type P384Key = EcdsaKey<P384, 12>;

#[cfg(test)]
crate::ec_tests::curve_tests! {
    curve: P384,
    key: P384Key,
    limbs: 12,
    reference: p384,
    // b of FIPS 186-5 / SP 800-186 §3.2.1.4.
    fips_b: "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    // p − n ≈ 0x389c_b27e · 2^160: an r with 0x1234_5678 in limb 5 is below it.
    rare_r_limb: 5,
    rfc6979: {
        /// RFC 6979 A.2.6: the P-384 key and its deterministic SHA-384 signatures of "sample"
        /// and "test", typed from the RFC, as verification vectors.
        fn rfc6979_a26_vectors;
        ux: "EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64DEF8F0EA9055866064A254515480BC13",
        uy: "8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1288B231C3AE0D4FE7344FD2533264720",
        x: "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5",
        sample: (
            "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46",
            "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8",
        ),
        test: (
            "8203B63D3C853E8D77227FB377BCF7B7B772E97892A80F36AB775D509D7A5FEB0542A7F0812998DA8F1DD3CA3CF023DB",
            "DDD0760448D42D8A43AF45AF836FCE4DE8BE06B485E9B61B827C2F13173923E06A739F040649A667BF3B828246BAA5A5",
        ),
    },
}
