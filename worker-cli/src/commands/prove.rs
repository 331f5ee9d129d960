//! `rigworker prove` and `rigworker verify`: Groth16 over BN254 with snarkjs files.
//!
//! `prove` prints the time of every phase of the pipeline (load, witness, build ABC, NTTs, each
//! MSM, assembly, self-verification, total) and the peak resident memory (VmHWM).
//!
//! A single proof streams the zkey: each part is read just before the pipeline needs it and
//! dropped after ([`prover::prove_once`]), which keeps peak memory near the proof's vectors plus
//! one query. With `--repeat` or `--precompute` the key is loaded once and kept (with MSM tables
//! under `--precompute`, as a worker proving the same circuit repeatedly does), and the phases
//! are medians. Loading (seconds with `--precompute`) and proving show their progress on stderr
//! (`crate::progress`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use proofs::json;
use proofs::prover::{self, PreparedKey, ProveOptions, ProveTimings};
use proofs::zkey::ZkeyFile;
use proofs::{Precompute, Proof, VerifyingKey, Witness};
use serde_json::json;

use crate::cli::{ProveArgs, VerifyArgs};
use crate::progress::{Progress, ProgressMode};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median of each phase over several runs.
pub(crate) fn median_timings(runs: &[ProveTimings]) -> Vec<(&'static str, f64)> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .phases()
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let mut v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.phases().get(i).map(|p| ms(p.1)))
                .collect();
            v.sort_by(f64::total_cmp);
            (*name, v[v.len() / 2])
        })
        .collect()
}

/// What loading the key cost, however it was loaded.
struct KeyFigures {
    load: Duration,
    read: Duration,
    prepare: Duration,
    /// Bytes of prepared bases held at once: the whole key, or the largest query when streamed.
    prepared_bytes: usize,
    /// Read part by part during the proof ([`prover::prove_once`]) rather than up front.
    streamed: bool,
    /// Precomputed MSM tables back the key (`--precompute` where the cost model expects a gain).
    tables: bool,
}

