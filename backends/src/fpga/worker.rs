//! The Icarus driver for one board: sends a job per whole header, reads 4-byte replies as
//! they come, matches each to the current or previous job on the CPU, reports the nonces
//! that meet the target, ends a silent range by timing, and keeps the board alive — reopening
//! an unplugged port, resetting a board that stops finding anything, disabling one that does
//! not come back.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::icarus::{GOLDEN_JOB, IcarusJob, nonce_of};
use super::port::SerialPort;
use super::timing::Timing;
use super::{FpgaConfig, Probed, probe};
use crate::device::{
    BackendError, DeviceInfo, HashWorker, HeaderTemplate, NonceRange, ScanControl, ScanOutcome,
    ScanTarget, sha256d,
};

/// Longest wait in one poll: the bound on how late a cancel (job switch) is seen.
const POLL: Duration = Duration::from_millis(2);
/// A reply's bytes arrive within a fraction of a millisecond, or a USB-UART's latency timer
/// (16 ms on FTDI chips) later; a fragment older than this will never be completed.
const FRAGMENT_GAP: Duration = Duration::from_millis(100);
/// A board with no valid result for this many expected hit intervals is reset...
const IDLE_HIT_INTERVALS: f64 = 12.0;
/// ...but never sooner than this.
const IDLE_MIN: Duration = Duration::from_secs(5);
/// Resets in a row without a valid result in between before the board is disabled.
const MAX_RESETS: u32 = 3;

/// What the line delivered, cut into replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Four bytes in reply position (big-endian W3), valid or not: the caller decides. With
    /// the time its last byte arrived: the reader may hold a reply back while it weighs the
    /// alignment, and the board's timing needs when the hit happened.
    Frame(u32, Instant),
    /// Bytes that can be no reply (a fragment, or the bytes before a realignment).
    Broken,
}

/// Frames compared at each alignment before the reader stays in step or realigns. A frame of
/// stray bytes passes a low hit threshold by chance (17 nonce offsets of two jobs at 8 zero
/// bits: about 1 in 8), so one valid frame proves little; three in a row about 1 in 500.
const LOOKAHEAD_FRAMES: usize = 3;

/// Assembles 4-byte replies from what the line delivers. A glitch that drops or adds bytes
/// (a flush that cut a reply in two, a fragment on the wire) would shift every later reply;
/// so the reader weighs the four alignments by how many of their next `LOOKAHEAD_FRAMES`
/// frames are hits of either job, drops the bytes before the best one as broken, and waits
/// for more bytes while an alignment it can see might still overtake. Staying in step wins
/// ties, but only once a reply has been read in step: right after a job (the flush before it
/// may have cut an old reply) the first frame must win on the evidence too. A fragment
/// nothing follows is dropped after `FRAGMENT_GAP`.
///
/// Public so the fuzz target (`fuzz/`) feeds reply streams through the driver's own reader.
#[derive(Default)]
pub struct ReplyReader {
    pending: Vec<u8>,
    /// When each pending byte arrived.
    arrived: Vec<Instant>,
    last_byte: Option<Instant>,
    /// A reply was cut at a proven alignment since the last `clear`.
    in_step: bool,
}

impl ReplyReader {
    /// The most bytes held between calls: once every alignment's lookahead is complete the
    /// reader always decides.
    pub const MAX_HELD: usize = 4 * LOOKAHEAD_FRAMES + 2;

    /// Forgets what is held and the alignment: the line was flushed for a new job.
    pub fn clear(&mut self) {
        self.pending.clear();
        self.arrived.clear();
        self.last_byte = None;
        self.in_step = false;
    }

    /// Bytes held back for the next call (a fragment, or bytes that may still realign).
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    fn frame(&self, at: usize) -> u32 {
        let p = &self.pending[at..at + 4];
        u32::from_be_bytes([p[0], p[1], p[2], p[3]])
    }

