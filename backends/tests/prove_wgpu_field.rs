//! The WGSL kernels of the wgpu proving backend (`backends::prove::gpu::wgpu`) against
//! arkworks, used as the oracle: the field multiplications in Fq, Fr and Fq2 (`test_*_mul`) on
//! random and edge values, and, kernel by kernel as `docs/gpu-proving.md` chains them, a small
//! G1 and G2 MSM and the NTT kernels, driven by hand here so that they are checked without the
//! generic scheduler. Every WGSL module is also validated with naga (no device needed).
//!
//! Runs on any Vulkan device, lavapipe (Mesa's CPU driver) included. Without an adapter each
//! device test prints "SKIPPED (wgpu): reason" and passes, unless `RIGWORKER_REQUIRE_BACKENDS`
//! names `wgpu` (as CI does), when it fails. An adapter that exists but cannot be opened (a
//! kernel that does not compile, say) always fails.
#![cfg(all(feature = "wgpu", feature = "prove"))]

use std::sync::OnceLock;
use std::time::Instant;

use ark_bn254::{Fq, Fq2, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
use ark_ff::{BigInt, Field, One, PrimeField, UniformRand, Zero};
use ark_std::rand::{RngCore, SeedableRng, rngs::StdRng};
use backends::HashBackend;
use backends::prove::Fr;
use backends::prove::gpu::device::{Curve, GpuDevice, Kernel};
use backends::prove::gpu::wgpu::{WgpuBuffer, WgpuProveDevice};

// The same rule as `hw-tests` (which `backends` cannot depend on).
fn required(backend: &str) -> bool {
    std::env::var("RIGWORKER_REQUIRE_BACKENDS")
        .map(|v| v.split(',').any(|b| b.trim().eq_ignore_ascii_case(backend)))
        .unwrap_or(false)
}

fn skip_or_fail(backend: &str, reason: &str) {
    if required(backend) {
        panic!("{backend} is required by RIGWORKER_REQUIRE_BACKENDS but unavailable: {reason}");
    }
    println!("SKIPPED (wgpu): {reason}");
}

/// One device for the whole file: building the 20 pipelines costs lavapipe seconds.
fn device() -> Option<&'static WgpuProveDevice> {
    static DEVICE: OnceLock<Result<WgpuProveDevice, String>> = OnceLock::new();
    let d = DEVICE.get_or_init(|| {
        // No adapter at all is a reason to skip; failing to open one that exists is a bug.
        backends::wgpu::WgpuBackend::new()
            .devices()
            .map_err(|e| e.reason)?;
        let t0 = Instant::now();
        let d = backends::prove::gpu::wgpu::open(0)
            .unwrap_or_else(|e| panic!("the wgpu adapter exists but cannot be opened: {e}"));
        println!(
            "opened {} ({}) and built every kernel in {:.2?}",
            d.info().name,
            d.info().detail,
            t0.elapsed()
        );
        Ok(d)
    });
    match d {
        Ok(d) => Some(d),
        Err(reason) => {
            skip_or_fail("wgpu", reason);
            None
        }
    }
}

// ---- host values as device words ----

fn limbs_to_words(l: &[u64; 4]) -> [u32; 8] {
    std::array::from_fn(|i| (l[i / 2] >> (32 * (i % 2))) as u32)
}

fn words_to_limbs(w: &[u32]) -> [u64; 4] {
    std::array::from_fn(|i| u64::from(w[2 * i]) | (u64::from(w[2 * i + 1]) << 32))
}

/// Montgomery form, as arkworks stores it.
fn fq_words(x: &Fq) -> [u32; 8] {
    limbs_to_words(&x.0.0)
}

fn fr_words(x: &Fr) -> [u32; 8] {
    limbs_to_words(&x.0.0)
}

fn fq_from(w: &[u32]) -> Fq {
    Fq::new_unchecked(BigInt(words_to_limbs(w)))
}

