//! One inversion in BN254's Fq and Fq2: arkworks' binary extended Euclid against our safegcd
//! (`backends::prove::inverse`), the inversion every batch of affine additions in the MSM
//! shares. Random non-zero values, a fresh one each iteration.
//!
//! `cargo bench -p rigworker-benches --bench field_inverse -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use ark_bn254::{Fq, Fq2};
use ark_ff::{Field, UniformRand};
use backends::prove::inverse::{fq_inverse, fq2_inverse};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

/// Inverts `xs` round-robin with `invert`.
fn cycle<T: Copy, R>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    xs: &[T],
    invert: impl Fn(&T) -> R,
) {
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % xs.len();
            invert(&black_box(xs[i]))
        })
    });
}

fn inverse(c: &mut Criterion) {
    let mut rng = ark_std::test_rng();
    let xs: Vec<Fq> = (0..1024).map(|_| Fq::rand(&mut rng)).collect();
    let ys: Vec<Fq2> = (0..1024).map(|_| Fq2::rand(&mut rng)).collect();
    let mut g = c.benchmark_group("inverse");
    cycle(&mut g, "fq/arkworks", &xs, |x| x.inverse());
    cycle(&mut g, "fq/safegcd", &xs, fq_inverse);
    cycle(&mut g, "fq2/arkworks", &ys, |y| y.inverse());
    cycle(&mut g, "fq2/safegcd", &ys, fq2_inverse);
    g.finish();
}

criterion_group!(benches, inverse);
criterion_main!(benches);