    /// Adds `bytes` and cuts what can be cut; `valid` says whether a frame is a hit of a job
    /// the board may be answering.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        now: Instant,
        valid: impl Fn(u32) -> bool,
        out: &mut Vec<Reply>,
    ) {
        let valid = remembered(valid);
        let went_quiet = |t: Instant| now.saturating_duration_since(t) >= FRAGMENT_GAP;
        if !bytes.is_empty() {
            // What was held went quiet before these bytes came (the reader was not called
            // in between): it is decided on its own, never joined to them.
            if self.last_byte.is_some_and(went_quiet) {
                self.cut(&valid, true, out);
            }
            self.pending.extend_from_slice(bytes);
            self.arrived.resize(self.pending.len(), now);
            self.last_byte = Some(now);
        }
        let quiet = self.last_byte.is_none_or(went_quiet);
        self.cut(&valid, quiet, out);
    }

    /// Decides everything held, as if the line had gone quiet: the caller stops reading (the
    /// range ended, the job was cancelled, the probe is over) and must not lose a reply the
    /// reader was still weighing.
    pub fn finish(&mut self, valid: impl Fn(u32) -> bool, out: &mut Vec<Reply>) {
        self.cut(&remembered(valid), true, out);
    }

    fn cut(&mut self, valid: &impl Fn(u32) -> bool, quiet: bool, out: &mut Vec<Reply>) {
        while let Some(skip) = self.alignment(valid, quiet) {
            if skip == 0 {
                let f = self.frame(0);
                out.push(Reply::Frame(f, self.arrived[3]));
                // A garbled frame proves no alignment.
                self.in_step |= valid(f);
                self.pending.drain(..4);
                self.arrived.drain(..4);
            } else {
                out.push(Reply::Broken);
                self.pending.drain(..skip);
                self.arrived.drain(..skip);
            }
        }
        if quiet && !self.pending.is_empty() {
            out.push(Reply::Broken);
            self.pending.clear();
            self.arrived.clear();
            self.last_byte = None;
        }
    }

    /// How many bytes precede the next reply (0: the next four bytes are one, valid or
    /// garbled), or `None` to wait for bytes that would decide it.
    fn alignment(&self, valid: &impl Fn(u32) -> bool, quiet: bool) -> Option<usize> {
        let len = self.pending.len();
        if len < 4 {
            return None;
        }
        // Per alignment: (hits among its complete lookahead frames, frames still to come).
        // Only alignments whose first frame has arrived take part.
        let tally: Vec<(usize, usize, usize)> = (0..4)
            .filter(|&o| o + 4 <= len)
            .map(|o| {
                let (mut hits, mut unknown) = (0, 0);
                for k in 0..LOOKAHEAD_FRAMES {
                    let at = o + 4 * k;
                    if at + 4 > len {
                        unknown += 1;
                    } else if valid(self.frame(at)) {
                        hits += 1;
                    }
                }
                (o, hits, unknown)
            })
            .collect();
        // In step, ties go to the smallest skip: staying in step. Not yet in step (right
        // after a flush) and with nothing more to come, they go to the alignment that ends
        // where the bytes end: a cut reply's tail comes first, whole replies after it.
        let settled = self.in_step || !quiet;
        let &(best, best_hits, _) = tally.iter().max_by_key(|&&(o, hits, _)| {
            let ends_with_bytes = !settled && (len - o).is_multiple_of(4);
            (hits, ends_with_bytes, std::cmp::Reverse(o))
        })?;
        if quiet {
            return Some(best);
        }
        let in_step = self.in_step && best == 0 && valid(self.frame(0));
        // Leaving the current alignment (or reporting a garbled frame) waits until every
        // alignment's first frame is in.
        if !in_step && len < 7 {
            return None;
        }
        // An alignment whose first frame is a hit and whose frames to come could still
        // outscore the best, or tie it: from a smaller skip once in step, from anywhere
        // before (no alignment is privileged yet).
        let contested = tally.iter().any(|&(o, hits, unknown)| {
            let potential = hits + unknown;
            o != best
                && unknown > 0
                && valid(self.frame(o))
                && (potential > best_hits
                    || (potential == best_hits && (o < best || !self.in_step)))
        });
        (!contested).then_some(best)
    }
}

