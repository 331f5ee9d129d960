//! What the built-in pool counts: accepted and rejected shares per worker name and in total,
//! and connections. Published through a `tokio::sync::watch` so tests and the CLI can await a
//! condition ("3 shares accepted") instead of sleeping.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Why a share was refused. Each maps to the Stratum error code and message the miner sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The job belongs to a block that a clean job has replaced (code 21).
    Stale,
    /// The same header was already accepted (code 22).
    Duplicate,
    /// The hash does not meet the difficulty in force when the job was sent (code 23).
    LowDifficulty,
    /// extranonce2 is not hex of exactly the subscribed size (code 20).
    BadExtranonce2,
    /// ntime is not 8 hex digits within the job's window (code 20).
    BadNtime,
    /// Version bits outside the negotiated rolling mask, or rolling not negotiated (code 20).
    BadVersion,
    /// The worker name was not authorized on this connection (code 24).
    Unauthorized,
    /// `mining.submit` before `mining.subscribe` (code 25).
    NotSubscribed,
    /// A job id this server never issued (code 21).
    UnknownJob,
    /// Params missing or of the wrong type, or a nonce that is not 8 hex digits (code 20).
    Malformed,
}

impl RejectReason {
    pub const ALL: [RejectReason; 10] = [
        RejectReason::Stale,
        RejectReason::Duplicate,
        RejectReason::LowDifficulty,
        RejectReason::BadExtranonce2,
        RejectReason::BadNtime,
        RejectReason::BadVersion,
        RejectReason::Unauthorized,
        RejectReason::NotSubscribed,
        RejectReason::UnknownJob,
        RejectReason::Malformed,
    ];

    /// The conventional Stratum V1 error code.
    pub fn code(self) -> i64 {
        match self {
            RejectReason::Stale | RejectReason::UnknownJob => 21,
            RejectReason::Duplicate => 22,
            RejectReason::LowDifficulty => 23,
            RejectReason::Unauthorized => 24,
            RejectReason::NotSubscribed => 25,
            RejectReason::BadExtranonce2
            | RejectReason::BadNtime
            | RejectReason::BadVersion
            | RejectReason::Malformed => 20,
        }
    }

    /// The error message sent with [`code`](Self::code).
    pub fn message(self) -> &'static str {
        match self {
            RejectReason::Stale => "Stale job",
            RejectReason::Duplicate => "Duplicate share",
            RejectReason::LowDifficulty => "Low difficulty share",
            RejectReason::BadExtranonce2 => "Incorrect extranonce2 size",
            RejectReason::BadNtime => "ntime out of range",
            RejectReason::BadVersion => "Invalid version bits",
            RejectReason::Unauthorized => "Unauthorized worker",
            RejectReason::NotSubscribed => "Not subscribed",
            RejectReason::UnknownJob => "Job not found",
            RejectReason::Malformed => "Malformed share",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Share counts of one worker name (or of the whole pool).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerStats {
    pub accepted: u64,
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Sum of the difficulty assigned to each accepted share: the work a pool credits.
    pub accepted_difficulty: f64,
    /// The highest difficulty an accepted share's hash actually reached.
    pub best_difficulty: f64,
}

impl WorkerStats {
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected.get(&reason).copied().unwrap_or(0)
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    pub(super) fn accept(&mut self, assigned: f64, achieved: f64) {
        self.accepted += 1;
        self.accepted_difficulty += assigned;
        self.best_difficulty = self.best_difficulty.max(achieved);
    }

    pub(super) fn reject(&mut self, reason: RejectReason) {
        *self.rejected.entry(reason).or_insert(0) += 1;
    }
}

/// A snapshot of the pool's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerStats {
    /// Every share judged, including those whose worker name was not authorized.
    pub total: WorkerStats,
    /// Per authorized worker name (as given in `mining.submit`); at most
    /// `ServerConfig::max_worker_stats` names, the least recently active dropped first.
    pub workers: BTreeMap<String, WorkerStats>,
    /// Worker names whose counts were dropped to keep `workers` within its bound.
    pub workers_pruned: u64,
    /// Connections open now.
    pub connections: usize,
    /// Connections accepted since the start.
    pub connections_total: u64,
    /// Connections closed at accept because `max_connections` were open.
    pub connections_refused: u64,
    /// Jobs made (timer rotations, `new_job`, `new_block`), the first one included.
    pub jobs: u64,
    /// Blocks (distinct prevhashes) made, the first one included.
    pub blocks: u64,
    /// Proving jobs sent (`prover.notify`).
    pub proof_jobs: u64,
    /// Proofs that verified against the circuit and matched the job's public signals.
    pub proofs_accepted: u64,
    /// Proofs refused, by error code (`docs/protocol.md`).
    pub proofs_rejected: BTreeMap<i64, u64>,
    /// Proving jobs workers declined (`prover.decline`): given to the next job request
    /// instead of waiting for their deadline.
    pub proofs_declined: u64,
    /// When each name in `workers` last submitted (a counter: larger is more recent).
    pub(crate) activity: HashMap<String, u64>,
    pub(crate) activity_clock: u64,
}

impl ServerStats {
    /// The counts of worker `name` for an update, making room for a new name by dropping the
    /// least recently active one when `max` names are counted already.
    pub(crate) fn worker_mut(&mut self, name: &str, max: usize) -> &mut WorkerStats {
        self.activity_clock += 1;
        if !self.workers.contains_key(name) {
            while self.workers.len() >= max.max(1) {
                let oldest = self
                    .activity
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(n, _)| n.clone())
                    .or_else(|| self.workers.keys().next().cloned());
                let Some(oldest) = oldest else { break };
                self.activity.remove(&oldest);
                self.workers.remove(&oldest);
                self.workers_pruned += 1;
            }
        }
        self.activity.insert(name.to_string(), self.activity_clock);
        self.workers.entry(name.to_string()).or_default()
    }

    /// The counts of one worker name (zero if it never submitted).
    pub fn worker(&self, name: &str) -> WorkerStats {
        self.workers.get(name).cloned().unwrap_or_default()
    }
}
