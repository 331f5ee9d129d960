//! `rigworker devices`: every compiled-in backend, its devices, or why it has none.

use anyhow::Result;
use serde_json::json;

use crate::cli::{DeviceArgs, DevicesArgs};

/// Whether a device of `backend` can run Groth16 proofs (`--prove-backend`), and the largest
/// circuit its memory holds with the key resident (an estimate from the device's memory).
fn proving(backend: &str, memory: Option<u64>) -> serde_json::Value {
    let can = backends::prove::prove_backend_names().contains(&backend);
    if !can {
        return json!({"can_prove": false, "summary": "no"});
    }
    if backend == "cpu" {
        return json!({"can_prove": true, "summary": "yes (system memory)"});
    }
    #[cfg(feature = "gpu")]
    let max_log = memory.and_then(backends::prove::gpu::max_domain_log_for);
    #[cfg(not(feature = "gpu"))]
    let max_log: Option<u32> = None;
    let summary = match (memory, max_log) {
        (Some(m), Some(l)) => format!(
            "yes, up to 2^{l} constraints in {:.1} GiB",
            m as f64 / (1u64 << 30) as f64
        ),
        (Some(_), None) => "no (too little device memory)".to_string(),
        (None, _) => "yes (device memory unknown)".to_string(),
    };
    json!({
        "can_prove": max_log.is_some() || memory.is_none(),
        "memory_bytes": memory,
        "max_domain_log2": max_log,
        "summary": summary,
    })
}

pub fn run(args: &DevicesArgs) -> Result<()> {
    let mut report = Vec::new();
    let devices = DeviceArgs {
        fpga: args.fpga.clone(),
        ..DeviceArgs::default()
    };
    for b in crate::select::backends(&devices)? {
        match b.devices() {
            Ok(devs) => report.push(json!({
                "backend": b.kind().name(),
                "available": true,
                "devices": devs.iter().map(|d| json!({
                    "index": d.index, "name": d.name, "compute_units": d.compute_units,
                    "memory_bytes": d.memory_bytes, "detail": d.detail,
                    "proving": proving(b.kind().name(), d.memory_bytes),
                })).collect::<Vec<_>>(),
            })),
            // `message` is the sentence a user reads ("CUDA: libcuda.so.1 not found ...").
            Err(e) => report.push(json!({"backend": b.kind().name(), "available": false, "reason": e.reason, "message": e.to_string(), "devices": []})),
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for b in &report {
        let name = b["backend"].as_str().unwrap_or("?");
        if b["available"] == true {
            for d in b["devices"].as_array().into_iter().flatten() {
                let mem = d["memory_bytes"]
                    .as_u64()
                    .map(|m| format!(", {:.1} GiB", m as f64 / (1u64 << 30) as f64))
                    .unwrap_or_default();
                println!(
                    "{name}#{}  {}  ({} compute units{mem})  {}  proving: {}",
                    d["index"],
                    d["name"].as_str().unwrap_or(""),
                    d["compute_units"],
                    d["detail"].as_str().unwrap_or(""),
                    d["proving"]["summary"].as_str().unwrap_or("no")
                );
            }
        } else {
            println!(
                "{name}: not available. {}",
                b["message"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}
