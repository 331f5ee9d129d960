//! `rigworker bench --work prove`: Groth16 proving of circuits of 2^16 and 2^18 constraints
//! (2^20 with `--large`, 2^22 too where memory allows; or any snarkjs key with `--zkey/--wtns`), each proven `--repeat` times
//! with the key loaded once, as a single proof would (no tables) and as a worker does (tables
//! precomputed and kept), rows without tables also with the peak memory of one proof that
//! streams the key (what a single `rigworker prove` does); and MSMs of 2^16..2^20 points against arkworks' own MSM measured in
//! the same run. `--snarkjs` adds snarkjs's time on the same files as a baseline; `--against`
//! runs other provers and our own as whole processes side by side ([`super::bench_whole`]).
//! The circuits are made once by our own setup (`proofs::synth`) and kept in a cache folder. `--plot` draws
//! the MSM and proving times by size as an SVG chart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ark_ec::scalar_mul::BatchMulPreprocessing;
use ark_ec::{PrimeGroup, VariableBaseMSM};
use ark_ff::PrimeField;
use backends::prove::arith::ArithPath;
use backends::prove::{
    FixedBaseMsm, Fr, G1Projective, G2Placement, G2Projective, Precompute, ProveBackend, ScalarRepr,
};
use proofs::prover::{self, PreparedKey, ProveOptions};
use proofs::zkey::ZkeyFile;
use proofs::{Witness, synth};
use rand::RngCore;
use serde::Serialize;

use crate::cli::BenchArgs;
use crate::progress::{Progress, ProgressMode};

#[derive(Serialize)]
struct ProveResult {
    /// Where the MSMs and NTTs ran (`cpu`, `opencl`, ...).
    backend: String,
    /// With a GPU backend: where its G2 MSM ran (`device`, or `cpu` at the same time as the
    /// G1 MSMs on the device).
    #[serde(skip_serializing_if = "Option::is_none")]
    g2_on: Option<&'static str>,
    circuit: String,
    domain_size: u32,
    n_vars: u32,
    precompute: bool,
    /// With `precompute`: whether tables were built (the CPU's cost model declines them where
    /// they would not pay, `MsmConfig::for_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    tables_built: Option<bool>,
    load_ms: f64,
    proofs: usize,
    /// Median of each phase, milliseconds (`total` last).
    phases_ms: Vec<(String, f64)>,
    /// Peak memory with the key loaded and kept (the rows' proofs).
    peak_rss_bytes: Option<u64>,
    /// Without tables: the peak of one proof that streams the key, as a single `rigworker
    /// prove` does (`proofs::prover::prove_once`), measured before the key is loaded.
    single_proof_peak_rss_bytes: Option<u64>,
    snarkjs_ms: Option<f64>,
}

impl ProveResult {
    /// The row's name in the table and the plot: the backend, and where G2 ran when not on it.
    fn label(&self) -> String {
        match self.g2_on {
            Some("cpu") => format!("{} (G2 on cpu)", self.backend),
            _ => self.backend.clone(),
        }
    }
}

#[derive(Serialize)]
struct MsmResult {
    backend: String,
    group: &'static str,
    points: usize,
    ours_ms: f64,
    arkworks_ms: f64,
    /// arkworks' time over ours, both medians of this run.
    speedup: f64,
}

#[derive(Serialize)]
struct Report {
    threads: usize,
    /// The CPU prover's arithmetic path (`--prove-arith`, else the fastest the CPU has).
    arith: &'static str,
    prove: Vec<ProveResult>,
    msm: Vec<MsmResult>,
    /// With `--against`: whole processes, ours and the peers', side by side.
    whole: Vec<super::bench_whole::WholeResult>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    super::bench::median(&mut v)
}

fn default_dir() -> PathBuf {
    crate::artifacts::ArtifactCache::default_dir()
        .parent()
        .map(|p| p.join("bench-circuits"))
        .unwrap_or_else(|| std::env::temp_dir().join("rigworker-bench-circuits"))
}

