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
