//! `bench --work prove --against NAME=COMMAND`: whole processes side by side. `rigworker prove`
//! (once per arithmetic path this CPU has, or the one `--prove-arith` names) and each other
//! prover given are run on the same key and witness, from spawn to exit (reading the key
//! included), with the peak resident memory the kernel recorded for each process. Runs are
//! interleaved (every prover once, then every prover again) so that a machine whose speed drifts
//! over minutes, as shared ones do, shifts every row alike, and each row is a median. Every
//! proof, ours and theirs, is verified against the key's verifying key: a prover that fails or
//! writes a wrong proof is an error, never a fast row.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use backends::prove::arith::ArithPath;
use proofs::json::{Proof, load_public};
use proofs::zkey::ZkeyFile;
use serde::Serialize;

use crate::progress::Progress;

/// Another prover to run beside ours: `NAME=COMMAND`, the command's words followed by `ZKEY
/// WTNS PROOF PUBLIC`, the argument order of rapidsnark's `prover` and of `snarkjs groth16
/// prove`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub command: Vec<String>,
}

/// clap's parser for `--against`: `NAME=COMMAND`, the command split at whitespace (no shell
/// quoting: a path with spaces needs a link or a wrapper script).
pub fn parse_peer(s: &str) -> Result<Peer, String> {
    let (name, command) = s.split_once('=').ok_or_else(|| {
        format!("`{s}`: expected NAME=COMMAND, e.g. rapidsnark=/usr/local/bin/prover")
    })?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("`{s}`: the name before `=` must be one word"));
    }
    let command: Vec<String> = command.split_whitespace().map(String::from).collect();
    if command.is_empty() {
        return Err(format!("`{s}`: no command after `=`"));
    }
    Ok(Peer {
        name: name.to_string(),
        command,
    })
}

/// One prover's whole-process figures on one circuit.
#[derive(Serialize, Debug)]
pub struct WholeResult {
    pub circuit: String,
    /// `rigworker` or the peer's name.
    pub prover: String,
    /// Our arithmetic path (`--prove-arith`); `None` for a peer.
    pub arith: Option<&'static str>,
    /// Wall time of each run, seconds, in the order they ran.
    pub runs_s: Vec<f64>,
    pub median_s: f64,
    /// Median over the runs of the process's peak resident memory.
    pub peak_rss_bytes: u64,
}

/// A command line and what the rows call it.
struct Contender {
    prover: String,
    arith: Option<ArithPath>,
    argv: Vec<OsString>,
}

/// Our own binary on each of `paths`, then every peer.
fn contenders(
    paths: &[ArithPath],
    threads: Option<usize>,
    peers: &[Peer],
) -> Result<Vec<Contender>> {
    let exe = std::env::current_exe().context("locating the rigworker binary")?;
    let mut v: Vec<Contender> = paths
        .iter()
        .map(|&p| {
            let mut argv: Vec<OsString> = vec![exe.clone().into(), "prove".into()];
            if let Some(t) = threads {
                argv.extend(["--threads".into(), t.to_string().into()]);
            }
            argv.extend(["--prove-arith".into(), p.name().into()]);
            Contender {
                prover: "rigworker".into(),
                arith: Some(p),
                argv,
            }
        })
        .collect();
    v.extend(peers.iter().map(|p| Contender {
        prover: p.name.clone(),
        arith: None,
        argv: p.command.iter().map(OsString::from).collect(),
    }));
    Ok(v)
}

