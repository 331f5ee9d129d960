//! snarkjs `.zkey` proving keys (`proofs::zkey`, over `proofs::binfile`): the input is the
//! file, read as the prover and the pool read one (header, verification key, coefficients,
//! every point query). Nothing may panic or allocate beyond what the file's size justifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofs::binfile::FileBytes;
use proofs::zkey::{Query, ZkeyFile};

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
});