fn fr_from(w: &[u32]) -> Fr {
    Fr::new_unchecked(BigInt(words_to_limbs(w)))
}

fn fq2_words(x: &Fq2) -> Vec<u32> {
    [fq_words(&x.c0), fq_words(&x.c1)].concat()
}

fn fq2_from(w: &[u32]) -> Fq2 {
    Fq2::new(fq_from(&w[..8]), fq_from(&w[8..16]))
}

fn upload(d: &WgpuProveDevice, data: &[u32]) -> WgpuBuffer {
    let b = d.alloc(data.len()).expect("alloc");
    d.write(&b, data).expect("write");
    b
}

fn download(d: &WgpuProveDevice, b: &WgpuBuffer, words: usize) -> Vec<u32> {
    let mut out = vec![0u32; words];
    d.read(b, &mut out).expect("read");
    out
}

/// Runs a `test_*_mul` kernel over the pairs and returns the products' words.
fn device_mul(d: &WgpuProveDevice, kernel: Kernel, a: &[u32], b: &[u32], width: usize) -> Vec<u32> {
    let n = a.len() / width;
    let (ba, bb) = (upload(d, a), upload(d, b));
    let out = d.alloc(a.len()).expect("alloc");
    let t0 = Instant::now();
    d.launch(kernel, n as u32, &[&ba, &bb, &out], &[n as u32])
        .expect("launch");
    let r = download(d, &out, a.len());
    println!("{}: {n} products in {:.2?}", kernel.name(), t0.elapsed());
    r
}

/// Every pair of edge values, then `random` random pairs.
fn pairs<F: Copy>(edges: &[F], random: impl Fn() -> F, count: usize) -> Vec<(F, F)> {
    let mut v: Vec<(F, F)> = edges
        .iter()
        .flat_map(|&a| edges.iter().map(move |&b| (a, b)))
        .collect();
    v.extend((0..count).map(|_| (random(), random())));
    v
}

/// Edge values of a prime field: 0, 1, 2, -1 (p - 1), -2, (p - 1)/2 and the raw Montgomery
/// limb patterns 1 and p - 1 (the largest words a reduced element has).
fn prime_edges<F: PrimeField<BigInt = BigInt<4>>>(from_mont: impl Fn(BigInt<4>) -> F) -> Vec<F> {
    let mut pm1 = F::MODULUS;
    pm1.0[0] -= 1; // both moduli are odd
    let half = F::from_bigint(F::MODULUS_MINUS_ONE_DIV_TWO).expect("(p - 1)/2 < p");
    vec![
        F::zero(),
        F::one(),
        F::from(2u64),
        -F::one(),
        -F::from(2u64),
        half,
        from_mont(BigInt([1, 0, 0, 0])),
        from_mont(pm1),
    ]
}

#[test]
fn every_kernel_module_validates() {
    for kernel in Kernel::ALL {
        let name = kernel.name();
        let src = kernels::wgsl::bn254_kernel(name).unwrap_or_else(|| panic!("no WGSL for {name}"));
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&src)));
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        drop(info);
        let entry = module
            .entry_points
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name}: no entry point of that name"));
        assert_eq!(
            entry.workgroup_size,
            [kernels::wgsl::BN254_WORKGROUP_SIZE, 1, 1],
            "{name}"
        );
        // Bindings 0 .. buffers are storage, the next one the parameters, nothing else.
        let mut bindings: Vec<(u32, bool)> = module
            .global_variables
            .iter()
            .filter_map(|(_, g)| {
                let b = g.binding.as_ref()?;
                assert_eq!(b.group, 0, "{name}");
                Some((b.binding, matches!(g.space, naga::AddressSpace::Uniform)))
            })
            .collect();
        bindings.sort_unstable();
        let expect: Vec<(u32, bool)> = (0..=kernel.buffers() as u32)
            .map(|i| (i, i == kernel.buffers() as u32))
            .collect();
        assert_eq!(bindings, expect, "{name}");
    }
    assert!(kernels::wgsl::bn254_kernel("no_such_kernel").is_none());
}

