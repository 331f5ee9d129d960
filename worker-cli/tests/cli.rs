//! The `rigworker` binary's commands as a user runs them: devices, bench, config files,
//! environment variables and the errors bad input must produce (never a panic).

use std::process::Command;

mod common;

use common::{BIN, fixture, run, text};

#[test]
fn required_backends_are_present() {
    // CI names every backend that can run on its machine; each must be compiled in and find a
    // device, so no test of that backend can silently skip.
    let required = std::env::var("RIGWORKER_REQUIRE_BACKENDS").unwrap_or_default();
    let o = run(&["devices", "--json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("devices --json is JSON");
    for name in required.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let entry = report
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["backend"] == name);
        let entry =
            entry.unwrap_or_else(|| panic!("required backend {name} is not compiled in: {report}"));
        assert_eq!(
            entry["available"], true,
            "required backend {name} has no device: {entry}"
        );
        assert!(!entry["devices"].as_array().unwrap().is_empty(), "{entry}");
    }
    if required.is_empty() {
        println!("RIGWORKER_REQUIRE_BACKENDS not set; found: {report}");
    }
}

#[test]
fn devices_table_names_the_cpu_kernel() {
    let o = run(&["devices"], &[]);
    assert!(o.status.success());
    let t = text(&o);
    assert!(t.starts_with("cpu#0"), "{t}");
}

