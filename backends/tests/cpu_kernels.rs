//! Every CPU kernel this machine supports (the portable one always) against a brute-force
//! `sha2` search: same nonce set on random headers and targets, the block-100000 header, the
//! ends of the nonce space, awkward lengths, cancellation, and the backend's device surface.
//! Kernels the CPU lacks are skipped with the reason printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backends::cpu::{CpuBackend, Kernel};
use backends::{
    BackendError, HashBackend, HashWorker, HeaderTemplate, NonceRange, ScanControl, ScanOutcome,
    ScanTarget, sha256d,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BLOCK_100000: &str = "0100000050120119172a610421a6c3011dd330d9df07b63616c2cc1f1cd00200000000006657a9252aacd5c0b2940996ecff952228c3067cc38d4885efb5a4ac4247e9f337221b4d4c86041b0f2b5710";
const BLOCK_100000_NONCE: u32 = 274_148_111;

/// The kernels to test here; prints why the others are skipped.
fn kernels() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| {
            let ok = k.is_supported();
            if !ok {
                println!(
                    "skipping kernel {k}: this CPU lacks {}",
                    k.required_features()
                );
            }
            ok
        })
        .collect()
}

fn worker(k: Kernel) -> Box<dyn HashWorker> {
    let mut w = CpuBackend::with_kernel(k)
        .open(0, 1)
        .expect("open")
        .pop()
        .expect("one worker");
    w.start_on_thread().expect("start");
    w
}

fn brute(header: &HeaderTemplate, target: &ScanTarget, range: NonceRange) -> Vec<u32> {
    (range.start..=range.end)
        .filter(|&n| target.is_met_by(&sha256d(&header.with_nonce(n))))
        .collect()
}

/// Scans with a fresh control and checks the bookkeeping; returns the nonces found.
fn scan(w: &mut dyn HashWorker, h: &HeaderTemplate, t: &ScanTarget, r: NonceRange) -> Vec<u32> {
    let ctl = ScanControl::new();
    let mut found = Vec::new();
    let out = w.scan(h, t, r, &ctl, &mut found).expect("scan");
    assert!(!out.cancelled);
    assert_eq!(out.hashes_done, r.len());
    assert_eq!(ctl.hashes(), r.len());
    found
}

fn check(k: Kernel, w: &mut dyn HashWorker, h: &HeaderTemplate, t: &ScanTarget, r: NonceRange) {
    let mut got = scan(w, h, t, r);
    got.sort_unstable();
    assert_eq!(
        got,
        brute(h, t, r),
        "kernel {k}, range {r:?}, target {t:?}, {h:?}"
    );
}

/// Top word `top`, the lower words random (so ties on the top word are decided below).
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

fn block_100000() -> HeaderTemplate {
    let mut h = [0u8; 80];
    h.copy_from_slice(&hex::decode(BLOCK_100000).expect("hex"));
    HeaderTemplate(h)
}

/// The target encoded by nbits 0x1b04864c: 0x04864c * 256^(0x1b - 3), big-endian.
fn block_100000_target() -> ScanTarget {
    let mut le = [0u8; 32];
    let exp = 0x1b - 3;
    le[exp..exp + 3].copy_from_slice(&[0x4c, 0x86, 0x04]);
    ScanTarget::from_le_bytes(le)
}

#[test]
fn random_headers_easy_targets_match_brute_force() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    for k in kernels() {
        let mut w = worker(k);
        for top in [0x00ff_ffffu32, 0x0fff_ffff, 0x0000_ffff, 0x7fff_ffff] {
            let h = random_header(&mut rng);
            let t = target(&mut rng, top);
            let start: u32 = rng.random_range(0..u32::MAX - 5000);
            let len: u32 = rng.random_range(1500..3000);
            let r = NonceRange::new(start, start + len).expect("range");
            check(k, w.as_mut(), &h, &t, r);
        }
    }
}

#[test]
fn block_100000_finds_exactly_the_real_nonce() {
    let h = block_100000();
    let t = block_100000_target();
    assert!(t.is_met_by(&sha256d(&h.with_nonce(BLOCK_100000_NONCE))));
    for k in kernels() {
        let mut w = worker(k);
        // Put the nonce in every lane position of the first iteration.
        for off in 0..=k.lanes() {
            let r = NonceRange::new(BLOCK_100000_NONCE - off, BLOCK_100000_NONCE - off + 700)
                .expect("range");
            assert_eq!(
                scan(w.as_mut(), &h, &t, r),
                vec![BLOCK_100000_NONCE],
                "kernel {k}"
            );
        }
        let r = NonceRange::new(BLOCK_100000_NONCE - 20_000, BLOCK_100000_NONCE + 20_000)
            .expect("range");
        assert_eq!(
            scan(w.as_mut(), &h, &t, r),
            vec![BLOCK_100000_NONCE],
            "kernel {k}"
        );
        // Just past it: nothing.
        let r = NonceRange::new(BLOCK_100000_NONCE + 1, BLOCK_100000_NONCE + 3000).expect("range");
        assert!(scan(w.as_mut(), &h, &t, r).is_empty(), "kernel {k}");
    }
}