#[test]
fn fq_mul_matches_arkworks() {
    let Some(d) = device() else { return };
    let rng = std::cell::RefCell::new(StdRng::seed_from_u64(11));
    let v = pairs(
        &prime_edges(Fq::new_unchecked),
        || Fq::rand(&mut *rng.borrow_mut()),
        2000,
    );
    let a: Vec<u32> = v.iter().flat_map(|(a, _)| fq_words(a)).collect();
    let b: Vec<u32> = v.iter().flat_map(|(_, b)| fq_words(b)).collect();
    let got = device_mul(d, Kernel::TestFqMul, &a, &b, 8);
    for (i, (x, y)) in v.iter().enumerate() {
        assert_eq!(
            &got[8 * i..8 * i + 8],
            &fq_words(&(*x * y)),
            "#{i}: {x} * {y}"
        );
    }
}

#[test]
fn fr_mul_matches_arkworks() {
    let Some(d) = device() else { return };
    let rng = std::cell::RefCell::new(StdRng::seed_from_u64(12));
    let v = pairs(
        &prime_edges(Fr::new_unchecked),
        || Fr::rand(&mut *rng.borrow_mut()),
        2000,
    );
    let a: Vec<u32> = v.iter().flat_map(|(a, _)| fr_words(a)).collect();
    let b: Vec<u32> = v.iter().flat_map(|(_, b)| fr_words(b)).collect();
    let got = device_mul(d, Kernel::TestFrMul, &a, &b, 8);
    for (i, (x, y)) in v.iter().enumerate() {
        assert_eq!(
            &got[8 * i..8 * i + 8],
            &fr_words(&(*x * y)),
            "#{i}: {x} * {y}"
        );
    }
}

#[test]
fn fq2_mul_matches_arkworks() {
    let Some(d) = device() else { return };
    let rng = std::cell::RefCell::new(StdRng::seed_from_u64(13));
    let base = prime_edges(Fq::new_unchecked);
    let mut edges = Vec::new();
    for &c0 in &base[..4] {
        for &c1 in &base[..4] {
            edges.push(Fq2::new(c0, c1));
        }
    }
    edges.push(Fq2::new(base[7], base[7]));
    let v = pairs(&edges, || Fq2::rand(&mut *rng.borrow_mut()), 1000);
    let a: Vec<u32> = v.iter().flat_map(|(a, _)| fq2_words(a)).collect();
    let b: Vec<u32> = v.iter().flat_map(|(_, b)| fq2_words(b)).collect();
    let got = device_mul(d, Kernel::TestFq2Mul, &a, &b, 16);
    for (i, (x, y)) in v.iter().enumerate() {
        assert_eq!(
            fq2_from(&got[16 * i..16 * i + 16]),
            *x * y,
            "#{i}: {x} * {y}"
        );
    }
    // The words themselves too (fully reduced, as arkworks keeps them).
    assert_eq!(
        got,
        v.iter()
            .flat_map(|(x, y)| fq2_words(&(*x * y)))
            .collect::<Vec<_>>()
    );
}

/// What [`device_msm`] read back: the window sums and the bucket sums (XYZZ words).
struct MsmRun {
    windows: usize,
    c: u32,
    window_sums: Vec<u32>,
    bucket_sums: Vec<u32>,
}

