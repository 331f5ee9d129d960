//! `rigworker prove` and `rigworker verify`: Groth16 over BN254 with snarkjs files.
//!
//! `prove` loads the zkey once (optionally precomputing MSM tables, as a worker proving the same
//! circuit repeatedly does), proves `--repeat` times and prints the time of every phase of the
//! pipeline (load, witness, build ABC, NTTs, each MSM, assembly, self-verification, total) and
//! the peak resident memory (VmHWM). Loading (seconds with `--precompute`) and proving show
//! their progress on stderr (`crate::progress`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use proofs::json;
use proofs::prover::{PreparedKey, ProveOptions, ProveTimings};
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
    // One proof: the leanest preparation; several with the key loaded once: the faster one.
    let pre = if args.precompute {
        Precompute::Tables
    } else if args.repeat > 1 {
        Precompute::Endomorphism
    } else {
        Precompute::None
    };

    let mode = ProgressMode::detect(args.json);
    let t0 = Instant::now();
    let loading = Progress::spinner(
        mode,
        if args.precompute {
            "loading the proving key and building its MSM tables"
        } else {
            "loading the proving key"
        },
    );
    let key = PreparedKey::load(&args.zkey, backend, pre)?;
    drop(loading);
    let load = t0.elapsed();
    let t = Instant::now();
    let witness = Witness::load(&args.wtns)?;
    let read_wtns = t.elapsed();

    let opts = ProveOptions {
        self_check: !args.no_verify,
    };
    let mut runs = Vec::new();
    let mut last = None;
    let repeat = args.repeat.max(1);
    let proving = Progress::steps(mode, "proving", u64::from(repeat));
    for _ in 0..repeat {
        let out = key.prove(&witness, opts)?;
        runs.push(out.timings.clone());
        last = Some(out);
        proving.inc();
    }
    drop(proving);
    let out = last.ok_or_else(|| anyhow!("no proof was made"))?;
    if let Some(p) = &args.proof {
        out.proof.save(p)?;
    }
    if let Some(p) = &args.public {
        json::save_public(p, &out.public)?;
    }

    let phases = median_timings(&runs);
    let peak = proofs::mem::peak_rss_bytes();
    let h = &key.header;
    if args.json {
        let report = json!({
            "backend": key.backend_name(),
            "arith": arith.name(),
            "precompute": args.precompute,
            "threads": proofs::threads(),
            "n_vars": h.n_vars,
            "n_public": h.n_public,
            "domain_size": h.domain_size,
            "load_ms": ms(load),
            "load_read_ms": ms(key.load_timings.read),
            "load_prepare_ms": ms(key.load_timings.prepare),
            "read_wtns_ms": ms(read_wtns),
            "repeat": runs.len(),
            "phases": phases.iter().map(|(k, v)| json!({"phase": k, "ms": v})).collect::<Vec<_>>(),
            "prepared_bytes": key.memory_bytes(),
            "peak_rss_bytes": peak,
            "verified": opts.self_check,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "circuit: {} variables, {} public, domain 2^{}  backend: {} (CPU arithmetic {arith})  threads: {}{}",
        h.n_vars,
        h.n_public,
        h.domain_size.trailing_zeros(),
        key.backend_name(),
        proofs::threads(),
        if args.precompute {
            "  (precomputed tables)"
        } else {
            ""
        }
    );
    println!("{:<12} {:>10}", "phase", "ms");
    println!(
        "{:<12} {:>10.1}   (read {:.1}, prepare {:.1})",
        "load",
        ms(load),
        ms(key.load_timings.read),
        ms(key.load_timings.prepare)
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
        "peak memory {}  (prepared key {:.1} MB)",
        peak.map(|b| format!("{:.1} MB", b as f64 / 1e6))
            .unwrap_or_else(|| "unknown".into()),
        key.memory_bytes() as f64 / 1e6
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
