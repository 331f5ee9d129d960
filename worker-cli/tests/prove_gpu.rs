//! Whole Groth16 proofs on the GPU proving backends, as a user runs them: `rigworker prove
//! --backend opencl|wgpu` on the committed snarkjs fixtures, checked by `snarkjs groth16
//! verify` (an implementation we did not write), and `bench --work prove --backend opencl,cpu`
//! with the CPU as the baseline row. CI runs them on pocl and lavapipe; a backend without a
//! device prints `SKIPPED (name): reason` and passes unless `RIGWORKER_REQUIRE_BACKENDS` names
//! it. `rigworker devices` says which devices can prove.

use std::process::{Command, Output};

mod common;

use common::{fixture, snarkjs, text};

fn run(args: &[&str]) -> Output {
    common::run(args, &[])
}

fn required(name: &str) -> bool {
    std::env::var("RIGWORKER_REQUIRE_BACKENDS")
        .map(|v| v.split(',').any(|b| b.trim().eq_ignore_ascii_case(name)))
        .unwrap_or(false)
}

/// Whether `rigworker prove --backend NAME` can open its device here; prints why not.
fn usable(name: &str, output: &Output) -> bool {
    if output.status.success() {
        return true;
    }
    let t = text(output);
    let unavailable = t.contains("opening proving backend");
    assert!(
        unavailable && !required(name),
        "prove --backend {name} failed{}: {t}",
        if required(name) {
            " (required by RIGWORKER_REQUIRE_BACKENDS)"
        } else {
            ""
        }
    );
    println!("SKIPPED ({name}): {t}");
    false
}

/// Each backend with its G2 MSM on the device (one proof, the key streamed) and on the CPU
/// beside the device's G1 MSMs (streamed, and with the key kept for two proofs).
#[test]
fn gpu_proofs_of_the_fixtures_verify_with_snarkjs() {
    let Some(snarkjs) = snarkjs() else { return };
    'backends: for backend in ["opencl", "wgpu"] {
        for (circuit, g2_on, repeat) in [
            ("poseidon", "device", "1"),
            ("mulchain", "device", "1"),
            ("poseidon", "cpu", "1"),
            ("mulchain", "cpu", "2"),
        ] {
            let dir = std::env::temp_dir().join(format!(
                "rigworker-gpu-prove-{backend}-{circuit}-{g2_on}-{repeat}-{}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let proof = dir.join("proof.json");
            let public = dir.join("public.json");
            let o = run(&[
                "prove",
                "--backend",
                backend,
                "--zkey",
                &fixture(&format!("{circuit}.zkey")),
                "--wtns",
                &fixture(&format!("{circuit}.wtns")),
                "--proof",
                proof.to_str().unwrap(),
                "--public",
                public.to_str().unwrap(),
                "--g2-on",
                g2_on,
                "--repeat",
                repeat,
                "--json",
            ]);
            if !usable(backend, &o) {
                continue 'backends;
            }
            let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(report["backend"], backend, "{report}");
            let v = Command::new(&snarkjs)
                .args(["groth16", "verify"])
                .arg(fixture(&format!("{circuit}.vkey.json")))
                .arg(&public)
                .arg(&proof)
                .output()
                .expect("run snarkjs");
            assert!(
                v.status.success() && text(&v).contains("OK"),
                "snarkjs rejects the {backend} proof of {circuit} (G2 on {g2_on}): {}",
                text(&v)
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[test]
fn bench_prove_runs_every_chosen_backend_with_the_cpu_first() {
    let o = run(&[
        "bench",
        "--work",
        "prove",
        "--backend",
        "opencl,cpu",
        "--zkey",
        &fixture("mulchain.zkey"),
        "--wtns",
        &fixture("mulchain.wtns"),
        "--repeat",
        "1",
        "--msm-log",
        "8",
        "--g2-on",
        "device,cpu",
        "--json",
    ]);
    if !o.status.success() {
        let t = text(&o);
        assert!(
            t.contains("opening proving backend opencl") && !required("opencl"),
            "{t}"
        );
        println!("SKIPPED (opencl): {t}");
        return;
    }
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows: Vec<(String, bool, Option<String>)> = r["prove"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["backend"].as_str().unwrap().to_string(),
                p["precompute"].as_bool().unwrap(),
                p["g2_on"].as_str().map(String::from),
            )
        })
        .collect();
    // The CPU baseline first (with and without tables), then the GPU (no tables there) with
    // its G2 MSM on the device and on the CPU.
    assert_eq!(
        rows,
        vec![
            ("cpu".to_string(), false, None),
            ("cpu".to_string(), true, None),
            ("opencl".to_string(), false, Some("device".to_string())),
            ("opencl".to_string(), false, Some("cpu".to_string())),
        ],
        "{r}"
    );
    let msm = r["msm"].as_array().unwrap();
    // MSM rows once per backend: the G2 placement is the proofs' only.
    assert_eq!(
        msm.iter().filter(|m| m["backend"] == "opencl").count(),
        2,
        "{r}"
    );
    for backend in ["cpu", "opencl"] {
        for group in ["G1", "G2"] {
            assert!(
                msm.iter()
                    .any(|m| m["backend"] == backend && m["group"] == group),
                "{backend} {group}: {r}"
            );
        }
    }
}

#[test]
fn devices_say_which_can_prove() {
    let o = run(&["devices", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for b in r.as_array().unwrap() {
        for d in b["devices"].as_array().unwrap() {
            let p = &d["proving"];
            let can = p["can_prove"].as_bool().unwrap();
            match b["backend"].as_str().unwrap() {
                "cpu" | "opencl" | "wgpu" | "cuda" => assert!(can, "{d}"),
                _ => assert!(!can, "{d}"),
            }
            assert!(p["summary"].is_string(), "{d}");
        }
    }
}