/// Runs the whole MSM chain of `docs/gpu-proving.md` for `curve` (count, scan, scatter,
/// accumulation level by level, segment reduction, window sums), checking the counting sort
/// on the way.
fn device_msm(
    d: &WgpuProveDevice,
    curve: Curve,
    bases: &[u32],
    scalars: &[[u32; 8]],
    c: u32,
    chunk: u32,
    segments: u32,
) -> MsmRun {
    let n = scalars.len();
    let aw = curve.affine_words();
    let xw = curve.xyzz_words();
    let windows = 254 / c + 1;
    let buckets = 1u32 << (c - 1);
    let total = windows * buckets;
    // Bases at infinity are marked in `skip`.
    let mut skip = vec![0u32; n.div_ceil(32).max(1)];
    for i in 0..n {
        if bases[aw * i..aw * (i + 1)].iter().all(|&w| w == 0) {
            skip[i / 32] |= 1 << (i % 32);
        }
    }
    let t0 = Instant::now();
    // Two scalars of junk first: the kernels read from `first` on (the witness's tail for C).
    let first = 2u32;
    let mut words = vec![u32::MAX; 8 * first as usize];
    words.extend(scalars.concat());
    let scalars_b = upload(d, &words);
    let bases_b = upload(d, bases);
    let skip_b = upload(d, &skip);
    let counts = d.alloc(total as usize).unwrap();
    d.zero(&counts, total as usize).unwrap();
    let sp = [n as u32, c, windows, buckets, first];
    d.launch(
        Kernel::MsmCount,
        n as u32,
        &[&scalars_b, &skip_b, &counts],
        &sp,
    )
    .unwrap();
    let raw_counts = download(d, &counts, total as usize);
    let blocks = total.div_ceil(256);
    let block_sums = d.alloc(blocks as usize).unwrap();
    let total_out = d.alloc(1).unwrap();
    let cursor = d.alloc(total as usize).unwrap();
    d.launch(
        Kernel::MsmScanBlocks,
        blocks,
        &[&counts, &block_sums],
        &[total],
    )
    .unwrap();
    d.launch(Kernel::MsmScanTop, 1, &[&block_sums, &total_out], &[blocks])
        .unwrap();
    d.launch(
        Kernel::MsmScanAdd,
        total,
        &[&counts, &block_sums, &cursor],
        &[total],
    )
    .unwrap();
    let m = download(d, &total_out, 1)[0] as usize;
    assert_eq!(m, raw_counts.iter().map(|&x| x as usize).sum::<usize>());
    let starts = download(d, &counts, total as usize);
    let mut acc = 0u32;
    for (g, (&start, &count)) in starts.iter().zip(&raw_counts).enumerate() {
        assert_eq!(start, acc, "bucket start {g}");
        acc += count;
    }
    let keys = d.alloc(m).unwrap();
    let refs = d.alloc(m).unwrap();
    d.launch(
        Kernel::MsmScatter,
        n as u32,
        &[&scalars_b, &skip_b, &cursor, &keys, &refs],
        &sp,
    )
    .unwrap();
    let k = download(d, &keys, m);
    assert!(k.windows(2).all(|p| p[0] <= p[1]), "keys are sorted");
    for (g, &count) in raw_counts.iter().enumerate() {
        let run = k.iter().filter(|&&x| x as usize == g).count();
        assert_eq!(run, count as usize, "entries of bucket {g}");
    }

    // Bucket accumulation, level by level.
    let bucket_sums = d.alloc(total as usize * xw).unwrap();
    d.zero(&bucket_sums, total as usize * xw).unwrap();
    let mut len = m as u32;
    let mut level: Option<(WgpuBuffer, WgpuBuffer)> = None;
    while len > 0 {
        let threads = len.div_ceil(chunk);
        let last = u32::from(threads == 1);
        let out_keys = d.alloc(2 * threads as usize).unwrap();
        let out_points = d.alloc(2 * threads as usize * xw).unwrap();
        let params = [len, chunk, last];
        match &level {
            None => d.launch(
                Kernel::AccBases(curve),
                threads,
                &[&bases_b, &keys, &refs, &bucket_sums, &out_keys, &out_points],
                &params,
            ),
            Some((ik, ip)) => d.launch(
                Kernel::AccPartials(curve),
                threads,
                &[ik, ip, &bucket_sums, &out_keys, &out_points],
                &params,
            ),
        }
        .unwrap();
        if last == 1 {
            break;
        }
        level = Some((out_keys, out_points));
        // Each level halves the list at least when K >= 4 (K = 3 stays at 4 entries for ever).
        assert!(
            2 * threads < len,
            "K = {chunk} does not shrink a list of {len}"
        );
        len = 2 * threads;
    }

    let segs = segments.min(buckets);
    let seg_sums = d.alloc((windows * segs) as usize * xw).unwrap();
    let win_sums = d.alloc((windows * segs) as usize * xw).unwrap();
    d.launch(
        Kernel::ReduceSegments(curve),
        windows * segs,
        &[&bucket_sums, &seg_sums],
        &[buckets, segs, windows],
    )
    .unwrap();
    // The window sums as a tree of levels adding `fold` partial sums each (ragged ends
    // included: 3 does not divide the segment counts below).
    let fold = 3;
    let (mut from, mut to) = (&seg_sums, &win_sums);
    let mut per = segs;
    while per > 1 {
        let outs = per.div_ceil(fold);
        d.launch(
            Kernel::WindowSum(curve),
            windows * outs,
            &[from, to],
            &[per, windows, fold],
        )
        .unwrap();
        per = outs;
        std::mem::swap(&mut from, &mut to);
    }
    let window_sums = download(d, from, windows as usize * xw);
    let bucket_sums_host = download(d, &bucket_sums, total as usize * xw);
    println!(
        "{curve:?} MSM of {n} points (c = {c}, {m} entries, K = {chunk}, S = {segs}) in {:.2?}",
        t0.elapsed()
    );
    MsmRun {
        windows: windows as usize,
        c,
        window_sums,
        bucket_sums: bucket_sums_host,
    }
}

