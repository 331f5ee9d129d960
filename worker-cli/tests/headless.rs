//! The headless-operation settings as a user gives them: `--temp-limit` from the flag, the
//! environment (`RIGWORKER_TEMP_LIMIT`) and the config file (`temp_limit`), each checked
//! before anything starts.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rigworker");

fn mine(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut c = Command::new(BIN);
    c.arg("mine")
        .args(args)
        .args(["--duration", "1", "--threads", "1"]);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run rigworker mine");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn temp_limit_out_of_range_is_an_error_from_every_source() {
    let (ok, out) = mine(&["--temp-limit", "500"], &[]);
    assert!(
        !ok && out.contains("--temp-limit must be between 30 and 120"),
        "{out}"
    );
    let (ok, out) = mine(&[], &[("RIGWORKER_TEMP_LIMIT", "nan")]);
    assert!(!ok && out.contains("--temp-limit"), "{out}");
    let cfg = std::env::temp_dir().join(format!(
        "rigworker-temp-limit-{}-{}.toml",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::write(&cfg, "temp_limit = 10.0\n").expect("write config");
    let (ok, out) = mine(&["-c", cfg.to_str().expect("utf-8 temp path")], &[]);
    assert!(!ok && out.contains("got 10"), "{out}");
    // A flag wins over the file: a good flag with the bad file starts (built-in pool, 1 s).
    let (ok, out) = mine(
        &[
            "-c",
            cfg.to_str().expect("utf-8 temp path"),
            "--temp-limit",
            "85",
        ],
        &[],
    );
    assert!(ok, "{out}");
    let _ = std::fs::remove_file(&cfg);
}
