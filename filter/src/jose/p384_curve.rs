//! Points of P-384 (`y² = x³ − 3x + b` over `p384_arith::P`) for ES384 verification: public-key
//! validation, and complete point addition and doubling.
//!
//! Points are projective `(X : Y : Z)` with `x = X/Z`, `y = Y/Z` (the identity is `(0 : 1 : 0)`),
//! coordinates in Montgomery form. Addition and doubling use the complete formulas for `a = −3`
//! of Renes, Costello and Batina, "Complete addition formulas for prime order elliptic curves"
//! (EUROCRYPT 2016, Algorithms 4, 5 and 6): one formula for every pair of inputs, including
//! equal points, inverse points and the identity, so no special case can be forgotten.
//!
//! **Variable time**: only public points (keys, the generator, verification results) pass here.

use super::p384_arith::{Limbs, P, from_be_bytes, hex, is_zero, less};

/// The curve coefficient `b`, in Montgomery form (`b·2^384 mod p`; the tests check it against
/// `b = b3312fa7…d3ec2aef` of FIPS 186-5 / SP 800-186 §3.2.1.4).
const B: Limbs = hex(
    "cd08114b604fbff9b62b21f41f022094e3374bee94938ae277f2209b1920022ef729add87a4c32ec081188719d412dcc",
);
/// The generator's affine coordinates (SP 800-186 §3.2.1.4), not in Montgomery form.
const GX: Limbs = hex(
    "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
);
const GY: Limbs = hex(
    "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
);

fn mul(a: &Limbs, b: &Limbs) -> Limbs {
    P.mul(a, b)
}
/// Never inlined (like `Modulus::mul`, `Modulus::sub`): one copy instead of one per call site in
/// `Table::new`; the verification path calls it out of line anyway.
#[inline(never)]
fn add(a: &Limbs, b: &Limbs) -> Limbs {
    P.add(a, b)
}
fn sub(a: &Limbs, b: &Limbs) -> Limbs {
    P.sub(a, b)
}

/// An affine point that is not the identity, coordinates in Montgomery form.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Affine {
    pub(crate) x: Limbs,
    pub(crate) y: Limbs,
}

impl Affine {
    /// The generator `G`.
    pub(crate) fn generator() -> Affine {
        Affine {
            x: P.to_mont(&GX),
            y: P.to_mont(&GY),
        }
    }

    /// A public key from its big-endian affine coordinates (exactly 48 bytes each), validated:
    /// both coordinates below `p` and `y² = x³ − 3x + b`. The identity has no affine coordinates
    /// (and `(0, 0)` is not on the curve since `b ≠ 0`), and P-384 has prime order (cofactor 1),
    /// so a point that passes is a valid key of order `n` (SEC1 §3.2.2.1).
    pub(crate) fn from_coordinates(x: &[u8], y: &[u8]) -> Option<Affine> {
        let (x, y) = (from_be_bytes(x)?, from_be_bytes(y)?);
        if !less(&x, &P.m) || !less(&y, &P.m) {
            return None;
        }
        let point = Affine {
            x: P.to_mont(&x),
            y: P.to_mont(&y),
        };
        point.is_on_curve().then_some(point)
    }

    fn is_on_curve(&self) -> bool {
        let x2 = mul(&self.x, &self.x);
        let x3 = mul(&x2, &self.x);
        let three_x = add(&add(&self.x, &self.x), &self.x);
        let rhs = add(&sub(&x3, &three_x), &B);
        mul(&self.y, &self.y) == rhs
    }

    /// `−P = (x, −y)`.
    pub(crate) fn neg(&self) -> Affine {
        Affine {
            x: self.x,
            y: P.neg(&self.y),
        }
    }
}

/// A projective point (any point, including the identity).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Point {
    pub(crate) x: Limbs,
    pub(crate) y: Limbs,
    pub(crate) z: Limbs,
}

impl From<&Affine> for Point {
    fn from(a: &Affine) -> Point {
        Point {
            x: a.x,
            y: a.y,
            z: P.one_mont(),
        }
    }
}

impl Point {
    pub(crate) fn identity() -> Point {
        Point {
            x: [0; 12],
            y: P.one_mont(),
            z: [0; 12],
        }
    }

    pub(crate) fn is_identity(&self) -> bool {
        is_zero(&self.z)
    }

    /// `self + other`, complete (RCB 2016 Algorithm 4, a = −3): 12 multiplications, 2 by `b`.
    pub(crate) fn add(&self, other: &Point) -> Point {
        let (x1, y1, z1) = (&self.x, &self.y, &self.z);
        let (x2, y2, z2) = (&other.x, &other.y, &other.z);
        let t0 = mul(x1, x2);
        let t1 = mul(y1, y2);
        let t2 = mul(z1, z2);
        let t3 = mul(&add(x1, y1), &add(x2, y2));
        let t3 = sub(&t3, &add(&t0, &t1));
        let t4 = mul(&add(y1, z1), &add(y2, z2));
        let t4 = sub(&t4, &add(&t1, &t2));
        let x3 = mul(&add(x1, z1), &add(x2, z2));
        let y3 = sub(&x3, &add(&t0, &t2));
        Self::finish(t0, t1, t2, t3, t4, y3)
    }

