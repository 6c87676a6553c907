//! Points of the short Weierstrass curves `y² = x³ − 3x + b` over `Curve::P` (P-256 and P-384)
//! for ECDSA verification: public-key validation, point addition and doubling.
//!
//! Tables are built with projective points [`Point`] `(X : Y : Z)`, `x = X/Z`, `y = Y/Z` (the
//! identity is `(0 : 1 : 0)`), and the complete formulas for `a = −3` of Renes, Costello and
//! Batina, "Complete addition formulas for prime order elliptic curves" (EUROCRYPT 2016,
//! Algorithms 4 and 6): one formula for every pair of inputs, so no special case can be
//! forgotten. Both curves have `a = −3` and prime order (cofactor 1), which these formulas and
//! the key validation rely on; a curve without them must not implement [`Curve`].
//!
//! A verification's accumulator is a [`Jacobian`] point (`x = X/Z²`, `y = Y/Z³`) instead: it
//! only ever adds affine table points and doubles, and there the Jacobian formulas need fewer
//! field additions (a mixed addition: 11 products and 12 additions or subtractions, against 11
//! and 19 with RCB's Algorithm 5; ES256 verification ~20 % faster in V8). They are not
//! complete: the few inputs they do not cover (the identity, equal or opposite points) are
//! tested for and handled one by one in [`Jacobian::add_affine`]. Coordinates are in Montgomery
//! form throughout.
//!
//! **Variable time**: only public points (keys, the generator, verification results) pass here.

use core::marker::PhantomData;

use super::ec_arith::{Limbs, Modulus, from_be_bytes, less};

/// An element of a curve's field `Z/p` in Montgomery form, in the representation that curve's
/// products are fastest in (`es256::Fe256`: 29-bit limbs; `es384::Fe384`: `ec_arith`'s 32-bit
/// limbs). Always canonical, so `==` is equality of the elements.
pub(crate) trait Field<const L: usize>:
    Copy + Eq + core::fmt::Debug + Sized + 'static
{
    /// The element with plain value `a mod p` (entering Montgomery form).
    fn from_limbs(a: &Limbs<L>) -> Self;
    /// The plain value, below `p` (leaving Montgomery form).
    fn to_limbs(&self) -> Limbs<L>;
    fn zero() -> Self;
    fn one() -> Self;
    fn mul(&self, other: &Self) -> Self;
    fn square(&self) -> Self;
    fn add(&self, other: &Self) -> Self;
    fn sub(&self, other: &Self) -> Self;
    fn neg(&self) -> Self;
    fn is_zero(&self) -> bool;
    /// `self⁻¹`; 0 for 0 (callers exclude it).
    fn invert(&self) -> Self;
}

/// The parameters of one prime-order curve with `a = −3`, over `L`-limb numbers
/// (`es256::P256`, `es384::P384`). A type, not a value, so each curve's code is monomorphised
/// with its constants folded in.
pub(crate) trait Curve<const L: usize>:
    Copy + Eq + core::fmt::Debug + Sized + 'static
{
    /// The field prime `p` (its limbs for range checks; the field's arithmetic is [`Self::Fe`]).
    const P: &'static Modulus<L>;
    /// The group order `n` (scalars, signatures).
    const N: &'static Modulus<L>;
    /// The field's elements.
    type Fe: Field<L>;
    /// The coefficient `b` (the tests check it against the standard's).
    const B: Self::Fe;
    /// The generator's affine coordinates, not in Montgomery form.
    const GX: Limbs<L>;
    const GY: Limbs<L>;
}

/// The field operations, named as the formulas below use them.
#[inline(always)]
fn mul<C: Curve<L>, const L: usize>(a: &C::Fe, b: &C::Fe) -> C::Fe {
    a.mul(b)
}
#[inline(always)]
fn square<C: Curve<L>, const L: usize>(a: &C::Fe) -> C::Fe {
    a.square()
}
#[inline(always)]
fn add<C: Curve<L>, const L: usize>(a: &C::Fe, b: &C::Fe) -> C::Fe {
    a.add(b)
}
#[inline(always)]
fn sub<C: Curve<L>, const L: usize>(a: &C::Fe, b: &C::Fe) -> C::Fe {
    a.sub(b)
}

/// An affine point that is not the identity, coordinates in Montgomery form.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Affine<C: Curve<L>, const L: usize> {
    pub(crate) x: C::Fe,
    pub(crate) y: C::Fe,
    curve: PhantomData<C>,
}

impl<C: Curve<L>, const L: usize> Affine<C, L> {
    /// The point with Montgomery-form coordinates `x`, `y` (not checked: callers validate).
    pub(crate) fn new(x: C::Fe, y: C::Fe) -> Self {
        Affine {
            x,
            y,
            curve: PhantomData,
        }
    }

