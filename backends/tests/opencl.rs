//! The OpenCL backend against the CPU backend: exactly the same nonces on random headers
//! with easy targets (including more candidates than a result buffer holds), on the
//! block-100000 header, on ranges touching 0 and `u32::MAX` and of awkward lengths, plus
//! cancellation, launch-size tuning and the device list. Runs on any OpenCL device; CI uses
//! pocl on the CPU. Without one every test prints `SKIPPED (opencl): reason` and passes,
//! unless `RIGWORKER_REQUIRE_BACKENDS` names `opencl`, which makes it fail instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backends::cpu::CpuBackend;
use backends::opencl::OpenClBackend;
use backends::{HashBackend, HashWorker, HeaderTemplate, NonceRange, ScanControl, ScanTarget};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BLOCK_100000: &str = "0100000050120119172a610421a6c3011dd330d9df07b63616c2cc1f1cd00200000000006657a9252aacd5c0b2940996ecff952228c3067cc38d4885efb5a4ac4247e9f337221b4d4c86041b0f2b5710";
const BLOCK_100000_NONCE: u32 = 0x1057_2b0f;

/// The same rule as `hw_tests::skip_or_fail` (this crate cannot depend on `hw-tests`).
fn required() -> bool {
    std::env::var("RIGWORKER_REQUIRE_BACKENDS")
        .map(|v| {
            v.split(',')
                .any(|b| b.trim().eq_ignore_ascii_case("opencl"))
        })
        .unwrap_or(false)
}

/// A worker on OpenCL device 0 launching `2^intensity` nonces at a time (`None`: tuned), or
/// `None` after printing why the test is skipped.
fn worker(intensity: Option<u32>) -> Option<Box<dyn HashWorker>> {
    let backend = OpenClBackend::new().with_intensity(intensity);
    if let Err(e) = backend.devices() {
        assert!(
            !required(),
            "opencl is required by RIGWORKER_REQUIRE_BACKENDS but unavailable: {e}"
        );
        println!("SKIPPED (opencl): {}", e.reason);
        return None;
    }
    let mut w = backend
        .open(0, 1)
        .expect("open OpenCL device 0")
        .pop()
        .expect("one worker");
    w.start_on_thread().expect("start");
    Some(w)
}