/// Runs `circuits` through our prover on `paths` and through `peers`, `repeat` rounds each,
/// interleaved; one progress step per circuit.
pub fn measure(
    circuits: &[(String, PathBuf, PathBuf)],
    paths: &[ArithPath],
    threads: Option<usize>,
    peers: &[Peer],
    repeat: u32,
    progress: &Progress,
) -> Result<Vec<WholeResult>> {
    let contenders = contenders(paths, threads, peers)?;
    let dir = std::env::temp_dir().join(format!("rigworker-bench-whole-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = measure_in(&dir, circuits, &contenders, repeat, progress);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure_in(
    dir: &Path,
    circuits: &[(String, PathBuf, PathBuf)],
    contenders: &[Contender],
    repeat: u32,
    progress: &Progress,
) -> Result<Vec<WholeResult>> {
    let mut rows = Vec::new();
    for (name, zkey, wtns) in circuits {
        let vk = ZkeyFile::open(zkey)
            .and_then(|z| z.verifying_key())
            .with_context(|| format!("reading the verifying key of {}", zkey.display()))?;
        let mut runs: Vec<Vec<(f64, u64)>> = vec![Vec::new(); contenders.len()];
        for round in 0..repeat.max(1) {
            for (c, out) in contenders.iter().zip(runs.iter_mut()) {
                let who = match c.arith {
                    Some(p) => format!("{} ({})", c.prover, p.name()),
                    None => c.prover.clone(),
                };
                progress.set_message(format!(
                    "whole processes on {name}: {who}, run {}/{}",
                    round + 1,
                    repeat.max(1)
                ));
                let proof = dir.join("proof.json");
                let public = dir.join("public.json");
                let _ = std::fs::remove_file(&proof);
                let _ = std::fs::remove_file(&public);
                let mut argv = c.argv.clone();
                match c.arith {
                    // Ours takes named options; verification stays on, as users run it.
                    Some(_) => argv.extend([
                        "--zkey".into(),
                        zkey.into(),
                        "--wtns".into(),
                        wtns.into(),
                        "--proof".into(),
                        proof.clone().into(),
                        "--public".into(),
                        public.clone().into(),
                    ]),
                    None => argv.extend([
                        zkey.into(),
                        wtns.into(),
                        proof.clone().into(),
                        public.clone().into(),
                    ]),
                }
                let log = dir.join("stderr.txt");
                let (secs, rss) =
                    run_once(&argv, &log).with_context(|| format!("{who} on {name}"))?;
                let p = Proof::load(&proof)
                    .and_then(|p| Ok((p, load_public(&public)?)))
                    .with_context(|| format!("{who} on {name}: reading the proof it wrote"))?;
                if !proofs::verifier::verify(&vk, &p.0, &p.1)
                    .with_context(|| format!("{who} on {name}: verifying its proof"))?
                {
                    return Err(anyhow!(
                        "{who} on {name}: its proof does not verify against the key"
                    ));
                }
                out.push((secs, rss));
            }
        }
        for (c, v) in contenders.iter().zip(runs) {
            let mut times: Vec<f64> = v.iter().map(|r| r.0).collect();
            let runs_s = times.clone();
            let mut rss: Vec<u64> = v.iter().map(|r| r.1).collect();
            rss.sort_unstable();
            rows.push(WholeResult {
                circuit: name.clone(),
                prover: c.prover.clone(),
                arith: c.arith.map(ArithPath::name),
                runs_s,
                median_s: super::bench::median(&mut times),
                peak_rss_bytes: rss.get(rss.len() / 2).copied().unwrap_or(0),
            });
        }
        progress.inc();
    }
    Ok(rows)
}

/// Runs `argv` to its end: wall seconds from spawn to exit and the process's peak resident
/// bytes. Its standard error goes to `log`, quoted when it fails.
fn run_once(argv: &[OsString], log: &Path) -> Result<(f64, u64)> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| anyhow!("an empty command"))?;
    let err = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    let t = Instant::now();
    let (status, rss) =
        run_measured(&mut cmd).with_context(|| format!("running {}", program.to_string_lossy()))?;
    let secs = t.elapsed().as_secs_f64();
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        return Err(anyhow!("exited with {status}:\n{tail}"));
    }
    let rss = rss.ok_or_else(|| anyhow!("its peak memory could not be read from /proc"))?;
    Ok((secs, rss))
}

