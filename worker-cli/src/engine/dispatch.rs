//! Turns the pool's current job into disjoint work units for the devices.
//!
//! One cursor per job walks the search space (extranonce2 × rolled version bits × nonce) in
//! order, under a mutex, so no two units ever overlap however many devices ask and however
//! large the units they ask for. A unit never crosses a header boundary: it is one header
//! template plus a nonce range inside it. Devices that cannot be given a range (FPGA boards)
//! take whole headers nobody else has had; when extranonce2 × version bits run out, ntime
//! rolls forward by the time that has really passed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use backends::{HeaderTemplate, NonceRange, ScanTarget};
use stratum::Work;
use stratum::work::{ExtraNonce2, HeaderBytes};

/// One header's worth of search space and the identity needed to submit from it.
#[derive(Clone, Debug)]
pub struct HeaderSlot {
    pub extranonce2: ExtraNonce2,
    pub ntime: u32,
    /// Rolled bits (inside the negotiated mask) when version rolling is in use.
    pub version_bits: Option<u32>,
    pub header: HeaderBytes,
}

/// What a device thread is told to do.
#[derive(Clone, Debug)]
pub struct WorkUnit {
    /// Increases with every job the engine switches to.
    pub generation: u64,
    pub work: Arc<Work>,
    pub slot: Arc<HeaderSlot>,
    pub template: HeaderTemplate,
    pub target: ScanTarget,
    pub range: NonceRange,
}

struct JobCursor {
    generation: u64,
    work: Arc<Work>,
    target: ScanTarget,
    /// The slot being handed out in slices, if any.
    slot: Option<Arc<HeaderSlot>>,
    /// Index into extranonce2 × version-roll space of the next slot nobody has had.
    next_slot: u64,
    /// Next nonce to hand out in `slot` (u64 so 2^32 means "slot exhausted").
    next_nonce: u64,
    /// Extranonce2 value the first slot starts from (random per job so restarts never
    /// repeat work the pool already has from us).
    en2_base: u64,
    /// Seconds added to the job's ntime: once every slot of one ntime is taken, the cursor
    /// moves ntime on by the time that has really passed since the job came, never further,
    /// so rolled headers are as valid to the pool as the job's own.
    ntime_offset: u32,
    received: Instant,
    exhausted: bool,
}

impl JobCursor {
    fn new(generation: u64, work: Arc<Work>, en2_base: u64, received: Instant) -> Self {
        let target = ScanTarget::from_le_bytes(work.target.to_le_bytes());
        JobCursor {
            generation,
            work,
            target,
            slot: None,
            next_slot: 0,
            next_nonce: 1 << 32,
            en2_base,
            ntime_offset: 0,
            received,
            exhausted: false,
        }
    }

    /// Number of distinct header slots: extranonce2 values × 2^(rolled bits we use).
    fn slot_space(&self) -> u64 {
        let en2 = ExtraNonce2::space(self.work.extranonce.extranonce2_size);
        en2.saturating_mul(1u64 << self.version_roll_bits())
    }

    /// Rolling 16 of the granted bits already gives 65536 headers per extranonce2.
    fn version_roll_bits(&self) -> u32 {
        self.work.version_mask.map_or(0, |m| m.count_ones().min(16))
    }

    fn build_slot(&self, index: u64) -> Option<HeaderSlot> {
        let size = self.work.extranonce.extranonce2_size;
        let en2_space = ExtraNonce2::space(size);
        let (en2_i, roll_i) = if en2_space == u64::MAX {
            (index, 0)
        } else {
            (index % en2_space, index / en2_space)
        };
        let extranonce2 = ExtraNonce2::new(self.en2_base.wrapping_add(en2_i), size).ok()?;
        let job = &self.work.job;
        let (version, version_bits) = match self.work.version_mask {
            // XOR with the job's own bits inside the mask, rather than replacing them: index 0
            // is then the job's version unchanged, and since XOR with a constant is a
            // bijection, distinct indices give distinct versions even when the job's version
            // already has bits set inside the mask (plain replacement would make some later
            // index rebuild index 0's header, and two units would cover the same nonces).
            // The job's own bits are always submitted too, so the pool rebuilds exactly this
            // version.
            Some(mask) => {
                let bits = spread_into_mask(roll_i, mask) ^ (job.version & mask);
                (job.rolled_version(mask, bits), Some(bits))
            }
            None => (job.version, None),
        };
        let ntime = job.ntime.wrapping_add(self.ntime_offset);
        let header = job.header(&self.work.extranonce, &extranonce2, ntime, version);
        Some(HeaderSlot {
            extranonce2,
            ntime,
            version_bits,
            header,
        })
    }

