//! `bench --work prove --against NAME=COMMAND`: whole processes side by side. `rigworker prove`
//! (once per arithmetic path this CPU has, or the one `--prove-arith` names) and each other
//! prover given are run on the same key and witness, from the program's start to its exit
//! (reading the key included), with each process's own peak resident memory. Runs are
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
use proofs::Witness;
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
            // `--backend cpu` explicitly: a RIGWORKER_PROVE_BACKEND in the environment would
            // otherwise send these rows to a GPU under a CPU path's name.
            let mut argv: Vec<OsString> = vec![
                exe.clone().into(),
                "prove".into(),
                "--backend".into(),
                "cpu".into(),
            ];
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
    for (i, p) in peers.iter().enumerate() {
        if p.name == "rigworker" || peers[..i].iter().any(|q| q.name == p.name) {
            return Err(anyhow!(
                "--against {}: each peer needs a name of its own, other than rigworker",
                p.name
            ));
        }
    }
    let contenders = contenders(paths, threads, peers)?;
    let dir = private_temp_dir("rigworker-bench-whole")?;
    let result = measure_in(&dir, circuits, &contenders, repeat, progress);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A new folder `PREFIX-…` under the temp dir that only we can enter: provers write their
/// proofs there, and a name another user could have made first (with links inside) must not
/// be reused.
pub(super) fn private_temp_dir(prefix: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    for _ in 0..100 {
        let dir = base.join(format!("{prefix}-{seed:016x}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    Err(anyhow!("no unused folder name in {}", base.display()))
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
        // Each proof must be of this witness: its public signals, not only a valid proof.
        let expected = Witness::load(wtns)?.public(vk.n_public());
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
                if p.1 != expected {
                    return Err(anyhow!(
                        "{who} on {name}: its public signals are not the witness's"
                    ));
                }
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
            let mut rss: Vec<f64> = v.iter().map(|r| r.1 as f64).collect();
            rows.push(WholeResult {
                circuit: name.clone(),
                prover: c.prover.clone(),
                arith: c.arith.map(ArithPath::name),
                runs_s,
                median_s: super::bench::median(&mut times),
                peak_rss_bytes: super::bench::median(&mut rss) as u64,
            });
        }
        progress.inc();
    }
    Ok(rows)
}

/// Runs `argv` to its end: wall seconds from its start to its exit and the process's peak
/// resident bytes. Its output goes to `log`, quoted when it fails.
fn run_once(argv: &[OsString], log: &Path) -> Result<(f64, u64)> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| anyhow!("an empty command"))?;
    // Both streams: snarkjs prints its errors on stdout.
    let err = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let out = err.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
    let run =
        run_measured(&mut cmd).with_context(|| format!("running {}", program.to_string_lossy()))?;
    if !run.status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        return Err(anyhow!("exited with {}:\n{tail}", run.status));
    }
    let rss = run
        .peak_rss
        .ok_or_else(|| anyhow!("its peak memory could not be read from /proc"))?;
    Ok((run.seconds, rss))
}

/// How one process ran.
struct Measured {
    status: ExitStatus,
    /// Wall time from its first instruction (after `exec`) to its exit.
    seconds: f64,
    peak_rss: Option<u64>,
}

