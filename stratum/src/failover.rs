//! Which pool to talk to next, and when: the ordered pool list, failed attempts per pool,
//! exponential backoff with jitter, the operator's pin, a pool's own requests to be reconnected
//! to (capped, and never a reason to sit idle while a backup pool works), fail-back timing and
//! replacing the list on a config reload.
//!
//! Nothing here speaks a protocol: a session reports how it ended ([`Ended`]) and whether it had
//! proved itself ([`HEALTHY_SESSION`]), and [`Failover`] answers with the pool to connect to
//! and how long to wait first. The Stratum V1 and V2 sessions share it (one list may mix both).

use std::time::Duration;

use rand::Rng;

use crate::transport::{PoolUrl, TlsOptions};

/// A session that stayed established this long proves its pool healthy: its end starts a fresh
/// count of failures and a fresh backoff. Anything shorter (a pool that drops, refuses or
/// redirects us right after the handshake) counts against the pool.
pub const HEALTHY_SESSION: Duration = Duration::from_secs(60);

/// Whether a session proved its pool healthy: it got work, and the pool went on saying things
/// we understood for [`HEALTHY_SESSION`] after the handshake (`useful_for`). Mere connection
/// time is not enough: a pool that never sends a job, or that sends one and then only garbage,
/// is dropped after the keepalive (90 s by default, longer than `HEALTHY_SESSION`) and must
/// still count as failing, or the rig would go back to it forever instead of to a backup.
pub fn session_was_healthy(work_sent: bool, useful_for: Duration) -> bool {
    work_sent && useful_for >= HEALTHY_SESSION
}

/// One pool in the failover list. `Debug` leaves the password out.
#[derive(Clone)]
pub struct PoolConfig {
    pub url: PoolUrl,
    pub user: String,
    pub password: String,
    pub tls: TlsOptions,
}

impl std::fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolConfig")
            .field("url", &self.url.to_string())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl PoolConfig {
    /// Whether two entries would open the same session (same place, same credentials).
    pub fn same_pool(&self, other: &PoolConfig) -> bool {
        self.url == other.url
            && self.user == other.user
            && self.password == other.password
            && self.tls.fingerprint == other.tls.fingerprint
            && self.tls.insecure == other.tls.insecure
            && self.tls.extra_roots == other.tls.extra_roots
    }
}

/// The knobs of [`Failover`].
#[derive(Clone, Debug)]
pub struct FailoverPolicy {
    /// Failed connection attempts in a row before moving to the next pool.
    pub attempts_per_pool: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// The longest wait a pool's reconnect request is granted.
    pub max_reconnect_wait: Duration,
}

/// How a connection to the current pool ended, as far as choosing the next one goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Could not connect, handshake refused or timed out, connection lost, protocol error.
    Failed,
    /// The pool asked to be reconnected to (`client.reconnect`), maybe on another port, after
    /// a wait.
    ReconnectAsked { port: Option<u16>, wait: Duration },
}

/// What to do after a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Next {
    /// Index of the pool to connect to.
    pub pool: usize,
    /// How long to wait before connecting.
    pub wait: Duration,
    /// `(from, to)` when this moved to another pool.
    pub failed_over: Option<(usize, usize)>,
    /// The pin was released because the pinned pool kept failing.
    pub pin_released: bool,
}

/// The outcome of [`Failover::replace`].
#[derive(Clone, Debug)]
pub struct Replaced {
    /// The session on the current pool (or the wait for one) must start over at pool 0.
    pub restart: bool,
    /// `kept[i]`: old index `i` names the same pool in the new list.
    kept: Vec<bool>,
}

impl Replaced {
    /// Whether what was learned about old index `i` (a resumable session) still holds.
    pub fn kept(&self, i: usize) -> bool {
        self.kept.get(i).copied().unwrap_or(false)
    }
}

/// The pool selection state of one client.
#[derive(Debug)]
pub struct Failover {
    pools: Vec<PoolConfig>,
    policy: FailoverPolicy,
    current: usize,
    /// Failures of the current pool since it last proved healthy (or since we came to it).
    failures: u32,
    backoff: Duration,
    /// Fail-overs since a session last proved healthy: once every pool of the list has been
    /// left, the round trip itself backs off.
    failovers: usize,
    /// The pool the operator pinned: no fail-back while set.
    pinned: Option<usize>,
    /// A port a reconnect request asked for, used for the next connection to that pool only.
    port_override: Option<(usize, u16)>,
}

