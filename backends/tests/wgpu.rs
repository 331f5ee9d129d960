//! Differential tests of the WebGPU backend: on every range it must report exactly the nonces
//! the CPU backend reports. Runs on any Vulkan device, lavapipe (Mesa's CPU driver) included;
//! lavapipe on a small CPU is slow, so ranges stay at 2^14..2^18 nonces.
//!
//! Without an adapter each test prints "SKIPPED (wgpu): reason" and passes, unless
//! `RIGWORKER_REQUIRE_BACKENDS` names `wgpu` (as CI does), when it fails.
#![cfg(feature = "wgpu")]

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use backends::cpu::CpuBackend;
use backends::wgpu::{INTENSITY_RANGE, WgpuBackend};
use backends::{
    BackendError, BackendKind, HashBackend, HashWorker, HeaderTemplate, NonceRange, ScanControl,
    ScanTarget, sha256d,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Nonces per dispatch of the shared worker: small, so most test ranges take several
/// dispatches and exercise double buffering and the result-buffer overflow (1024 slots).
const TEST_INTENSITY: u32 = 12;

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
    println!("SKIPPED ({backend}): {reason}");
}

/// One worker for the whole file: building the pipeline costs lavapipe about a second.
fn worker() -> Option<MutexGuard<'static, Box<dyn HashWorker>>> {
    static WORKER: OnceLock<Result<Mutex<Box<dyn HashWorker>>, String>> = OnceLock::new();
    let w = WORKER.get_or_init(|| {
        let backend = WgpuBackend::new().with_intensity(Some(TEST_INTENSITY));
        backend.devices().map_err(|e| e.reason)?;
        let mut workers = backend.open(0, 1).map_err(|e| e.to_string())?;
        let mut w = workers.pop().ok_or("open returned no worker")?;
        w.start_on_thread().map_err(|e| e.to_string())?;
        Ok(Mutex::new(w))
    });
    match w {
        // A test that failed while holding the worker leaves it usable for the others.
        Ok(m) => Some(m.lock().unwrap_or_else(|e| e.into_inner())),
        Err(reason) => {
            skip_or_fail("wgpu", reason);
            None
        }
    }
}

fn cpu_scan(header: &HeaderTemplate, target: &ScanTarget, range: NonceRange) -> Vec<u32> {
    let mut cpu = CpuBackend::new().open(0, 1).unwrap().pop().unwrap();
    let mut found = Vec::new();
    let out = cpu
        .scan(header, target, range, &ScanControl::new(), &mut found)
        .unwrap();
    assert!(!out.cancelled);
    found
}

/// Scans `range` on both backends and asserts the same nonces; returns them.
fn same_as_cpu(
    w: &mut dyn HashWorker,
    header: &HeaderTemplate,
    target: &ScanTarget,
    range: NonceRange,
) -> Vec<u32> {
    let ctl = ScanControl::new();
    let mut got = Vec::new();
    let out = w.scan(header, target, range, &ctl, &mut got).unwrap();
    assert!(!out.cancelled);
    assert_eq!(out.hashes_done, range.len(), "{range:?}");
    assert_eq!(ctl.hashes(), range.len(), "{range:?}");
    let want = cpu_scan(header, target, range);
    assert_eq!(got, want, "{range:?} top word {:#010x}", target.top_word());
    got
}

fn random_header(rng: &mut StdRng) -> HeaderTemplate {
    let mut h = [0u8; 80];
    rng.fill(&mut h[..]);
    HeaderTemplate(h)
}

/// A target whose top word is `top` and whose lower words are random, so the full-target
/// re-check after the kernel's top-word test matters.
fn target_with_top(rng: &mut StdRng, top: u32) -> ScanTarget {
    let mut t = [0u8; 32];
    rng.fill(&mut t[..28]);
    t[28..].copy_from_slice(&top.to_le_bytes());
    ScanTarget::from_le_bytes(t)
}

fn range(start: u32, len: u32) -> NonceRange {
    NonceRange::new(start, start + (len - 1)).unwrap()
}

