//! snarkjs `.zkey` proving keys (`proofs::zkey`, over `proofs::binfile`): the input is the
//! file, read as the prover and the pool read one (header, verification key, coefficients,
//! every point query), then proven once with the key streamed (`prove_once`: the coefficients
//! summed straight from the file, each query read in place) against a witness of the header's
//! size. Nothing may panic or allocate beyond what the file's size justifies.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use proofs::binfile::FileBytes;
use proofs::prover::{ProveOptions, prove_once};
use proofs::zkey::{Query, ZkeyFile};
use proofs::{Fr, Witness};

fuzz_target!(|data: &[u8]| {
    let Ok(z) = ZkeyFile::from_bytes(FileBytes::from_vec("fuzz.zkey", data.to_vec())) else {
        return;
    };
    let _ = z.verifying_key();
    let _ = z.coefs();
    for q in [Query::A, Query::B1, Query::C, Query::H, Query::Ic] {
        let _ = z.g1_query(q);
    }
    let _ = z.b2_query();
    // A witness as large as the header says, where the file could hold its points at all
    // (every variable has an A point of 64 bytes): 1, then small values.
    let n = z.header.n_vars as usize;
    if n <= data.len() / 64 {
        let witness = Witness {
            values: (0..n as u64).map(|i| Fr::from(i + 1).into()).collect(),
        };
        let backend = Arc::new(backends::prove::CpuProveBackend::new());
        let opts = ProveOptions { self_check: true };
        let _ = prove_once(&z, backend, &witness, opts);
    }
});
