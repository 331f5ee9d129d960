//! Helpers shared by the tests that run the `rigworker` binary as a user does: running it,
//! its whole output as text, and the committed proof fixtures.

#![allow(dead_code)]

use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_rigworker");

/// Runs `rigworker args` with `env` added. `RIGWORKER_PROVE_ARITH` from the surrounding
/// environment is removed, so a test's arithmetic path is the one it names.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RIGWORKER_PROVE_ARITH")
        .envs(env.iter().copied())
        .output()
        .expect("run rigworker")
}

/// stdout then stderr, for assertion messages and searches.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A committed snarkjs fixture (`proofs/fixtures/NAME`).
pub fn fixture(name: &str) -> String {
    format!("{}/../proofs/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Whether this is a CI run (`CI` set and not "0" or "false"), where a missing tool fails.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// snarkjs from $SNARKJS or PATH, or `None` with a SKIPPED line (a failure under CI).
pub fn snarkjs() -> Option<String> {
    let cmd = std::env::var("SNARKJS").unwrap_or_else(|_| "snarkjs".into());
    let found = Command::new(&cmd).arg("--version").output().is_ok();
    if !found {
        assert!(
            !in_ci(),
            "snarkjs is required under CI but `{cmd}` was not found"
        );
        println!("SKIPPED (snarkjs): `{cmd}` not found");
        return None;
    }
    Some(cmd)
}