/// Runs `cmd` traced, to stop it as it exits, before its memory is released, and read its
/// own peak (`VmHWM`) from /proc: the process's, not that of processes it starts (rapidsnark
/// and snarkjs prove in their own process; `env` and a script's `exec` keep it). The kernel's
/// rusage would not do: a child's `ru_maxrss` keeps the high-water mark of the address space
/// it had before `exec`, a copy of ours, so every prover would seem to need at least the
/// bench's own memory (at least its peak, when the child was spawned sharing our address
/// space, as `posix_spawn` does). The clock starts at the stop that follows `exec`, so our
/// fork and its copy of the bench's memory are not counted.
#[cfg(target_os = "linux")]
fn run_measured(cmd: &mut Command) -> Result<Measured> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    // SAFETY: between fork and exec the child only makes the one system call, which neither
    // allocates nor takes locks.
    unsafe {
        cmd.pre_exec(|| {
            let none = std::ptr::null_mut::<libc::c_void>();
            if libc::ptrace(libc::PTRACE_TRACEME, 0, none, none) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child: Child = cmd.spawn().map_err(|e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            anyhow!(
                "{e}: the kernel refused to let the bench trace it (is the bench itself traced, \
                 as under strace -f or gdb, or is ptrace restricted: Yama ptrace_scope >= 2, a \
                 seccomp profile?)"
            )
        } else {
            anyhow!(e)
        }
    })?;
    let pid = child.id() as libc::pid_t;
    let none = std::ptr::null_mut::<libc::c_void>();
    let mut started = Instant::now();
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
            return Ok(Measured {
                status: ExitStatus::from_raw(status),
                seconds: started.elapsed().as_secs_f64(),
                peak_rss: peak,
            });
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = status >> 16;
        let mut deliver = sig;
        if !options_set && sig == libc::SIGTRAP {
            // The stop after exec: from here on, stop once more as it exits, report a further
            // exec (`snarkjs` is a script that `env` runs) as an event rather than a SIGTRAP,
            // and kill it should the bench die first.
            let options =
                libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_EXITKILL;
            // SAFETY: pid is stopped under our trace.
            let r = unsafe {
                libc::ptrace(libc::PTRACE_SETOPTIONS, pid, none, options as libc::c_long)
            };
            if r == -1 {
                let e = std::io::Error::last_os_error();
                // SAFETY: as above; the child is killed and reaped, not left stopped.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                return Err(e).context("tracing the prover's exit");
            }
            options_set = true;
            deliver = 0;
            started = Instant::now();
        } else if sig == libc::SIGTRAP && event == libc::PTRACE_EVENT_EXIT {
            peak = proofs::mem::peak_rss_bytes_of(pid as u32);
            deliver = 0;
        } else if sig == libc::SIGTRAP && event == libc::PTRACE_EVENT_EXEC {
            deliver = 0;
        }
        // SAFETY: pid is stopped under our trace; a signal that stopped it is passed on.
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, none, deliver as libc::c_long) };
    }
}

#[cfg(not(target_os = "linux"))]
fn run_measured(_cmd: &mut Command) -> Result<Measured> {
    Err(anyhow!(
        "--against measures other processes' peak memory through /proc and ptrace: Linux only"
    ))
}

/// The table: one row per prover and circuit, and per peer the ratio of its median time to
/// the row's.
pub fn print(rows: &[WholeResult], peers: &[Peer], repeat: u32) {
    println!();
    println!(
        "Whole process (reading the key included; ours verifies its proof, as by default), \
         medians of {repeat} runs, provers interleaved"
    );
    let who = |r: &WholeResult| match r.arith {
        Some(a) => format!("{} {a}", r.prover),
        None => r.prover.clone(),
    };
    let wc = rows
        .iter()
        .map(|r| r.circuit.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let wp = rows.iter().map(|r| who(r).len()).max().unwrap_or(0).max(6);
    let ratio_heads: Vec<String> = peers.iter().map(|p| format!("{} / row", p.name)).collect();
    print!(
        "{:<wc$} {:<wp$} {:>9} {:>8}",
        "circuit", "prover", "time s", "peak MB"
    );
    for h in &ratio_heads {
        print!(" {h:>8}");
    }
    println!();
    for r in rows {
        print!(
            "{:<wc$} {:<wp$} {:>9.3} {:>8.1}",
            r.circuit,
            who(r),
            r.median_s,
            r.peak_rss_bytes as f64 / 1e6
        );
        for (p, h) in peers.iter().zip(&ratio_heads) {
            let theirs = rows
                .iter()
                .find(|o| o.circuit == r.circuit && o.arith.is_none() && o.prover == p.name)
                .map(|o| o.median_s);
            let w = h.len().max(8);
            print!(
                " {:>w$}",
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