/// `valid` with its answers kept for one call: the lookahead asks about the same frames again
/// as replies are cut, and each answer costs up to 34 SHA-256 compressions.
fn remembered(valid: impl Fn(u32) -> bool) -> impl Fn(u32) -> bool {
    let answers = std::cell::RefCell::new(Vec::<(u32, bool)>::new());
    move |f| {
        let known = answers.borrow().iter().find(|a| a.0 == f).map(|a| a.1);
        known.unwrap_or_else(|| {
            let v = valid(f);
            answers.borrow_mut().push((f, v));
            v
        })
    }
}

/// Time for the job's 64 bytes (8N1: 10 bits each) to cross the line: the board starts
/// when the last one is in.
fn transmit_time(baud: u32) -> Duration {
    Duration::from_secs_f64(640.0 / f64::from(baud.max(1)))
}

/// What a probe learnt from a board's answers to one job.
pub(super) struct ProbeAnswer {
    /// The first valid hit.
    pub w3: u32,
    /// (hashes done, seconds) at the last valid hit heard, when it came late enough after
    /// the job to time the board rather than the serial line.
    pub timed: Option<(f64, f64)>,
}

/// Seconds a probe keeps listening after the first hit, for more hits to time the board by.
const PROBE_LISTEN: Duration = Duration::from_millis(400);
/// A hit this long after the job times the board, not the line.
const PROBE_MIN_TIMED: f64 = 0.05;

/// Sends `job` and waits up to `timeout` for its first valid hit, then listens a little
/// longer for later hits to measure the board's speed by. Replies that are not hits of `job`
/// are skipped (what was queued from before), and named if nothing better comes.
pub(super) fn probe_job(
    port: &mut SerialPort,
    config: &FpgaConfig,
    job: &IcarusJob,
    timeout: Duration,
) -> Result<ProbeAnswer, String> {
    port.flush();
    port.write_all(&job.to_bytes(), Duration::from_secs(1))
        .map_err(|e| format!("writing the job: {e}"))?;
    let t0 = Instant::now() + transmit_time(config.baud);
    let deadline = Instant::now() + timeout;
    let mut reader = ReplyReader::default();
    let mut frames = Vec::new();
    let mut junk = None;
    let mut first = None;
    let mut timed = None;
    let mut buf = [0u8; 64];
    loop {
        let now = Instant::now();
        let until = match first {
            Some(_) => t0 + PROBE_LISTEN,
            None => deadline,
        };
        // The last round decides what the reader still holds.
        let over = now >= until;
        frames.clear();
        let valid = |r| job.match_reply(r, config.zero_bits).is_some();
        if over {
            reader.finish(valid, &mut frames);
        } else {
            let n = port
                .read(&mut buf, (until - now).min(Duration::from_millis(20)))
                .map_err(|e| format!("reading: {e}"))?;
            reader.feed(&buf[..n], Instant::now(), valid, &mut frames);
        }
        for &r in &frames {
            let Reply::Frame(r, at) = r else { continue };
            match job.match_reply(r, config.zero_bits) {
                Some(w3) => {
                    first.get_or_insert(w3);
                    let secs = at.saturating_duration_since(t0).as_secs_f64();
                    if secs > PROBE_MIN_TIMED {
                        timed = Some((config.hashes_at(w3), secs));
                    }
                }
                None => junk = Some(r),
            }
        }
        if over {
            break;
        }
    }
    match first {
        Some(w3) => Ok(ProbeAnswer { w3, timed }),
        None => Err(match junk {
            Some(r) => format!("answered {r:08x}, which is not a hit of the golden job"),
            None => format!(
                "no answer to the golden job within {:.1} s",
                timeout.as_secs_f64()
            ),
        }),
    }
}

pub struct IcarusWorker {
    config: FpgaConfig,
    info: DeviceInfo,
    path: PathBuf,
    /// `None` while the board is away (unplugged) or being reset.
    port: Option<SerialPort>,
    timing: Timing,
    reader: ReplyReader,
    /// The job sent before the current one: replies on their way when it was replaced.
    previous: Option<IcarusJob>,
    last_valid: Instant,
    resets_in_a_row: u32,
    gone_since: Option<Instant>,
}

