//! `bench --work prove --against NAME=COMMAND`: other provers run as whole processes beside
//! `rigworker prove` on every arithmetic path this CPU has. snarkjs (which CI installs) is the
//! peer here: its proofs must verify and its peak memory must be its own (Node.js peaks far
//! above our prover); a peer that only copies files (`sh`, a few MB) must show a peak below
//! the bench process's own, which a figure inherited from it could not; and a peer that fails,
//! writes no proof, or writes a proof that is not of this key and witness must stop the bench
//! with its name, not leave a fast row.

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
    // Node.js alone takes tens of MB, our prover on this small key far less: each row is its
    // own process's. (That no row inherits the bench's memory is the tiny peer's check below.)
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

/// A peer that only copies committed files into place: `sh` and `cp`, whose peak is a few MB.
fn copying_peer(dir: &std::path::Path, name: &str, proof: &str, public: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join(format!("{name}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n# ZKEY WTNS PROOF PUBLIC\ncp '{}' \"$3\" && cp '{}' \"$4\"\n",
            fixture(proof),
            fixture(public)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{name}={}", script.display())
}

#[test]
fn a_peer_peak_is_its_own_and_a_wrong_proof_is_refused() {
    let dir = std::env::temp_dir().join(format!("rigworker-against-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The right proof: a row whose peak is the shell's own, a few MB, below what the bench
    // process itself holds (had the figure been inherited from it, as rusage's is, it could
    // not be this small).
    let o = bench_against(
        &copying_peer(&dir, "copy", "mulchain.proof.json", "mulchain.public.json"),
        true,
    );
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = r["whole"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["prover"] == "copy")
        .cloned()
        .unwrap();
    let peak = row["peak_rss_bytes"].as_u64().unwrap();
    assert!(peak > 0 && peak < 8 << 20, "{row}");
    // Another circuit's proof with this witness's public signals does not verify; this
    // circuit's proof with other public signals is not of this witness.
    for (name, proof, public, says) in [
        (
            "other-key",
            "poseidon.proof.json",
            "mulchain.public.json",
            "does not verify",
        ),
        (
            "other-public",
            "mulchain.proof.json",
            "poseidon.public.json",
            "public signals are not the witness's",
        ),
    ] {
        let o = bench_against(&copying_peer(&dir, name, proof, public), true);
        let t = text(&o);
        assert!(!o.status.success(), "{name}: {t}");
        assert!(t.contains(name) && t.contains(says), "{name}: {t}");
    }
    let _ = std::fs::remove_dir_all(&dir);
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
    for (args, says) in [
        (
            &["--work", "prove", "--against", "no-command"][..],
            "NAME=COMMAND",
        ),
        (&["--against", "x=/bin/true"][..], "needs --work prove"),
        (
            &["--work", "prove", "--against", "rigworker=/bin/true"][..],
            "a name of its own",
        ),
    ] {
        let o = run(&[&["bench"][..], args].concat(), &[]);
        assert!(!o.status.success(), "{args:?}");
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
}
