//! What the OpenCL and CUDA backends share, so each of them only has to drive its runtime:
//!
//! - [`KernelJob`]: the per-job kernel arguments (midstate of header bytes 0..64 and the
//!   nonce-independent precomputation, the same as the CPU backend's `cpu/job.rs`), in the
//!   order `kernels/opencl/sha256d_common.h` takes them;
//! - [`DeviceQueue`]: what a backend implements (enqueue a launch into one of two result
//!   slots, wait for it without spinning);
//! - [`scan`]: the launch loop on top of it, with two launches in flight so the device never
//!   idles while the host reads and checks results, no nonce lost when the result buffer
//!   overflows, every candidate re-checked against the full target, cancellation between
//!   launches and hashes credited after each;
//! - [`tune`]: the launch size that makes one launch take about 50–100 ms.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kernels::sha256d::JOB_WORDS;

use crate::sha256::HeaderPrecompute;

use crate::device::{
    BackendError, DeviceInfo, HashWorker, HeaderTemplate, NonceRange, ScanControl, ScanOutcome,
    ScanTarget,
};

/// Result slots, i.e. launches in flight: one running while the host checks the other.
pub(crate) const SLOTS: usize = 2;
/// Result-buffer capacity (nonces) a slot starts with. Real share targets give far fewer
/// candidates per launch; easier ones make the buffer grow (see [`scan`]).
pub(crate) const INITIAL_RESULTS: u32 = 256;
/// The most a slot's buffer grows to (1 MiB): beyond it an overflowing launch is rescanned in
/// pieces instead.
const MAX_RESULTS: u32 = 1 << 18;
/// Launch sizes are `2^MIN_LOG2 ..= 2^MAX_LOG2` nonces. The kernel's nonce count is a u32 and
/// its grid-stride loop must not overflow, hence at most 2^31.
pub(crate) const MIN_LOG2: u32 = 10;
pub(crate) const MAX_LOG2: u32 = 31;
/// The launch duration [`tune`] aims for: long enough that launch overhead is negligible,
/// short enough that cancellation (checked between launches) stays well under a second.
const TUNE_LOW: Duration = Duration::from_millis(50);
const TUNE_HIGH: Duration = Duration::from_millis(100);
const TUNE_AIM: Duration = Duration::from_millis(70);

/// One job as the kernel sees it, plus what the host needs to re-check candidates.
#[derive(Clone, Debug)]
pub(crate) struct KernelJob {
    header: HeaderTemplate,
    target: ScanTarget,
    /// The kernel's per-job arguments, after its `LAUNCH_ARGS` launch arguments.
    pub words: [u32; JOB_WORDS],
}

impl KernelJob {
    pub fn new(header: &HeaderTemplate, target: &ScanTarget) -> KernelJob {
        let p = HeaderPrecompute::new(header);
        let (mid, r3) = (p.mid, p.r3());
        let (w16, w17, w18c, w19c, w31c, w32c) = (p.w16, p.w17, p.w18c, p.w19c, p.w31c, p.w32c);
        let mut words = [0u32; JOB_WORDS];
        words[..8].copy_from_slice(&mid);
        words[8..16].copy_from_slice(&r3);
        words[16..].copy_from_slice(&[w16, w17, w18c, w19c, w31c, w32c, target.top_word()]);
        KernelJob {
            header: *header,
            target: *target,
            words,
        }
    }

    /// The full check every candidate passes before it is reported.
    pub fn meets(&self, nonce: u32) -> bool {
        self.target
            .is_met_by(&crate::device::sha256d(&self.header.with_nonce(nonce)))
    }
}