/// Memory to make and prove a synthetic circuit without tables, per constraint (2^20: 860 MB
/// peak proving, measured; making it holds the key, 516 bytes per constraint, and the setup's
/// vectors): 1.5 KiB with room to spare.
const PLAIN_BYTES_PER_CONSTRAINT: u64 = 1536;

/// Peak memory of a key loaded with tables, as a multiple of its zkey file (measured: 3.64 GB
/// for the 541 MB key of 2^20, 967 MB for the 135 MB one of 2^18).
const TABLES_PER_ZKEY_BYTE: u64 = 8;

/// Why the tables of `zkey` would not fit in half the memory available now, if they would not.
fn tables_do_not_fit(zkey: &Path) -> Option<String> {
    let len = std::fs::metadata(zkey).ok()?.len();
    let need = len.saturating_mul(TABLES_PER_ZKEY_BYTE);
    let avail = proofs::mem::available_bytes()?;
    (need > avail / 2).then(|| {
        format!(
            "they need about {:.1} GiB and {:.1} GiB are available",
            need as f64 / (1u64 << 30) as f64,
            avail as f64 / (1u64 << 30) as f64
        )
    })
}

/// The synthetic circuit filling a domain of 2^log points, made once and kept in `dir`.
fn synthetic(dir: &Path, log: u32) -> Result<(String, PathBuf, PathBuf)> {
    let name = format!("chain-2^{log}");
    let zkey = dir.join(format!("{name}.zkey"));
    let wtns = dir.join(format!("{name}.wtns"));
    if !(zkey.exists() && wtns.exists()) {
        eprintln!(
            "making the 2^{log}-constraint benchmark circuit in {} (once)...",
            dir.display()
        );
        let t = Instant::now();
        let c = synth::generate(synth::constraints_for_domain(log))?;
        synth::write(&c, dir, &name)?;
        eprintln!("  done in {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok((name, zkey, wtns))
}

fn random_scalars(n: usize) -> Vec<Fr> {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| {
            let mut b = [0u8; 64];
            rng.fill_bytes(&mut b);
            Fr::from_le_bytes_mod_order(&b)
        })
        .collect()
}

fn time_snarkjs(zkey: &Path, wtns: &Path, repeat: u32) -> Result<f64> {
    let cmd = std::env::var("SNARKJS").unwrap_or_else(|_| "snarkjs".into());
    let out = super::bench_whole::private_temp_dir("rigworker-bench-snarkjs")?;
    let mut times = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let st = Command::new(&cmd)
            .args(["groth16", "prove"])
            .arg(zkey)
            .arg(wtns)
            .arg(out.join("proof.json"))
            .arg(out.join("public.json"))
            .output()
            .with_context(|| format!("running {cmd} (install it with npm install -g snarkjs)"))?;
        if !st.status.success() {
            return Err(anyhow!(
                "snarkjs failed: {}",
                String::from_utf8_lossy(&st.stderr)
            ));
        }
        times.push(ms(t.elapsed()));
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(median(times))
}

/// Our prepared MSM against arkworks' `VariableBaseMSM::msm` on the same bases and scalars,
/// alternating, `repeat` times each; the two results must agree.
fn time_msm<G: VariableBaseMSM<ScalarField = Fr>>(
    backend: &str,
    group: &'static str,
    bases: &[G::MulBase],
    ours: &dyn FixedBaseMsm<G>,
    scalars: &[Fr],
    reprs: &[ScalarRepr],
    repeat: u32,
) -> Result<MsmResult> {
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let a = ours.msm(reprs)?;
        mine.push(ms(t.elapsed()));
        let t = Instant::now();
        let b = G::msm(bases, scalars).map_err(|_| anyhow!("arkworks MSM"))?;
        theirs.push(ms(t.elapsed()));
        if a != b {
            return Err(anyhow!(
                "our {group} MSM of {} points disagrees with arkworks'",
                bases.len()
            ));
        }
    }
    let (o, t) = (median(mine), median(theirs));
    Ok(MsmResult {
        backend: backend.to_string(),
        group,
        points: bases.len(),
        ours_ms: o,
        arkworks_ms: t,
        speedup: t / o,
    })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(t) = args.devices.threads {
        proofs::init_threads(t);
    }
    let arith = super::prove_arith(args.prove_arith)?;
    // The CPU first: it is the baseline every other backend's rows are compared with.
    let mut names: Vec<String> = if args.devices.backend.is_empty() {
        vec!["cpu".into()]
    } else {
        args.devices.backend.clone()
    };
    if names.iter().any(|n| n == "all") {
        names = backends::prove::prove_backend_names()
            .into_iter()
            .map(String::from)
            .collect();
    }
    names.sort_by_key(|n| n != "cpu");
    names.dedup();
    let device = args.devices.devices.first().copied().unwrap_or(0);
    let mut placements: Vec<G2Placement> = args.g2_on.iter().map(|g| (*g).into()).collect();
    placements.sort_by_key(|p| *p == G2Placement::Cpu);
    placements.dedup();
    if placements.is_empty() {
        placements.push(G2Placement::Device);
    }
    // A GPU backend's rows once per G2 placement, on one opened backend (two would hold two
    // sets of device buffers); the CPU once (everything runs there anyway).
    let mut chosen: Vec<(Arc<dyn ProveBackend>, G2Placement)> = Vec::new();
    for name in &names {
        eprintln!("opening proving backend {name} (device {device})...");
        let b = backends::prove::open_prove_backend(name, device)
            .with_context(|| format!("opening proving backend {name} device {device}"))?;
        let mine: &[G2Placement] = if name == "cpu" {
            &[G2Placement::Device]
        } else {
            &placements
        };
        for g2 in mine {
            chosen.push((b.clone(), *g2));
        }
    }
    let repeat = args.repeat.max(1);
    let dir = args.circuits.clone().unwrap_or_else(default_dir);
    let circuits: Vec<(String, PathBuf, PathBuf)> = match (&args.zkey, &args.wtns) {
        (Some(z), Some(w)) => vec![(
            z.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "circuit".into()),
            z.clone(),
            w.clone(),
        )],
        _ => {
            let mut logs = vec![16, 18];
            if args.large {
                logs.push(20);
                // 2^22 where memory allows: making it holds the 2.2 GB key in memory, proving
                // peaks near 3.5 GB (860 MB measured at 2^20, four times the size).
                let need = PLAIN_BYTES_PER_CONSTRAINT << 22;
                match proofs::mem::available_bytes() {
                    Some(a) if a >= need => logs.push(22),
                    a => eprintln!(
                        "2^22 skipped: it needs about {} GiB and {} are available",
                        need >> 30,
                        a.map(|a| format!("{:.1} GiB", a as f64 / (1u64 << 30) as f64))
                            .unwrap_or_else(|| "an unknown amount".into())
                    ),
                }
            }
            logs.into_iter()
                .map(|l| synthetic(&dir, l))
                .collect::<Result<_>>()?
        }
    };
    let mut report = Report {
        threads: proofs::threads(),
        arith: arith.name(),
        prove: Vec::new(),
        msm: Vec::new(),
        whole: Vec::new(),
    };
    let mut sizes = args.msm_log.clone();
    if sizes.is_empty() {
        sizes = vec![16, 18];
        if args.large {
            sizes.push(20);
        }
    }
    sizes.sort_unstable();
    sizes.dedup();
    // One step per (circuit, backend, tables) and per (MSM size, backend).
    let prove_rows: usize = chosen
        .iter()
        .map(|(b, _)| if b.name() == "cpu" { 2 } else { 1 })
        .sum();
    let msm_backends = chosen
        .iter()
        .filter(|(_, g2)| *g2 == G2Placement::Device)
        .count();
    let whole_steps = if args.against.is_empty() {
        0
    } else {
        circuits.len()
    };
    let steps = circuits.len() * prove_rows + sizes.len() * msm_backends + whole_steps;
    let progress = Progress::steps(
        ProgressMode::detect(args.json),
        "bench --work prove",
        steps as u64,
    );
    // First, so that a peer whose command fails stops the bench at once, not after the rest.
    if !args.against.is_empty() {
        let paths = match args.prove_arith {
            Some(p) => vec![p],
            None => ArithPath::available_paths(),
        };
        report.whole = super::bench_whole::measure(
            &circuits,
            &paths,
            args.devices.threads,
            &args.against,
            repeat,
            &progress,
        )?;
    }
    for (name, zkey, wtns) in &circuits {
        let witness = Witness::load(wtns)?;
        let snarkjs_ms = if args.snarkjs {
            Some(time_snarkjs(zkey, wtns, repeat)?)
        } else {
            None
        };
        for (backend, g2, pre) in chosen.iter().flat_map(|(b, g2)| {
            // Tables are the CPU MSM's; a GPU keeps its bases resident instead.
            let pres: &[Precompute] = if b.name() == "cpu" {
                &[Precompute::None, Precompute::Tables]
            } else {
                &[Precompute::None]
            };
            pres.iter().map(move |p| (b, *g2, *p))
        }) {
            progress.set_message(format!(
                "proving {name} on {}{}",
                backend.name(),
                if pre == Precompute::Tables {
                    " with tables"
                } else {
                    ""
                }
            ));
            if pre == Precompute::Tables
                && let Some(why) = tables_do_not_fit(zkey)
            {
                eprintln!("{name} with tables skipped: {why}");
                progress.inc();
                continue;
            }
            backend.set_g2_placement(g2);
            // Each row's peak is its own: the rows before it freed their keys.
            let single_proof_peak_rss_bytes = if pre == Precompute::None {
                proofs::mem::reset_peak_rss();
                let z = ZkeyFile::open(zkey)?;
                prover::prove_once(&z, backend.clone(), &witness, ProveOptions::default())?;
                proofs::mem::peak_rss_bytes()
            } else {
                None
            };
            proofs::mem::reset_peak_rss();
            let t = Instant::now();
            let key = PreparedKey::load(zkey, backend.clone(), pre)?;
            let load = t.elapsed();
            let mut runs = Vec::new();
            for _ in 0..repeat {
                let out = key.prove(&witness, ProveOptions { self_check: true })?;
                runs.push(out.timings);
            }
            let phases = super::prove::median_timings(&runs)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            report.prove.push(ProveResult {
                backend: backend.name().to_string(),
                g2_on: (backend.name() != "cpu").then_some(match g2 {
                    G2Placement::Device => "device",
                    G2Placement::Cpu => "cpu",
                }),
                circuit: name.clone(),
                domain_size: key.header.domain_size,
                n_vars: key.header.n_vars,
                precompute: pre == Precompute::Tables,
                tables_built: (pre == Precompute::Tables).then(|| key.has_tables()),
                load_ms: ms(load),
                proofs: runs.len(),
                phases_ms: phases,
                peak_rss_bytes: proofs::mem::peak_rss_bytes(),
                single_proof_peak_rss_bytes,
                snarkjs_ms,
            });
            progress.inc();
        }
    }
    let g2_at = sizes.first().copied();
    for log in sizes {
        let n = 1usize << log;
        let scalars = random_scalars(n);
        let reprs: Vec<ScalarRepr> = scalars.iter().map(|s| s.into_bigint()).collect();
        let bases =
            BatchMulPreprocessing::new(G1Projective::generator(), n).batch_mul(&random_scalars(n));
        let g2_bases = (Some(log) == g2_at).then(|| {
            BatchMulPreprocessing::new(G2Projective::generator(), n).batch_mul(&random_scalars(n))
        });
        // The MSM rows are the backend's own: the same whatever the proofs' G2 placement.
        for (backend, _) in chosen.iter().filter(|(_, g2)| *g2 == G2Placement::Device) {
            backend.set_g2_placement(G2Placement::Device);
            progress.set_message(format!("MSMs of 2^{log} points on {}", backend.name()));
            let prepared = backend.prepare_g1(&bases, Precompute::None)?;
            report.msm.push(time_msm(
                backend.name(),
                "G1",
                &bases,
                prepared.as_ref(),
                &scalars,
                &reprs,
                repeat,
            )?);
            if let Some(bases) = &g2_bases {
                let prepared = backend.prepare_g2(bases, Precompute::None)?;
                report.msm.push(time_msm(
                    backend.name(),
                    "G2",
                    bases,
                    prepared.as_ref(),
                    &scalars,
                    &reprs,
                    repeat,
                )?);
            }
            progress.inc();
        }
    }
    drop(progress);
    if let Some(path) = &args.plot {
        let doc = crate::plot::svg("rigworker bench --work prove", &charts(&report));
        std::fs::write(path, doc)
            .with_context(|| format!("writing the plot {}", path.display()))?;
        eprintln!("plot written to {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "Groth16/BN254 proving, {} threads, CPU arithmetic {}, medians of {repeat} proofs per row",
        report.threads, report.arith
    );
    let w = report
        .prove
        .iter()
        .map(|r| r.label().len())
        .max()
        .unwrap_or(0)
        .max("backend".len());
    println!(
        "{:<w$} {:<20} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>8}",
        "backend",
        "circuit",
        "domain",
        "tables",
        "load ms",
        "ntt",
        "msm g1",
        "msm g2",
        "total ms",
        "peak MB",
        "1 proof MB",
        "snarkjs",
        "vs cpu"
    );
    for r in &report.prove {
        let get = |k: &str| {
            r.phases_ms
                .iter()
                .find(|(n, _)| n == k)
                .map_or(0.0, |(_, v)| *v)
        };
        let g1 = get("msm_a_g1") + get("msm_b_g1") + get("msm_c_g1") + get("msm_h_g1");
        // The CPU row of the same circuit without tables, measured in this run.
        let cpu_total = report
            .prove
            .iter()
            .find(|c| c.backend == "cpu" && c.circuit == r.circuit && !c.precompute)
            .and_then(|c| {
                c.phases_ms
                    .iter()
                    .find(|(k, _)| k == "total")
                    .map(|(_, v)| *v)
            });
        println!(
            "{:<w$} {:<20} {:>6} {:>7} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10} {:>10} {:>10} {:>8}",
            r.label(),
            r.circuit,
            format!("2^{}", r.domain_size.trailing_zeros()),
            match (r.precompute, r.tables_built) {
                (false, _) => "no",
                (true, Some(false)) => "no gain",
                (true, _) => "yes",
            },
            r.load_ms,
            get("ntt"),
            g1,
            get("msm_b_g2"),
            get("total"),
            r.peak_rss_bytes
                .map_or("?".into(), |b| format!("{:.0}", b as f64 / 1e6)),
            r.single_proof_peak_rss_bytes
                .map_or("-".into(), |b| format!("{:.0}", b as f64 / 1e6)),
            r.snarkjs_ms.map_or("-".into(), |s| format!(
                "{:.0} ({:.1}x)",
                s,
                s / get("total").max(1e-9)
            )),
            cpu_total.map_or("-".into(), |c| format!(
                "{:.2}x",
                c / get("total").max(1e-9)
            )),
        );
    }
    println!();
    println!(
        "{:<7} {:<4} {:>8} {:>10} {:>12} {:>8}",
        "backend", "MSM", "points", "ours ms", "arkworks ms", "speedup"
    );
    for m in &report.msm {
        println!(
            "{:<7} {:<4} {:>8} {:>10.1} {:>12.1} {:>7.2}x",
            m.backend,
            m.group,
            format!("2^{}", m.points.trailing_zeros()),
            m.ours_ms,
            m.arkworks_ms,
            m.speedup
        );
    }
    if !report.whole.is_empty() {
        super::bench_whole::print(&report.whole, &args.against, repeat);
    }
    Ok(())
}