    /// The generator `G`.
    pub(crate) fn generator() -> Self {
        Self::new(C::Fe::from_limbs(&C::GX), C::Fe::from_limbs(&C::GY))
    }

    /// A public key from its big-endian affine coordinates (exactly `4·L` bytes each), validated:
    /// both coordinates below `p` and `y² = x³ − 3x + b`. The identity has no affine coordinates
    /// (and `(0, 0)` is not on the curve since `b ≠ 0`), and the curve has prime order (cofactor
    /// 1), so a point that passes is a valid key of order `n` (SEC1 §3.2.2.1).
    pub(crate) fn from_coordinates(x: &[u8], y: &[u8]) -> Option<Self> {
        let (x, y) = (from_be_bytes(x)?, from_be_bytes(y)?);
        if !less(&x, &C::P.m) || !less(&y, &C::P.m) {
            return None;
        }
        let point = Self::new(C::Fe::from_limbs(&x), C::Fe::from_limbs(&y));
        point.is_on_curve().then_some(point)
    }

    pub(crate) fn is_on_curve(&self) -> bool {
        let x2 = square::<C, L>(&self.x);
        let x3 = mul::<C, L>(&x2, &self.x);
        let three_x = add::<C, L>(&add::<C, L>(&self.x, &self.x), &self.x);
        let rhs = add::<C, L>(&sub::<C, L>(&x3, &three_x), &C::B);
        square::<C, L>(&self.y) == rhs
    }

    /// `−P = (x, −y)`.
    pub(crate) fn neg(&self) -> Self {
        Self::new(self.x, self.y.neg())
    }
}

/// A projective point (any point, including the identity).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Point<C: Curve<L>, const L: usize> {
    pub(crate) x: C::Fe,
    pub(crate) y: C::Fe,
    pub(crate) z: C::Fe,
    curve: PhantomData<C>,
}

impl<C: Curve<L>, const L: usize> From<&Affine<C, L>> for Point<C, L> {
    fn from(a: &Affine<C, L>) -> Self {
        Point::new(a.x, a.y, C::Fe::one())
    }
}

impl<C: Curve<L>, const L: usize> Point<C, L> {
    /// The point `(x : y : z)`, coordinates in Montgomery form.
    pub(crate) fn new(x: C::Fe, y: C::Fe, z: C::Fe) -> Self {
        Point {
            x,
            y,
            z,
            curve: PhantomData,
        }
    }

    #[cfg(test)]
    pub(crate) fn identity() -> Self {
        Point::new(C::Fe::zero(), C::Fe::one(), C::Fe::zero())
    }

    pub(crate) fn is_identity(&self) -> bool {
        self.z.is_zero()
    }

    /// `self + other`, complete (RCB 2016 Algorithm 4, a = −3): 12 multiplications, 2 by `b`.
    pub(crate) fn add(&self, other: &Self) -> Self {
        let (x1, y1, z1) = (&self.x, &self.y, &self.z);
        let (x2, y2, z2) = (&other.x, &other.y, &other.z);
        let t0 = mul::<C, L>(x1, x2);
        let t1 = mul::<C, L>(y1, y2);
        let t2 = mul::<C, L>(z1, z2);
        let t3 = mul::<C, L>(&add::<C, L>(x1, y1), &add::<C, L>(x2, y2));
        let t3 = sub::<C, L>(&t3, &add::<C, L>(&t0, &t1));
        let t4 = mul::<C, L>(&add::<C, L>(y1, z1), &add::<C, L>(y2, z2));
        let t4 = sub::<C, L>(&t4, &add::<C, L>(&t1, &t2));
        let x3 = mul::<C, L>(&add::<C, L>(x1, z1), &add::<C, L>(x2, z2));
        let y3 = sub::<C, L>(&x3, &add::<C, L>(&t0, &t2));
        Self::finish(t0, t1, t2, t3, t4, y3)
    }

