//! Icarus reply streams (`backends::fpga`): the bytes a board sends back, cut by the driver's
//! own `ReplyReader` into 4-byte replies and matched to the current or previous job the way
//! the driver's scan loop does. The input picks the board's hit threshold and the job, then
//! gives the stream as chunks, each read after a gap of up to 255 ms (so fragments expire,
//! as on a real line).
//!
//! Bounds: the reader never holds more than the `ReplyReader::MAX_HELD` bytes its lookahead
//! may need, holds nothing once the line is quiet, and never reports more replies than 4-byte
//! frames it was given.
#![no_main]

use std::time::{Duration, Instant};

use backends::fpga::icarus::{GOLDEN_JOB, IcarusJob, nonce_of};
use backends::fpga::{Reply, ReplyReader};
use libfuzzer_sys::fuzz_target;

/// Longer than the reader's fragment timeout: the line counts as quiet after it.
const QUIET: Duration = Duration::from_millis(100);

fuzz_target!(|data: &[u8]| {
    let [zero_bits, job_seed, rest @ ..] = data else {
        return;
    };
    // Low thresholds make most frames hits, high ones almost none: both paths matter.
    let zero_bits = u32::from(*zero_bits % 33);
    let mut job_bytes = GOLDEN_JOB;
    job_bytes[63] ^= *job_seed;
    let job = IcarusJob::from_bytes(&job_bytes);
    let previous = IcarusJob::from_bytes(&GOLDEN_JOB);
    let valid = |r: u32| {
        job.match_reply(r, zero_bits).is_some() || previous.match_reply(r, zero_bits).is_some()
    };
    let mut reader = ReplyReader::default();
    let mut now = Instant::now();
    let mut out = Vec::new();
    let (mut fed, mut frames) = (0usize, 0usize);
    let mut rest = rest;
    while let [len, gap, tail @ ..] = rest {
        let n = usize::from(*len % 64).min(tail.len());
        let (chunk, after) = tail.split_at(n);
        rest = after;
        now += Duration::from_millis(u64::from(*gap));
        out.clear();
        reader.feed(chunk, now, valid, &mut out);
        fed += chunk.len();
        assert!(
            reader.buffered() <= ReplyReader::MAX_HELD,
            "{} bytes held",
            reader.buffered()
        );
        for r in &out {
            let Reply::Frame(r, _) = *r else { continue };
            frames += 1;
            // What the scan loop does with a frame: the current job's hit, the previous
            // job's late hit, or a nonce for the engine to re-check.
            let _ = match job.match_reply(r, zero_bits) {
                Some(w3) => nonce_of(w3),
                None => previous
                    .match_reply(r, zero_bits)
                    .map_or(r.swap_bytes(), nonce_of),
            };
        }
        assert!(frames * 4 <= fed, "{frames} replies from {fed} bytes");
    }
    out.clear();
    reader.feed(&[], now + QUIET, valid, &mut out);
    assert_eq!(reader.buffered(), 0, "a quiet line leaves nothing held");
});