    /// A slot no unit has come from yet, or `None` when none is left for now.
    fn fresh_slot(&mut self, now: Instant) -> Option<Arc<HeaderSlot>> {
        if self.exhausted {
            return None;
        }
        if self.next_slot >= self.slot_space() {
            let elapsed = u32::try_from(now.saturating_duration_since(self.received).as_secs())
                .unwrap_or(u32::MAX);
            if elapsed <= self.ntime_offset {
                // Every header of this second is taken: wait for the clock (or a new job).
                return None;
            }
            self.ntime_offset = elapsed;
            self.next_slot = 0;
        }
        match self.build_slot(self.next_slot) {
            Some(slot) => {
                self.next_slot += 1;
                Some(Arc::new(slot))
            }
            None => {
                self.exhausted = true;
                None
            }
        }
    }

    fn unit(&self, slot: Arc<HeaderSlot>, range: NonceRange) -> WorkUnit {
        let mut template = [0u8; 80];
        template.copy_from_slice(&slot.header.0);
        WorkUnit {
            generation: self.generation,
            work: self.work.clone(),
            template: HeaderTemplate(template),
            target: self.target,
            range,
            slot,
        }
    }

    /// The next `max_nonces` (or fewer) of the slot being sliced, starting a fresh slot when
    /// it is used up.
    fn next(&mut self, max_nonces: u64, now: Instant) -> Option<WorkUnit> {
        if self.next_nonce >= 1 << 32 || self.slot.is_none() {
            self.slot = Some(self.fresh_slot(now)?);
            self.next_nonce = 0;
        }
        let slot = self.slot.clone()?;
        let start = self.next_nonce;
        let end = (start + max_nonces.max(1)).min(1 << 32) - 1;
        self.next_nonce = end + 1;
        Some(self.unit(
            slot,
            NonceRange {
                start: start as u32,
                end: end as u32,
            },
        ))
    }

    /// A whole header nobody has searched, with all 2^32 nonces: what a board that cannot be
    /// given a nonce range needs. Never the remainder of a sliced slot.
    fn next_whole(&mut self, now: Instant) -> Option<WorkUnit> {
        let slot = self.fresh_slot(now)?;
        Some(self.unit(slot, NonceRange::FULL))
    }
}

/// Deposits the low bits of `value` into the set bits of `mask`, lowest first.
fn spread_into_mask(mut value: u64, mask: u32) -> u32 {
    let mut out = 0u32;
    for bit in 0..32 {
        if mask & (1 << bit) != 0 {
            if value & 1 != 0 {
                out |= 1 << bit;
            }
            value >>= 1;
        }
    }
    out
}

struct State {
    job: Option<JobCursor>,
    generation: u64,
    shutdown: bool,
    paused: bool,
}