/// `2^k` tick labels for the sizes present.
fn log2_ticks(logs: impl Iterator<Item = u32>) -> Vec<(f64, String)> {
    let mut v: Vec<u32> = logs.collect();
    v.sort_unstable();
    v.dedup();
    v.into_iter()
        .map(|l| (f64::from(l), format!("2^{l}")))
        .collect()
}

/// Two panels: MSM time by number of points (ours and arkworks', per group), and proving time
/// by domain size (with and without tables, and snarkjs when measured). x is log2 of the size.
fn charts(report: &Report) -> Vec<crate::plot::Chart> {
    use crate::plot::{Chart, Series};
    let log2 = |n: usize| n.max(1).ilog2();
    let mut msm: Vec<Series> = Vec::new();
    let mut names: Vec<&str> = report.msm.iter().map(|m| m.backend.as_str()).collect();
    names.dedup();
    for group in ["G1", "G2"] {
        for (i, backend) in names.iter().enumerate() {
            let rows: Vec<&MsmResult> = report
                .msm
                .iter()
                .filter(|m| m.group == group && m.backend == *backend)
                .collect();
            if rows.is_empty() {
                continue;
            }
            msm.push(Series {
                name: format!("{group} MSM, {backend}"),
                points: rows
                    .iter()
                    .map(|m| (f64::from(log2(m.points)), m.ours_ms))
                    .collect(),
            });
            // arkworks once per group: it is the same CPU code whichever backend is benched.
            if i == 0 {
                msm.push(Series {
                    name: format!("{group} MSM, arkworks"),
                    points: rows
                        .iter()
                        .map(|m| (f64::from(log2(m.points)), m.arkworks_ms))
                        .collect(),
                });
            }
        }
    }
    let mut prove: Vec<Series> = Vec::new();
    let mut labels: Vec<String> = report.prove.iter().map(ProveResult::label).collect();
    labels.dedup();
    for backend in labels {
        for pre in [false, true] {
            let rows: Vec<&ProveResult> = report
                .prove
                .iter()
                .filter(|p| p.precompute == pre && p.label() == backend)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let total = |p: &ProveResult| {
                p.phases_ms
                    .iter()
                    .find(|(k, _)| k == "total")
                    .map_or(0.0, |(_, v)| *v)
            };
            prove.push(Series {
                name: format!(
                    "rigworker {backend}, {}",
                    if pre { "tables" } else { "no tables" }
                ),
                points: rows
                    .iter()
                    .map(|p| (f64::from(p.domain_size.max(1).ilog2()), total(p)))
                    .collect(),
            });
        }
    }
    let snarkjs: Vec<(f64, f64)> = report
        .prove
        .iter()
        .filter(|p| !p.precompute && p.backend == "cpu")
        .filter_map(|p| Some((f64::from(p.domain_size.max(1).ilog2()), p.snarkjs_ms?)))
        .collect();
    if !snarkjs.is_empty() {
        prove.push(Series {
            name: "snarkjs".into(),
            points: snarkjs,
        });
    }
    vec![
        Chart {
            title: format!("MSM over BN254, {} threads (median)", report.threads),
            x_label: "points".into(),
            y_label: "time (ms)".into(),
            x_ticks: Some(log2_ticks(report.msm.iter().map(|m| log2(m.points)))),
            series: msm,
        },
        Chart {
            title: "Groth16 proof, total (median)".into(),
            x_label: "constraint domain size".into(),
            y_label: "time (ms)".into(),
            x_ticks: Some(log2_ticks(
                report.prove.iter().map(|p| p.domain_size.max(1).ilog2()),
            )),
            series: prove,
        },
    ]
}