impl IcarusWorker {
    pub(super) fn new(config: FpgaConfig, probed: Probed) -> IcarusWorker {
        let path = probed.port.path().to_path_buf();
        IcarusWorker {
            config,
            info: probed.info,
            path,
            port: Some(probed.port),
            timing: probed.timing,
            reader: ReplyReader::default(),
            // The probe's golden job is what the board may still be answering.
            previous: Some(IcarusJob::from_bytes(&GOLDEN_JOB)),
            last_valid: Instant::now(),
            resets_in_a_row: 0,
            gone_since: None,
        }
    }

    /// The board's speed as calibrated so far, in hashes per second.
    pub fn hashrate(&self) -> f64 {
        self.timing.hashrate()
    }

    /// Samples the calibration has taken.
    pub fn calibration_samples(&self) -> u64 {
        self.timing.samples()
    }

    fn label(&self) -> String {
        self.path.display().to_string()
    }

    /// Makes sure the port is open, probing a board that comes back after being away.
    fn ensure_port(&mut self) -> Result<(), BackendError> {
        if self.port.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        match probe(&self.config, &self.path, self.info.index) {
            Ok(p) => {
                if self.gone_since.take().is_some() {
                    info!(board = %self.label(), "FPGA board is back");
                }
                self.port = Some(p.port);
                self.reader.clear();
                self.previous = Some(IcarusJob::from_bytes(&GOLDEN_JOB));
                self.last_valid = now;
                Ok(())
            }
            Err(e) => {
                let since = *self.gone_since.get_or_insert(now);
                if now.saturating_duration_since(since) > self.config.gone_limit {
                    return Err(BackendError::Disabled(format!(
                        "{} has been away for {:.0} s: {e}",
                        self.label(),
                        self.config.gone_limit.as_secs_f64()
                    )));
                }
                Err(BackendError::Device(format!("waiting for the board: {e}")))
            }
        }
    }

    fn lost(&mut self, e: std::io::Error) -> BackendError {
        self.port = None;
        self.gone_since.get_or_insert_with(Instant::now);
        warn!(board = %self.label(), error = %e, "FPGA board lost");
        BackendError::Device(format!("{}: port lost: {e}", self.label()))
    }

    /// How long without a valid result before the board counts as hung.
    fn idle_limit(&self) -> Duration {
        let hit_interval = self.timing.hs() * 2f64.powi(self.config.zero_bits as i32);
        Duration::from_secs_f64(IDLE_HIT_INTERVALS * hit_interval).max(IDLE_MIN)
    }

    /// Reset: close, reopen and re-probe. A board that fails it, or that is reset again and
    /// again without a result in between, is disabled.
    fn reset(&mut self) -> Result<(), BackendError> {
        self.resets_in_a_row += 1;
        warn!(
            board = %self.label(),
            idle_secs = self.last_valid.elapsed().as_secs_f64(),
            reset = self.resets_in_a_row,
            "FPGA board found nothing for too long; resetting it"
        );
        self.port = None;
        if self.resets_in_a_row > MAX_RESETS {
            return Err(BackendError::Disabled(format!(
                "{} found nothing valid through {MAX_RESETS} resets",
                self.label()
            )));
        }
        match probe(&self.config, &self.path, self.info.index) {
            Ok(p) => {
                self.port = Some(p.port);
                self.reader.clear();
                self.previous = Some(IcarusJob::from_bytes(&GOLDEN_JOB));
                self.last_valid = Instant::now();
                Ok(())
            }
            Err(e) => Err(BackendError::Disabled(format!(
                "{} failed its reset: {e}",
                self.label()
            ))),
        }
    }
}

impl HashWorker for IcarusWorker {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn searches_whole_headers(&self) -> bool {
        true
    }

    fn scan(
        &mut self,
        header: &HeaderTemplate,
        target: &ScanTarget,
        range: NonceRange,
        ctl: &ScanControl,
        found: &mut Vec<u32>,
    ) -> Result<ScanOutcome, BackendError> {
        self.scan_streaming(header, target, range, ctl, &mut |n| found.push(n))
    }