#[test]
fn random_headers_match_cpu() {
    let Some(mut w) = worker() else { return };
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    for _ in 0..6 {
        let header = random_header(&mut rng);
        // About one hit per 1024 nonces: a few dozen per range.
        let target = target_with_top(&mut rng, 0x003f_ffff);
        let len = (1 << 15) + rng.random_range(0..4096);
        let start = rng.random_range(0..u32::MAX - len);
        let found = same_as_cpu(w.as_mut(), &header, &target, range(start, len));
        assert!(found.len() > 5, "too few hits to compare: {}", found.len());
    }
}

#[test]
fn more_hits_than_the_result_buffer_holds() {
    let Some(mut w) = worker() else { return };
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    let header = random_header(&mut rng);
    // Half of all nonces: ~2048 candidates per 4096-nonce dispatch, twice the buffer.
    let target = target_with_top(&mut rng, 0x7fff_ffff);
    let found = same_as_cpu(
        w.as_mut(),
        &header,
        &target,
        range(1_000_000, (1 << 14) + 77),
    );
    assert!(found.len() > 4 * 1024, "{}", found.len());
    // Every nonce meets the largest target: the whole range comes back, in order.
    let all = ScanTarget::from_le_bytes([0xff; 32]);
    let r = range(0x8000_0000 - 5000, 1 << 14);
    let found = same_as_cpu(w.as_mut(), &header, &all, r);
    assert_eq!(found, (r.start..=r.end).collect::<Vec<_>>());
}

/// Block 100000 of Bitcoin: its real nonce, found in a small range around it, and nothing else.
#[test]
fn block_100000() {
    let Some(mut w) = worker() else { return };
    let bytes = hex::decode(
        "0100000050120119172a610421a6c3011dd330d9df07b63616c2cc1f1cd00200000000006657a9252aacd5c0b2940996ecff952228c3067cc38d4885efb5a4ac4247e9f337221b4d4c86041b0f2b5710",
    )
    .unwrap();
    let header = HeaderTemplate(bytes.try_into().unwrap());
    let nonce = 0x1057_2b0f;
    // nbits 0x1b04864c: 0x04864c * 256^(0x1b - 3), i.e. big-endian 00000000 0004864c 00...
    let mut be = [0u8; 32];
    be[5..8].copy_from_slice(&[0x04, 0x86, 0x4c]);
    be.reverse();
    let target = ScanTarget::from_le_bytes(be);
    assert!(target.is_met_by(&sha256d(&header.with_nonce(nonce))));
    let found = same_as_cpu(w.as_mut(), &header, &target, range(nonce - 10_000, 1 << 15));
    assert_eq!(found, vec![nonce]);
    // The nonce as the last and as the first of a range.
    assert_eq!(
        same_as_cpu(
            w.as_mut(),
            &header,
            &target,
            NonceRange::new(nonce - 4097, nonce).unwrap()
        ),
        vec![nonce]
    );
    assert_eq!(
        same_as_cpu(w.as_mut(), &header, &target, range(nonce, 1)),
        vec![nonce]
    );
}

#[test]
fn ranges_touching_zero_and_max() {
    let Some(mut w) = worker() else { return };
    let mut rng = StdRng::seed_from_u64(0x5eed_0003);
    let header = random_header(&mut rng);
    let target = target_with_top(&mut rng, 0x01ff_ffff);
    let len = (1 << 14) + 123;
    for r in [
        range(0, len),
        NonceRange::new(u32::MAX - (len - 1), u32::MAX).unwrap(),
        NonceRange::new(0, 0).unwrap(),
        NonceRange::new(u32::MAX, u32::MAX).unwrap(),
        NonceRange::new(u32::MAX - 4096, u32::MAX).unwrap(),
    ] {
        same_as_cpu(w.as_mut(), &header, &target, r);
    }
    // Both ends, with every nonce a hit, so a lost or wrapped nonce at the edge shows.
    let all = ScanTarget::from_le_bytes([0xff; 32]);
    let r = NonceRange::new(u32::MAX - 300, u32::MAX).unwrap();
    assert_eq!(same_as_cpu(w.as_mut(), &header, &all, r).len(), 301);
    assert_eq!(
        same_as_cpu(w.as_mut(), &header, &all, range(0, 300)).len(),
        300
    );
}