pub fn run(args: &ProveArgs) -> Result<()> {
    if let Some(t) = args.threads {
        proofs::init_threads(t);
    }
    let arith = super::prove_arith(args.prove_arith)?;
    let backend =
        backends::prove::open_prove_backend(&args.backend, args.devices).with_context(|| {
            format!(
                "opening proving backend {} device {}",
                args.backend, args.devices
            )
        })?;
    backend.set_g2_placement(args.g2_on.into());
    let g2_beside_g1 = backend.g2_beside_g1();
    // One proof: the leanest preparation; several with the key loaded once: the faster one.
    let pre = if args.precompute {
        Precompute::Tables
    } else if args.repeat > 1 {
        Precompute::Endomorphism
    } else {
        Precompute::None
    };

    let mode = ProgressMode::detect(args.json);
    let opts = ProveOptions {
        self_check: !args.no_verify,
    };
    let repeat = args.repeat.max(1);
    let backend_name = backend.name().to_string();
    let t0 = Instant::now();
    let mut runs = Vec::new();
    // A single proof streams the key (each part read just before it is used and dropped after:
    // the leanest peak memory); several proofs load it once and keep it.
    let (header, key_figures, read_wtns, out) = if pre == Precompute::None {
        let zkey = ZkeyFile::open(&args.zkey)?;
        let opened = t0.elapsed();
        let t = Instant::now();
        let witness = Witness::load(&args.wtns)?;
        let read_wtns = t.elapsed();
        let proving = Progress::spinner(mode, "proving (reading the key as it goes)");
        let (out, streamed) = prover::prove_once(&zkey, backend, &witness, opts)?;
        drop(proving);
        let lt = &streamed.load_timings;
        let figures = KeyFigures {
            load: opened + lt.total,
            read: opened + lt.read,
            prepare: lt.prepare,
            prepared_bytes: streamed.peak_prepared_bytes,
            streamed: true,
            tables: false,
        };
        runs.push(out.timings.clone());
        (zkey.header.clone(), figures, read_wtns, out)
    } else {
        let loading = Progress::spinner(
            mode,
            if args.precompute {
                "loading the proving key and building its MSM tables where they pay"
            } else {
                "loading the proving key"
            },
        );
        let key = PreparedKey::load(&args.zkey, backend, pre)?;
        drop(loading);
        let figures = KeyFigures {
            load: t0.elapsed(),
            read: key.load_timings.read,
            prepare: key.load_timings.prepare,
            prepared_bytes: key.memory_bytes(),
            streamed: false,
            tables: key.has_tables(),
        };
        let t = Instant::now();
        let witness = Witness::load(&args.wtns)?;
        let read_wtns = t.elapsed();
        let mut last = None;
        let proving = Progress::steps(mode, "proving", u64::from(repeat));
        for _ in 0..repeat {
            let out = key.prove(&witness, opts)?;
            runs.push(out.timings.clone());
            last = Some(out);
            proving.inc();
        }
        drop(proving);
        let out = last.ok_or_else(|| anyhow!("no proof was made"))?;
        (key.header.clone(), figures, read_wtns, out)
    };
    if let Some(p) = &args.proof {
        out.proof.save(p)?;
    }
    if let Some(p) = &args.public {
        json::save_public(p, &out.public)?;
    }

    let phases = median_timings(&runs);
    let peak = proofs::mem::peak_rss_bytes();
    // Where the G2 MSM ran: the CPU backend runs everything there.
    let g2_on = if backend_name == "cpu" || g2_beside_g1 {
        "cpu"
    } else {
        "device"
    };
    let h = &header;
    let k = &key_figures;
    if args.json {
        let report = json!({
            "backend": backend_name,
            "g2_on": g2_on,
            "arith": arith.name(),
            "precompute": args.precompute,
            "tables_built": k.tables,
            "threads": proofs::threads(),
            "n_vars": h.n_vars,
            "n_public": h.n_public,
            "domain_size": h.domain_size,
            "load_ms": ms(k.load),
            "load_read_ms": ms(k.read),
            "load_prepare_ms": ms(k.prepare),
            "key_streamed": k.streamed,
            "read_wtns_ms": ms(read_wtns),
            "repeat": runs.len(),
            "phases": phases.iter().map(|(k, v)| json!({"phase": k, "ms": v})).collect::<Vec<_>>(),
            "prepared_bytes": k.prepared_bytes,
            "peak_rss_bytes": peak,
            "verified": opts.self_check,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "circuit: {} variables, {} public, domain 2^{}  backend: {}{} (CPU arithmetic {arith})  threads: {}{}",
        h.n_vars,
        h.n_public,
        h.domain_size.trailing_zeros(),
        backend_name,
        if backend_name != "cpu" && g2_on == "cpu" {
            ", G2 MSM on the CPU beside it"
        } else {
            ""
        },
        proofs::threads(),
        match (args.precompute, k.tables) {
            (true, true) => "  (precomputed tables)",
            (true, false) => "  (no tables: the cost model expects no gain at this size)",
            _ => "",
        }
    );
    println!("{:<12} {:>10}", "phase", "ms");
    println!(
        "{:<12} {:>10.1}   (read {:.1}, prepare {:.1}{})",
        "load",
        ms(k.load),
        ms(k.read),
        ms(k.prepare),
        if k.streamed {
            "; streamed: each part read as the proof needs it, so also inside total"
        } else {
            ""
        }
    );
    println!("{:<12} {:>10.1}", "read_wtns", ms(read_wtns));
    for (name, v) in &phases {
        println!("{name:<12} {v:>10.1}");
    }
    if runs.len() > 1 {
        println!(
            "(medians of {} proofs with the key loaded once)",
            runs.len()
        );
    }
    println!(
        "peak memory {}  ({} {:.1} MB)",
        peak.map(|b| format!("{:.1} MB", b as f64 / 1e6))
            .unwrap_or_else(|| "unknown".into()),
        if k.streamed {
            "largest query prepared at once"
        } else {
            "prepared key"
        },
        k.prepared_bytes as f64 / 1e6
    );
    if opts.self_check {
        println!("proof verified");
    }
    Ok(())
}

pub fn verify(args: &VerifyArgs) -> Result<()> {
    let vk = VerifyingKey::load(&args.vkey)?;
    let proof = Proof::load(&args.proof)?;
    let public = json::load_public(&args.public)?;
    let t = Instant::now();
    let ok = proofs::verify(&vk, &proof, &public).context("verifying")?;
    if !ok {
        bail!("INVALID proof ({} ms)", ms(t.elapsed()).round());
    }
    println!("OK ({:.1} ms)", ms(t.elapsed()));
    Ok(())
}