#[test]
fn every_nonce_meets_the_maximum_target() {
    // Every lane is a candidate and a hit, so this pins down tail masking exactly.
    let h = random_header(&mut StdRng::seed_from_u64(7));
    let t = ScanTarget::from_le_bytes([0xff; 32]);
    for k in kernels() {
        let mut w = worker(k);
        let l = k.lanes();
        for len in [
            1,
            2,
            3,
            l.saturating_sub(1).max(1),
            l,
            l + 1,
            2 * l + 1,
            3 * l - 1,
            301,
        ] {
            for start in [0, 12345, u32::MAX - (len - 1)] {
                let r = NonceRange::new(start, start + (len - 1)).expect("range");
                let got = scan(w.as_mut(), &h, &t, r);
                let want: Vec<u32> = (r.start..=r.end).collect();
                assert_eq!(got, want, "kernel {k}, len {len}, start {start}");
            }
        }
    }
}

#[test]
fn ends_of_the_nonce_space_and_odd_lengths() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    for k in kernels() {
        let mut w = worker(k);
        let l = k.lanes();
        let h = random_header(&mut rng);
        let t = target(&mut rng, 0x0fff_ffff);
        for len in [1, l.saturating_sub(1).max(1), l + 1, 2 * l + 3, 777, 1001] {
            for r in [
                NonceRange::new(0, len - 1),
                NonceRange::new(u32::MAX - (len - 1), u32::MAX),
                NonceRange::new(1 << 31, (1 << 31) + len - 1),
            ] {
                check(k, w.as_mut(), &h, &t, r.expect("range"));
            }
        }
    }
}

#[test]
fn batches_join_without_gaps() {
    // More than one batch (64 Ki nonces), starting off any lane boundary.
    let mut rng = StdRng::seed_from_u64(0x5eed_0003);
    for k in kernels() {
        let mut w = worker(k);
        let h = random_header(&mut rng);
        let t = target(&mut rng, 0x000f_ffff);
        let r = NonceRange::new(u32::MAX - 140_000, u32::MAX).expect("range");
        check(k, w.as_mut(), &h, &t, r);
    }
}

/// Scans the whole nonce space on its own thread with `ctl`, so that a scan which ignores
/// the cancel fails the test instead of hashing all 2^32 nonces. Returns the outcome, what was
/// found and when the scan returned.
fn scan_all_in_background(
    k: Kernel,
    ctl: &Arc<ScanControl>,
) -> std::sync::mpsc::Receiver<(ScanOutcome, Vec<u32>, Instant)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let ctl = Arc::clone(ctl);
    std::thread::spawn(move || {
        let h = block_100000();
        let t = ScanTarget::from_le_bytes([0; 32]);
        let mut found = Vec::new();
        let out = worker(k)
            .scan(&h, &t, NonceRange::FULL, &ctl, &mut found)
            .expect("scan");
        let _ = tx.send((out, found, Instant::now()));
    });
    rx
}

#[test]
fn cancel_before_scan_returns_at_once() {
    for k in kernels() {
        let ctl = Arc::new(ScanControl::new());
        ctl.cancel();
        let t0 = Instant::now();
        let (out, found, stopped) = scan_all_in_background(k, &ctl)
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("kernel {k} ignored the cancel"));
        assert!(out.cancelled, "kernel {k}");
        assert_eq!(out.hashes_done, 0, "kernel {k}");
        assert_eq!(ctl.hashes(), 0);
        assert!(found.is_empty());
        // Behaviour, not speed (a loaded 2-core CI box may take long to start a thread): no
        // hash was computed, and the scan ended (the 10 s bound above only catches a hang).
        let _ = (stopped, t0);
    }
}

/// The largest batch any CPU kernel scans between two looks at its cancel flag (64 Ki).
const MAX_BATCH: u64 = 1 << 16;

