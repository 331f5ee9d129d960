//! circom `.r1cs` constraint systems (`proofs::r1cs`, over `proofs::binfile`): the input is
//! the file. A system that parses checks a witness of the right length (all ones), as
//! `rigworker prove --r1cs` does with a real one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofs::Witness;
use proofs::r1cs::R1cs;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = R1cs::parse(data) else {
        return;
    };
    let _ = r.n_public();
    // Bounded by the file: every wire a constraint names was checked against n_wires, but
    // n_wires itself is only a header field.
    if r.n_wires <= 1 << 16 {
        let one = Witness {
            values: vec![1u64.into(); r.n_wires as usize],
        };
        let _ = r.check_witness(&one);
    }
});