    /// The second half of Algorithm 4, from `t0 = X1X2`, `t1 = Y1Y2`, `t2 = Z1Z2`,
    /// `t3 = X1Y2 + X2Y1`, `t4 = Y1Z2 + Y2Z1` and `y3 = X1Z2 + X2Z1`.
    fn finish(t0: C::Fe, t1: C::Fe, t2: C::Fe, t3: C::Fe, t4: C::Fe, y3: C::Fe) -> Self {
        let z3 = mul::<C, L>(&C::B, &t2);
        let x3 = sub::<C, L>(&y3, &z3);
        let x3 = add::<C, L>(&add::<C, L>(&x3, &x3), &x3);
        let z3 = sub::<C, L>(&t1, &x3);
        let x3 = add::<C, L>(&t1, &x3);
        let y3 = mul::<C, L>(&C::B, &y3);
        let t2 = add::<C, L>(&add::<C, L>(&t2, &t2), &t2);
        let y3 = sub::<C, L>(&sub::<C, L>(&y3, &t2), &t0);
        let y3 = add::<C, L>(&add::<C, L>(&y3, &y3), &y3);
        let t0 = sub::<C, L>(&add::<C, L>(&add::<C, L>(&t0, &t0), &t0), &t2);
        let t1 = mul::<C, L>(&t4, &y3);
        let t2 = mul::<C, L>(&t0, &y3);
        let y3 = add::<C, L>(&mul::<C, L>(&x3, &z3), &t2);
        let x3 = sub::<C, L>(&mul::<C, L>(&t3, &x3), &t1);
        let z3 = add::<C, L>(&mul::<C, L>(&t4, &z3), &mul::<C, L>(&t3, &t0));
        Point::new(x3, y3, z3)
    }

    /// `2·self`, complete (RCB 2016 Algorithm 6, a = −3): 8 multiplications, 3 squarings, 2 by
    /// `b`.
    pub(crate) fn double(&self) -> Self {
        let (x, y, z) = (&self.x, &self.y, &self.z);
        let t0 = square::<C, L>(x);
        let t1 = square::<C, L>(y);
        let t2 = square::<C, L>(z);
        let t3 = mul::<C, L>(x, y);
        let t3 = add::<C, L>(&t3, &t3);
        let z3 = mul::<C, L>(x, z);
        let z3 = add::<C, L>(&z3, &z3);
        let y3 = sub::<C, L>(&mul::<C, L>(&C::B, &t2), &z3);
        let y3 = add::<C, L>(&add::<C, L>(&y3, &y3), &y3);
        let x3 = sub::<C, L>(&t1, &y3);
        let y3 = add::<C, L>(&t1, &y3);
        let y3 = mul::<C, L>(&x3, &y3);
        let x3 = mul::<C, L>(&x3, &t3);
        let t2 = add::<C, L>(&add::<C, L>(&t2, &t2), &t2);
        let z3 = sub::<C, L>(&sub::<C, L>(&mul::<C, L>(&C::B, &z3), &t2), &t0);
        let z3 = add::<C, L>(&add::<C, L>(&z3, &z3), &z3);
        let t0 = sub::<C, L>(&add::<C, L>(&add::<C, L>(&t0, &t0), &t0), &t2);
        let y3 = add::<C, L>(&y3, &mul::<C, L>(&t0, &z3));
        let t0 = mul::<C, L>(y, z);
        let t0 = add::<C, L>(&t0, &t0);
        let x3 = sub::<C, L>(&x3, &mul::<C, L>(&t0, &z3));
        let z3 = mul::<C, L>(&t0, &t1);
        let z3 = add::<C, L>(&z3, &z3);
        let z3 = add::<C, L>(&z3, &z3);
        Point::new(x3, y3, z3)
    }

    /// The affine form of many points with one field inversion (Montgomery's trick); `None` for
    /// any identity among them.
    pub(crate) fn batch_to_affine(points: &[Self]) -> Option<Vec<Affine<C, L>>> {
        if points.iter().any(Self::is_identity) {
            return None;
        }
        // prefix[i] = z0·…·z(i−1); then walk back with the inverse of the full product.
        let mut prefix = Vec::with_capacity(points.len());
        let mut acc = C::Fe::one();
        for point in points {
            prefix.push(acc);
            acc = mul::<C, L>(&acc, &point.z);
        }
        let mut inv = acc.invert();
        let mut out = vec![Affine::new(C::Fe::zero(), C::Fe::zero()); points.len()];
        for ((point, before), slot) in points.iter().zip(&prefix).zip(&mut out).rev() {
            let z_inv = mul::<C, L>(&inv, before);
            inv = mul::<C, L>(&inv, &point.z);
            *slot = Affine::new(mul::<C, L>(&point.x, &z_inv), mul::<C, L>(&point.y, &z_inv));
        }
        Some(out)
    }
}

/// A point in Jacobian coordinates `(X : Y : Z)`, `x = X/Z²`, `y = Y/Z³` (the identity has
/// `Z = 0`), coordinates in Montgomery form: the accumulator of a verification's scalar
/// multiplications (`ecdsa`). Not complete formulas: [`Jacobian::add_affine`] tests for the
/// cases its formula does not cover and handles them apart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jacobian<C: Curve<L>, const L: usize> {
    pub(crate) x: C::Fe,
    pub(crate) y: C::Fe,
    pub(crate) z: C::Fe,
    curve: PhantomData<C>,
}

