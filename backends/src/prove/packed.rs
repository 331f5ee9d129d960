//! Affine points in the byte layout a snarkjs zkey stores them in, checked once, so that a
//! proving key's queries can be prepared straight from the mapped file: no parsed copy of every
//! point before the backend's own copy (that copy was 72 bytes a G1 point, half the peak memory
//! of a single proof at 2^16).
//!
//! Layout (ffjavascript's, which is also arkworks' in memory): each base-field element is the
//! little-endian 64-bit limbs of its Montgomery form (R = 2^256); a G1 point is x‖y (64 bytes),
//! a G2 point x.c0‖x.c1‖y.c0‖y.c1 (128 bytes); all zeros is the point at infinity.

use std::marker::PhantomData;

use ark_bn254::{Fq, Fq2};
use ark_ec::short_weierstrass::{Affine, SWCurveConfig};
use ark_ff::{BigInt, PrimeField, Zero};
use rayon::prelude::*;

use super::field::{BatchField, adx_available};

/// A base field whose elements can be read from the packed layout.
pub trait PackedCoordinate: Sized + Copy + Send + Sync {
    /// Bytes of one element.
    const BYTES: usize;
    /// The element stored in `b` (exactly [`Self::BYTES`] long); None when a limb group is not
    /// below the modulus (not a canonical Montgomery form).
    fn read(b: &[u8]) -> Option<Self>;
    /// y² = x³ + b with the `mulx` multiplication (BMI2/ADX, checked by the caller through the
    /// arithmetic path in use).
    fn on_curve_mulx(x: &Self, y: &Self, b: &Self) -> bool;
}

/// y² = x³ + b through [`BatchField`]'s `mulx` multiplication, or arkworks' where this CPU lacks
/// the instructions.
fn on_curve_mulx<F: BatchField>(x: &F, y: &F, b: &F) -> bool {
    if adx_available() {
        y.square_with::<true>() == x.square_with::<true>().mul_with::<true>(x).add_fast(b)
    } else {
        y.square() == x.square() * x + b
    }
}

/// The four little-endian 64-bit limbs in the first 32 bytes of `b`.
pub fn limbs_le(b: &[u8]) -> [u64; 4] {
    let mut l = [0u64; 4];
    for (i, w) in l.iter_mut().enumerate() {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[8 * i..8 * i + 8]);
        *w = u64::from_le_bytes(x);
    }
    l
}

/// A canonical field element's limbs (value < modulus) from 32 little-endian bytes.
#[inline]
pub fn canonical<F: PrimeField<BigInt = BigInt<4>>>(b: &[u8]) -> Option<BigInt<4>> {
    let v = BigInt::new(limbs_le(b));
    (v < F::MODULUS).then_some(v)
}

impl PackedCoordinate for Fq {
    const BYTES: usize = 32;
    #[inline]
    fn read(b: &[u8]) -> Option<Fq> {
        canonical::<Fq>(b).map(Fq::new_unchecked)
    }
    fn on_curve_mulx(x: &Self, y: &Self, b: &Self) -> bool {
        on_curve_mulx(x, y, b)
    }
}

impl PackedCoordinate for Fq2 {
    const BYTES: usize = 64;
    #[inline]
    fn read(b: &[u8]) -> Option<Fq2> {
        Some(Fq2::new(Fq::read(&b[..32])?, Fq::read(&b[32..64])?))
    }
    fn on_curve_mulx(x: &Self, y: &Self, b: &Self) -> bool {
        on_curve_mulx(x, y, b)
    }
}

/// Why a packed point was refused: its index and what is wrong with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackedError {
    /// A coordinate is not below the field modulus.
    NotCanonical(usize),
    /// The point is not on the curve.
    NotOnCurve(usize),
    /// The bytes are not a whole number of points.
    Length(usize),
}

/// What one point's bytes hold.
enum Stored<F> {
    /// All zeros.
    Infinity,
    Point(F, F),
    /// A coordinate is not below the modulus.
    NotCanonical,
}

/// Points of curve `P` in the packed layout, every one checked (canonical coordinates, on the
/// curve, or all zeros): a backend reads them without further checks.
pub struct PackedPoints<'a, P: SWCurveConfig> {
    bytes: &'a [u8],
    _curve: PhantomData<P>,
}

// By hand: a derive would ask the curve marker type for Clone and Copy too.
impl<P: SWCurveConfig> Clone for PackedPoints<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P: SWCurveConfig> Copy for PackedPoints<'_, P> {}