    /// `self + other` for an affine `other` (RCB 2016 Algorithm 5, a = −3): 11
    /// multiplications, 2 by `b`. Complete as long as `other` is not the identity, which an
    /// [`Affine`] never is; `self` may be.
    pub(crate) fn add_affine(&self, other: &Affine) -> Point {
        let (x1, y1, z1) = (&self.x, &self.y, &self.z);
        let (x2, y2) = (&other.x, &other.y);
        let t0 = mul(x1, x2);
        let t1 = mul(y1, y2);
        let t3 = mul(&add(x2, y2), &add(x1, y1));
        let t3 = sub(&t3, &add(&t0, &t1));
        let t4 = add(&mul(y2, z1), y1);
        let y3 = add(&mul(x2, z1), x1);
        // Algorithm 4's tail with t2 = Z1 (Z2 = 1).
        Self::finish(t0, t1, *z1, t3, t4, y3)
    }

    /// The common second half of Algorithms 4 and 5, from `t0 = X1X2`, `t1 = Y1Y2`,
    /// `t2 = Z1Z2`, `t3 = X1Y2 + X2Y1`, `t4 = Y1Z2 + Y2Z1` and `y3 = X1Z2 + X2Z1`.
    fn finish(t0: Limbs, t1: Limbs, t2: Limbs, t3: Limbs, t4: Limbs, y3: Limbs) -> Point {
        let z3 = mul(&B, &t2);
        let x3 = sub(&y3, &z3);
        let x3 = add(&add(&x3, &x3), &x3);
        let z3 = sub(&t1, &x3);
        let x3 = add(&t1, &x3);
        let y3 = mul(&B, &y3);
        let t2 = add(&add(&t2, &t2), &t2);
        let y3 = sub(&sub(&y3, &t2), &t0);
        let y3 = add(&add(&y3, &y3), &y3);
        let t0 = sub(&add(&add(&t0, &t0), &t0), &t2);
        let t1 = mul(&t4, &y3);
        let t2 = mul(&t0, &y3);
        let y3 = add(&mul(&x3, &z3), &t2);
        let x3 = sub(&mul(&t3, &x3), &t1);
        let z3 = add(&mul(&t4, &z3), &mul(&t3, &t0));
        Point {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `2·self`, complete (RCB 2016 Algorithm 6, a = −3): 8 multiplications, 3 squarings, 2 by
    /// `b`.
    pub(crate) fn double(&self) -> Point {
        let (x, y, z) = (&self.x, &self.y, &self.z);
        let t0 = mul(x, x);
        let t1 = mul(y, y);
        let t2 = mul(z, z);
        let t3 = mul(x, y);
        let t3 = add(&t3, &t3);
        let z3 = mul(x, z);
        let z3 = add(&z3, &z3);
        let y3 = sub(&mul(&B, &t2), &z3);
        let y3 = add(&add(&y3, &y3), &y3);
        let x3 = sub(&t1, &y3);
        let y3 = add(&t1, &y3);
        let y3 = mul(&x3, &y3);
        let x3 = mul(&x3, &t3);
        let t2 = add(&add(&t2, &t2), &t2);
        let z3 = sub(&sub(&mul(&B, &z3), &t2), &t0);
        let z3 = add(&add(&z3, &z3), &z3);
        let t0 = sub(&add(&add(&t0, &t0), &t0), &t2);
        let y3 = add(&y3, &mul(&t0, &z3));
        let t0 = mul(y, z);
        let t0 = add(&t0, &t0);
        let x3 = sub(&x3, &mul(&t0, &z3));
        let z3 = mul(&t0, &t1);
        let z3 = add(&z3, &z3);
        let z3 = add(&z3, &z3);
        Point {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// The affine form of many points with one field inversion (Montgomery's trick); `None` for
    /// any identity among them.
    pub(crate) fn batch_to_affine(points: &[Point]) -> Option<Vec<Affine>> {
        if points.iter().any(Point::is_identity) {
            return None;
        }
        // prefix[i] = z0·…·z(i−1); then walk back with the inverse of the full product.
        let mut prefix = Vec::with_capacity(points.len());
        let mut acc = P.one_mont();
        for point in points {
            prefix.push(acc);
            acc = mul(&acc, &point.z);
        }
        let mut inv = P.invert(&acc);
        let mut out = vec![
            Affine {
                x: [0; 12],
                y: [0; 12]
            };
            points.len()
        ];
        for ((point, before), slot) in points.iter().zip(&prefix).zip(&mut out).rev() {
            let z_inv = mul(&inv, before);
            inv = mul(&inv, &point.z);
            *slot = Affine {
                x: mul(&point.x, &z_inv),
                y: mul(&point.y, &z_inv),
            };
        }
        Some(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;
    use crate::jose::p384_arith::to_be_bytes;
    use p384::elliptic_curve::Group as _;
    use p384::elliptic_curve::sec1::ToEncodedPoint as _;
    use p384::{ProjectivePoint, Scalar};

    use super::super::test_rng::Rng;

    /// Our point as the crate's SEC1 encoding (`[0]` for the identity).
    pub(crate) fn encode(point: &Point) -> Vec<u8> {
        let Some(affine) = Point::batch_to_affine(&[*point]) else {
            return vec![0];
        };
        let mut out = vec![4];
        out.extend_from_slice(&to_be_bytes(&P.out_of_mont(&affine[0].x)));
        out.extend_from_slice(&to_be_bytes(&P.out_of_mont(&affine[0].y)));
        out
    }

    pub(crate) fn theirs(point: &ProjectivePoint) -> Vec<u8> {
        point
            .to_affine()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// The crate's point as ours.
    pub(crate) fn ours(point: &ProjectivePoint) -> Point {
        let encoded = point.to_affine().to_encoded_point(false);
        match (encoded.x(), encoded.y()) {
            (Some(x), Some(y)) => Point::from(&Affine::from_coordinates(x, y).unwrap()),
            _ => Point::identity(),
        }
    }

    #[test]
    fn constants_match_the_crate() {
        let g = Point::from(&Affine::generator());
        assert_eq!(encode(&g), theirs(&ProjectivePoint::GENERATOR));
        assert!(Affine::generator().is_on_curve());
        let b = "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef";
        assert_eq!(P.out_of_mont(&B), hex(b));
    }

    #[test]
    fn addition_and_doubling_match_the_crate() {
        let mut rng = Rng(41);
        let mut points = vec![ProjectivePoint::IDENTITY, ProjectivePoint::GENERATOR];
        points.push(-ProjectivePoint::GENERATOR);
        for _ in 0..12 {
            let k = Scalar::from(rng.next());
            points.push(ProjectivePoint::GENERATOR * k);
        }
        for (i, a) in points.iter().enumerate() {
            let pa = ours(a);
            assert_eq!(encode(&pa.double()), theirs(&a.double()));
            for b in &points[i..] {
                let pb = ours(b);
                let sum = theirs(&(a + b));
                assert_eq!(encode(&pa.add(&pb)), sum);
                assert_eq!(encode(&pa.add(&pa)), theirs(&a.double()), "add P + P");
                if let Some(affine) = Point::batch_to_affine(&[pb]) {
                    assert_eq!(encode(&pa.add_affine(&affine[0])), sum);
                    assert_eq!(encode(&pa.add_affine(&affine[0].neg())), theirs(&(a - b)));
                }
            }
        }
        // Projective inputs with Z ≠ 1 (scaled), and P + (−P).
        let g = Point::from(&Affine::generator());
        let g3 = g.double().add(&g);
        let minus = Point::from(&Point::batch_to_affine(&[g3]).unwrap()[0].neg());
        assert!(g3.add(&minus).is_identity());
        assert!(
            g3.add_affine(&Point::batch_to_affine(&[minus]).unwrap()[0])
                .is_identity()
        );
        assert!(Point::identity().double().is_identity());
    }

    #[test]
    fn key_validation() {
        let point = (ProjectivePoint::GENERATOR * Scalar::from(77u64)).to_affine();
        let encoded = point.to_encoded_point(false);
        let (x, y) = (encoded.x().unwrap().to_vec(), encoded.y().unwrap().to_vec());
        assert!(Affine::from_coordinates(&x, &y).is_some());
        // Off the curve: y with its low bit flipped.
        let mut y1 = y.clone();
        y1[47] ^= 1;
        assert!(Affine::from_coordinates(&x, &y1).is_none());
        // Wrong lengths.
        assert!(Affine::from_coordinates(&x[1..], &y).is_none());
        assert!(Affine::from_coordinates(&x, &[y.clone(), vec![0]].concat()).is_none());
        // (0, 0): the usual spelling of the identity, not on the curve.
        assert!(Affine::from_coordinates(&[0; 48], &[0; 48]).is_none());
        // Coordinates ≥ p: x + p or y + p would be the same point mod p; refused.
        let p = to_be_bytes(&P.m);
        assert!(Affine::from_coordinates(&p, &y).is_none());
        assert!(Affine::from_coordinates(&x, &p).is_none());
        assert!(Affine::from_coordinates(&[0xff; 48], &y).is_none());
        // (x, p − y) is −P: valid.
        let neg = to_be_bytes(&P.sub(&P.m, &from_be_bytes(&y).unwrap()));
        assert!(Affine::from_coordinates(&x, &neg).is_some());
    }
}