impl Failover {
    /// `pools` must not be empty (the caller has nowhere to go otherwise).
    pub fn new(pools: Vec<PoolConfig>, policy: FailoverPolicy) -> Self {
        Failover {
            pools,
            backoff: policy.backoff_min,
            policy,
            current: 0,
            failures: 0,
            failovers: 0,
            pinned: None,
            port_override: None,
        }
    }

    pub fn pools(&self) -> &[PoolConfig] {
        &self.pools
    }

    pub fn current(&self) -> usize {
        self.current
    }

    pub fn pinned(&self) -> Option<usize> {
        self.pinned
    }

    /// The address to connect to now: the current pool's, on the port its last reconnect
    /// request named (once).
    pub fn target(&mut self) -> PoolUrl {
        let mut url = self.pools[self.current].url.clone();
        if let Some((pool, port)) = self.port_override.take()
            && pool == self.current
        {
            url.port = port;
        }
        url
    }

    /// Moves to pool `to` now with fresh counters (fail-back, the operator's switch, or the
    /// start over after a reload). An index outside the list is ignored.
    pub fn move_to(&mut self, to: usize) {
        if to < self.pools.len() {
            self.current = to;
            self.failures = 0;
            self.failovers = 0;
            self.backoff = self.policy.backoff_min;
            self.port_override = None;
        }
    }

    /// Pins pool `i` (no fail-back) and moves there; `false` when `i` is not in the list.
    pub fn pin(&mut self, i: usize) -> bool {
        if i >= self.pools.len() {
            return false;
        }
        self.pinned = Some(i);
        if i != self.current {
            self.move_to(i);
        }
        true
    }

    /// Ends a pin; returns whether there was one.
    pub fn unpin(&mut self) -> bool {
        self.pinned.take().is_some()
    }

    /// Decides where to go after the current pool's session ended. `healthy`: the session
    /// stayed established for [`HEALTHY_SESSION`].
    pub fn ended(&mut self, how: Ended, healthy: bool) -> Next {
        if healthy {
            self.failures = 0;
            self.failovers = 0;
            self.backoff = self.policy.backoff_min;
        }
        // A reconnect request counts like a failure unless the session had proved itself:
        // otherwise a pool that asks for one right after every handshake would keep the
        // rig on it forever, mining nothing.
        if !(healthy && matches!(how, Ended::ReconnectAsked { .. })) {
            self.failures = self.failures.saturating_add(1);
        }
        let several = self.pools.len() > 1;
        if several && self.failures >= self.policy.attempts_per_pool {
            let pin_released = self.pinned.take().is_some();
            return self.fail_over(pin_released);
        }
        let (port, asked_wait) = match how {
            Ended::Failed => (None, None),
            Ended::ReconnectAsked { port, wait } => {
                (port, Some(wait.min(self.policy.max_reconnect_wait)))
            }
        };
        match asked_wait {
            // While this pool is away, the backup mines; fail-back returns here once it
            // answers again. A pinned pool is waited for: the operator chose it.
            Some(w) if !w.is_zero() && several && self.pinned.is_none() => self.fail_over(false),
            Some(w) => {
                self.port_override = port.map(|p| (self.current, p));
                // Repeated requests on a lone pool back off like failures do, so a pool that
                // asks at once after every handshake cannot make us spin.
                let wait = if self.failures >= self.policy.attempts_per_pool {
                    w.max(self.next_backoff())
                } else {
                    w
                };
                self.stay(wait)
            }
            None => {
                let wait = self.next_backoff();
                self.stay(wait)
            }
        }
    }

    fn stay(&self, wait: Duration) -> Next {
        Next {
            pool: self.current,
            wait,
            failed_over: None,
            pin_released: false,
        }
    }

    fn fail_over(&mut self, pin_released: bool) -> Next {
        let from = self.current;
        let to = (from + 1) % self.pools.len();
        self.current = to;
        self.failures = 0;
        self.port_override = None;
        // The backoff is kept: when every pool is down, the round trip slows down as a whole.
        // The first round goes to the next pool at once; after a whole round without a healthy
        // session the move itself waits, so pools that all ask to be reconnected to (each
        // request moves on at once) cannot make the rig spin between them.
        self.failovers = self.failovers.saturating_add(1);
        let wait = if self.failovers >= self.pools.len() {
            self.next_backoff()
        } else {
            Duration::ZERO
        };
        Next {
            pool: to,
            wait,
            failed_over: Some((from, to)),
            pin_released,
        }
    }

