//! `rigworker devices`: every compiled-in backend, its devices, or why it has none.

use anyhow::Result;
use serde_json::json;

use crate::cli::{DeviceArgs, DevicesArgs};

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
                    "{name}#{}  {}  ({} compute units{mem})  {}",
                    d["index"],
                    d["name"].as_str().unwrap_or(""),
                    d["compute_units"],
                    d["detail"].as_str().unwrap_or("")
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
