//! `rigworker` with the FPGA backend, end to end, against the simulated Icarus RTL
//! (`hw-tests/fpga/simulate`, Verilator behind a pty): `devices` finds the board by its path,
//! `bench` times it, and `mine` gets shares accepted by the built-in pool, which checks every
//! one on its own. The board is built with 14-bit hits (one every ~16k hashes) so a simulated
//! board at ~100 kH/s finds several shares a second at a low pool difficulty.

use std::process::Command;

use hw_tests::fpga::{Board, have_verilator};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rigworker");
const ZERO_BITS: &str = "14";

fn rigworker(args: &[&str]) -> (Value, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RIGWORKER_BACKEND")
        .output()
        .expect("run rigworker");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "rigworker {args:?} failed:\n{stderr}");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (json, stderr)
}

#[test]
fn devices_bench_and_mine_on_the_simulated_board() {
    if !have_verilator() {
        return;
    }
    let board = Board::start("e2e", 14, 0);
    let path = board.path().to_str().expect("utf-8 temp path").to_string();
    let fpga = [
        "--fpga",
        &path,
        "--fpga-zero-bits",
        ZERO_BITS,
        "--fpga-probe-timeout",
        "60",
    ];

    let (devices, _) = rigworker(&[&["devices", "--json"][..], &fpga].concat());
    let entry = devices
        .as_array()
        .and_then(|a| a.iter().find(|b| b["backend"] == "fpga"))
        .expect("an fpga entry")
        .clone();
    assert_eq!(entry["available"], true, "{entry}");
    let d = &entry["devices"][0];
    assert!(d["name"].as_str().is_some_and(|n| n.contains(&path)), "{d}");
    assert!(
        d["detail"]
            .as_str()
            .is_some_and(|n| n.contains("golden nonce")),
        "{d}"
    );

    let (bench, bench_log) = rigworker(
        &[
            &["bench", "--backend", "fpga", "--seconds", "3", "--json"][..],
            &fpga,
        ]
        .concat(),
    );
    let r = &bench[0];
    assert_eq!(r["backend"], "fpga");
    // The board's calibrated speed: a simulated RTL does tens to hundreds of kH/s.
    let hps = r["median_hps"].as_f64().unwrap_or(0.0);
    assert!(
        (1e4..5e6).contains(&hps),
        "simulated board at {hps} H/s: {bench}\n{bench_log}"
    );

    let summary =
        std::env::temp_dir().join(format!("rigworker-fpga-e2e-{}.json", std::process::id()));
    let summary_arg = summary.to_str().expect("utf-8 temp path");
    // 14 leading zero bits is difficulty ~4e-6; every hit the board reports meets 3e-6.
    let (_, log) = rigworker(
        &[
            &[
                "mine",
                "--duration",
                "12",
                "--pool-difficulty",
                "0.000003",
                "--print-time",
                "2",
                "--summary-json",
                summary_arg,
            ][..],
            &fpga,
        ]
        .concat(),
    );
    let s: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("summary json");
    let _ = std::fs::remove_file(&summary);
    let dev = &s["devices"][0];
    assert_eq!(dev["backend"], "fpga", "{s}");
    assert_eq!(
        s["devices"].as_array().map(Vec::len),
        Some(1),
        "only the board mines"
    );
    let t = &s["totals"];
    assert!(t["accepted"].as_u64().unwrap_or(0) >= 3, "{t}\n{log}");
    assert_eq!(t["rejected"], 0, "{t}\n{log}");
    assert_eq!(t["hardware_errors"], 0, "{t}\n{log}");
    assert!(s["hashes"].as_u64().unwrap_or(0) > 100_000, "{s}");
}