fn g1_from_xyzz(w: &[u32]) -> G1Projective {
    let (x, y, zz, zzz) = (
        fq_from(&w[..8]),
        fq_from(&w[8..16]),
        fq_from(&w[16..24]),
        fq_from(&w[24..32]),
    );
    if zz.is_zero() {
        return G1Projective::zero();
    }
    let p = G1Affine::new_unchecked(x / zz, y / zzz);
    assert!(p.is_on_curve(), "an XYZZ result off the curve");
    p.into_group()
}

fn g2_from_xyzz(w: &[u32]) -> G2Projective {
    let f = |i: usize| fq2_from(&w[16 * i..16 * i + 16]);
    let (x, y, zz, zzz) = (f(0), f(1), f(2), f(3));
    if zz.is_zero() {
        return G2Projective::zero();
    }
    let p = G2Affine::new_unchecked(x / zz, y / zzz);
    assert!(p.is_on_curve(), "an XYZZ result off the curve");
    p.into_group()
}

/// The signed digits of a canonical scalar, as the spec defines them (host reference).
fn host_digits(s: &[u32; 8], c: u32) -> Vec<i64> {
    let mut carry = 0i64;
    (0..254 / c + 1)
        .map(|w| {
            let bits = (0..c)
                .map(|b| w * c + b)
                .filter(|&bit| bit < 256 && (s[(bit / 32) as usize] >> (bit % 32)) & 1 == 1)
                .fold(0i64, |acc, bit| acc | 1 << (bit - w * c));
            let v = bits + carry;
            if v > 1 << (c - 1) {
                carry = 1;
                v - (1 << c)
            } else {
                carry = 0;
                v
            }
        })
        .collect()
}

