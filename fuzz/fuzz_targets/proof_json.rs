//! snarkjs JSON (`proofs::json`): the input is up to three documents separated by NUL bytes,
//! `proof.json`, `verification_key.json` and `public.json` (each part is also tried as every
//! kind). What parses must be written back in snarkjs's shape and read again to the same
//! value; a proof, a key and public signals that all parse go through the verifier, which must
//! answer (true, false or an error for a wrong count), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proofs::json::{public_from_json, public_to_json};
use proofs::{Proof, VerifyingKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut proof = None;
    let mut vk = None;
    let mut public = None;
    for part in text.splitn(3, '\0') {
        if let Ok(p) = Proof::from_json(part) {
            assert_eq!(Proof::from_json(&p.to_json()), Ok(p));
            proof = Some(p);
        }
        if let Ok(k) = VerifyingKey::from_json(part) {
            assert_eq!(VerifyingKey::from_json(&k.to_json()).as_ref(), Ok(&k));
            vk = Some(k);
        }
        if let Ok(s) = public_from_json(part) {
            assert_eq!(public_from_json(&public_to_json(&s)).as_ref(), Ok(&s));
            public = Some(s);
        }
    }
    if let (Some(p), Some(k), Some(s)) = (proof, vk, public) {
        let _ = proofs::verify(&k, &p, &s);
    }
});
