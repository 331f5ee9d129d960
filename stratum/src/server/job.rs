//! Synthetic work for the built-in pool: a random prevhash per block, a real coinbase
//! transaction paying the configured script, a few made-up merkle branch hashes, and the
//! rotation rule (every `clean_every`-th job starts a new block).
//!
//! The coinbase is a well-formed version-1 transaction so that miners which inspect it (or a
//! human with a block explorer's decoder) see nothing odd:
//! one input with a null prevout whose scriptSig is `<BIP34 height> <tag> <job number>
//! <extranonce>`, one output, locktime 0. coinb1 ends with the push opcode of the extranonce,
//! so extranonce1 and extranonce2 go right after it and the scriptSig length byte already
//! counts them. The job number makes every job distinct work even without merkle branches.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

use crate::work::{Hash256, Job, PrevHashWire};

/// BIP9 "top bits" version, leaving the BIP310 rolling range free.
pub(super) const JOB_VERSION: u32 = 0x2000_0000;
/// A realistic mainnet-era compact target; far harder than any share, so no share is a block.
pub(super) const JOB_NBITS: u32 = 0x170b_3ce9;
/// 50 BTC in satoshis: the synthetic block subsidy.
const COINBASE_VALUE: u64 = 50 * 100_000_000;
const TAG: &[u8] = b"/rigworker/";
/// Synthetic chain height of the first block (only visible inside the coinbase).
const FIRST_HEIGHT: u32 = 840_000;

/// A job as the server keeps it: the Stratum job plus which block it belongs to.
#[derive(Debug)]
pub(super) struct ServerJob {
    pub job: Job,
    /// Increments with every new prevhash; shares on an older block are stale.
    pub block: u64,
}

impl ServerJob {
    /// The same block and coinbase under another id, with other synthetic merkle branches:
    /// what a connection gets when its difficulty or extranonce changes mid-job. Re-sending
    /// the very same work under a new id would make miners that restart their nonce and
    /// extranonce2 counters on every new id (cpuminer does) find only duplicates.
    pub(super) fn variant(&self, job_id: String) -> Arc<ServerJob> {
        let mut rng = rand::rng();
        let mut job = self.job.clone();
        job.job_id = job_id;
        job.merkle_branch = (0..rng.random_range(1..=3))
            .map(|_| Hash256(rng.random()))
            .collect();
        Arc::new(ServerJob {
            job,
            block: self.block,
        })
    }
}

/// Makes jobs. Owned behind the server's mutex; every job it makes is published at once.
#[derive(Debug)]
pub(super) struct JobMaker {
    payout_script: Vec<u8>,
    extranonce_len: usize,
    clean_every: u32,
    block: u64,
    height: u32,
    prevhash: Hash256,
    jobs_in_block: u32,
    jobs_made: u32,
}

impl JobMaker {
    pub(super) fn new(payout_script: Vec<u8>, extranonce_len: usize, clean_every: u32) -> Self {
        JobMaker {
            payout_script,
            extranonce_len,
            clean_every,
            block: 0,
            height: FIRST_HEIGHT - 1,
            prevhash: Hash256::default(),
            jobs_in_block: 0,
            jobs_made: 0,
        }
    }

    /// The job a timer rotation makes: a new block every `clean_every` jobs (never when 0).
    pub(super) fn rotate(&mut self, job_id: String) -> Arc<ServerJob> {
        let new_block =
            self.block == 0 || (self.clean_every > 0 && self.jobs_in_block >= self.clean_every);
        self.make(job_id, new_block)
    }