/// A device's command queue as the launch loop needs it. Slots are `0..SLOTS`; the loop
/// never enqueues into a slot whose launch it has not waited for.
pub(crate) trait DeviceQueue {
    /// The job of every launch enqueued from now on.
    fn set_job(&mut self, job: &KernelJob) -> Result<(), BackendError>;
    /// Capacity of `slot`'s result buffer, in nonces.
    fn capacity(&self, slot: usize) -> u32;
    /// Replaces `slot`'s (idle) result buffer with one of `capacity` nonces.
    fn grow(&mut self, slot: usize, capacity: u32) -> Result<(), BackendError>;
    /// Enqueues, without waiting: zero `slot`'s counter, run the kernel over
    /// `base .. base + count` (`1 <= count <= 2^31`, no wrap), copy the results to the host.
    fn enqueue(&mut self, slot: usize, base: u32, count: u32) -> Result<(), BackendError>;
    /// Blocks (sleeping, not spinning) until `slot`'s launch is done; returns its candidate
    /// counter and appends the first `min(counter, capacity)` candidates to `out`.
    fn wait(&mut self, slot: usize, out: &mut Vec<u32>) -> Result<u32, BackendError>;
}

#[derive(Clone, Copy, Debug)]
struct Launch {
    slot: usize,
    base: u32,
    count: u32,
}

/// Scans `range` of `job` in launches of `launch` nonces, two in flight, and pushes every
/// nonce that meets the job's target into `found`. `candidates` is scratch space kept by the
/// caller.
pub(crate) fn scan(
    q: &mut dyn DeviceQueue,
    launch: u32,
    job: &KernelJob,
    range: NonceRange,
    ctl: &ScanControl,
    found: &mut Vec<u32>,
    candidates: &mut Vec<u32>,
) -> Result<ScanOutcome, BackendError> {
    q.set_job(job)?;
    let launch = u64::from(launch.clamp(1, 1 << MAX_LOG2));
    let end = u64::from(range.end);
    let mut next = u64::from(range.start);
    let mut in_flight: VecDeque<Launch> = VecDeque::with_capacity(SLOTS);
    let mut launches = 0usize;
    let mut done = 0u64;
    let mut stop = false;
    loop {
        // Keep SLOTS launches queued: the device runs one while the host checks the other.
        while in_flight.len() < SLOTS && next <= end && !stop {
            if ctl.is_cancelled() {
                stop = true;
                break;
            }
            let count = (end - next + 1).min(launch) as u32;
            let l = Launch {
                slot: launches % SLOTS,
                base: next as u32,
                count,
            };
            launches += 1;
            q.enqueue(l.slot, l.base, l.count)?;
            in_flight.push_back(l);
            next += u64::from(count);
        }
        // A launch already queued when the scan is cancelled still completes and its nonces
        // are reported: the queue is in order, so the next scan would wait for it anyway, and
        // shares of the old job may still be accepted (the engine decides).
        let Some(l) = in_flight.pop_front() else {
            break;
        };
        collect(q, job, l, found, candidates)?;
        done += u64::from(l.count);
        ctl.add_hashes(u64::from(l.count));
        if ctl.is_cancelled() {
            stop = true;
        }
    }
    Ok(ScanOutcome {
        hashes_done: done,
        cancelled: next <= end,
    })
}

/// Waits for launch `l`, rescanning it when its candidates overflowed the buffer, and pushes
/// the candidates that meet the full target.
fn collect(
    q: &mut dyn DeviceQueue,
    job: &KernelJob,
    l: Launch,
    found: &mut Vec<u32>,
    candidates: &mut Vec<u32>,
) -> Result<(), BackendError> {
    candidates.clear();
    let n = q.wait(l.slot, candidates)?;
    check_count(n, l.count)?;
    if n > q.capacity(l.slot) {
        candidates.clear();
        rescan(q, l, n, candidates)?;
    }
    // A correct kernel reports each nonce once; a faulty one must not make duplicate shares.
    candidates.sort_unstable();
    candidates.dedup();
    found.extend(
        candidates
            .iter()
            .copied()
            .filter(|&c| c.wrapping_sub(l.base) < l.count && job.meets(c)),
    );
    Ok(())
}

fn check_count(n: u32, count: u32) -> Result<(), BackendError> {
    if n > count {
        return Err(BackendError::Device(format!(
            "device reported {n} candidates in a launch of {count} nonces"
        )));
    }
    Ok(())
}