#[test]
fn cancel_during_scan_stops_within_a_batch() {
    for k in kernels() {
        let ctl = Arc::new(ScanControl::new());
        let rx = scan_all_in_background(k, &ctl);
        // Cancel once the scan has really started (however long the thread took to run).
        let started = Instant::now();
        while ctl.hashes() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "kernel {k} never started"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        ctl.cancel();
        let at_cancel = ctl.hashes();
        let (out, _, _) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("kernel {k} did not stop after cancel"));
        assert!(out.cancelled, "kernel {k}");
        assert!(out.hashes_done > 0 && out.hashes_done < NonceRange::FULL.len());
        assert_eq!(ctl.hashes(), out.hashes_done);
        // Stopped within the batch that was running when the cancel came: a count of work,
        // not a time, so a slow machine cannot fail it.
        let after = out.hashes_done - at_cancel;
        assert!(
            after <= 2 * MAX_BATCH,
            "kernel {k} hashed {after} nonces after the cancel"
        );
    }
}

#[test]
fn ties_on_the_top_word_are_decided_by_the_full_target() {
    // The kernels only compare digest word 7; a target equal to the block's hash in that
    // word but one below it overall must still reject the nonce.
    let h = block_100000();
    let digest = sha256d(&h.with_nonce(BLOCK_100000_NONCE));
    let exact = ScanTarget::from_le_bytes(digest);
    let mut below = digest;
    for b in below.iter_mut() {
        let (v, borrow) = b.overflowing_sub(1);
        *b = v;
        if !borrow {
            break;
        }
    }
    let below = ScanTarget::from_le_bytes(below);
    assert_eq!(exact.top_word(), below.top_word());
    let r = NonceRange::new(BLOCK_100000_NONCE - 40, BLOCK_100000_NONCE + 40).expect("range");
    for k in kernels() {
        let mut w = worker(k);
        assert_eq!(
            scan(w.as_mut(), &h, &exact, r),
            vec![BLOCK_100000_NONCE],
            "kernel {k}"
        );
        assert!(scan(w.as_mut(), &h, &below, r).is_empty(), "kernel {k}");
    }
}

#[test]
fn device_surface() {
    let b = CpuBackend::new();
    let devs = b.devices().expect("cpu devices");
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0].index, 0);
    assert!(devs[0].compute_units >= 1);
    assert!(!devs[0].name.is_empty());
    assert_eq!(devs[0].detail, Kernel::fastest().description());
    assert_eq!(b.kernel(), Kernel::fastest());
    assert!(matches!(
        b.open(1, 1),
        Err(BackendError::NoSuchDevice { index: 1, .. })
    ));
    assert_eq!(b.open(0, 3).expect("open").len(), 3);
    assert_eq!(
        b.open(0, 0).expect("open").len(),
        devs[0].compute_units as usize
    );
    for k in Kernel::ALL {
        let forced = CpuBackend::with_kernel(k);
        if k.is_supported() {
            assert_eq!(
                forced.devices().expect("devices")[0].detail,
                k.description()
            );
        } else {
            assert!(forced.devices().is_err());
            assert!(matches!(
                forced.open(0, 1),
                Err(BackendError::Unavailable(_))
            ));
        }
    }
}

#[test]
fn pinned_workers_scan_on_their_own_threads() {
    let h = block_100000();
    let t = block_100000_target();
    let workers = CpuBackend::new()
        .pin_threads(true)
        .open(0, 2)
        .expect("open");
    let handles: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(i, mut w)| {
            std::thread::spawn(move || {
                w.start_on_thread().expect("start");
                let base = BLOCK_100000_NONCE - 1000 + 1000 * i as u32;
                let r = NonceRange::new(base, base + 999).expect("range");
                let ctl = ScanControl::new();
                let mut found = Vec::new();
                w.scan(&h, &t, r, &ctl, &mut found).expect("scan");
                found
            })
        })
        .collect();
    let found: Vec<Vec<u32>> = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .collect();
    assert_eq!(found, vec![vec![], vec![BLOCK_100000_NONCE]]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_kernel_matches_brute_force(
        header in proptest::collection::vec(any::<u8>(), 80),
        top in 0u32..0x2000_0000,
        low in any::<[u8; 28]>(),
        start in any::<u32>(),
        len in 1u32..200,
    ) {
        let mut h = [0u8; 80];
        h.copy_from_slice(&header);
        let h = HeaderTemplate(h);
        let mut tb = [0u8; 32];
        tb[..28].copy_from_slice(&low);
        tb[28..].copy_from_slice(&top.to_le_bytes());
        let t = ScanTarget::from_le_bytes(tb);
        let start = start.min(u32::MAX - (len - 1));
        let r = NonceRange::new(start, start + (len - 1)).expect("range");
        let want = brute(&h, &t, r);
        for k in Kernel::available() {
            let mut got = scan(worker(k).as_mut(), &h, &t, r);
            got.sort_unstable();
            prop_assert_eq!(&got, &want, "kernel {}", k);
        }
    }
}
