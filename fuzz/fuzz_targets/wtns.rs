//! `.wtns` witness files (`proofs::wtns`, over `proofs::binfile`): the input is the file, or
//! the inline witness of a proving job. What parses must serialise back to a file that parses
//! to the same witness.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofs::Witness;

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = Witness::parse(data) {
        assert_eq!(Witness::parse(&w.to_bytes()).as_ref(), Ok(&w));
        let _ = w.public(w.len());
    }
});