impl<C: Curve<L>, const L: usize> From<&Affine<C, L>> for Jacobian<C, L> {
    fn from(a: &Affine<C, L>) -> Self {
        Jacobian::new(a.x, a.y, C::Fe::one())
    }
}

impl<C: Curve<L>, const L: usize> Jacobian<C, L> {
    pub(crate) fn new(x: C::Fe, y: C::Fe, z: C::Fe) -> Self {
        Jacobian {
            x,
            y,
            z,
            curve: PhantomData,
        }
    }

    pub(crate) fn identity() -> Self {
        Self::new(C::Fe::one(), C::Fe::one(), C::Fe::zero())
    }

    pub(crate) fn is_identity(&self) -> bool {
        self.z.is_zero()
    }

    /// The same point in the homogeneous projective form of [`Point`]: `(X·Z : Y : Z³)`.
    #[cfg(test)]
    pub(crate) fn projective(&self) -> Point<C, L> {
        if self.is_identity() {
            return Point::identity();
        }
        let zz = square::<C, L>(&self.z);
        Point::new(
            mul::<C, L>(&self.x, &self.z),
            self.y,
            mul::<C, L>(&zz, &self.z),
        )
    }

    /// `2·self` ("dbl-2001-b" of the Explicit-Formulas Database, for `a = −3`, with
    /// `Z3 = 2·Y1·Z1`): 4 products, 4 squarings. The identity stays the identity (`Z3 = 0`); no
    /// point of these prime-order curves has `y = 0`.
    pub(crate) fn double(&self) -> Self {
        let (x1, y1, z1) = (&self.x, &self.y, &self.z);
        let delta = square::<C, L>(z1);
        let gamma = square::<C, L>(y1);
        let beta = mul::<C, L>(x1, &gamma);
        let alpha = mul::<C, L>(&sub::<C, L>(x1, &delta), &add::<C, L>(x1, &delta));
        let alpha = add::<C, L>(&add::<C, L>(&alpha, &alpha), &alpha);
        let beta4 = add::<C, L>(&beta, &beta);
        let beta4 = add::<C, L>(&beta4, &beta4);
        let x3 = sub::<C, L>(&sub::<C, L>(&square::<C, L>(&alpha), &beta4), &beta4);
        let z3 = mul::<C, L>(y1, z1);
        let z3 = add::<C, L>(&z3, &z3);
        let gamma2 = square::<C, L>(&gamma);
        let gamma8 = add::<C, L>(&gamma2, &gamma2);
        let gamma8 = add::<C, L>(&gamma8, &gamma8);
        let gamma8 = add::<C, L>(&gamma8, &gamma8);
        let y3 = sub::<C, L>(&mul::<C, L>(&alpha, &sub::<C, L>(&beta4, &x3)), &gamma8);
        Self::new(x3, y3, z3)
    }

    /// `self + other` for an affine `other` ("madd-2007-bl" of the Explicit-Formulas Database,
    /// with `Z3 = 2·Z1·H`): 11 products. The formula needs `self ≠ ±other` and `self` not the
    /// identity; those cases are decided here first: the identity gives `other`, `H = 0` (equal
    /// `x`) gives the doubling (equal `y`) or the identity (opposite points).
    pub(crate) fn add_affine(&self, other: &Affine<C, L>) -> Self {
        if self.is_identity() {
            return Self::from(other);
        }
        let (x1, y1, z1) = (&self.x, &self.y, &self.z);
        let z1z1 = square::<C, L>(z1);
        let u2 = mul::<C, L>(&other.x, &z1z1);
        let s2 = mul::<C, L>(&other.y, &mul::<C, L>(z1, &z1z1));
        let h = sub::<C, L>(&u2, x1);
        let r = sub::<C, L>(&s2, y1);
        if h.is_zero() {
            return if r.is_zero() {
                Self::from(other).double()
            } else {
                Self::identity()
            };
        }
        let r = add::<C, L>(&r, &r);
        let hh = square::<C, L>(&h);
        let i = add::<C, L>(&hh, &hh);
        let i = add::<C, L>(&i, &i);
        let j = mul::<C, L>(&h, &i);
        let v = mul::<C, L>(x1, &i);
        let x3 = sub::<C, L>(&sub::<C, L>(&square::<C, L>(&r), &j), &add::<C, L>(&v, &v));
        let y1j = mul::<C, L>(y1, &j);
        let y3 = sub::<C, L>(
            &mul::<C, L>(&r, &sub::<C, L>(&v, &x3)),
            &add::<C, L>(&y1j, &y1j),
        );
        let z3 = mul::<C, L>(z1, &h);
        let z3 = add::<C, L>(&z3, &z3);
        Self::new(x3, y3, z3)
    }
}