    /// A new job; with `new_block` a new prevhash and `clean_jobs = true`.
    pub(super) fn make(&mut self, job_id: String, new_block: bool) -> Arc<ServerJob> {
        let mut rng = rand::rng();
        let new_block = new_block || self.block == 0;
        if new_block {
            self.block += 1;
            self.height = self.height.wrapping_add(1);
            self.prevhash = Hash256(rng.random());
            self.jobs_in_block = 0;
        }
        self.jobs_in_block += 1;
        self.jobs_made = self.jobs_made.wrapping_add(1);
        let (coinb1, coinb2) = coinbase_parts(
            self.height,
            self.jobs_made,
            self.extranonce_len,
            &self.payout_script,
        );
        let branches = rng.random_range(0..=3);
        let merkle_branch = (0..branches).map(|_| Hash256(rng.random())).collect();
        let ntime = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Arc::new(ServerJob {
            job: Job {
                job_id,
                prevhash: PrevHashWire::from_header_order(&self.prevhash),
                coinb1,
                coinb2,
                merkle_branch,
                version: JOB_VERSION,
                nbits: JOB_NBITS,
                ntime: u32::try_from(ntime).unwrap_or(u32::MAX),
                clean_jobs: new_block,
                merkle_root: None,
            },
            block: self.block,
        })
    }
}

/// coinb1 and coinb2 of a coinbase whose scriptSig leaves `extranonce_len` bytes between them.
pub(super) fn coinbase_parts(
    height: u32,
    job_number: u32,
    extranonce_len: usize,
    payout_script: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut script_head = Vec::with_capacity(16 + TAG.len());
    push_data(&mut script_head, &script_num(height));
    push_data(&mut script_head, TAG);
    push_data(&mut script_head, &script_num(job_number));
    // A direct push opcode for the extranonce bytes (config keeps them under 76 bytes).
    script_head.push(extranonce_len as u8);

    let mut c1 = Vec::with_capacity(48 + script_head.len());
    c1.extend_from_slice(&1u32.to_le_bytes()); // tx version
    c1.push(1); // one input
    c1.extend_from_slice(&[0u8; 32]); // null prevout hash
    c1.extend_from_slice(&u32::MAX.to_le_bytes()); // null prevout index
    write_compact_size(&mut c1, script_head.len() + extranonce_len);
    c1.extend_from_slice(&script_head);

    let mut c2 = Vec::with_capacity(24 + payout_script.len());
    c2.extend_from_slice(&u32::MAX.to_le_bytes()); // sequence
    c2.push(1); // one output
    c2.extend_from_slice(&COINBASE_VALUE.to_le_bytes());
    write_compact_size(&mut c2, payout_script.len());
    c2.extend_from_slice(payout_script);
    c2.extend_from_slice(&0u32.to_le_bytes()); // locktime
    (c1, c2)
}

/// Bitcoin's minimal CScriptNum encoding of a non-negative number (as BIP34 requires).
fn script_num(n: u32) -> Vec<u8> {
    let mut v: Vec<u8> = n.to_le_bytes().to_vec();
    while v.last() == Some(&0) {
        v.pop();
    }
    if v.last().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v
}

fn push_data(script: &mut Vec<u8>, data: &[u8]) {
    debug_assert!(data.len() < 76);
    script.push(data.len() as u8);
    script.extend_from_slice(data);
}

