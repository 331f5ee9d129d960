//! CPU SHA-256d search throughput: every kernel this CPU supports scans a fixed 1 Mi-nonce
//! range (block 100000's header, a target nothing meets) on one thread, then on two threads
//! (one worker each, pinned). Throughput is in elements = nonces, so criterion's `Melem/s`
//! reads as MH/s.
//!
//! `cargo bench -p rigworker-benches --bench cpu_hash -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use backends::cpu::{CpuBackend, Kernel};
use backends::{HashBackend, HashWorker, HeaderTemplate, NonceRange, ScanControl, ScanTarget};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rigworker_benches::BLOCK_100000_HEADER_HEX;

/// Nonces per worker and iteration.
const NONCES: u32 = 1 << 20;

fn header() -> HeaderTemplate {
    let hex = BLOCK_100000_HEADER_HEX.as_bytes();
    let mut h = [0u8; 80];
    for (i, b) in h.iter_mut().enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).expect("hex digit") as u8;
        *b = digit(hex[2 * i]) << 4 | digit(hex[2 * i + 1]);
    }
    HeaderTemplate(h)
}

/// Scans `NONCES` nonces starting at `start`; the target is zero, so nothing is found and
/// every nonce is hashed.
fn scan(w: &mut dyn HashWorker, h: &HeaderTemplate, start: u32) {
    let target = ScanTarget::from_le_bytes([0; 32]);
    let ctl = ScanControl::new();
    let mut found = Vec::new();
    let range = NonceRange::new(start, start + (NONCES - 1)).expect("range");
    let out = w.scan(h, &target, range, &ctl, &mut found).expect("scan");
    assert_eq!(out.hashes_done, u64::from(NONCES));
    black_box(found);
}

fn kernels() -> Vec<Kernel> {
    for k in Kernel::ALL {
        if !k.is_supported() {
            eprintln!(
                "skipping kernel {k}: this CPU lacks {}",
                k.required_features()
            );
        }
    }
    Kernel::available()
}

fn one_thread(c: &mut Criterion) {
    let h = header();
    let mut g = c.benchmark_group("cpu_sha256d_1_thread");
    g.throughput(Throughput::Elements(u64::from(NONCES)));
    for k in kernels() {
        let mut workers = CpuBackend::with_kernel(k).open(0, 1).expect("open");
        let w = &mut workers[0];
        w.start_on_thread().expect("start");
        g.bench_function(k.name(), |b| b.iter(|| scan(w.as_mut(), &h, 1_000_000)));
    }
    g.finish();
}

fn two_threads(c: &mut Criterion) {
    let h = header();
    let mut g = c.benchmark_group("cpu_sha256d_2_threads");
    g.throughput(Throughput::Elements(2 * u64::from(NONCES)));
    for k in kernels() {
        let mut workers = CpuBackend::with_kernel(k)
            .pin_threads(true)
            .open(0, 2)
            .expect("open");
        g.bench_function(k.name(), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for (i, w) in workers.iter_mut().enumerate() {
                        let h = &h;
                        s.spawn(move || {
                            w.start_on_thread().expect("start");
                            scan(w.as_mut(), h, 1_000_000 + i as u32 * NONCES);
                        });
                    }
                });
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // One iteration is a whole 1 Mi-nonce scan (30 ms to 0.4 s), so few samples suffice.
    config = Criterion::default().sample_size(10);
    targets = one_thread, two_threads
}
criterion_main!(benches);