impl<'a, P: SWCurveConfig> PackedPoints<'a, P>
where
    P::BaseField: PackedCoordinate,
{
    /// Bytes of one point.
    pub const POINT_BYTES: usize = 2 * <P::BaseField as PackedCoordinate>::BYTES;

    /// Checks every point of `bytes` (in parallel) and wraps them. The subgroup is not checked:
    /// that costs a scalar multiplication per point, and a proof from a key with points outside
    /// it fails the prover's self-verification.
    pub fn new(bytes: &'a [u8]) -> Result<Self, PackedError> {
        let size = Self::POINT_BYTES;
        if !bytes.len().is_multiple_of(size) {
            return Err(PackedError::Length(bytes.len()));
        }
        // y² = x³ + b on the prover's multiplication path: with arkworks' arithmetic the check
        // was most of a streamed proof's reading (20 of 340 ms on the IFMA path at 2^16); with
        // `mulx` the whole load phase took 18 % less.
        let fast = P::COEFF_A.is_zero() && super::arith::current().uses_adx();
        let on_curve = |x: P::BaseField, y: P::BaseField| {
            if fast {
                P::BaseField::on_curve_mulx(&x, &y, &P::COEFF_B)
            } else {
                Affine::<P>::new_unchecked(x, y).is_on_curve()
            }
        };
        bytes
            .par_chunks_exact(size)
            .enumerate()
            .try_for_each(|(i, b)| match Self::decode(b) {
                Stored::NotCanonical => Err(PackedError::NotCanonical(i)),
                Stored::Infinity => Ok(()),
                Stored::Point(x, y) if on_curve(x, y) => Ok(()),
                Stored::Point(..) => Err(PackedError::NotOnCurve(i)),
            })?;
        Ok(PackedPoints {
            bytes,
            _curve: PhantomData,
        })
    }

    /// Number of points, those at infinity included.
    pub fn len(&self) -> usize {
        self.bytes.len() / Self::POINT_BYTES
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn raw(&self, i: usize) -> &'a [u8] {
        &self.bytes[i * Self::POINT_BYTES..(i + 1) * Self::POINT_BYTES]
    }

    /// Whether point `i` is the point at infinity.
    pub fn is_infinity(&self, i: usize) -> bool {
        self.raw(i).iter().all(|&x| x == 0)
    }

    /// What one point's bytes hold.
    #[inline]
    fn decode(b: &[u8]) -> Stored<P::BaseField> {
        if b.iter().all(|&x| x == 0) {
            return Stored::Infinity;
        }
        let h = b.len() / 2;
        match (P::BaseField::read(&b[..h]), P::BaseField::read(&b[h..])) {
            (Some(x), Some(y)) => Stored::Point(x, y),
            _ => Stored::NotCanonical,
        }
    }

    /// The coordinates of point `i`, None for the point at infinity.
    #[inline]
    pub fn xy(&self, i: usize) -> Option<(P::BaseField, P::BaseField)> {
        // Checked when the points were wrapped. The bytes are read again here, from the
        // mapping: a file changed underneath in between could make a coordinate unreadable; it
        // then reads as a missing base, a wrong sum that the prover's self-verification rejects.
        match Self::decode(self.raw(i)) {
            Stored::Point(x, y) => Some((x, y)),
            Stored::Infinity | Stored::NotCanonical => None,
        }
    }

    /// Point `i` as arkworks' affine point.
    pub fn point(&self, i: usize) -> Affine<P> {
        match self.xy(i) {
            Some((x, y)) => Affine::new_unchecked(x, y),
            None => Affine::identity(),
        }
    }

    /// Every point as arkworks' affine points (what a backend without its own reader gets).
    pub fn to_affine(&self) -> Vec<Affine<P>> {
        (0..self.len())
            .into_par_iter()
            .map(|i| self.point(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_bn254::{G1Affine, G2Affine, g1, g2};
    use ark_ec::{AffineRepr, CurveGroup};
    use ark_ff::{One, UniformRand};

    fn pack_g1(points: &[G1Affine]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in points {
            if p.infinity {
                out.extend_from_slice(&[0u8; 64]);
                continue;
            }
            for c in [p.x, p.y] {
                for l in c.0.0 {
                    out.extend_from_slice(&l.to_le_bytes());
                }
            }
        }
        out
    }

    #[test]
    fn packed_points_read_back_and_bad_ones_are_named() {
        let mut rng = ark_std::test_rng();
        let mut pts: Vec<G1Affine> = (0..40)
            .map(|_| (G1Affine::generator() * ark_bn254::Fr::rand(&mut rng)).into_affine())
            .collect();
        pts[7] = G1Affine::identity();
        let bytes = pack_g1(&pts);
        let packed = PackedPoints::<g1::Config>::new(&bytes).unwrap();
        assert_eq!(packed.len(), 40);
        assert_eq!(packed.to_affine(), pts);
        assert!(packed.is_infinity(7) && !packed.is_infinity(8));

        let mut off = bytes.clone();
        off[11 * 64 + 40] ^= 1;
        assert_eq!(
            PackedPoints::<g1::Config>::new(&off).err(),
            Some(PackedError::NotOnCurve(11))
        );
        let mut big = bytes.clone();
        big[3 * 64 + 24..3 * 64 + 32].copy_from_slice(&[0xff; 8]);
        assert_eq!(
            PackedPoints::<g1::Config>::new(&big).err(),
            Some(PackedError::NotCanonical(3))
        );
        assert_eq!(
            PackedPoints::<g1::Config>::new(&bytes[..100]).err(),
            Some(PackedError::Length(100))
        );
    }

    /// The CPU backend prepares packed points (read in place) into the same MSM as the parsed
    /// points: every path, points at infinity spread through, with and without tables.
    #[test]
    fn packed_and_parsed_bases_give_the_same_msm() {
        use crate::prove::{CpuProveBackend, Precompute, ProveBackend, ScalarRepr};
        let mut rng = ark_std::test_rng();
        let n = 3000;
        let pts: Vec<G1Affine> = (0..n)
            .map(|i| {
                if i % 7 == 3 {
                    G1Affine::identity()
                } else {
                    (G1Affine::generator() * ark_bn254::Fr::rand(&mut rng)).into_affine()
                }
            })
            .collect();
        let scalars: Vec<ScalarRepr> = (0..n)
            .map(|i| match i % 5 {
                0 => ScalarRepr::from(1u64),
                1 => ScalarRepr::from(0u64),
                _ => ark_bn254::Fr::rand(&mut rng).into_bigint(),
            })
            .collect();
        let bytes = pack_g1(&pts);
        let cpu = CpuProveBackend::new();
        for pre in [
            Precompute::None,
            Precompute::Endomorphism,
            Precompute::Tables,
        ] {
            let packed = PackedPoints::<g1::Config>::new(&bytes).unwrap();
            let a = cpu
                .prepare_g1_packed(packed, pre)
                .unwrap()
                .msm(&scalars)
                .unwrap();
            let b = cpu.prepare_g1(&pts, pre).unwrap().msm(&scalars).unwrap();
            assert_eq!(a, b, "{pre:?}");
        }
    }

    #[test]
    fn packed_g2_points_read_back() {
        let mut rng = ark_std::test_rng();
        let pts: Vec<G2Affine> = (0..9)
            .map(|i| {
                if i == 4 {
                    G2Affine::identity()
                } else {
                    (G2Affine::generator() * ark_bn254::Fr::rand(&mut rng)).into_affine()
                }
            })
            .collect();
        let mut bytes = Vec::new();
        for p in &pts {
            let (x, y) = if p.infinity {
                (Fq2::default(), Fq2::default())
            } else {
                (p.x, p.y)
            };
            for c in [x.c0, x.c1, y.c0, y.c1] {
                for l in c.0.0 {
                    bytes.extend_from_slice(&l.to_le_bytes());
                }
            }
        }
        let packed = PackedPoints::<g2::Config>::new(&bytes).unwrap();
        assert_eq!(packed.to_affine(), pts);
        // (1, 1) is on neither curve.
        let one = Fq2::one();
        let mut off = bytes.clone();
        for (k, c) in [one.c0, one.c1, one.c0, one.c1].iter().enumerate() {
            for (j, l) in c.0.0.iter().enumerate() {
                off[2 * 128 + 32 * k + 8 * j..][..8].copy_from_slice(&l.to_le_bytes());
            }
        }
        assert_eq!(
            PackedPoints::<g2::Config>::new(&off).err(),
            Some(PackedError::NotOnCurve(2))
        );
    }

    /// The `mulx` curve check agrees with arkworks' on points on and off both curves.
    #[test]
    fn the_mulx_curve_check_matches_arkworks() {
        let mut rng = ark_std::test_rng();
        for _ in 0..50 {
            let p = (G1Affine::generator() * ark_bn254::Fr::rand(&mut rng)).into_affine();
            let q = (G2Affine::generator() * ark_bn254::Fr::rand(&mut rng)).into_affine();
            let (x1, x2) = (Fq::rand(&mut rng), Fq2::rand(&mut rng));
            for (x, y) in [(p.x, p.y), (p.x, -p.y), (x1, p.y), (p.x, x1)] {
                let want = G1Affine::new_unchecked(x, y).is_on_curve();
                assert_eq!(Fq::on_curve_mulx(&x, &y, &g1::Config::COEFF_B), want);
            }
            for (x, y) in [(q.x, q.y), (q.x, -q.y), (x2, q.y), (q.x, x2)] {
                let want = G2Affine::new_unchecked(x, y).is_on_curve();
                assert_eq!(Fq2::on_curve_mulx(&x, &y, &g2::Config::COEFF_B), want);
            }
        }
    }
}