/// Every bucket sum of `run` against the host's (bases at infinity make no entry).
fn check_buckets<G: PrimeGroup, A: Copy + AffineRepr<Group = G>>(
    run: &MsmRun,
    bases: &[A],
    scalars: &[[u32; 8]],
    point: impl Fn(&[u32]) -> G,
) {
    let buckets = 1usize << (run.c - 1);
    let xw = run.window_sums.len() / run.windows;
    let mut expect = vec![G::zero(); run.windows * buckets];
    for (b, s) in bases.iter().zip(scalars) {
        if b.is_zero() {
            continue;
        }
        for (w, d) in host_digits(s, run.c).into_iter().enumerate() {
            match d {
                0 => {}
                d if d > 0 => expect[w * buckets + d as usize - 1] += b.into_group(),
                d => expect[w * buckets + (-d) as usize - 1] -= b.into_group(),
            }
        }
    }
    for (g, e) in expect.iter().enumerate() {
        assert_eq!(
            point(&run.bucket_sums[xw * g..xw * (g + 1)]),
            *e,
            "bucket {g} (c = {})",
            run.c
        );
    }
}

/// Σ 2^(c·w) · window_sums\[w\] (Horner from the top window).
fn combine<G: PrimeGroup>(run: &MsmRun, point: impl Fn(&[u32]) -> G) -> G {
    let xw = run.window_sums.len() / run.windows;
    let mut acc = G::zero();
    for w in (0..run.windows).rev() {
        for _ in 0..run.c {
            acc.double_in_place();
        }
        acc += point(&run.window_sums[xw * w..xw * (w + 1)]);
    }
    acc
}

/// Scalars with every awkward case mixed in (zero, one, r - 1, small, repeated), canonical.
fn awkward_scalars(rng: &mut StdRng, n: usize) -> Vec<Fr> {
    let mut s: Vec<Fr> = (0..n).map(|_| Fr::rand(rng)).collect();
    for i in 0..n {
        match i % 9 {
            1 => s[i] = Fr::zero(),
            2 => s[i] = Fr::one(),
            3 => s[i] = -Fr::one(),
            4 => s[i] = Fr::from(u64::from(rng.next_u32() & 0xff)),
            5 => s[i] = s[0],
            _ => {}
        }
    }
    s
}

fn canonical(s: &[Fr]) -> Vec<[u32; 8]> {
    s.iter()
        .map(|x| limbs_to_words(&x.into_bigint().0))
        .collect()
}

/// Index i's role: repeated base (doubling in a bucket), opposite base (cancellation), point
/// at infinity.
fn awkward_base<P: Copy + std::ops::Neg<Output = P>>(i: usize, bases: &[P], zero: P) -> P {
    match i % 7 {
        1 => bases[0],
        2 => -bases[0],
        3 => zero,
        _ => bases[i],
    }
}

#[test]
fn g1_msm_kernels_match_arkworks() {
    let Some(d) = device() else { return };
    let mut rng = StdRng::seed_from_u64(21);
    let n = 300;
    let g = G1Projective::generator();
    let pts: Vec<G1Affine> =
        G1Projective::normalize_batch(&(0..n).map(|_| g * Fr::rand(&mut rng)).collect::<Vec<_>>());
    let bases: Vec<G1Affine> = (0..n)
        .map(|i| awkward_base(i, &pts, G1Affine::identity()))
        .collect();
    let scalars = awkward_scalars(&mut rng, n);
    let expect: G1Projective = bases.iter().zip(&scalars).map(|(b, s)| *b * s).sum();
    let words: Vec<u32> = bases
        .iter()
        .flat_map(|b| match b.xy() {
            Some((x, y)) => [fq_words(&x), fq_words(&y)].concat(),
            None => vec![0; 16],
        })
        .collect();
    // (c, K, S): several accumulation levels, segments of one bucket and of many; K = 32
    // and segments of 32 buckets are the scheduler's defaults (and within lavapipe's loop
    // budget, see docs/gpu-proving.md).
    let cs = canonical(&scalars);
    for (c, chunk, segs) in [
        (4, 4, 1),
        (5, 16, 4),
        (8, 64, 128),
        (8, 32, 2),
        (13, 32, 64),
    ] {
        let run = device_msm(d, Curve::G1, &words, &cs, c, chunk, segs);
        check_buckets(&run, &bases, &cs, g1_from_xyzz);
        assert_eq!(
            combine(&run, g1_from_xyzz),
            expect,
            "c={c} K={chunk} S={segs}"
        );
    }
    // Every scalar 1 on one base: one bucket holds every entry (doublings all along).
    let same = vec![pts[1]; 64];
    let ones = vec![Fr::one(); 64];
    let w: Vec<u32> = same
        .iter()
        .flat_map(|b| [fq_words(&b.x), fq_words(&b.y)].concat())
        .collect();
    let run = device_msm(d, Curve::G1, &w, &canonical(&ones), 4, 5, 2);
    assert_eq!(combine(&run, g1_from_xyzz), pts[1] * Fr::from(64u64));
}

