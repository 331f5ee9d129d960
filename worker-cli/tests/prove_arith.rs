//! `--prove-arith`: every arithmetic path this CPU has runs whole proofs of the committed
//! snarkjs fixtures (each proof verified by `rigworker verify`), the path a report names is the
//! one asked for (flag or `RIGWORKER_PROVE_ARITH`), and a path the CPU lacks is refused with
//! what it has. So CI runs the IFMA, ADX and portable MSM on whichever of them its machine has.

use backends::prove::arith::ArithPath;

mod common;

use common::{fixture, run, text};

#[test]
fn every_path_this_cpu_has_makes_valid_proofs_and_a_missing_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("rigworker-arith-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ran = Vec::new();
    for path in ArithPath::ALL {
        let name = path.name();
        let proof = dir.join(format!("{name}.proof.json"));
        let public = dir.join(format!("{name}.public.json"));
        let o = run(
            &[
                "prove",
                "--prove-arith",
                name,
                "--zkey",
                &fixture("poseidon.zkey"),
                "--wtns",
                &fixture("poseidon.wtns"),
                "--proof",
                proof.to_str().unwrap(),
                "--public",
                public.to_str().unwrap(),
                "--json",
            ],
            &[],
        );
        if !path.available() {
            assert!(
                !o.status.success(),
                "{name} is not on this CPU: {}",
                text(&o)
            );
            let t = text(&o);
            assert!(
                t.contains(&format!("cannot run the {name} arithmetic path"))
                    && t.contains("portable"),
                "{t}"
            );
            continue;
        }
        assert!(
            o.status.success(),
            "prove --prove-arith {name}: {}",
            text(&o)
        );
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["arith"], name, "{report}");
        let v = run(
            &[
                "verify",
                "--vkey",
                &fixture("poseidon.vkey.json"),
                "--proof",
                proof.to_str().unwrap(),
                "--public",
                public.to_str().unwrap(),
            ],
            &[],
        );
        assert!(
            v.status.success(),
            "the {name} proof does not verify: {}",
            text(&v)
        );
        ran.push(name);
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ran.contains(&"portable"), "{ran:?}");
    println!("arithmetic paths run through whole proofs here: {ran:?}");
}

#[test]
fn the_environment_and_bench_name_the_path_that_ran() {
    let o = run(
        &[
            "prove",
            "--zkey",
            &fixture("mulchain.zkey"),
            "--wtns",
            &fixture("mulchain.wtns"),
            "--json",
        ],
        &[("RIGWORKER_PROVE_ARITH", "portable")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["arith"], "portable", "{report}");

    let o = run(
        &[
            "prove",
            "--zkey",
            &fixture("mulchain.zkey"),
            "--wtns",
            &fixture("mulchain.wtns"),
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["arith"], ArithPath::best().name(), "{report}");

    let o = run(
        &[
            "bench",
            "--work",
            "prove",
            "--prove-arith",
            "portable",
            "--zkey",
            &fixture("mulchain.zkey"),
            "--wtns",
            &fixture("mulchain.wtns"),
            "--repeat",
            "1",
            "--msm-log",
            "8",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    // Nothing but the report on stdout: progress stays on stderr (and is silent with --json
    // when stderr is not a terminal).
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["arith"], "portable", "{report}");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("bench --work prove ["),
        "{}",
        text(&o)
    );

    // Not --json, stderr not a terminal: plain progress lines, the report on stdout.
    let o = run(
        &[
            "prove",
            "--precompute",
            "--zkey",
            &fixture("mulchain.zkey"),
            "--wtns",
            &fixture("mulchain.wtns"),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("loading the proving key and building its MSM tables where they pay ("),
        "{err}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("proof verified"));
    // A key this small keeps its tables; the header says so.
    assert!(out.contains("(precomputed tables)"), "{out}");

    let o = run(
        &[
            "prove",
            "--prove-arith",
            "avx2",
            "--zkey",
            &fixture("mulchain.zkey"),
            "--wtns",
            &fixture("mulchain.wtns"),
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown arithmetic path"), "{}", text(&o));
}
