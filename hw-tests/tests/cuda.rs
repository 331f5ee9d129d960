//! The CUDA backend against the CPU backend on a real NVIDIA GPU: exactly the same nonces on
//! random headers with easy targets (including more candidates than a result buffer holds),
//! on the block-100000 header (also over the whole nonce space at the largest launch size),
//! on ranges touching 0 and `u32::MAX` and of awkward lengths, plus cancellation and
//! launch-size tuning. Without a GPU each test prints `SKIPPED (cuda): reason` and passes;
//! `RIGWORKER_REQUIRE_BACKENDS=cuda` (as `hw-tests/run-gpu.sh` sets) makes that a failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backends::cpu::CpuBackend;
use backends::cuda::CudaBackend;
use backends::{
    BackendError, BackendKind, HashBackend, HashWorker, HeaderTemplate, NonceRange, ScanControl,
    ScanTarget,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BLOCK_100000: &str = "0100000050120119172a610421a6c3011dd330d9df07b63616c2cc1f1cd00200000000006657a9252aacd5c0b2940996ecff952228c3067cc38d4885efb5a4ac4247e9f337221b4d4c86041b0f2b5710";
const BLOCK_100000_NONCE: u32 = 0x1057_2b0f;

/// A worker on CUDA device 0 launching `2^intensity` nonces at a time (`None`: tuned), or
/// `None` after `hw_tests::skip_or_fail` said why.
fn worker(intensity: Option<u32>) -> Option<Box<dyn HashWorker>> {
    let backend = CudaBackend::new().with_intensity(intensity);
    if let Err(e) = backend.devices() {
        hw_tests::skip_or_fail("cuda", &e.reason);
        return None;
    }
    let mut w = backend
        .open(0, 1)
        .expect("open CUDA device 0")
        .pop()
        .expect("one worker");
    w.start_on_thread().expect("start");
    Some(w)
}

/// The reference: the CPU backend's answer, on every core.
fn cpu(header: &HeaderTemplate, target: &ScanTarget, range: NonceRange) -> Vec<u32> {
    let workers = CpuBackend::new().open(0, 0).expect("cpu");
    let n = workers.len() as u64;
    let per = range.len().div_ceil(n);
    let mut found: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .into_iter()
            .enumerate()
            .filter_map(|(i, mut w)| {
                let start = u64::from(range.start) + i as u64 * per;
                let end = (start + per - 1).min(u64::from(range.end));
                (start <= end).then(|| {
                    s.spawn(move || {
                        let r = NonceRange {
                            start: start as u32,
                            end: end as u32,
                        };
                        let mut f = Vec::new();
                        w.scan(header, target, r, &ScanControl::new(), &mut f)
                            .expect("cpu scan");
                        f
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("cpu thread"))
            .collect()
    });
    found.sort_unstable();
    found
}

/// Scans with a fresh control, checks the bookkeeping and returns the nonces, sorted.
fn scan(w: &mut dyn HashWorker, h: &HeaderTemplate, t: &ScanTarget, r: NonceRange) -> Vec<u32> {
    let ctl = ScanControl::new();
    let mut found = Vec::new();
    let out = w.scan(h, t, r, &ctl, &mut found).expect("scan");
    assert!(!out.cancelled);
    assert_eq!(out.hashes_done, r.len(), "{r:?}");
    assert_eq!(ctl.hashes(), r.len(), "{r:?}");
    found.sort_unstable();
    found
}

fn check(w: &mut dyn HashWorker, h: &HeaderTemplate, t: &ScanTarget, r: NonceRange) -> usize {
    let got = scan(w, h, t, r);
    let want = cpu(h, t, r);
    assert_eq!(got, want, "range {r:?}, target {t:?}, {h:?}");
    got.len()
}

/// Top word `top`, the lower words random (so ties on the top word are decided below it).
fn target(rng: &mut StdRng, top: u32) -> ScanTarget {
    let mut b: [u8; 32] = rng.random();
    b[28..32].copy_from_slice(&top.to_le_bytes());
    ScanTarget::from_le_bytes(b)
}

fn random_header(rng: &mut StdRng) -> HeaderTemplate {
    let mut h = [0u8; 80];
    rng.fill(&mut h[..]);
    HeaderTemplate(h)
}

fn range(start: u32, len: u64) -> NonceRange {
    NonceRange::new(start, (u64::from(start) + len - 1) as u32).expect("range")
}

fn block_100000() -> (HeaderTemplate, ScanTarget) {
    let bytes = hex::decode(BLOCK_100000).expect("hex");
    let mut hdr = [0u8; 80];
    hdr.copy_from_slice(&bytes);
    // nbits 0x1b04864c: big-endian 00..0004864c followed by 24 zero bytes.
    let mut be = [0u8; 32];
    be[5..8].copy_from_slice(&[0x04, 0x86, 0x4c]);
    let mut le = be;
    le.reverse();
    (HeaderTemplate(hdr), ScanTarget::from_le_bytes(le))
}

#[test]
fn lists_its_devices() {
    match CudaBackend::new().devices() {
        Ok(devs) => {
            assert!(!devs.is_empty());
            for (i, d) in devs.iter().enumerate() {
                assert_eq!(d.index, i);
                assert_eq!(d.backend, BackendKind::Cuda);
                assert!(!d.name.is_empty());
                assert!(d.compute_units > 0, "{d:?}");
                assert!(d.memory_bytes.unwrap_or(0) > 0, "{d:?}");
                println!("{d:?}");
            }
        }
        Err(e) => {
            assert_eq!(e.backend, BackendKind::Cuda);
            assert!(!e.reason.is_empty());
            hw_tests::skip_or_fail("cuda", &e.reason);
        }
    }
}

#[test]
fn random_headers_match_the_cpu() {
    let Some(mut w) = worker(Some(20)) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(0xc0da);
    let mut hits = 0;
    for (top, len) in [
        (0x0000_0fff, 1u64 << 24),
        (0x0000_ffff, 1 << 22),
        (0x00ff_ffff, 1 << 18),
    ] {
        for _ in 0..3 {
            let h = random_header(&mut rng);
            let t = target(&mut rng, top);
            let start = rng.random::<u32>() & 0x7fff_ffff;
            hits += check(&mut *w, &h, &t, range(start, len));
        }
    }
    assert!(
        hits > 1000,
        "the easy targets must give many hits, got {hits}"
    );
}

/// More candidates in one launch than the result buffer holds (it starts at 256): the
/// backend must grow it and rescan without losing one.
#[test]
fn overflowing_result_buffers_lose_nothing() {
    let Some(mut w) = worker(Some(22)) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(7);
    let h = random_header(&mut rng);
    for top in [0x00ff_ffffu32, 0x0fff_ffff, 0x7fff_ffff] {
        let t = target(&mut rng, top);
        let n = check(&mut *w, &h, &t, range(12_345, 1 << 22));
        assert!(n > 256 * 4, "top {top:#x}: {n} hits");
    }
    let all = ScanTarget::from_le_bytes([0xff; 32]);
    assert_eq!(check(&mut *w, &h, &all, range(0, 1 << 20)), 1 << 20);
}

#[test]
fn block_100000_near_its_nonce() {
    let Some(mut w) = worker(None) else { return };
    let (h, t) = block_100000();
    let r = NonceRange::new(BLOCK_100000_NONCE - (1 << 22), BLOCK_100000_NONCE + 999_999);
    assert_eq!(
        scan(&mut *w, &h, &t, r.expect("range")),
        vec![BLOCK_100000_NONCE]
    );
    let r = NonceRange::new(BLOCK_100000_NONCE, BLOCK_100000_NONCE).expect("range");
    assert_eq!(scan(&mut *w, &h, &t, r), vec![BLOCK_100000_NONCE]);
}

/// The whole 2^32 space in two launches of 2^31 (the largest): the kernel's grid-stride
/// loop and the launch arithmetic at their limits. Expected: only the real nonce (another
/// one meeting this target has odds of about 1 in 10^4).
#[test]
fn block_100000_whole_nonce_space_at_max_intensity() {
    let Some(mut w) = worker(Some(31)) else {
        return;
    };
    assert_eq!(w.min_scan_nonces(), 1 << 32);
    let (h, t) = block_100000();
    let t0 = Instant::now();
    assert_eq!(
        scan(&mut *w, &h, &t, NonceRange::FULL),
        vec![BLOCK_100000_NONCE]
    );
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "2^32 nonces in {secs:.2} s: {:.2} GH/s",
        2f64.powi(32) / secs / 1e9
    );
}

#[test]
fn ends_of_the_nonce_space_and_awkward_lengths() {
    let Some(mut w) = worker(Some(16)) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(99);
    let h = random_header(&mut rng);
    let t = target(&mut rng, 0x03ff_ffff);
    let max = u32::MAX;
    for r in [
        NonceRange::new(0, 0),
        NonceRange::new(max, max),
        NonceRange::new(0, 400_000),
        NonceRange::new(max - 400_000, max),
        NonceRange::new(max - 65_536, max),
        NonceRange::new(max - 65_535, max),
        NonceRange::new(1, 255),
        NonceRange::new(1000, 1256),
        NonceRange::new(77, 77 + 3 * 65_536),
        NonceRange::new(5, 5 + 65_537),
        NonceRange::new(3_000_000, 4_000_002),
    ] {
        check(&mut *w, &h, &t, r.expect("range"));
    }
}

#[test]
fn cancellation_stops_between_launches() {
    let Some(mut w) = worker(None) else { return };
    let launch = w.min_scan_nonces() / 2;
    let mut rng = StdRng::seed_from_u64(3);
    let h = random_header(&mut rng);
    let t = target(&mut rng, 0x0000_ffff);

    let ctl = ScanControl::new();
    ctl.cancel();
    let mut found = Vec::new();
    let out = w
        .scan(&h, &t, NonceRange::FULL, &ctl, &mut found)
        .expect("scan");
    assert!(out.cancelled);
    assert_eq!(out.hashes_done, 0);

    let ctl = Arc::new(ScanControl::new());
    let canceller = {
        let ctl = ctl.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            ctl.cancel();
        })
    };
    let t0 = Instant::now();
    let mut found = Vec::new();
    let out = w
        .scan(&h, &t, NonceRange::FULL, &ctl, &mut found)
        .expect("scan");
    let took = t0.elapsed();
    canceller.join().expect("canceller");
    if out.hashes_done == NonceRange::FULL.len() {
        // A GPU fast enough to finish 2^32 nonces in 150 ms: nothing to cancel.
        assert!(!out.cancelled);
        return;
    }
    assert!(out.cancelled);
    assert_eq!(out.hashes_done % launch, 0, "whole launches only");
    assert_eq!(ctl.hashes(), out.hashes_done);
    // Cancel is noticed between launches; two are in flight, each about 50–100 ms.
    assert!(
        took < Duration::from_millis(150 + 600),
        "took {took:?} to stop"
    );
    found.sort_unstable();
    assert_eq!(found, cpu(&h, &t, range(0, out.hashes_done)));
}

/// The tuned launch takes about 50–100 ms; prints the hashrate it reaches.
#[test]
fn tuned_launch_size() {
    let Some(mut w) = worker(None) else { return };
    let launch = w.min_scan_nonces() / 2;
    println!(
        "{} ({}): launch {launch} nonces",
        w.info().name,
        w.info().detail
    );
    let h = HeaderTemplate([0x42; 80]);
    let t = ScanTarget::from_le_bytes([0; 32]);
    let n = 8 * launch;
    let ctl = ScanControl::new();
    let t0 = Instant::now();
    let out = w
        .scan(
            &h,
            &t,
            NonceRange {
                start: 0,
                end: (n - 1) as u32,
            },
            &ctl,
            &mut Vec::new(),
        )
        .expect("scan");
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(out.hashes_done, n);
    let per_launch = secs / 8.0;
    println!(
        "{:.1} ms per launch, {:.3} GH/s",
        per_launch * 1e3,
        n as f64 / secs / 1e9
    );
    assert!(
        (0.02..0.3).contains(&per_launch),
        "{per_launch} s per launch"
    );
}

#[test]
fn open_rejects_a_missing_device() {
    let b = CudaBackend::new();
    let n = match b.devices() {
        Ok(d) => d.len(),
        Err(e) => return hw_tests::skip_or_fail("cuda", &e.reason),
    };
    match b.open(n, 1) {
        Err(BackendError::NoSuchDevice { index, .. }) => assert_eq!(index, n),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened device {n} of {n}"),
    }
}

/// Runs everywhere: without the NVIDIA driver, listing and opening report `Unavailable` with
/// a clear reason (and do not panic, which cudarc's loader would on its own).
#[test]
fn without_a_driver_cuda_is_unavailable_not_a_panic() {
    let b = CudaBackend::new();
    let reason = match b.devices() {
        Ok(_) => return println!("SKIPPED: a CUDA driver is present; the other tests cover it"),
        Err(e) => e.reason,
    };
    println!("cuda: {reason}");
    if !reason.contains("libcuda.so.1 not found") {
        // A driver without a usable GPU: also a clear reason, checked above.
        return;
    }
    match b.open(0, 1) {
        Err(BackendError::Unavailable(e)) => assert_eq!(e.reason, reason),
        Err(e) => panic!("expected Unavailable, got {e}"),
        Ok(_) => panic!("opened a CUDA device without a driver"),
    }
}