#[test]
fn g2_msm_kernels_match_arkworks() {
    let Some(d) = device() else { return };
    let mut rng = StdRng::seed_from_u64(22);
    let n = 120;
    let g = G2Projective::generator();
    let pts: Vec<G2Affine> =
        G2Projective::normalize_batch(&(0..n).map(|_| g * Fr::rand(&mut rng)).collect::<Vec<_>>());
    let bases: Vec<G2Affine> = (0..n)
        .map(|i| awkward_base(i, &pts, G2Affine::identity()))
        .collect();
    let scalars = awkward_scalars(&mut rng, n);
    let expect: G2Projective = bases.iter().zip(&scalars).map(|(b, s)| *b * s).sum();
    let words: Vec<u32> = bases
        .iter()
        .flat_map(|b| match b.xy() {
            Some((x, y)) => [fq2_words(&x), fq2_words(&y)].concat(),
            None => vec![0; 32],
        })
        .collect();
    let cs = canonical(&scalars);
    for (c, chunk, segs) in [(4, 4, 2), (8, 32, 2)] {
        let run = device_msm(d, Curve::G2, &words, &cs, c, chunk, segs);
        check_buckets(&run, &bases, &cs, g2_from_xyzz);
        assert_eq!(
            combine(&run, g2_from_xyzz),
            expect,
            "c={c} K={chunk} S={segs}"
        );
    }
}

/// The forward NTT as the spec chains its kernels, against a naive DFT; then the pointwise
/// product and the quotient kernel.
#[test]
fn ntt_kernels_match_arkworks() {
    let Some(d) = device() else { return };
    let mut rng = StdRng::seed_from_u64(31);
    for log_n in [0u32, 1, 3, 8] {
        let n = 1usize << log_n;
        let omega = backends::prove::root_of_unity(n).expect("root of unity");
        let twiddles: Vec<u32> = (0..(n / 2).max(1))
            .flat_map(|k| fr_words(&omega.pow([k as u64])))
            .collect();
        let coeffs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
        let values = upload(d, &coeffs.iter().flat_map(fr_words).collect::<Vec<_>>());
        let tw = upload(d, &twiddles);
        let t0 = Instant::now();
        d.launch(
            Kernel::FrBitReverse,
            n as u32,
            &[&values],
            &[n as u32, log_n],
        )
        .unwrap();
        let mut half = 1;
        while half < n {
            let stride = n / (2 * half);
            d.launch(
                Kernel::FrNttStage,
                (n / 2) as u32,
                &[&values, &tw],
                &[half as u32, stride as u32],
            )
            .unwrap();
            half *= 2;
        }
        let got = download(d, &values, 8 * n);
        println!("NTT of 2^{log_n} in {:.2?}", t0.elapsed());
        for i in 0..n {
            let wi = omega.pow([i as u64]);
            let mut e = Fr::zero();
            let mut x = Fr::one();
            for c in &coeffs {
                e += *c * x;
                x *= wi;
            }
            assert_eq!(fr_from(&got[8 * i..8 * i + 8]), e, "n={n} i={i}");
        }
    }

    let n = 1000;
    let a: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
    let mut b: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
    let mut c: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
    // a*b == c (a zero quotient) and edge values.
    c[0] = a[0] * b[0];
    b[1] = Fr::zero();
    c[2] = -Fr::one();
    let words = |v: &[Fr]| v.iter().flat_map(fr_words).collect::<Vec<_>>();
    let (ba, bb, bc) = (
        upload(d, &words(&a)),
        upload(d, &words(&b)),
        upload(d, &words(&c)),
    );
    d.launch(Kernel::FrMulPointwise, n as u32, &[&ba, &bb], &[n as u32])
        .unwrap();
    let prod = download(d, &ba, 8 * n);
    for i in 0..n {
        assert_eq!(
            fr_from(&prod[8 * i..8 * i + 8]),
            a[i] * b[i],
            "pointwise #{i}"
        );
    }
    d.write(&ba, &words(&a)).unwrap();
    d.launch(Kernel::FrQuotient, n as u32, &[&ba, &bb, &bc], &[n as u32])
        .unwrap();
    let q = download(d, &ba, 8 * n);
    for i in 0..n {
        let expect = (a[i] * b[i] - c[i]).into_bigint();
        assert_eq!(
            &q[8 * i..8 * i + 8],
            &limbs_to_words(&expect.0),
            "quotient #{i}"
        );
    }
}