    fn next_backoff(&mut self) -> Duration {
        let w = jitter(self.backoff);
        // Saturating: a configured backoff near Duration::MAX must not overflow.
        self.backoff = self.backoff.saturating_mul(2).min(self.policy.backoff_max);
        w
    }

    /// Installs a new pool list (a reloaded config). `current` is the pool a live session is
    /// on, `None` while waiting between sessions. A session goes on only where its pool's
    /// entry is unchanged at the same index; otherwise everything starts over at pool 0. A
    /// pin survives only on an unchanged entry. An empty list is refused (`None`).
    pub fn replace(&mut self, pools: Vec<PoolConfig>, current: Option<usize>) -> Option<Replaced> {
        if pools.is_empty() {
            return None;
        }
        let kept: Vec<bool> = self
            .pools
            .iter()
            .enumerate()
            .map(|(i, old)| pools.get(i).is_some_and(|new| new.same_pool(old)))
            .collect();
        let is_kept = |i: usize| kept.get(i).copied().unwrap_or(false);
        if self.pinned.is_some_and(|p| !is_kept(p)) {
            self.pinned = None;
        }
        if self.port_override.is_some_and(|(p, _)| !is_kept(p)) {
            self.port_override = None;
        }
        let restart = !current.is_some_and(is_kept);
        self.pools = pools;
        if restart {
            self.move_to(0);
        }
        Some(Replaced { restart, kept })
    }
}

/// ±25 % so that many rigs behind one outage do not reconnect in lockstep.
pub fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::rng().random_range(0.75..1.25);
    // `mul_f64` panics when the product does not fit; a user-given backoff may be huge.
    Duration::try_from_secs_f64(d.as_secs_f64() * f).unwrap_or(Duration::MAX)
}