/// Launch `l` found `hits` candidates, more than its slot holds: grow the slot's buffer (up
/// to `MAX_RESULTS`) and run the launch again, splitting any piece that still overflows in
/// halves (a piece no longer than the buffer cannot overflow), so every candidate is read.
fn rescan(
    q: &mut dyn DeviceQueue,
    l: Launch,
    hits: u32,
    out: &mut Vec<u32>,
) -> Result<(), BackendError> {
    let want = hits
        .checked_next_power_of_two()
        .unwrap_or(MAX_RESULTS)
        .min(MAX_RESULTS);
    if want > q.capacity(l.slot) {
        q.grow(l.slot, want)?;
    }
    let mut pieces = vec![(l.base, l.count)];
    while let Some((base, count)) = pieces.pop() {
        q.enqueue(l.slot, base, count)?;
        let start = out.len();
        let n = q.wait(l.slot, out)?;
        check_count(n, count)?;
        if n > q.capacity(l.slot) {
            out.truncate(start);
            let half = count / 2;
            pieces.push((base.wrapping_add(half), count - half));
            pieces.push((base, half));
        }
    }
    Ok(())
}

/// Runs one launch of `2^log2` nonces with an impossible target and returns how long it took
/// from enqueue to results.
fn timed_launch(q: &mut dyn DeviceQueue, log2: u32) -> Result<Duration, BackendError> {
    let mut header = [0u8; 80];
    for (i, b) in header.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    let job = KernelJob::new(&HeaderTemplate(header), &ScanTarget::from_le_bytes([0; 32]));
    q.set_job(&job)?;
    let t0 = Instant::now();
    q.enqueue(0, 0, 1 << log2)?;
    q.wait(0, &mut Vec::new())?;
    Ok(t0.elapsed())
}

/// One small launch, so the first real one does not pay for lazy set-up (pocl compiles the
/// kernel for its work-group size on first use; CUDA JIT-compiles the PTX; first-touch
/// allocations).
pub(crate) fn warm_up(q: &mut dyn DeviceQueue) -> Result<(), BackendError> {
    timed_launch(q, MIN_LOG2).map(|_| ())
}

/// Finds the launch size (as log2 of nonces) whose launch takes about 50–100 ms: times
/// launches with an impossible target, growing geometrically from a small one, and returns
/// the first size in the window (or the nearest one to it).
pub(crate) fn tune(q: &mut dyn DeviceQueue) -> Result<u32, BackendError> {
    warm_up(q)?;
    let mut log2 = MIN_LOG2 + 2;
    loop {
        let t = timed_launch(q, log2)?;
        if t >= TUNE_LOW || log2 >= MAX_LOG2 {
            let mut t = t;
            while t > TUNE_HIGH && log2 > MIN_LOG2 {
                log2 -= 1;
                t /= 2;
            }
            return Ok(log2);
        }
        // Launch overhead makes small launches look slow, so this extrapolation undershoots
        // and converges from below; at most 64x per step in case the first timing was noise.
        let ratio = TUNE_AIM.as_secs_f64() / t.as_secs_f64().max(1e-6);
        let steps = (ratio.log2().floor() as u32).clamp(1, 6);
        log2 = (log2 + steps).min(MAX_LOG2);
    }
}

/// Nonces for the engine to hand a worker per `scan`: two launches, so the second is queued
/// while the first runs and the device does not idle between the launches of one scan.
pub(crate) fn min_scan_nonces(log2: u32) -> u64 {
    (SLOTS as u64) << log2
}

/// One worker on one GPU queue, generic over the runtime that drives the queue.
pub(crate) struct GpuWorker<Q> {
    info: DeviceInfo,
    queue: Q,
    /// `--intensity`: log2 of nonces per launch; `None` tunes on the device.
    intensity: Option<u32>,
    /// The launch size in use (log2), once fixed or tuned.
    log2: Option<u32>,
    candidates: Vec<u32>,
}

