//! Real mainnet block 100000 cut into a Stratum job (`tests/data/block-100000.json`, a copy of
//! the shared vector): the work model must rebuild the real coinbase, merkle root, header and
//! block hash from the notify fields exactly as a pool sends them, and produce the submit a
//! pool expects.

use serde_json::Value;
use stratum::message::{Incoming, PoolMessage, SubscribeResult};
use stratum::work::{
    Difficulty, ExtraNonce2, Hash256, Share, Target, check_share, hash_difficulty,
};

fn vector() -> Value {
    // Kept inside the repository so the test passes on any fresh clone.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/block-100000.json");
    let text = std::fs::read_to_string(path).expect("block-100000 vector");
    serde_json::from_str(&text).expect("vector JSON")
}

#[test]
fn rebuilds_block_100000_from_the_stratum_job() {
    let v = vector();
    let job_v = &v["job"];
    let sub = SubscribeResult::parse(&job_v["mining.subscribe"]["result"]).unwrap();
    assert_eq!(
        hex::encode(&sub.extranonce.extranonce1),
        job_v["extranonce1"].as_str().unwrap()
    );
    assert_eq!(sub.extranonce.extranonce2_size, 4);

    let notify_line = job_v["mining.notify"].to_string();
    let Incoming::Request { method, params, .. } = Incoming::parse(&notify_line).unwrap() else {
        panic!("notify is a request")
    };
    let PoolMessage::Notify(job) = PoolMessage::parse(&method, &params).unwrap() else {
        panic!("notify parses")
    };
    assert!(job.clean_jobs);

    let diff_line = job_v["mining.set_difficulty"].to_string();
    let Incoming::Request { method, params, .. } = Incoming::parse(&diff_line).unwrap() else {
        panic!()
    };
    let PoolMessage::SetDifficulty(d) = PoolMessage::parse(&method, &params).unwrap() else {
        panic!()
    };
    assert_eq!(d, Difficulty::ONE);

    let en2 = ExtraNonce2::from_hex(job_v["extranonce2"].as_str().unwrap(), 4).unwrap();
    let exp = &job_v["expected"];
    let coinbase = job.coinbase(&sub.extranonce, &en2);
    assert_eq!(
        hex::encode(&coinbase),
        exp["coinbase_tx_hex"].as_str().unwrap()
    );
    assert_eq!(
        stratum::work::sha256d(&coinbase).to_string(),
        exp["coinbase_txid"].as_str().unwrap()
    );
    let root = job.merkle_root(&sub.extranonce, &en2);
    assert_eq!(
        root.to_internal_hex(),
        exp["merkle_root_header_order_hex"].as_str().unwrap()
    );
    assert_eq!(root.to_string(), exp["merkle_root"].as_str().unwrap());

    let nonce = job_v["nonce"].as_u64().unwrap() as u32;
    let header = job
        .header(&sub.extranonce, &en2, job.ntime, job.version)
        .with_nonce(nonce);
    assert_eq!(hex::encode(header.0), exp["header_hex"].as_str().unwrap());
    assert_eq!(
        hex::encode(header.0),
        v["block"]["header_hex"].as_str().unwrap()
    );

    let (meets_share, hash) = check_share(&header, &d.target());
    assert!(meets_share);
    assert_eq!(
        hash,
        Hash256::from_display_hex("hash", exp["block_hash"].as_str().unwrap()).unwrap()
    );
    assert_eq!(hash.to_string(), v["block"]["block_hash"].as_str().unwrap());
    let block_target = job.block_target().unwrap();
    assert_eq!(
        hex::encode(block_target.0.to_be_bytes()),
        v["block"]["target_hex"].as_str().unwrap()
    );
    assert!(block_target.is_met_by(&hash));
    let sd = hash_difficulty(&hash);
    assert!(
        (sd / exp["share_difficulty"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "{sd}"
    );

    // One nonce off must not meet the block target.
    let (_, other) = check_share(&header.with_nonce(nonce.wrapping_add(1)), &block_target);
    assert!(!block_target.is_met_by(&other));
    assert!(!Target::from_difficulty(Difficulty::new(1e6).unwrap()).is_met_by(&hash));

    let share = Share {
        job_id: job.job_id.clone(),
        extranonce2: en2,
        ntime: job.ntime,
        nonce,
        version_bits: None,
    };
    let expected_params: Vec<Value> = job_v["mining.submit"]["params"].as_array().unwrap().clone();
    assert_eq!(
        share.submit_params(expected_params[0].as_str().unwrap()),
        expected_params
    );
    assert_eq!(share.header(&job, &sub.extranonce, 0), header);
}