fn write_compact_size(out: &mut Vec<u8>, n: usize) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{PoolMessage, request_line};
    use crate::work::{ExtraNonce2, Extranonce};

    #[test]
    fn script_numbers() {
        assert_eq!(script_num(1), vec![1]);
        assert_eq!(script_num(0x80), vec![0x80, 0]);
        assert_eq!(script_num(840_000), vec![0x40, 0xd1, 0x0c]);
    }

    /// Walks the serialized coinbase field by field, as a node would.
    #[test]
    fn coinbase_is_a_wellformed_transaction() {
        let payout = [0x00, 0x14]
            .iter()
            .copied()
            .chain([7u8; 20])
            .collect::<Vec<_>>();
        let (c1, c2) = coinbase_parts(840_000, 0x1234, 8, &payout);
        let en = Extranonce {
            extranonce1: vec![0xaa; 4],
            extranonce2_size: 4,
        };
        let job = Job {
            job_id: "1".into(),
            prevhash: PrevHashWire([0; 32]),
            coinb1: c1.clone(),
            coinb2: c2,
            merkle_branch: vec![],
            version: JOB_VERSION,
            nbits: JOB_NBITS,
            ntime: 0,
            clean_jobs: true,
            merkle_root: None,
        };
        let en2 = ExtraNonce2::new(0x01020304, 4).unwrap();
        let tx = job.coinbase(&en, &en2);
        assert_eq!(&tx[..4], &[1, 0, 0, 0]);
        assert_eq!(tx[4], 1);
        assert_eq!(&tx[5..37], &[0u8; 32]);
        assert_eq!(&tx[37..41], &[0xff; 4]);
        let script_len = usize::from(tx[41]);
        let script = &tx[42..42 + script_len];
        // BIP34 height push, tag push, job number push, extranonce push covering exactly
        // en1 + en2
        assert_eq!(&script[..4], &[3, 0x40, 0xd1, 0x0c]);
        assert_eq!(usize::from(script[4]), TAG.len());
        assert_eq!(&script[5..5 + TAG.len()], TAG);
        let job_at = 5 + TAG.len();
        assert_eq!(&script[job_at..job_at + 3], &[2, 0x34, 0x12]);
        let en_at = job_at + 3;
        assert_eq!(script[en_at], 8);
        assert_eq!(&script[en_at + 1..en_at + 5], &[0xaa; 4]);
        assert_eq!(&script[en_at + 5..], &en2.to_bytes()[..]);
        // coinb1 ends right before extranonce1
        assert_eq!(c1.len(), 42 + en_at + 1);
        let rest = &tx[42 + script_len..];
        assert_eq!(&rest[..4], &[0xff; 4]);
        assert_eq!(rest[4], 1);
        assert_eq!(
            u64::from_le_bytes(rest[5..13].try_into().unwrap()),
            COINBASE_VALUE
        );
        assert_eq!(usize::from(rest[13]), payout.len());
        assert_eq!(&rest[14..14 + payout.len()], &payout[..]);
        assert_eq!(&rest[14 + payout.len()..], &[0, 0, 0, 0]);
    }

    #[test]
    fn rotation_and_blocks() {
        let mut m = JobMaker::new(vec![0x51], 8, 3);
        let j1 = m.rotate("1".into());
        assert!(j1.job.clean_jobs);
        assert_eq!(j1.block, 1);
        let j2 = m.rotate("2".into());
        let j3 = m.rotate("3".into());
        assert!(!j2.job.clean_jobs && !j3.job.clean_jobs);
        assert_eq!((j2.block, j3.block), (1, 1));
        assert_eq!(j2.job.prevhash, j1.job.prevhash);
        let j4 = m.rotate("4".into());
        assert!(j4.job.clean_jobs);
        assert_eq!(j4.block, 2);
        assert_ne!(j4.job.prevhash, j1.job.prevhash);
        let j5 = m.make("5".into(), true);
        assert_eq!(j5.block, 3);
        let mut never = JobMaker::new(vec![0x51], 8, 0);
        let first = never.rotate("1".into());
        for i in 2..10 {
            let j = never.rotate(i.to_string());
            assert_eq!(j.block, 1);
            // distinct work even when neither has merkle branches
            assert_ne!(j.job.coinb1, first.job.coinb1);
        }
    }

    #[test]
    fn variants_are_other_work_of_the_same_block() {
        let mut m = JobMaker::new(vec![0x51], 8, 1);
        let j = m.rotate("1".into());
        let v = j.variant("2".into());
        assert_eq!(
            (v.block, v.job.prevhash, &v.job.coinb1, v.job.ntime),
            (j.block, j.job.prevhash, &j.job.coinb1, j.job.ntime)
        );
        assert_eq!(v.job.job_id, "2");
        assert!(!v.job.merkle_branch.is_empty());
        assert_ne!(v.job.merkle_branch, j.job.merkle_branch);
    }

    /// What the server sends parses back, with the crate's own notify parser, to the same job.
    #[test]
    fn notify_round_trip() {
        let mut m = JobMaker::new(vec![0x51], 8, 1);
        for _ in 0..8 {
            let j = m.rotate("abc".into());
            let line = request_line(
                serde_json::Value::Null,
                "mining.notify",
                j.job.notify_params(),
            );
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let params = v["params"].as_array().unwrap();
            assert_eq!(
                PoolMessage::parse("mining.notify", params).unwrap(),
                PoolMessage::Notify(j.job.clone())
            );
        }
    }
}