impl<Q: DeviceQueue> GpuWorker<Q> {
    pub fn new(info: DeviceInfo, queue: Q, intensity: Option<u32>) -> Self {
        GpuWorker {
            info,
            queue,
            intensity,
            log2: None,
            candidates: Vec::new(),
        }
    }

    fn launch_log2(&mut self) -> Result<u32, BackendError> {
        if let Some(l) = self.log2 {
            return Ok(l);
        }
        let l = match self.intensity {
            Some(i) => {
                warm_up(&mut self.queue)?;
                i.clamp(MIN_LOG2, MAX_LOG2)
            }
            None => tune(&mut self.queue)?,
        };
        self.log2 = Some(l);
        let how = if self.intensity.is_some() {
            "set"
        } else {
            "tuned"
        };
        self.info.detail = format!("{}, 2^{l} nonces/launch ({how})", self.info.detail);
        Ok(l)
    }
}

impl<Q: DeviceQueue + Send> HashWorker for GpuWorker<Q> {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Tunes the launch size here, on the worker's own thread, before the engine asks for
    /// `min_scan_nonces`.
    fn start_on_thread(&mut self) -> Result<(), BackendError> {
        self.launch_log2().map(|_| ())
    }

    fn min_scan_nonces(&self) -> u64 {
        // Before tuning (start_on_thread not called): a size any GPU handles quickly.
        min_scan_nonces(
            self.log2
                .or(self.intensity)
                .unwrap_or(20)
                .clamp(MIN_LOG2, MAX_LOG2),
        )
    }