/// The reference: the CPU backend's answer.
fn cpu(header: &HeaderTemplate, target: &ScanTarget, range: NonceRange) -> Vec<u32> {
    let mut w = CpuBackend::new()
        .open(0, 1)
        .expect("cpu")
        .pop()
        .expect("one worker");
    let mut found = Vec::new();
    w.scan(header, target, range, &ScanControl::new(), &mut found)
        .expect("cpu scan");
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

#[test]
fn lists_its_devices() {
    match OpenClBackend::new().devices() {
        Ok(devs) => {
            assert!(!devs.is_empty());
            for (i, d) in devs.iter().enumerate() {
                assert_eq!(d.index, i);
                assert_eq!(d.backend, backends::BackendKind::OpenCl);
                assert!(!d.name.is_empty());
                assert!(d.compute_units > 0, "{d:?}");
                println!("{d:?}");
            }
        }
        Err(e) => {
            assert!(!required(), "opencl required but unavailable: {e}");
            assert!(!e.reason.is_empty());
            println!("SKIPPED (opencl): {}", e.reason);
        }
    }
}

#[test]
fn random_headers_match_the_cpu() {
    let Some(mut w) = worker(Some(14)) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(0x0c1_5eed);
    let mut hits = 0;
    for (top, len) in [
        (0x0000_ffff, 1u64 << 18),
        (0x00ff_ffff, 1 << 16),
        (0x0fff_ffff, 1 << 14),
    ] {
        for _ in 0..2 {
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
    let Some(mut w) = worker(Some(16)) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(7);
    let h = random_header(&mut rng);
    // About one nonce in 16, then one in 2: thousands of candidates per launch.
    for top in [0x0fff_ffffu32, 0x7fff_ffff] {
        let t = target(&mut rng, top);
        let n = check(&mut *w, &h, &t, range(12_345, 1 << 16));
        assert!(n > 256 * 4, "top {top:#x}: {n} hits");
    }
    // Every nonce a candidate and a share.
    let all = ScanTarget::from_le_bytes([0xff; 32]);
    assert_eq!(check(&mut *w, &h, &all, range(0, 70_000)), 70_000);
}

#[test]
fn block_100000() {
    let Some(mut w) = worker(None) else { return };
    let bytes = hex::decode(BLOCK_100000).expect("hex");
    let mut hdr = [0u8; 80];
    hdr.copy_from_slice(&bytes);
    let h = HeaderTemplate(hdr);
    // nbits 0x1b04864c: 0x04864c * 256^(0x1b - 3), i.e. big-endian 00..0004864c followed by
    // 24 zero bytes.
    let mut be = [0u8; 32];
    be[5..8].copy_from_slice(&[0x04, 0x86, 0x4c]);
    let mut le = be;
    le.reverse();
    let t = ScanTarget::from_le_bytes(le);
    let r =
        NonceRange::new(BLOCK_100000_NONCE - 40_000, BLOCK_100000_NONCE + 25_000).expect("range");
    assert_eq!(scan(&mut *w, &h, &t, r), vec![BLOCK_100000_NONCE]);
    // The range ends exactly on the nonce, then starts exactly on it.
    let r = NonceRange::new(BLOCK_100000_NONCE - 1000, BLOCK_100000_NONCE).expect("range");
    assert_eq!(scan(&mut *w, &h, &t, r), vec![BLOCK_100000_NONCE]);
    let r = NonceRange::new(BLOCK_100000_NONCE, BLOCK_100000_NONCE).expect("range");
    assert_eq!(scan(&mut *w, &h, &t, r), vec![BLOCK_100000_NONCE]);
}

#[test]
fn ends_of_the_nonce_space_and_awkward_lengths() {
    let Some(mut w) = worker(Some(12)) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(99);
    let h = random_header(&mut rng);
    let t = target(&mut rng, 0x03ff_ffff);
    let max = u32::MAX;
    for r in [
        NonceRange::new(0, 0),
        NonceRange::new(max, max),
        NonceRange::new(0, 40_000),
        NonceRange::new(max - 40_000, max),
        NonceRange::new(max - 4096, max),
        NonceRange::new(max - 4095, max),
        NonceRange::new(1, 255),
        NonceRange::new(1000, 1256),
        NonceRange::new(77, 77 + 12_288),
        NonceRange::new(5, 5 + 4097),
        NonceRange::new(3_000_000, 3_100_002),
    ] {
        check(&mut *w, &h, &t, r.expect("range"));
    }
}

#[test]
fn cancellation_stops_between_launches() {
    let Some(mut w) = worker(Some(14)) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(3);
    let h = random_header(&mut rng);
    let t = target(&mut rng, 0x00ff_ffff);

    // Raised before the scan starts: nothing is launched.
    let ctl = ScanControl::new();
    ctl.cancel();
    let mut found = Vec::new();
    let out = w
        .scan(&h, &t, NonceRange::FULL, &ctl, &mut found)
        .expect("scan");
    assert!(out.cancelled);
    assert_eq!(out.hashes_done, 0);
    assert!(found.is_empty());

    // Raised while it runs over the whole nonce space (hours on a CPU device): it returns
    // soon after, having credited what it hashed, and what it found is right.
    let ctl = Arc::new(ScanControl::new());
    let canceller = {
        let ctl = ctl.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
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
    assert!(out.cancelled);
    assert!(out.hashes_done > 0 && out.hashes_done < NonceRange::FULL.len());
    assert_eq!(out.hashes_done % (1 << 14), 0, "whole launches only");
    assert_eq!(ctl.hashes(), out.hashes_done);
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
    found.sort_unstable();
    assert_eq!(found, cpu(&h, &t, range(0, out.hashes_done)));
}

/// The tuned launch takes about 50–100 ms, and the engine is asked for two launches per scan.
#[test]
fn tuned_launch_size() {
    let Some(mut w) = worker(None) else { return };
    let per_scan = w.min_scan_nonces();
    assert!(
        per_scan.is_power_of_two() && per_scan >= 2 << 10,
        "{per_scan}"
    );
    println!("{}: min_scan_nonces {per_scan}", w.info().detail);
    let launch = per_scan / 2;
    let h = HeaderTemplate([0x42; 80]);
    let t = ScanTarget::from_le_bytes([0; 32]);
    let ctl = ScanControl::new();
    let mut found = Vec::new();
    let t0 = Instant::now();
    let out = w
        .scan(&h, &t, range(0, 4 * launch), &ctl, &mut found)
        .expect("scan");
    let per_launch = t0.elapsed() / 4;
    assert_eq!(out.hashes_done, 4 * launch);
    // Printed, not asserted: a shared CI machine's timing says nothing about the kernel.
    println!("{per_launch:?} per launch of {launch} nonces");
}

#[test]
fn open_rejects_a_missing_device() {
    let Some(_) = worker(Some(10)) else { return };
    let b = OpenClBackend::new();
    let n = b.devices().expect("devices").len();
    match b.open(n, 1) {
        Err(backends::BackendError::NoSuchDevice { index, .. }) => assert_eq!(index, n),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened device {n} of {n}"),
    }
}