#[test]
fn lengths_not_a_multiple_of_the_workgroup() {
    let Some(mut w) = worker() else { return };
    let mut rng = StdRng::seed_from_u64(0x5eed_0004);
    let header = random_header(&mut rng);
    // A quarter of all nonces: the last partial workgroup of each length has hits to lose.
    let target = target_with_top(&mut rng, 0x3fff_ffff);
    for len in [
        1u32, 2, 3, 63, 64, 65, 255, 256, 257, 1023, 4095, 4097, 8191, 12_345,
    ] {
        let start = rng.random_range(0..1 << 30);
        same_as_cpu(w.as_mut(), &header, &target, range(start, len));
    }
}

#[test]
fn cancellation() {
    let Some(mut w) = worker() else { return };
    let mut rng = StdRng::seed_from_u64(0x5eed_0005);
    let header = random_header(&mut rng);
    let target = target_with_top(&mut rng, 0x00ff_ffff);

    // Cancelled before it starts: nothing hashed, nothing reported.
    let ctl = ScanControl::new();
    ctl.cancel();
    let mut found = Vec::new();
    let out = w
        .scan(&header, &target, range(0, 1 << 16), &ctl, &mut found)
        .unwrap();
    assert!(out.cancelled);
    assert_eq!((out.hashes_done, ctl.hashes()), (0, 0));
    assert!(found.is_empty());

    // Cancelled while running: stops between dispatches, credits whole dispatches only, and
    // reports the hits of the dispatches it finished.
    let ctl = ScanControl::new();
    let big = range(0, 1 << 28);
    let mut found = Vec::new();
    let t0 = Instant::now();
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            ctl.cancel();
        });
        w.scan(&header, &target, big, &ctl, &mut found).unwrap()
    });
    let took = t0.elapsed();
    assert!(out.cancelled);
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    assert!(out.hashes_done > 0 && out.hashes_done < big.len());
    assert_eq!(out.hashes_done % (1 << TEST_INTENSITY), 0);
    assert_eq!(ctl.hashes(), out.hashes_done);
    let done = range(0, out.hashes_done as u32);
    assert_eq!(found, cpu_scan(&header, &target, done));

    // The dispatch abandoned in flight does not disturb the next scan.
    same_as_cpu(w.as_mut(), &header, &target, range(12_345, 1 << 15));
}

#[test]
fn devices_tuning_and_selection() {
    let backend = WgpuBackend::new();
    assert!(
        backends::compiled_backends()
            .iter()
            .any(|b| b.kind() == BackendKind::Wgpu)
    );
    let devices = match backend.devices() {
        Ok(d) => d,
        Err(e) => return skip_or_fail("wgpu", &e.reason),
    };
    for (i, d) in devices.iter().enumerate() {
        assert_eq!((d.backend, d.index), (BackendKind::Wgpu, i));
        assert!(!d.name.is_empty());
        println!("wgpu#{i}: {} ({})", d.name, d.detail);
    }
    match backend.open(devices.len(), 1) {
        Err(BackendError::NoSuchDevice {
            backend: BackendKind::Wgpu,
            index,
        }) => assert_eq!(index, devices.len()),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a device that does not exist"),
    }

    // Tuned: a power of two within the accepted range, one dispatch of it well under a second.
    let mut w = backend.open(0, 1).unwrap().pop().unwrap();
    let n = w.min_scan_nonces();
    assert!(n.is_power_of_two(), "{n}");
    assert!(INTENSITY_RANGE.contains(&n.trailing_zeros()), "{n}");
    let target = ScanTarget::from_le_bytes([0; 32]);
    let t0 = Instant::now();
    let out = w
        .scan(
            &HeaderTemplate([7; 80]),
            &target,
            range(0, n as u32),
            &ScanControl::new(),
            &mut Vec::new(),
        )
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(out.hashes_done, n);
    println!(
        "tuned to 2^{} nonces per dispatch; one dispatch took {took:?}",
        n.trailing_zeros()
    );
    assert!(
        w.info().detail.contains("nonces/dispatch"),
        "{}",
        w.info().detail
    );
}