    fn scan(
        &mut self,
        header: &HeaderTemplate,
        target: &ScanTarget,
        range: NonceRange,
        ctl: &ScanControl,
        found: &mut Vec<u32>,
    ) -> Result<ScanOutcome, BackendError> {
        let log2 = self.launch_log2()?;
        let job = KernelJob::new(header, target);
        scan(
            &mut self.queue,
            1 << log2,
            &job,
            range,
            ctl,
            found,
            &mut self.candidates,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::sha256d;
    use crate::sha256::{IV, K, LEN_HEADER, PAD_BIT, compress, round, ssig0, ssig1};

    /// A host model of the kernel (`sha256d_common.h`) built only from `KernelJob::words`:
    /// the digest's word 7 from round 4 of block 2 on, exactly as the kernel computes it.
    fn model_top_word(j: &[u32; JOB_WORDS], nonce: u32) -> u32 {
        let w3 = nonce.swap_bytes();
        let mut w = [0u32; 64];
        w[3] = w3;
        w[4] = PAD_BIT;
        w[15] = LEN_HEADER;
        let mut s = [0u32; 8];
        s.copy_from_slice(&j[8..16]);
        s[0] = s[0].wrapping_add(w3);
        s[4] = s[4].wrapping_add(w3);
        for t in 4..16 {
            s = round(s, K[t].wrapping_add(w[t]));
        }
        w[16] = j[16];
        w[17] = j[17];
        w[18] = j[18].wrapping_add(ssig0(w3));
        w[19] = j[19].wrapping_add(w3);
        for t in 20..64 {
            w[t] = ssig1(w[t - 2])
                .wrapping_add(w[t - 7])
                .wrapping_add(ssig0(w[t - 15]))
                .wrapping_add(w[t - 16]);
        }
        // w[31], w[32] via the precomputed parts must agree with the plain schedule.
        assert_eq!(w[31], ssig1(w[29]).wrapping_add(w[24]).wrapping_add(j[20]));
        assert_eq!(w[32], ssig1(w[30]).wrapping_add(w[25]).wrapping_add(j[21]));
        for t in 16..64 {
            s = round(s, K[t].wrapping_add(w[t]));
        }
        let mut block = [0u8; 64];
        for i in 0..8 {
            let d = s[i].wrapping_add(j[i]);
            block[4 * i..4 * i + 4].copy_from_slice(&d.to_be_bytes());
        }
        block[32] = 0x80;
        block[62] = 0x01; // 256 bits
        compress(IV, &block)[7].swap_bytes()
    }

    #[test]
    fn kernel_words_reproduce_sha256d() {
        let mut hdr = [0u8; 80];
        for (i, b) in hdr.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0xa5;
        }
        let hdr = HeaderTemplate(hdr);
        let target = ScanTarget::from_le_bytes([0x11; 32]);
        let job = KernelJob::new(&hdr, &target);
        assert_eq!(job.words[22], target.top_word());
        for nonce in [0u32, 1, 0x1234_5678, u32::MAX] {
            let d = sha256d(&hdr.with_nonce(nonce));
            let want = u32::from_le_bytes([d[28], d[29], d[30], d[31]]);
            assert_eq!(model_top_word(&job.words, nonce), want, "nonce {nonce:#x}");
        }
    }

    #[test]
    fn hash2_constants_match_the_kernel() {
        // The kernel's H2_A1/H2_E1: round 0 of the second hash, minus W0.
        let r = round(IV, K[0]);
        assert_eq!(r[0], 0xfc08884d);
        assert_eq!(r[4], 0x98c7e2a2);
    }

    /// A fake device: runs the kernel's candidate rule on the host.
    struct HostQueue {
        job: Option<KernelJob>,
        caps: [u32; SLOTS],
        /// `grow` stops here, so the halving path runs too.
        max_cap: u32,
        results: [Vec<u32>; SLOTS],
        counters: [u32; SLOTS],
        launches: usize,
    }

    impl DeviceQueue for HostQueue {
        fn set_job(&mut self, job: &KernelJob) -> Result<(), BackendError> {
            self.job = Some(job.clone());
            Ok(())
        }
        fn capacity(&self, slot: usize) -> u32 {
            self.caps[slot]
        }
        fn grow(&mut self, slot: usize, capacity: u32) -> Result<(), BackendError> {
            self.caps[slot] = capacity.min(self.max_cap);
            Ok(())
        }
        fn enqueue(&mut self, slot: usize, base: u32, count: u32) -> Result<(), BackendError> {
            let job = self.job.as_ref().expect("job set");
            let top = job.words[22];
            self.launches += 1;
            self.results[slot].clear();
            self.counters[slot] = 0;
            for i in 0..count {
                let n = base + i;
                if model_top_word(&job.words, n) <= top {
                    if self.counters[slot] < self.caps[slot] {
                        self.results[slot].push(n);
                    }
                    self.counters[slot] += 1;
                }
            }
            Ok(())
        }
        fn wait(&mut self, slot: usize, out: &mut Vec<u32>) -> Result<u32, BackendError> {
            out.extend_from_slice(&self.results[slot]);
            Ok(self.counters[slot])
        }
    }

    #[test]
    fn overflowing_launches_lose_no_nonce() {
        let mut hdr = [0u8; 80];
        hdr[5] = 9;
        let hdr = HeaderTemplate(hdr);
        let mut t = [0xffu8; 32];
        t[28..].copy_from_slice(&0x0fff_ffffu32.to_le_bytes());
        let target = ScanTarget::from_le_bytes(t);
        let range = NonceRange::new(1000, 1000 + 3000).expect("range");
        let want: Vec<u32> = (range.start..=range.end)
            .filter(|&n| target.is_met_by(&sha256d(&hdr.with_nonce(n))))
            .collect();
        assert!(want.len() > 100);
        let mut q = HostQueue {
            job: None,
            caps: [4; SLOTS],
            max_cap: 16,
            results: Default::default(),
            counters: [0; SLOTS],
            launches: 0,
        };
        let ctl = ScanControl::new();
        let (mut found, mut scratch) = (Vec::new(), Vec::new());
        let job = KernelJob::new(&hdr, &target);
        let out = scan(&mut q, 1024, &job, range, &ctl, &mut found, &mut scratch).expect("scan");
        found.sort_unstable();
        assert_eq!(found, want);
        assert_eq!(out.hashes_done, range.len());
        assert!(!out.cancelled);
        assert!(q.launches > 4, "overflow must have caused rescans");
    }
}
