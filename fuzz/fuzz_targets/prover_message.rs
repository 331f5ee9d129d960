//! `prover.*` messages (`stratum::proving`): each line of the input is parsed as a JSON-RPC
//! line and its params as the method it names (`prover.subscribe`, `prover.notify`,
//! `prover.submit`), whatever the method says (a hostile peer picks it), then a job's witness
//! is read and a submit's proof and public signals go through the pool's own checks
//! (`proofs::json`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stratum::message::Incoming;
use stratum::proving::{ProofJob, ProofSubmit, ProverCapabilities, WitnessSource};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        let params = match Incoming::parse(line) {
            Ok(Incoming::Request { params, .. }) => params,
            Ok(Incoming::Response { result, .. }) => vec![result],
            Err(_) => continue,
        };
        if let Ok(caps) = ProverCapabilities::from_params(&params) {
            assert_eq!(
                ProverCapabilities::from_params(&caps.to_params()).ok(),
                Some(caps.clone())
            );
            let _ = caps.accepts_groth16_bn254(1 << 10);
        }
        if let Ok(job) = ProofJob::from_params(&params) {
            assert_eq!(
                ProofJob::from_params(&job.to_params()).ok(),
                Some(job.clone())
            );
            let _ = stratum::http::HttpUrl::parse(&job.zkey_url, "pool.example");
            match &job.witness {
                WitnessSource::Inline(bytes) => {
                    let _ = proofs::Witness::parse(bytes);
                }
                WitnessSource::Url { url, .. } => {
                    let _ = stratum::http::HttpUrl::parse(url, "pool.example");
                }
            }
        }
        if let Ok(submit) = ProofSubmit::from_params(&params) {
            assert_eq!(
                ProofSubmit::from_params(&submit.to_params()).ok(),
                Some(submit.clone())
            );
            // As the built-in pool reads a submit (`server::proving`).
            let _ = proofs::Proof::from_json(&submit.proof.to_string());
            let _ =
                proofs::json::public_from_json(&serde_json::Value::from(submit.public).to_string());
        }
    }
});