    fn scan_streaming(
        &mut self,
        header: &HeaderTemplate,
        target: &ScanTarget,
        range: NonceRange,
        ctl: &ScanControl,
        on_found: &mut dyn FnMut(u32),
    ) -> Result<ScanOutcome, BackendError> {
        if range != NonceRange::FULL {
            return Err(BackendError::Device(
                "an Icarus board searches whole headers: it needs the full nonce range".into(),
            ));
        }
        self.ensure_port()?;
        let job = IcarusJob::from_header(header);
        let Some(port) = self.port.as_mut() else {
            return Err(BackendError::Device("no port".into()));
        };
        port.flush();
        self.reader.clear();
        if let Err(e) = port.write_all(&job.to_bytes(), Duration::from_secs(1)) {
            return Err(self.lost(e));
        }
        let t0 = Instant::now() + transmit_time(self.config.baud);
        let range_hashes = self.config.range_hashes();
        let zero_bits = self.config.zero_bits;
        let mut credited = 0u64;
        let mut evidence = 0.0f64;
        let mut cancelled;
        let mut frames = Vec::new();
        // A board (or a USB-UART under load) may deliver one reply twice: a nonce is reported
        // once per job, never as a duplicate share.
        let mut reported = std::collections::HashSet::new();
        let mut buf = [0u8; 256];
        loop {
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(t0);
            // Credited as it goes, so hashrate is live; never less than the hits prove, and
            // only what they prove while the board's speed is a guess.
            let done = if self.timing.is_known() {
                self.timing
                    .hashes_after(elapsed.as_secs_f64(), range_hashes)
                    .max(evidence)
            } else {
                evidence
            };
            if done as u64 > credited {
                ctl.add_hashes(done as u64 - credited);
                credited = done as u64;
            }
            cancelled = ctl.is_cancelled();
            let ending = cancelled || elapsed >= self.timing.range_timeout(range_hashes);
            // None: the last round, which decides what the reader still holds.
            let n = match (ending, self.port.as_mut()) {
                (false, Some(port)) => match port.read(&mut buf, POLL) {
                    Ok(n) => Some(n),
                    Err(e) => return Err(self.lost(e)),
                },
                _ => None,
            };
            let now = Instant::now();
            frames.clear();
            let previous = self.previous;
            let valid = |r| {
                job.match_reply(r, zero_bits).is_some()
                    || previous.is_some_and(|p| p.match_reply(r, zero_bits).is_some())
            };
            match n {
                Some(n) => self.reader.feed(&buf[..n], now, valid, &mut frames),
                None => self.reader.finish(valid, &mut frames),
            }
            for &r in &frames {
                let (r, at) = match r {
                    Reply::Frame(r, at) => (r, at),
                    Reply::Broken => {
                        debug!(board = %self.label(), "broken reply bytes dropped");
                        ctl.add_hardware_error();
                        continue;
                    }
                };
                if let Some(w3) = job.match_reply(r, zero_bits) {
                    if !reported.insert(w3) {
                        debug!(board = %self.label(), reply = format!("{r:08x}"), "repeated reply dropped");
                        continue;
                    }
                    let hashes = self.config.hashes_at(w3);
                    evidence = evidence.max(hashes);
                    let secs = at.saturating_duration_since(t0).as_secs_f64();
                    self.timing.record(hashes, secs, range_hashes);
                    self.last_valid = now;
                    self.resets_in_a_row = 0;
                    let nonce = nonce_of(w3);
                    // A hit at the board's threshold that misses the pool's target is work
                    // done, not an error.
                    if target.is_met_by(&sha256d(&header.with_nonce(nonce))) {
                        on_found(nonce);
                    }
                } else if self
                    .previous
                    .is_some_and(|p| p.match_reply(r, zero_bits).is_some())
                {
                    // On its way when the job was replaced: valid work, of a header the
                    // engine has moved on from.
                    self.last_valid = now;
                    debug!(board = %self.label(), reply = format!("{r:08x}"), "late hit of the previous job");
                } else {
                    // Neither job's: the engine re-hashes it and counts the hardware error.
                    on_found(r.swap_bytes());
                }
            }
            if n.is_none() {
                break;
            }
        }
        self.previous = Some(job);
        let finished = !cancelled;
        if finished && self.config.reopen {
            // Some USB-UARTs deliver nothing more after a silent stretch until reopened.
            self.port = None;
            match SerialPort::open(&self.path, self.config.baud) {
                Ok(p) => self.port = Some(p),
                Err(e) => {
                    warn!(board = %self.label(), error = %e, "reopening the port failed");
                    self.gone_since.get_or_insert_with(Instant::now);
                }
            }
        }
        if self.last_valid.elapsed() > self.idle_limit() {
            self.reset()?;
        }
        Ok(ScanOutcome {
            hashes_done: credited,
            cancelled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first reply after a flush waits for evidence of its alignment (here: the quiet
    /// line) and keeps the time it arrived; once in step, replies are cut as they complete.
    #[test]
    fn replies_are_assembled_across_reads_and_fragments_expire() {
        let good = [0x0001_87a2u32, 0x0102_0304, 0x0506_0708];
        let valid = |f: u32| good.contains(&f);
        let mut r = ReplyReader::default();
        let t = Instant::now();
        let t1 = t + Duration::from_millis(1);
        let mut out = Vec::new();
        r.feed(&[0x00, 0x01], t, valid, &mut out);
        r.feed(&[0x87, 0xa2], t1, valid, &mut out);
        assert!(out.is_empty());
        r.feed(&[], t1 + FRAGMENT_GAP, valid, &mut out);
        assert_eq!(out, vec![Reply::Frame(0x0001_87a2, t1)]);
        out.clear();
        let t2 = t1 + FRAGMENT_GAP * 2;
        r.feed(&[1, 2, 3, 4, 0xde], t2, valid, &mut out);
        assert_eq!(out, vec![Reply::Frame(0x0102_0304, t2)]);
        out.clear();
        r.feed(&[], t2 + Duration::from_millis(10), valid, &mut out);
        assert!(out.is_empty());
        r.feed(&[], t2 + FRAGMENT_GAP, valid, &mut out);
        assert_eq!(out, vec![Reply::Broken]);
        out.clear();
        let t3 = t2 + FRAGMENT_GAP * 2;
        r.feed(&[5, 6, 7, 8], t3, valid, &mut out);
        assert_eq!(out, vec![Reply::Frame(0x0506_0708, t3)]);
        // A new job: the alignment is forgotten with the flushed line.
        r.clear();
        out.clear();
        r.feed(&[5, 6, 7, 8], t3, valid, &mut out);
        assert!(out.is_empty());
    }

    /// Seen on the simulated board under load: the flush before a job cut an old reply, its
    /// last three bytes came first, and the four bytes from the second of them happened to be
    /// a hit at a low threshold. The reader waits for the alignment the next replies confirm
    /// instead of taking the first hit it sees, so no reply of the new job is lost.
    #[test]
    fn a_chance_hit_across_a_cut_reply_does_not_win_the_alignment() {
        let chance = 0x9012_ffffu32;
        let replies = [0xffff_00b5u32, 0xffff_023e, 0xffff_024d];
        let valid = |f: u32| f == chance || replies.contains(&f);
        let mut stream = vec![0xff, 0x90, 0x12];
        for r in replies {
            stream.extend_from_slice(&r.to_be_bytes());
        }
        let t = Instant::now();
        let expected = [
            Reply::Broken,
            Reply::Frame(replies[0], t),
            Reply::Frame(replies[1], t),
            Reply::Frame(replies[2], t),
        ];
        // As the reads came in the failing run, then byte by byte, then all at once.
        let cuts: [&[usize]; 3] = [&[3, 4, 2, 2, 3, 1], &[1; 15], &[15]];
        for cut in cuts {
            let mut r = ReplyReader::default();
            let mut out = Vec::new();
            let mut at = 0;
            for &n in cut {
                r.feed(&stream[at..at + n], t, valid, &mut out);
                at += n;
                assert!(r.buffered() <= ReplyReader::MAX_HELD);
            }
            assert_eq!(out, expected, "reads of {cut:?}");
            assert_eq!(r.buffered(), 0);
        }
    }

    /// Found in review: right after a flush, a chance hit that ties with the real reply must
    /// not win because it starts first; a reply still held when the caller stops reading is
    /// decided, not dropped; and a fragment that went quiet before new bytes came is never
    /// joined to them.
    #[test]
    fn ties_after_a_flush_held_replies_and_stale_fragments() {
        let reply = 0x1111_1111u32;
        let chance = 0xff90_1211u32;
        let valid = |f: u32| f == reply || f == chance;
        let t = Instant::now();
        let mut out = Vec::new();
        let mut r = ReplyReader::default();
        r.feed(
            &[0xff, 0x90, 0x12, 0x11, 0x11, 0x11, 0x11],
            t,
            valid,
            &mut out,
        );
        assert!(out.is_empty(), "a tie right after a flush waits: {out:?}");
        r.feed(&[], t + FRAGMENT_GAP, valid, &mut out);
        assert_eq!(out, vec![Reply::Broken, Reply::Frame(reply, t)]);

        // Held, then the scan ends: `finish` reports it with its arrival time.
        let mut r = ReplyReader::default();
        out.clear();
        r.feed(&reply.to_be_bytes(), t, valid, &mut out);
        assert!(out.is_empty());
        r.finish(valid, &mut out);
        assert_eq!(out, vec![Reply::Frame(reply, t)]);
        assert_eq!(r.buffered(), 0);

        // In step, a 2-byte fragment, then nothing read for longer than the gap, then a
        // reply whose first two bytes would make a chance hit with the fragment.
        let chance = 0xabcd_2222u32;
        let replies = [0x2222_2222u32, 0x3333_3333];
        let valid = |f: u32| f == chance || replies.contains(&f);
        let mut r = ReplyReader::default();
        out.clear();
        r.feed(&replies[1].to_be_bytes(), t, valid, &mut out);
        r.feed(&[], t + FRAGMENT_GAP, valid, &mut out);
        assert_eq!(out, vec![Reply::Frame(replies[1], t)]);
        out.clear();
        let t2 = t + FRAGMENT_GAP * 2;
        r.feed(&[0xab, 0xcd], t2, valid, &mut out);
        let t3 = t2 + FRAGMENT_GAP * 2;
        r.feed(&replies[0].to_be_bytes(), t3, valid, &mut out);
        assert_eq!(out, vec![Reply::Broken, Reply::Frame(replies[0], t3)]);
    }

    /// Two stray bytes before a reply: the reader drops them and is back in step, instead of
    /// shifting every later reply by two bytes.
    #[test]
    fn stray_bytes_are_dropped_and_replies_realign() {
        let good = [0x1111_1111u32, 0x2222_2222, 0x3333_3333];
        let valid = |f: u32| good.contains(&f);
        let mut r = ReplyReader::default();
        let t = Instant::now();
        let mut out = Vec::new();
        let mut bytes = vec![0xa5, 0x5a];
        for g in good {
            bytes.extend_from_slice(&g.to_be_bytes());
        }
        r.feed(&bytes, t, valid, &mut out);
        assert_eq!(
            out,
            vec![
                Reply::Broken,
                Reply::Frame(good[0], t),
                Reply::Frame(good[1], t),
                Reply::Frame(good[2], t)
            ]
        );
        // Four bytes that are no hit and not followed by one: reported as a frame (the
        // engine's CPU re-check counts it) once the line is quiet.
        out.clear();
        r.feed(&[0xde, 0xad, 0xbe, 0xef], t, valid, &mut out);
        assert!(out.is_empty());
        r.feed(&[], t + FRAGMENT_GAP, valid, &mut out);
        assert_eq!(out, vec![Reply::Frame(0xdead_beef, t)]);
    }

    #[test]
    fn golden_job_decodes() {
        let job = IcarusJob::from_bytes(&GOLDEN_JOB);
        assert!(job.match_reply(0x0001_87a2, 32).is_some());
        assert_eq!(
            transmit_time(115200),
            Duration::from_secs_f64(640.0 / 115200.0)
        );
    }
}