/// The fail-back timer: `None` (never fires) when the interval is zero or too large to add to
/// the clock. Missed ticks are delayed, never burst: a backlog of ticks must not turn into a
/// run of back-to-back probes.
pub fn failback_timer(every: Duration) -> Option<tokio::time::Interval> {
    if every.is_zero() {
        return None;
    }
    let start = tokio::time::Instant::now().checked_add(every)?;
    let mut t = tokio::time::interval_at(start, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(t)
}

/// `now + d` for a bound where zero means "no bound"; `None` is never.
pub fn deadline_after(d: Duration) -> Option<tokio::time::Instant> {
    if d.is_zero() {
        None
    } else {
        tokio::time::Instant::now().checked_add(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(n: usize) -> Vec<PoolConfig> {
        (0..n)
            .map(|i| PoolConfig {
                url: format!("stratum+tcp://p{i}:3333").parse().unwrap(),
                user: "u".into(),
                password: "x".into(),
                tls: TlsOptions::default(),
            })
            .collect()
    }

    fn policy() -> FailoverPolicy {
        FailoverPolicy {
            attempts_per_pool: 2,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(8),
            max_reconnect_wait: Duration::from_secs(60),
        }
    }

    fn asked(wait: u64) -> Ended {
        Ended::ReconnectAsked {
            port: None,
            wait: Duration::from_secs(wait),
        }
    }

    #[test]
    fn fails_over_after_the_attempts_and_backs_off_before() {
        let mut f = Failover::new(pools(2), policy());
        let n = f.ended(Ended::Failed, false);
        assert_eq!((n.pool, n.failed_over), (0, None));
        assert!(n.wait >= Duration::from_millis(750) && n.wait <= Duration::from_millis(1250));
        let n = f.ended(Ended::Failed, false);
        assert_eq!(
            (n.pool, n.wait, n.failed_over),
            (1, Duration::ZERO, Some((0, 1)))
        );
        assert_eq!(f.current(), 1);
    }

    #[test]
    fn reconnect_requests_from_unproven_sessions_count_as_failures() {
        let mut f = Failover::new(pools(2), policy());
        // Right after the handshake, "reconnect now", again and again: off to the backup.
        assert_eq!(f.ended(asked(0), false).pool, 0);
        let n = f.ended(asked(0), false);
        assert_eq!(n.failed_over, Some((0, 1)));
        // A session that had proved itself asks once: a fresh count, honoured at once.
        let mut f = Failover::new(pools(2), policy());
        f.ended(Ended::Failed, false);
        let n = f.ended(asked(0), true);
        assert_eq!((n.pool, n.wait, n.failed_over), (0, Duration::ZERO, None));
        assert_eq!(f.ended(Ended::Failed, false).pool, 0, "one failure left");
    }

    #[test]
    fn a_reconnect_wait_is_capped_and_spent_on_the_backup() {
        let mut f = Failover::new(pools(1), policy());
        let n = f.ended(asked(3600), true);
        assert_eq!((n.pool, n.wait), (0, Duration::from_secs(60)));
        // With a backup the rig mines there instead of waiting.
        let mut f = Failover::new(pools(2), policy());
        let n = f.ended(asked(30), true);
        assert_eq!(
            (n.pool, n.wait, n.failed_over),
            (1, Duration::ZERO, Some((0, 1)))
        );
        // ...unless the operator pinned the pool that asked.
        let mut f = Failover::new(pools(2), policy());
        f.pin(0);
        assert_eq!(f.ended(asked(30), true).pool, 0);
    }

    #[test]
    fn only_a_session_with_work_and_useful_talk_is_healthy() {
        let long = HEALTHY_SESSION + Duration::from_secs(30);
        assert!(session_was_healthy(true, long));
        assert!(!session_was_healthy(false, long), "no job ever");
        assert!(
            !session_was_healthy(true, Duration::from_secs(1)),
            "one job, then garbage until the keepalive"
        );
        // What that means for the failover: a workless pool is left after the attempts.
        let mut f = Failover::new(pools(2), policy());
        f.ended(Ended::Failed, session_was_healthy(false, long));
        let n = f.ended(Ended::Failed, session_was_healthy(false, long));
        assert_eq!(n.failed_over, Some((0, 1)));
    }

    #[test]
    fn pools_that_all_keep_asking_are_backed_off_from() {
        for wait in [0, 5] {
            let mut f = Failover::new(pools(2), policy());
            let mut waits = Vec::new();
            let mut moves = 0;
            for _ in 0..12 {
                let n = f.ended(asked(wait), false);
                moves += usize::from(n.failed_over.is_some());
                waits.push(n.wait);
            }
            assert!(moves >= 4, "wait {wait}: {moves} fail-overs");
            // Every round trip after the first waits, and the waits grow to the maximum.
            let total: Duration = waits.iter().sum();
            assert!(total >= Duration::from_secs(10), "wait {wait}: {waits:?}");
            assert!(
                waits.iter().all(|w| *w <= Duration::from_secs(10)),
                "{waits:?}"
            );
        }
        // A healthy session starts the count again: its fail-over is at once.
        let mut f = Failover::new(pools(2), policy());
        for _ in 0..6 {
            f.ended(asked(5), false);
        }
        let n = f.ended(asked(5), true);
        assert_eq!((n.wait, n.failed_over.is_some()), (Duration::ZERO, true));
    }

    #[test]
    fn a_lone_pool_that_keeps_asking_is_backed_off_from() {
        let mut f = Failover::new(pools(1), policy());
        assert_eq!(f.ended(asked(0), false).wait, Duration::ZERO);
        assert!(f.ended(asked(0), false).wait >= Duration::from_millis(750));
    }

    #[test]
    fn the_port_asked_for_is_used_once_on_that_pool() {
        let mut f = Failover::new(pools(1), policy());
        f.ended(
            Ended::ReconnectAsked {
                port: Some(4444),
                wait: Duration::ZERO,
            },
            true,
        );
        assert_eq!(f.target().port, 4444);
        assert_eq!(f.target().port, 3333);
    }

    #[test]
    fn a_pinned_pool_that_keeps_failing_is_released() {
        let mut f = Failover::new(pools(3), policy());
        assert!(f.pin(2) && !f.pin(3));
        assert_eq!(f.current(), 2);
        f.ended(Ended::Failed, false);
        let n = f.ended(Ended::Failed, false);
        assert!(n.pin_released);
        assert_eq!((n.pool, f.pinned()), (0, None));
    }

    #[test]
    fn replace_keeps_only_what_still_names_the_same_pool() {
        let mut f = Failover::new(pools(2), policy());
        f.pin(1);
        let same = f.replace(pools(2), Some(1)).unwrap();
        assert!(!same.restart && same.kept(0) && same.kept(1));
        assert_eq!(f.pinned(), Some(1));
        let mut swapped = pools(2);
        swapped.reverse();
        let r = f.replace(swapped, Some(1)).unwrap();
        assert!(r.restart && !r.kept(0) && !r.kept(1));
        assert_eq!((f.current(), f.pinned()), (0, None));
        assert!(f.replace(Vec::new(), Some(0)).is_none());
        assert_eq!(f.pools().len(), 2);
    }
}