/// Launches of more workgroups than one grid row holds (2-D dispatch), a zero-thread launch,
/// and wrong argument counts or sizes (errors, not panics).
#[test]
fn launch_geometry_and_errors() {
    let Some(d) = device() else { return };
    // msm_scan_add is the cheapest kernel: counts[g] += block_sums[g / 256]; cursor[g] =
    // counts[g].
    let n: usize = 64 * 65_535 + 100;
    let counts: Vec<u32> = (0..n as u32).collect();
    let block_sums: Vec<u32> = (0..n.div_ceil(256) as u32).map(|b| b * 7).collect();
    let (bc, bs) = (upload(d, &counts), upload(d, &block_sums));
    let cursor = d.alloc(n).unwrap();
    let args = [&bc, &bs, &cursor];
    d.launch(Kernel::MsmScanAdd, 0, &args, &[n as u32]).unwrap();
    d.launch(Kernel::MsmScanAdd, n as u32, &args, &[n as u32])
        .unwrap();
    let got = download(d, &cursor, n);
    assert_eq!(got, download(d, &bc, n));
    for (g, &v) in got.iter().enumerate() {
        assert_eq!(v, g as u32 + 7 * (g / 256) as u32, "#{g}");
    }

    let a = d.alloc(8).unwrap();
    assert!(d.launch(Kernel::TestFrMul, 1, &[&a, &a], &[1]).is_err());
    assert!(d.launch(Kernel::TestFrMul, 1, &[&a, &a, &a], &[]).is_err());
    let small = d.alloc(4).unwrap();
    assert!(d.write(&small, &[0; 5]).is_err());
    assert!(d.read(&small, &mut [0u32; 5]).is_err());
    assert!(d.zero(&small, 5).is_err());
    assert!(d.alloc(usize::MAX / 4).is_err());
    // The device is still usable after rejected calls, and one buffer may be bound twice.
    d.write(&small, &[1, 2, 3, 4]).unwrap();
    assert_eq!(download(d, &small, 4), [1, 2, 3, 4]);
    d.zero(&small, 2).unwrap();
    assert_eq!(download(d, &small, 4), [0, 0, 3, 4]);
    d.write(&a, &fr_words(&Fr::from(3u64))).unwrap();
    d.launch(Kernel::TestFrMul, 1, &[&a, &a, &a], &[1]).unwrap();
    assert_eq!(download(d, &a, 8), fr_words(&Fr::from(9u64)));
}
