//! `bench --work prove --against NAME=COMMAND`: other provers run as whole processes beside
//! `rigworker prove` on every arithmetic path this CPU has. snarkjs (which CI installs) is the
//! peer here: its proofs must verify, its peak memory must be its own (a Node.js process peaks
//! far above ours, which a figure inherited from the bench process would hide), and a peer that
//! fails or writes no proof must stop the bench with its name, not leave a fast row.

mod common;

use common::{fixture, run, snarkjs, text};

fn bench_against(peer: &str, json: bool) -> std::process::Output {
    let (zkey, wtns) = (fixture("mulchain.zkey"), fixture("mulchain.wtns"));
    let mut args = vec![
        "bench",
        "--work",
        "prove",
        "--zkey",
        &zkey,
        "--wtns",
        &wtns,
        "--repeat",
        "2",
        "--msm-log",
        "4",
        "--against",
        peer,
    ];
    if json {
        args.push("--json");
    }
    run(&args, &[])
}

#[test]
fn peers_run_beside_every_arithmetic_path_and_their_proofs_verify() {
    let Some(snarkjs) = snarkjs() else { return };
    let peer = format!("snarkjs={snarkjs} groth16 prove");
    let o = bench_against(&peer, true);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let whole = r["whole"].as_array().unwrap();
    let ours: Vec<_> = whole
        .iter()
        .filter(|w| w["prover"] == "rigworker")
        .collect();
    let theirs: Vec<_> = whole.iter().filter(|w| w["prover"] == "snarkjs").collect();
    // The portable path exists everywhere; ADX and IFMA where the CPU has them.
    assert!(ours.iter().any(|w| w["arith"] == "portable"), "{r}");
    assert_eq!(theirs.len(), 1, "{r}");
    assert!(theirs[0]["arith"].is_null(), "{r}");
    for w in whole {
        assert_eq!(w["circuit"], "mulchain", "{w}");
        assert_eq!(w["runs_s"].as_array().unwrap().len(), 2, "{w}");
        assert!(w["median_s"].as_f64().unwrap() > 0.0, "{w}");
        assert!(w["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{w}");
    }
    // Node.js alone takes tens of MB; our prover on this small key far less. Had the children
    // inherited the bench's own high-water mark, they would read alike.
    let theirs_peak = theirs[0]["peak_rss_bytes"].as_u64().unwrap();
    for w in &ours {
        assert!(
            w["peak_rss_bytes"].as_u64().unwrap() * 2 < theirs_peak,
            "{w} against {theirs_peak}"
        );
    }

    // The table: a row per prover with the ratio to the peer.
    let o = bench_against(&peer, false);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Whole process"), "{out}");
    assert!(out.contains("snarkjs / row"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("rigworker portable") && l.trim_end().ends_with('x')),
        "{out}"
    );
}

#[test]
fn a_peer_that_fails_or_writes_no_proof_stops_the_bench() {
    for (peer, says) in [
        ("broken=false", "exited"),
        ("silent=true", "reading the proof it wrote"),
        ("absent=/nonexistent/prover", "running /nonexistent/prover"),
    ] {
        let o = bench_against(peer, true);
        let t = text(&o);
        assert!(!o.status.success(), "{peer}: {t}");
        let name = peer.split('=').next().unwrap();
        assert!(t.contains(name) && t.contains(says), "{peer}: {t}");
        assert!(!t.contains("panicked"), "{peer}: {t}");
    }
    let o = run(
        &["bench", "--work", "prove", "--against", "no-command"],
        &[],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("NAME=COMMAND"), "{}", text(&o));
}