#[test]
fn bench_reports_a_median_as_json() {
    let o = run(
        &[
            "bench",
            "--backend",
            "cpu",
            "--threads",
            "1",
            "--seconds",
            "2",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("bench --json is JSON");
    let r = &v[0];
    assert_eq!(r["backend"], "cpu");
    assert_eq!(r["threads"], 1);
    assert!(r["median_hps"].as_f64().unwrap() > 0.0, "{v}");
    assert!(r["intervals"].as_u64().unwrap() >= 2);
}

#[test]
fn bad_input_gives_clear_errors() {
    for (args, env, expect) in [
        (vec!["mine", "-o", "http://x:1"], vec![], "unknown scheme"),
        (
            vec!["mine", "-o", "stratum+tcp://nohost"],
            vec![],
            "missing :port",
        ),
        (
            vec!["mine", "--backend", "quantum"],
            vec![],
            "not compiled into this build",
        ),
        (
            vec!["mine", "--cpu-kernel", "sse9"],
            vec![],
            "unknown CPU kernel",
        ),
        (vec!["mine", "--duration=-3"], vec![], "--duration"),
        (
            vec!["mine", "--devices", "7"],
            vec![],
            "none of the devices",
        ),
        (
            vec!["mine", "-o", "stratum+ssl://a:1", "--tls-fingerprint", "zz"],
            vec![],
            "fingerprint",
        ),
        (
            vec!["mine", "--config", "/nonexistent/rig.toml"],
            vec![],
            "reading config file",
        ),
        (vec!["pool", "--difficulty=-1"], vec![], "--difficulty"),
        (vec!["pool", "--listen", "nowhere"], vec![], "--listen"),
        (
            vec!["mine"],
            vec![("RIGWORKER_THREADS", "many")],
            "invalid value",
        ),
        // Other variables are read too.
        (
            vec!["mine"],
            vec![("RIGWORKER_URL", "http://x:1")],
            "unknown scheme",
        ),
        (
            vec!["mine"],
            vec![("RIGWORKER_DURATION", "1e300")],
            "--duration",
        ),
        // Time values that do not fit a Duration or an Instant are errors, not panics.
        (vec!["mine", "--duration", "1e300"], vec![], "--duration"),
        (vec!["mine", "--duration", "NaN"], vec![], "--duration"),
        (vec!["mine", "--duration", "inf"], vec![], "--duration"),
        (vec!["mine", "--duration", "1e19"], vec![], "--duration"),
        (
            vec!["mine", "--failback-interval", "1e300"],
            vec![],
            "--failback-interval",
        ),
        (
            vec!["mine", "--failback-interval=-1"],
            vec![],
            "--failback-interval",
        ),
        (
            vec!["mine", "--print-time", "18446744073709551615"],
            vec![],
            "--print-time",
        ),
        (
            vec!["mine", "--keepalive", "18446744073709551615"],
            vec![],
            "--keepalive",
        ),
        (
            vec!["mine", "--suggest-difficulty", "NaN"],
            vec![],
            "--suggest-difficulty",
        ),
        (
            vec!["pool", "--job-interval", "1e300"],
            vec![],
            "--job-interval",
        ),
        (
            vec!["pool", "--job-interval", "NaN"],
            vec![],
            "--job-interval",
        ),
        (
            vec!["pool", "--print-time", "18446744073709551615"],
            vec![],
            "--print-time",
        ),
        (vec!["pool", "--vardiff", "1e300"], vec![], "--vardiff"),
        (vec!["bench", "--seconds", "1e300"], vec![], "--seconds"),
        (vec!["bench", "--seconds=-1"], vec![], "--seconds"),
        (vec!["bench", "--seconds", "NaN"], vec![], "--seconds"),
    ] {
        let o = run(&args, &env);
        let t = text(&o);
        assert!(!o.status.success(), "{args:?} should fail: {t}");
        assert!(t.contains(expect), "{args:?}: expected {expect:?} in: {t}");
        assert!(!t.contains("panicked"), "{args:?} panicked: {t}");
    }
}

#[test]
fn backend_help_lists_what_is_compiled_in() {
    for cmd in ["mine", "bench"] {
        let o = run(&[cmd, "--help"], &[]);
        assert!(o.status.success(), "{}", text(&o));
        let t = text(&o);
        // The CPU backend is always built; the help must name it from the build itself.
        assert!(t.contains("compiled in: cpu"), "{cmd} --help: {t}");
    }
}

#[test]
fn help_describes_mining_and_proving() {
    for flag in ["-h", "--help"] {
        let o = run(&[flag], &[]);
        assert!(o.status.success(), "{}", text(&o));
        let t = text(&o).to_lowercase();
        for word in ["sha-256d", "cpu", "gpu", "fpga", "proof", "groth16"] {
            assert!(
                t.contains(word),
                "rigworker {flag} does not say {word:?}: {t}"
            );
        }
    }
}

#[test]
fn a_broken_config_line_is_never_echoed() {
    let dir = std::env::temp_dir().join(format!("rigworker-cli-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("rig.toml");
    for body in [
        "[[pools]]\nurl = \"stratum+tcp://127.0.0.1:9\"\npass = \"hunter2-secret\n",
        "http_token = hunter2-secret\n",
        "[[pools]]\nurl = \"stratum+tcp://127.0.0.1:9\"\npass = 4242424242\n",
    ] {
        std::fs::write(&cfg, body).unwrap();
        for cmd in ["mine", "pool"] {
            let o = run(&[cmd, "--config", cfg.to_str().unwrap()], &[]);
            let t = text(&o);
            assert!(!o.status.success(), "{body:?} should fail: {t}");
            assert!(t.contains("line "), "{body:?}: no line number: {t}");
            assert!(
                !t.contains("hunter2") && !t.contains("4242424242"),
                "{cmd}: the secret was echoed: {t}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tls_insecure_warns_and_never_overrides_a_pin() {
    // Warned at start, for the pool it was given for (nothing listens on port 9).
    let o = run(
        &[
            "mine",
            "-o",
            "stratum+ssl://127.0.0.1:9",
            "--tls-insecure",
            "-o",
            "stratum+ssl://127.0.0.1:10",
            "--threads",
            "1",
            "--duration",
            "0.5",
        ],
        &[("RUST_LOG", "info")],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let warnings: Vec<&str> = t.lines().filter(|l| l.contains("--tls-insecure")).collect();
    assert_eq!(warnings.len(), 1, "{t}");
    assert!(
        warnings[0].contains("127.0.0.1:9") && warnings[0].contains("WARN"),
        "{t}"
    );
    // With a pin for the same pool: refused, from flags and from the environment alike.
    for (args, env) in [
        (
            vec![
                "mine",
                "-o",
                "stratum+ssl://a:1",
                "--tls-insecure",
                "--tls-fingerprint",
                "00",
            ],
            vec![],
        ),
        (
            vec!["mine", "-o", "stratum+ssl://a:1"],
            vec![
                ("RIGWORKER_TLS_INSECURE", "1"),
                ("RIGWORKER_TLS_FINGERPRINT", "00"),
            ],
        ),
    ] {
        let o = run(&args, &env);
        let t = text(&o);
        assert!(!o.status.success(), "{args:?} {env:?}: {t}");
        assert!(t.contains("--tls-fingerprint"), "{t}");
    }
}

#[test]
fn huge_time_values_in_the_config_file_are_errors() {
    let dir = std::env::temp_dir().join(format!("rigworker-cli-time-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (cmd, body, expect) in [
        ("mine", "duration = 1e300\n", "--duration"),
        ("mine", "failback_interval = 1e300\n", "--failback-interval"),
        ("mine", "print_time = 9223372036854775807\n", "--print-time"),
        ("pool", "job_interval = 1e300\n", "--job-interval"),
    ] {
        let cfg = dir.join("time.toml");
        std::fs::write(&cfg, body).unwrap();
        let o = run(&[cmd, "--config", cfg.to_str().unwrap()], &[]);
        let t = text(&o);
        assert!(!o.status.success(), "{body} should fail: {t}");
        assert!(t.contains(expect), "{body}: expected {expect:?} in: {t}");
        assert!(!t.contains("panicked"), "{body} panicked: {t}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_file_typos_are_errors_and_keys_work() {
    let dir = std::env::temp_dir().join(format!("rigworker-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "treads = 2\n").unwrap();
    let o = run(&["mine", "--config", bad.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown field"), "{}", text(&o));
    // A config naming a backend that is not compiled in fails the same way as the flag...
    let cfg = dir.join("rig.toml");
    std::fs::write(
        &cfg,
        "backend = [\"quantum\"]\n[[pools]]\nurl = \"stratum+tcp://127.0.0.1:9\"\n",
    )
    .unwrap();
    let o = run(&["mine", "--config", cfg.to_str().unwrap()], &[]);
    assert!(text(&o).contains("quantum"), "{}", text(&o));
    // ...and the flag wins over the file.
    let o = run(
        &[
            "mine",
            "--config",
            cfg.to_str().unwrap(),
            "--backend",
            "cpu",
            "--duration",
            "0.5",
            "--threads",
            "1",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prove_writes_snarkjs_files_that_verify_and_bad_files_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("rigworker-cli-prove-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proof = dir.join("proof.json");
    let public = dir.join("public.json");
    let o = run(
        &[
            "prove",
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
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    for p in [
        "ntt", "msm_a_g1", "msm_b_g1", "msm_b_g2", "msm_c_g1", "msm_h_g1", "verify", "total",
    ] {
        assert!(phases.contains(&p), "{p} in {phases:?}");
    }
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);
    // A single proof streams the key: each part read just before it is needed.
    assert_eq!(report["key_streamed"], true, "{report}");
    let o = run(
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
        o.status.success() && text(&o).contains("OK"),
        "{}",
        text(&o)
    );
    // The proof against another circuit's key: INVALID, exit status non-zero, no panic.
    let o = run(
        &[
            "verify",
            "--vkey",
            &fixture("mulchain.vkey.json"),
            "--proof",
            proof.to_str().unwrap(),
            "--public",
            public.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("panicked"), "{}", text(&o));
    // A witness of another circuit, and a truncated key: clear errors.
    let o = run(
        &[
            "prove",
            "--zkey",
            &fixture("poseidon.zkey"),
            "--wtns",
            &fixture("mulchain.wtns"),
        ],
        &[],
    );
    assert!(
        !o.status.success() && text(&o).contains("different circuits"),
        "{}",
        text(&o)
    );
    let cut = dir.join("cut.zkey");
    let bytes = std::fs::read(fixture("poseidon.zkey")).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(
        &[
            "prove",
            "--zkey",
            cut.to_str().unwrap(),
            "--wtns",
            &fixture("poseidon.wtns"),
        ],
        &[],
    );
    assert!(
        !o.status.success() && !text(&o).contains("panicked"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("cut.zkey"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_work_prove_reports_phases_and_msm_ratios_as_json() {
    let o = run(
        &[
            "bench",
            "--work",
            "prove",
            "--zkey",
            &fixture("mulchain.zkey"),
            "--wtns",
            &fixture("mulchain.wtns"),
            "--repeat",
            "1",
            "--msm-log",
            "10,12",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let prove = r["prove"].as_array().unwrap();
    assert_eq!(prove.len(), 2, "with and without tables: {r}");
    for p in prove {
        assert_eq!(p["circuit"], "mulchain");
        // A key this small keeps its tables when asked for; rows without say nothing.
        assert_eq!(
            p["tables_built"].as_bool(),
            (p["precompute"] == true).then_some(true),
            "{p}"
        );
        // Rows without tables also report the peak of one proof that streams the key.
        assert_eq!(
            p["single_proof_peak_rss_bytes"]
                .as_u64()
                .is_some_and(|b| b > 0),
            p["precompute"] == false,
            "{p}"
        );
        assert!(
            p["phases_ms"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x[0] == "total")
        );
    }
    let msm = r["msm"].as_array().unwrap();
    assert!(
        msm.iter()
            .any(|m| m["group"] == "G1" && m["points"] == 1 << 12),
        "{r}"
    );
    assert!(msm.iter().any(|m| m["group"] == "G2"), "{r}");
    for m in msm {
        assert!(m["ours_ms"].as_f64().unwrap() > 0.0 && m["speedup"].as_f64().unwrap() > 0.0);
    }
}

/// One binary for every rig: GPU runtimes are opened at run time, never linked, so the binary
/// starts where none is installed (DESIGN.md).
#[test]
fn the_binary_links_no_gpu_runtime() {
    let o = Command::new("readelf").args(["-d", BIN]).output();
    let Ok(o) = o else {
        assert!(
            std::env::var_os("CI").is_none(),
            "readelf (binutils) is required under CI"
        );
        println!("SKIPPED: readelf not found (install binutils)");
        return;
    };
    let dynamic = String::from_utf8_lossy(&o.stdout);
    assert!(dynamic.contains("NEEDED"), "{dynamic}");
    for lib in [
        "libOpenCL",
        "libcuda",
        "libnvrtc",
        "libcudart",
        "libvulkan",
        "libnvidia-ml",
    ] {
        assert!(!dynamic.contains(lib), "rigworker links {lib}:\n{dynamic}");
    }
}

/// `rigworker pool` with a miner that shares no code with rigworker (a Python Stratum client,
/// `tests/support/stratum_miner.py`): its real share is accepted, and a duplicate, a share
/// above the target and a wrong-size extranonce2 are rejected.
#[test]
fn the_pool_accepts_a_third_party_miner_and_rejects_its_bad_shares() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is required under CI"
        );
        println!("SKIPPED: python3 not found");
        return;
    }
    let mut pool = Command::new(BIN)
        .args(["pool", "--listen", "127.0.0.1:0", "--difficulty", "0.00003"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(pool.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = format!(
        "{}/tests/support/stratum_miner.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let o = Command::new("python3")
        .args([&script, host, port])
        .output()
        .unwrap();
    let _ = pool.kill();
    let _ = pool.wait();
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 4, "{said}");
    assert_eq!(lines[0], "ACCEPTED", "{said}");
    assert!(
        lines[1].starts_with("REJECTED") && lines[1].contains("22"),
        "{said}"
    );
    assert!(
        lines[2].starts_with("REJECTED") && lines[2].contains("23"),
        "{said}"
    );
    assert!(
        lines[3].starts_with("REJECTED") && lines[3].contains("20"),
        "{said}"
    );
}
