//! Truncated and corrupted `.zkey` / `.wtns` / `.r1cs` files: every one gives an error or (where the
//! damage is harmless) a checked result — never a panic, and never a single allocation larger
//! than the file itself (a global allocator here records the largest one).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use proofs::binfile::FileBytes;
use proofs::prover::{PreparedKey, ProveOptions};
use proofs::zkey::ZkeyFile;
use proofs::{Error, Precompute, Witness};
use proptest::prelude::*;

struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// The allocation record is process-wide: one check at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
    )
    .unwrap()
}

fn backend() -> Arc<dyn proofs::ProveBackend> {
    Arc::new(backends::prove::CpuProveBackend::new())
}

/// Loads (and, if that works, proves with) a possibly damaged zkey and witness, both with the
/// key resident and streamed (`prove_once`, which reads the coefficients and queries only during
/// the proof); returns the outcome and the largest allocation made meanwhile. The two ways must
/// agree on whether the files are usable.
fn attempt(zkey: Vec<u8>, wtns: Vec<u8>) -> (Result<(), Error>, usize) {
    LARGEST.store(0, Ordering::Relaxed);
    let res = (|| {
        let w = Witness::parse(&wtns).map_err(|k| Error::Format {
            path: "w.wtns".into(),
            kind: k,
        })?;
        let z = ZkeyFile::from_bytes(FileBytes::from_vec("c.zkey", zkey))?;
        let streamed = proofs::prover::prove_once(&z, backend(), &w, ProveOptions::default());
        let resident = PreparedKey::from_zkey(&z, backend(), Precompute::None, Instant::now())
            .and_then(|key| key.prove(&w, ProveOptions::default()));
        assert_eq!(
            streamed.is_ok(),
            resident.is_ok(),
            "streamed {:?} but resident {:?}",
            streamed.as_ref().err(),
            resident.as_ref().err()
        );
        resident.map(|_| ())
    })();
    (res, LARGEST.load(Ordering::Relaxed))
}

fn check(zkey: Vec<u8>, wtns: Vec<u8>) -> Result<(), Error> {
    let bound = zkey.len().max(wtns.len());
    let (res, largest) = attempt(zkey, wtns);
    assert!(
        largest <= bound,
        "an allocation of {largest} bytes for files of at most {bound} bytes ({res:?})"
    );
    res
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn truncated_zkey_is_an_error(cut in 0usize..135_000) {
        let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let mut z = fixture("mulchain.zkey");
        let cut = cut % z.len();
        z.truncate(cut);
        let e = check(z, fixture("mulchain.wtns")).unwrap_err();
        prop_assert!(matches!(e, Error::Format { .. }), "{e}");
    }

    #[test]
    fn truncated_wtns_is_an_error(cut in 0usize..7000) {
        let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let mut w = fixture("mulchain.wtns");
        let cut = cut % w.len();
        w.truncate(cut);
        prop_assert!(check(fixture("mulchain.zkey"), w).is_err());
    }

    #[test]
    fn flipped_zkey_bytes_never_panic(pos in 0usize..135_000, mask in 1u8..=255, header in any::<bool>()) {
        let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let mut z = fixture("mulchain.zkey");
        // Half the cases hit the first kilobyte: section table, header, counts.
        let pos = if header { pos % 1024 } else { pos % z.len() };
        z[pos] ^= mask;
        // Ok happens when the damage is harmless (e.g. in the contributions section); then the
        // self-checked proof is valid.
        let _ = check(z, fixture("mulchain.wtns"));
    }

    #[test]
    fn damaged_r1cs_is_an_error_or_checked(cut in 0usize..55_000, pos in 0usize..55_000, mask in 1u8..=255) {
        let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let r = fixture("mulchain.r1cs");
        let bound = r.len();
        let mut t = r.clone();
        t.truncate(cut % r.len());
        LARGEST.store(0, Ordering::Relaxed);
        prop_assert!(proofs::r1cs::R1cs::parse(&t).is_err());
        let mut f = r.clone();
        // Half the flips in the header and section table, where counts live.
        let pos = if cut % 2 == 0 { pos % 256 } else { pos % r.len() };
        f[pos] ^= mask;
        let _ = proofs::r1cs::R1cs::parse(&f);
        let largest = LARGEST.load(Ordering::Relaxed);
        prop_assert!(largest <= bound, "an allocation of {} bytes for a {}-byte r1cs", largest, bound);
    }

    #[test]
    fn flipped_wtns_bytes_never_panic(pos in 0usize..7000, mask in 1u8..=255) {
        let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let mut w = fixture("mulchain.wtns");
        let pos = pos % w.len();
        w[pos] ^= mask;
        // A changed witness value no longer satisfies the circuit: the self-check must say so.
        prop_assert!(check(fixture("mulchain.zkey"), w).is_err());
    }
}

/// Counts in headers set to huge values: refused before anything that size is allocated.
#[test]
fn huge_counts_are_refused_without_allocating() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let zkey = fixture("mulchain.zkey");
    let wtns = fixture("mulchain.wtns");
    // wtns: section 1 is at 12..; its count field is the last 4 bytes of the 40-byte body.
    let mut w = wtns.clone();
    w[12 + 12 + 36..12 + 12 + 40].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(check(zkey.clone(), w).is_err());
    // wtns: a section length of 2^63.
    let mut w = wtns.clone();
    w[12 + 4..12 + 12].copy_from_slice(&(1u64 << 63).to_le_bytes());
    assert!(check(zkey.clone(), w).is_err());
    // zkey: nVars, nPublic, domainSize and the coefficient count, one at a time.
    let hdr = find_section(&zkey, 2);
    for off in [4 + 32 + 4 + 32, 4 + 32 + 4 + 32 + 4, 4 + 32 + 4 + 32 + 8] {
        for v in [u32::MAX, 1 << 28, 1 << 31] {
            let mut z = zkey.clone();
            z[hdr + off..hdr + off + 4].copy_from_slice(&v.to_le_bytes());
            assert!(check(z, wtns.clone()).is_err());
        }
    }
    let coefs = find_section(&zkey, 4);
    let mut z = zkey.clone();
    z[coefs..coefs + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(check(z, wtns.clone()).is_err());
    // A section count of u32::MAX with nothing behind it.
    let mut z = zkey.clone();
    z[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(check(z, wtns).is_err());
}

/// Offset of the body of section `id` in an iden3 binary file.
fn find_section(data: &[u8], id: u32) -> usize {
    let mut pos = 12;
    loop {
        let sid = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap());
        let len = u64::from_le_bytes(data[pos + 4..pos + 12].try_into().unwrap()) as usize;
        if sid == id {
            return pos + 12;
        }
        pos += 12 + len;
    }
}