/// Shared by the engine (which installs jobs) and device threads (which take units).
pub struct Dispatcher {
    state: Mutex<State>,
    changed: Condvar,
    /// Mirror of `State::generation`, read by device threads between slices without locking.
    generation: AtomicU64,
    /// Units of generations below this belong to jobs the pool told us to abandon
    /// (`clean_jobs`): what they find is stale and is not submitted.
    clean_floor: AtomicU64,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Dispatcher {
    pub fn new() -> Self {
        Dispatcher {
            state: Mutex::new(State {
                job: None,
                generation: 0,
                shutdown: false,
                paused: false,
            }),
            changed: Condvar::new(),
            generation: AtomicU64::new(0),
            clean_floor: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A device thread that panicked while holding the lock must not take the engine down.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Installs a new job; returns its generation. With `clean`, work of earlier jobs becomes
    /// stale at once.
    pub fn set_work(&self, work: Arc<Work>, clean: bool) -> u64 {
        let mut s = self.lock();
        s.generation += 1;
        let base: u64 = rand::random();
        s.job = Some(JobCursor::new(s.generation, work, base, Instant::now()));
        let g = s.generation;
        if clean {
            self.clean_floor.store(g, Ordering::Release);
        }
        self.generation.store(g, Ordering::Release);
        drop(s);
        self.changed.notify_all();
        g
    }

    /// Drops the current job (pool gone): devices wait until the next one.
    pub fn clear_work(&self) -> u64 {
        let mut s = self.lock();
        s.generation += 1;
        s.job = None;
        let g = s.generation;
        self.generation.store(g, Ordering::Release);
        drop(s);
        self.changed.notify_all();
        g
    }

    pub fn current_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether what generation `g` finds may still be submitted.
    pub fn is_live(&self, g: u64) -> bool {
        g >= self.clean_floor.load(Ordering::Acquire)
    }

    /// Whether a newer job (or none) replaced generation `g`.
    pub fn generation_changed(&self, g: u64) -> bool {
        self.generation.load(Ordering::Acquire) != g
    }

    /// Whether devices can take work now (a job is installed and hashing is not paused).
    pub fn has_work(&self) -> bool {
        let s = self.lock();
        s.job.is_some() && !s.paused && !s.shutdown
    }

    pub fn set_paused(&self, paused: bool) {
        self.lock().paused = paused;
        self.changed.notify_all();
    }

    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.changed.notify_all();
    }

    pub fn is_shutdown(&self) -> bool {
        self.lock().shutdown
    }

    /// Blocks the calling device thread until a unit is available; `None` on shutdown.
    pub fn next_unit(&self, max_nonces: u64) -> Option<WorkUnit> {
        self.wait_for(|job, now| job.next(max_nonces, now))
    }

    /// Like [`Dispatcher::next_unit`], but always a whole header of its own (full nonce
    /// range) for a device that searches whole headers.
    pub fn next_whole_unit(&self) -> Option<WorkUnit> {
        self.wait_for(|job, now| job.next_whole(now))
    }

    fn wait_for(
        &self,
        mut take: impl FnMut(&mut JobCursor, Instant) -> Option<WorkUnit>,
    ) -> Option<WorkUnit> {
        let mut s = self.lock();
        loop {
            if s.shutdown {
                return None;
            }
            if !s.paused
                && let Some(unit) = s.job.as_mut().and_then(|j| take(j, Instant::now()))
            {
                return Some(unit);
            }
            // Woken by set_work / shutdown; the timeout guards against a missed wakeup and
            // lets an exhausted job roll its ntime when the next second comes.
            s = self
                .changed
                .wait_timeout(s, std::time::Duration::from_millis(250))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use stratum::work::{Difficulty, Extranonce, Job, PrevHashWire};

    fn work(en2_size: usize, mask: Option<u32>) -> Arc<Work> {
        work_with_version(en2_size, mask, 0x2000_0000)
    }

    fn work_with_version(en2_size: usize, mask: Option<u32>, version: u32) -> Arc<Work> {
        let job = Job {
            job_id: "j".into(),
            prevhash: PrevHashWire([7; 32]),
            coinb1: vec![1, 2, 3],
            coinb2: vec![4, 5],
            merkle_branch: vec![],
            version,
            nbits: 0x1d00ffff,
            ntime: 1000,
            clean_jobs: true,
            merkle_root: None,
        };
        Arc::new(Work {
            job,
            extranonce: Extranonce {
                extranonce1: vec![9, 9],
                extranonce2_size: en2_size,
            },
            difficulty: Difficulty::ONE,
            target: Difficulty::ONE.target(),
            version_mask: mask,
            pool: 0,
            pool_url: "stratum+tcp://p0:1".into(),
            epoch: 1,
        })
    }

    #[test]
    fn units_never_overlap_and_cover_slots_in_order() {
        let d = Dispatcher::new();
        d.set_work(work(1, None), true);
        let mut seen = HashSet::new();
        let mut covered = 0u64;
        // 2^32 nonces per slot in chunks of 2^30: 4 units per slot.
        for _ in 0..12 {
            let u = d.next_unit(1 << 30).unwrap();
            assert!(seen.insert((u.slot.extranonce2.value(), u.range.start)));
            covered += u.range.len();
        }
        assert_eq!(covered, 3 << 32);
        assert_eq!(
            seen.iter().map(|(e, _)| *e).collect::<HashSet<_>>().len(),
            3
        );
    }

    #[test]
    fn exhausted_space_waits_instead_of_repeating() {
        let mut c = JobCursor::new(1, work(1, None), 0, Instant::now());
        let now = c.received;
        for _ in 0..256 {
            assert_eq!(c.next(1 << 32, now).unwrap().range.len(), 1 << 32);
        }
        // Every extranonce2 of this ntime is taken, and no second has passed.
        assert!(c.next(1 << 32, now).is_none());
        assert!(c.next_whole(now).is_none());
        let d = Arc::new(Dispatcher::new());
        d.set_work(work(1, None), true);
        let d2 = d.clone();
        let t = std::thread::spawn(move || d2.next_unit(1 << 32));
        std::thread::sleep(std::time::Duration::from_millis(50));
        d.shutdown();
        // Either shutdown reached it first, or it got the first unit: never a repeat.
        if let Some(u) = t.join().unwrap() {
            assert_eq!(u.range.start, 0);
        }
    }

    /// Once every header of one ntime is taken, ntime moves on by the seconds that really
    /// passed, and the extranonce2 space starts over under the new ntime: no header twice.
    #[test]
    fn exhausted_space_rolls_ntime_as_time_passes() {
        let t0 = Instant::now();
        let mut c = JobCursor::new(1, work(1, None), 0, t0);
        let mut headers = HashSet::new();
        for _ in 0..256 {
            assert!(headers.insert(c.next_whole(t0).unwrap().slot.header.0));
        }
        assert!(c.next_whole(t0).is_none());
        let later = t0 + std::time::Duration::from_millis(3500);
        for _ in 0..256 {
            let u = c.next_whole(later).unwrap();
            assert_eq!(u.slot.ntime, 1003);
            assert!(headers.insert(u.slot.header.0));
        }
        assert!(c.next_whole(later).is_none());
    }

    /// Whole units never share a header with sliced ones, and never start mid-slot.
    #[test]
    fn whole_units_are_fresh_headers() {
        let d = Dispatcher::new();
        d.set_work(work(2, None), true);
        let sliced = d.next_unit(1 << 20).unwrap();
        let whole = d.next_whole_unit().unwrap();
        assert_eq!(whole.range, NonceRange::FULL);
        assert_ne!(whole.slot.header.0, sliced.slot.header.0);
        let sliced2 = d.next_unit(1 << 20).unwrap();
        assert_eq!(sliced2.slot.header.0, sliced.slot.header.0);
        assert_eq!(sliced2.range.start, 1 << 20);
        let whole2 = d.next_whole_unit().unwrap();
        assert_ne!(whole2.slot.header.0, whole.slot.header.0);
        assert_ne!(whole2.slot.header.0, sliced.slot.header.0);
    }

    #[test]
    fn version_rolling_extends_the_space_inside_the_mask() {
        let d = Dispatcher::new();
        d.set_work(work(1, Some(0x1fffe000)), true);
        let mut versions = HashSet::new();
        for _ in 0..300 {
            let u = d.next_unit(1 << 32).unwrap();
            let bits = u.slot.version_bits.unwrap();
            assert_eq!(bits & !0x1fffe000, 0);
            assert_eq!(u.slot.header.version(), (0x2000_0000 & !0x1fffe000) | bits);
            versions.insert((u.slot.extranonce2.value(), bits));
        }
        assert_eq!(versions.len(), 300);
    }

    #[test]
    fn rolling_never_repeats_a_header_when_the_job_has_bits_in_the_mask() {
        // 0x2000 and 0x4000 are the two lowest mask bits: index 1 and 2 would rebuild the
        // job's own version (index 0) if the rolled bits simply replaced the job's.
        let mask = 0x1fffe000;
        let job_version = 0x2000_6000;
        let d = Dispatcher::new();
        d.set_work(work_with_version(1, Some(mask), job_version), true);
        let mut headers = HashSet::new();
        let mut first = None;
        // 256 extranonce2 values per rolled version: 5 versions' worth of units.
        for _ in 0..256 * 5 {
            let u = d.next_unit(1 << 32).unwrap();
            let bits = u.slot.version_bits.unwrap();
            assert_eq!(bits & !mask, 0);
            let version = u.slot.header.version();
            // What the pool rebuilds from the submitted bits is the header we hashed.
            assert_eq!(version, (job_version & !mask) | bits);
            first.get_or_insert(version);
            assert!(
                headers.insert(u.slot.header.0),
                "two units cover the same header (version {version:08x})"
            );
        }
        assert_eq!(
            first,
            Some(job_version),
            "the job's own version comes first"
        );
        assert_eq!(headers.len(), 256 * 5);
    }

    #[test]
    fn spread_bits() {
        assert_eq!(spread_into_mask(1, 0x1fffe000), 0x2000);
        assert_eq!(spread_into_mask(3, 0x0000_0101), 0x0101);
        assert_eq!(spread_into_mask(0xffff_ffff, 0x1fffe000), 0x1fffe000);
    }
}
