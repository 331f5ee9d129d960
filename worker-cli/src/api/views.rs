//! The JSON documents of `/api/v1/` (field by field in `docs/api.md`), built from a locked
//! [`EngineState`] in one go so each answer is one consistent moment. Rates are H/s, times
//! are seconds unless the name says otherwise, and a value the worker does not know (yet)
//! is `null`, never 0. The configuration view is the only place secrets could appear: it
//! is built from the merged flags/file/environment here, with every password and token
//! replaced by [`REDACTED`].

use serde_json::{Value, json};

use crate::cli::MineArgs;
use crate::config::PoolEntry;
use crate::engine::EngineState;
use crate::engine::prove::ProvingEngine;
use crate::engine::stats::ShareCounts;

/// What a secret reads as in `/api/v1/config`.
pub const REDACTED: &str = "<redacted>";

fn shares(s: &ShareCounts) -> Value {
    json!({
        "found": s.found,
        "accepted": s.accepted,
        "rejected": s.rejected,
        "stale": s.stale,
        "hardware_errors": s.hardware_errors,
        "in_flight": s.in_flight,
    })
}

fn rates(r: [Option<f64>; 3]) -> Value {
    json!({ "10s": r[0], "60s": r[1], "15m": r[2] })
}

pub fn summary(st: &EngineState) -> Value {
    let s = st.summary();
    let current = st
        .current_pool
        .and_then(|i| st.pools.get(i).map(|p| (i, p)));
    let mut work = vec!["hashing"];
    if st.proving.is_some() {
        work.push("proving");
    }
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": s.uptime_secs,
        "work": work,
        "hashes": s.hashes,
        "hashrate": {
            "total": rates(s.hashrate),
            "average": s.average_hashrate,
            "devices": s.devices.iter().map(|d| json!({
                "id": d.id,
                "hashrate": rates(d.hashrate),
            })).collect::<Vec<_>>(),
        },
        "shares": shares(&s.totals),
        "best_share_difficulty": s.best_share_difficulty,
        "pool": current.map(|(i, p)| json!({
            "index": i,
            "url": p.url,
            "latency_ms": p.last_latency_ms,
            "difficulty": st.difficulty,
            "pinned": st.pinned_pool == Some(i),
        })),
        "reconnects": s.reconnects,
        "failovers": s.failovers,
    })
}

pub fn devices(st: &EngineState) -> Value {
    let list: Vec<Value> = st
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "index": i,
                "id": d.label,
                "backend": d.info.backend.to_string(),
                "name": d.info.name,
                "state": d.state_name(),
                "rebuilds": d.rebuilds,
                "disabled_reason": d.disabled_reason,
                "hashes": d.hashes,
                "hashrate": rates(d.rate.rates()),
                "intensity": d.intensity,
                "shares": shares(&d.shares),
                "hardware_errors": d.shares.hardware_errors,
                "temperature_c": d.temperature_c,
                "power_w": d.power_w,
                "fan_percent": d.fan_percent,
            })
        })
        .collect();
    json!({ "devices": list })
}

pub fn pools(st: &EngineState) -> Value {
    let list: Vec<Value> = st
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let current = st.current_pool == Some(i);
            json!({
                "index": i,
                "url": p.url,
                "current": current,
                "pinned": st.pinned_pool == Some(i),
                "connects": p.connects,
                "shares": shares(&p.shares),
                "accepted_difficulty": p.accepted_difficulty,
                "latency_ms": p.last_latency_ms,
                "submit_latency_median_ms": p.submit_latency.median().map(|s| s * 1000.0),
                "difficulty": if current { st.difficulty } else { None },
            })
        })
        .collect();
    json!({
        "current": st.current_pool,
        "pinned": st.pinned_pool,
        "reconnects": st.reconnects,
        "failovers": st.failovers,
        "pools": list,
    })
}

pub fn proving(prover: Option<&ProvingEngine>) -> Value {
    let Some(p) = prover else {
        return json!({ "enabled": false });
    };
    let c = p.snapshot();
    let phase = |v: &[(String, f64)]| {
        v.iter()
            .map(|(n, s)| json!({ "phase": n, "secs": s }))
            .collect::<Vec<_>>()
    };
    json!({
        "enabled": true,
        "jobs": c.jobs,
        "accepted": c.accepted,
        "rejected": c.rejected,
        "lost": c.lost,
        "failed": c.failed,
        "refused": c.refused,
        "key_downloads": c.key_downloads,
        "key_loads": c.key_loads,
        "backend": p.backend_name(),
        "device_fallbacks": backends::prove::device_fallbacks(),
        "proofs_timed": c.phase_times.first().map_or(0, |(_, o)| o.count()),
        "phase_medians": phase(&c.phase_medians()),
        "last_phases": phase(&c.last_phases),
    })
}

/// The effective `mine` configuration, secrets redacted.
pub fn config(args: &MineArgs, pools: &[PoolEntry], builtin_pool: bool) -> Value {
    let secret = |s: &Option<crate::secret::Secret>| s.as_ref().map(|_| REDACTED);
    let d = &args.devices;
    let f = &d.fpga;
    let p = &args.proving;
    json!({
        "config_file": args.config,
        "builtin_pool": builtin_pool,
        "pools": pools.iter().map(|p| json!({
            "url": p.url,
            "user": p.user,
            "pass": REDACTED,
            "tls_fingerprint": p.tls_fingerprint,
            "tls_insecure": p.tls_insecure,
        })).collect::<Vec<_>>(),
        "backend": d.backend,
        "devices": d.devices,
        "threads": d.threads,
        "cpu_affinity": d.cpu_affinity,
        "cpu_kernel": d.cpu_kernel,
        "intensity": d.intensity,
        "fpga": f.fpga_ports,
        "fpga_baud": f.fpga_baud,
        "fpga_hs": f.fpga_hs,
        "fpga_work_division": f.fpga_work_division,
        "fpga_zero_bits": f.fpga_zero_bits,
        "fpga_reopen": f.fpga_reopen,
        "fpga_probe_timeout": f.fpga_probe_timeout,
        "print_time": args.print_time,
        "duration": args.duration,
        "keepalive": args.keepalive,
        "failback_interval": args.failback_interval,
        "no_version_rolling": args.no_version_rolling,
        "suggest_difficulty": args.suggest_difficulty,
        "pool_difficulty": args.pool_difficulty,
        "temp_limit": args.temp_limit,
        "summary_json": args.summary_json,
        "http": args.http,
        "http_token": secret(&args.http_token),
        "prove": p.prove,
        "proving_dir": p.proving_dir,
        "proving_cache": p.proving_cache,
        "proving_cache_mb": p.proving_cache_mb,
        "prove_precompute": p.prove_precompute,
        "no_verify_proofs": p.no_verify_proofs,
        "proving_artifact_hosts": p.proving_artifact_hosts,
    })
}