/// Runs `cmd` under ptrace, stopping it once as it exits, before its memory is released, to
/// read its own peak (`VmHWM`) from /proc: the process's, not that of processes it starts
/// (rapidsnark and snarkjs prove in their own process; `env` and a script's `exec` keep it). The kernel's rusage would not do: a child's
/// `ru_maxrss` keeps the high-water mark of the address space it had before `exec`, a copy of
/// ours, so every prover would seem to need at least the bench's own memory (at least its
/// peak, when the child was spawned sharing our address space, as `posix_spawn` does).
#[cfg(target_os = "linux")]
fn run_measured(cmd: &mut Command) -> Result<(ExitStatus, Option<u64>)> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    // SAFETY: between fork and exec the child only makes the one system call, which neither
    // allocates nor takes locks.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child: Child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut peak = None;
    let mut options_set = false;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: pid is our own child; status is valid for writes.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == -1 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("waiting for the prover");
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Ok((ExitStatus::from_raw(status), peak));
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let mut deliver = sig;
        if !options_set && sig == libc::SIGTRAP {
            // The stop after exec: from here on, stop once more as it exits, and report a
            // further exec (`snarkjs` is a script that `env` runs) as an event, not a SIGTRAP.
            // SAFETY: pid is stopped under our trace.
            let r = unsafe {
                libc::ptrace(
                    libc::PTRACE_SETOPTIONS,
                    pid,
                    0,
                    (libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_TRACEEXEC) as libc::c_long,
                )
            };
            if r == -1 {
                let e = std::io::Error::last_os_error();
                // SAFETY: as above; the child is killed rather than left stopped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return Err(e).context("tracing the prover's exit");
            }
            options_set = true;
            deliver = 0;
        } else if sig == libc::SIGTRAP && (status >> 16) == libc::PTRACE_EVENT_EXIT {
            peak = proofs::mem::peak_rss_bytes_of(pid as u32);
            deliver = 0;
        } else if sig == libc::SIGTRAP && (status >> 16) == libc::PTRACE_EVENT_EXEC {
            deliver = 0;
        }
        // SAFETY: pid is stopped under our trace; a signal that stopped it is passed on.
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, deliver as libc::c_long) };
    }
}

#[cfg(not(target_os = "linux"))]
fn run_measured(_cmd: &mut Command) -> Result<(ExitStatus, Option<u64>)> {
    Err(anyhow!(
        "--against measures other processes' peak memory through /proc and ptrace: Linux only"
    ))
}

/// The table: one row per prover and circuit, and per peer the ratio of its median time to
/// the row's.
pub fn print(rows: &[WholeResult], peers: &[Peer], repeat: u32) {
    println!();
    println!(
        "Whole process (reading the key included), medians of {repeat} runs, provers interleaved"
    );
    print!(
        "{:<20} {:<22} {:>9} {:>8}",
        "circuit", "prover", "time s", "peak MB"
    );
    for p in peers {
        print!(" {:>14}", format!("{} / row", p.name));
    }
    println!();
    for r in rows {
        let who = match r.arith {
            Some(a) => format!("{} {a}", r.prover),
            None => r.prover.clone(),
        };
        print!(
            "{:<20} {:<22} {:>9.3} {:>8.1}",
            r.circuit,
            who,
            r.median_s,
            r.peak_rss_bytes as f64 / 1e6
        );
        for p in peers {
            let theirs = rows
                .iter()
                .find(|o| o.circuit == r.circuit && o.arith.is_none() && o.prover == p.name)
                .map(|o| o.median_s);
            print!(
                " {:>14}",
                theirs.map_or("-".into(), |t| format!("{:.2}x", t / r.median_s.max(1e-9)))
            );
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_a_name_and_a_command() {
        assert_eq!(
            parse_peer("snarkjs=snarkjs groth16  prove"),
            Ok(Peer {
                name: "snarkjs".into(),
                command: vec!["snarkjs".into(), "groth16".into(), "prove".into()],
            })
        );
        assert_eq!(
            parse_peer("rapidsnark=/opt/rs/prover").map(|p| p.command),
            Ok(vec!["/opt/rs/prover".to_string()])
        );
        for bad in ["prover", "=prover", "two words=prover", "x=", "x=   "] {
            assert!(parse_peer(bad).is_err(), "{bad}");
        }
    }
}
