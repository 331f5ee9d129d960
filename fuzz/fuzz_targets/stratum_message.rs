//! Stratum V1 lines through `stratum::message`: each line of the input is parsed as the client
//! and the built-in pool parse what they read (`Incoming`, then `PoolMessage` or
//! `MinerRequest`, `SubscribeResult` for answers), and a job that parses is turned into
//! headers by the work model, as the engine does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stratum::message::{Incoming, MinerRequest, PoolMessage, SubscribeResult, error_reason};
use stratum::work::{ExtraNonce2, Extranonce};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        match Incoming::parse(line) {
            Ok(Incoming::Request { method, params, .. }) => {
                if let Ok(PoolMessage::Notify(job)) = PoolMessage::parse(&method, &params) {
                    // What the pool sent must survive a round trip through our own encoding.
                    let again = PoolMessage::parse("mining.notify", &job.notify_params());
                    assert_eq!(again.ok(), Some(PoolMessage::Notify(job.clone())));
                    if let Ok(en) = Extranonce::new("01020304", 4)
                        && let Ok(en2) = ExtraNonce2::new(7, 4)
                    {
                        let h =
                            job.header(&en, &en2, job.ntime, job.rolled_version(0x1fffe000, !0));
                        let _ = h.with_nonce(1).hash();
                    }
                    let _ = job.block_target();
                }
                let _ = MinerRequest::parse(&method, &params);
            }
            Ok(Incoming::Response { result, error, .. }) => {
                let _ = SubscribeResult::parse(&result);
                let _ = error_reason(&error);
            }
            Err(_) => {}
        }
    }
});
