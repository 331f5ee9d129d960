//! `GET /metrics`: the engine's numbers in the Prometheus text format (0.0.4) or, when the
//! scraper asks for it, OpenMetrics, both encoded by `prometheus-client`.
//!
//! The numbers already live in [`EngineState`] (exact share accounting, hash counters,
//! latency and proof-phase observations), so instead of mirroring every update into a second
//! set of metric objects, one [`Collector`] reads a snapshot of the state at scrape time and
//! encodes it: nothing can drift between the API's JSON and `/metrics`, and the engine's hot
//! paths do not pay for metrics nobody scrapes. Names follow the Prometheus conventions
//! (base units, `_total` on counters, which the encoder appends).

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::engine::EngineState;
use crate::engine::stats::{Observations, ShareCounts};

pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(state: Arc<Mutex<EngineState>>) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(EngineCollector { state }));
        Metrics { registry }
    }

    /// The exposition and its content type.
    pub fn encode(&self, openmetrics: bool) -> Result<(String, &'static str), std::fmt::Error> {
        let mut out = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
            Ok((
                out,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ))
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
            Ok((
                out,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            ))
        }
    }
}

struct EngineCollector {
    state: Arc<Mutex<EngineState>>,
}

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineCollector")
    }
}

/// A Prometheus histogram from [`Observations`].
struct Histogram<'a>(&'a Observations);

impl EncodeMetric for Histogram<'_> {
    fn encode(&self, mut e: MetricEncoder) -> Result<(), std::fmt::Error> {
        e.encode_histogram::<NoLabelSet>(self.0.sum(), self.0.count(), &self.0.buckets(), None)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// What one scrape reports, copied out of the state so the engine's lock is held for a
/// copy, not for the encoding.
struct Snapshot {
    uptime: f64,
    devices: Vec<DeviceSnap>,
    pools: Vec<PoolSnap>,
    current_pool: Option<usize>,
    difficulty: Option<f64>,
    best_share: f64,
    reconnects: u64,
    failovers: u64,
    proofs: Option<[(&'static str, u64); 4]>,
    phases: Vec<(String, Observations)>,
}

struct DeviceSnap {
    id: String,
    backend: String,
    hashes: u64,
    hashrate: Option<f64>,
    hardware_errors: u64,
    paused: bool,
    disabled: bool,
    rebuilds: u32,
    temperature_c: Option<f64>,
    power_w: Option<f64>,
    fan_percent: Option<f64>,
}

struct PoolSnap {
    url: String,
    shares: ShareCounts,
    latency_ms: Option<f64>,
    submit_latency: Observations,
}

fn snapshot(state: &Mutex<EngineState>) -> Snapshot {
    let st = state.lock().unwrap_or_else(|e| e.into_inner());
    let prover = st.proving.clone();
    let snap = Snapshot {
        uptime: st.started.map_or(0.0, |s| s.elapsed().as_secs_f64()),
        devices: st
            .devices
            .iter()
            .map(|d| DeviceSnap {
                id: d.label.clone(),
                backend: d.info.backend.to_string(),
                hashes: d.hashes,
                hashrate: d.rate.rates()[0],
                hardware_errors: d.shares.hardware_errors,
                paused: d.state_name() == "paused" || d.state_name() == "too hot",
                disabled: d.disabled,
                rebuilds: d.rebuilds,
                temperature_c: d.temperature_c,
                power_w: d.power_w,
                fan_percent: d.fan_percent,
            })
            .collect(),
        pools: st
            .pools
            .iter()
            .map(|p| PoolSnap {
                url: p.url.clone(),
                shares: p.shares.clone(),
                latency_ms: p.last_latency_ms,
                submit_latency: p.submit_latency.clone(),
            })
            .collect(),
        current_pool: st.current_pool,
        difficulty: st.difficulty,
        best_share: st.best_share_difficulty,
        reconnects: st.reconnects,
        failovers: st.failovers,
        proofs: None,
        phases: Vec::new(),
    };
    drop(st);
    // The prover has its own lock; taken after the engine's is released.
    let (proofs, phases) = match prover {
        Some(p) => {
            let c = p.snapshot();
            (
                Some([
                    ("accepted", c.accepted),
                    ("rejected", c.rejected),
                    ("lost", c.lost),
                    ("failed", c.failed),
                ]),
                c.phase_times,
            )
        }
        None => (None, Vec::new()),
    };
    Snapshot {
        proofs,
        phases,
        ..snap
    }
}

impl Collector for EngineCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = snapshot(&self.state);

        gauge(
            &mut enc,
            "rigworker_uptime_seconds",
            "Seconds since mining started.",
            s.uptime,
        )?;
        {
            let mut m = enc.encode_descriptor(
                "rigworker_build_info",
                "Always 1; the labels say which rigworker this is.",
                None,
                MetricType::Gauge,
            )?;
            let labels = [("version", env!("CARGO_PKG_VERSION"))];
            m.encode_family(&labels)?.encode_gauge(&1i64)?;
        }

        {
            let mut m = enc.encode_descriptor(
                "rigworker_hashes",
                "Hashes computed, by device.",
                None,
                MetricType::Counter,
            )?;
            for d in &s.devices {
                let l = [("device", d.id.as_str()), ("backend", d.backend.as_str())];
                m.encode_family(&l)?
                    .encode_counter::<NoLabelSet, _, u64>(&d.hashes, None)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "rigworker_hardware_errors",
                "Results a device reported that failed the CPU re-check (never submitted).",
                None,
                MetricType::Counter,
            )?;
            for d in &s.devices {
                let l = [("device", d.id.as_str()), ("backend", d.backend.as_str())];
                m.encode_family(&l)?
                    .encode_counter::<NoLabelSet, _, u64>(&d.hardware_errors, None)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "rigworker_shares",
                "Shares by how they ended and the pool whose job they were found on.",
                None,
                MetricType::Counter,
            )?;
            for p in &s.pools {
                let c = &p.shares;
                for (result, n) in [
                    ("accepted", c.accepted),
                    ("rejected", c.rejected),
                    ("stale", c.stale),
                    ("hardware_error", c.hardware_errors),
                ] {
                    let l = [("result", result), ("pool", p.url.as_str())];
                    m.encode_family(&l)?
                        .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                }
            }
        }
        counter(
            &mut enc,
            "rigworker_reconnects",
            "Connections to a pool after the first.",
            s.reconnects,
        )?;
        counter(
            &mut enc,
            "rigworker_failovers",
            "Moves to another pool because one failed.",
            s.failovers,
        )?;
        if let Some(proofs) = &s.proofs {
            {
                let mut m = enc.encode_descriptor(
                    "rigworker_proofs",
                    "Proving jobs by how they ended.",
                    None,
                    MetricType::Counter,
                )?;
                for (result, n) in proofs {
                    m.encode_family(&[("result", *result)])?
                        .encode_counter::<NoLabelSet, _, u64>(n, None)?;
                }
            }
            counter(
                &mut enc,
                "rigworker_prove_device_fallbacks",
                "Proving MSMs/NTTs that failed on the GPU and ran on the CPU instead.",
                backends::prove::device_fallbacks(),
            )?;
        }

        device_gauge(
            &mut enc,
            "rigworker_device_hashrate_hashes_per_second",
            "Hashrate over the last 10 seconds, by device.",
            &s.devices,
            |d| d.hashrate,
        )?;
        device_gauge(
            &mut enc,
            "rigworker_device_paused",
            "1 while the device is paused (through the API, or too hot).",
            &s.devices,
            |d| Some(if d.paused { 1.0 } else { 0.0 }),
        )?;
        device_gauge(
            &mut enc,
            "rigworker_device_disabled",
            "1 once the device no longer mines (its backend or the watchdog gave up on it).",
            &s.devices,
            |d| Some(if d.disabled { 1.0 } else { 0.0 }),
        )?;
        device_gauge(
            &mut enc,
            "rigworker_device_watchdog_rebuilds",
            "Times the watchdog rebuilt the device's worker since start.",
            &s.devices,
            |d| Some(f64::from(d.rebuilds)),
        )?;
        // Sensors: a series only for devices whose sensor answered.
        device_gauge(
            &mut enc,
            "rigworker_device_temperature_celsius",
            "Device temperature.",
            &s.devices,
            |d| d.temperature_c,
        )?;
        device_gauge(
            &mut enc,
            "rigworker_device_power_watts",
            "Device power draw.",
            &s.devices,
            |d| d.power_w,
        )?;
        device_gauge(
            &mut enc,
            "rigworker_device_fan_ratio",
            "Device fan speed, 0 to 1.",
            &s.devices,
            |d| d.fan_percent.map(|p| p / 100.0),
        )?;

        {
            let mut m = enc.encode_descriptor(
                "rigworker_pool_latency_seconds",
                "Time the pool took to answer the last share.",
                None,
                MetricType::Gauge,
            )?;
            for p in &s.pools {
                if let Some(ms) = p.latency_ms {
                    m.encode_family(&[("pool", p.url.as_str())])?
                        .encode_gauge(&(ms / 1000.0))?;
                }
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "rigworker_pool_active",
                "1 for the pool the worker mines on now.",
                None,
                MetricType::Gauge,
            )?;
            for (i, p) in s.pools.iter().enumerate() {
                let v = i64::from(s.current_pool == Some(i));
                m.encode_family(&[("pool", p.url.as_str())])?
                    .encode_gauge(&v)?;
            }
        }
        if let Some(d) = s.difficulty {
            gauge(
                &mut enc,
                "rigworker_pool_difficulty",
                "Share difficulty of the current job.",
                d,
            )?;
        }
        gauge(
            &mut enc,
            "rigworker_best_share_difficulty",
            "Highest difficulty of any share submitted.",
            s.best_share,
        )?;

        {
            let mut m = enc.encode_descriptor(
                "rigworker_submit_latency_seconds",
                "Time from sending a share to the pool's answer.",
                None,
                MetricType::Histogram,
            )?;
            for p in &s.pools {
                let l = [("pool", p.url.as_str())];
                Histogram(&p.submit_latency).encode(m.encode_family(&l)?)?;
            }
        }
        if s.proofs.is_some() {
            let mut m = enc.encode_descriptor(
                "rigworker_proof_phase_seconds",
                "Time of each phase of a proof.",
                None,
                MetricType::Histogram,
            )?;
            for (phase, o) in &s.phases {
                let l = [("phase", phase.as_str())];
                Histogram(o).encode(m.encode_family(&l)?)?;
            }
        }
        Ok(())
    }
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn device_gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    devices: &[DeviceSnap],
    value: impl Fn(&DeviceSnap) -> Option<f64>,
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for d in devices {
        if let Some(v) = value(d) {
            let l = [("device", d.id.as_str()), ("backend", d.backend.as_str())];
            m.encode_family(&l)?.encode_gauge(&v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DeviceCounters;
    use crate::engine::stats::PoolCounts;
    use backends::{BackendKind, DeviceInfo};

    fn state() -> Arc<Mutex<EngineState>> {
        let info = DeviceInfo {
            backend: BackendKind::Cpu,
            index: 0,
            name: "test".into(),
            compute_units: 1,
            memory_bytes: None,
            detail: String::new(),
        };
        let mut d = DeviceCounters::new("cpu0.0".into(), info);
        d.hashes = 12345;
        d.temperature_c = Some(61.5);
        let mut p = PoolCounts {
            url: "stratum+tcp://127.0.0.1:3333".into(),
            last_latency_ms: Some(2.0),
            ..Default::default()
        };
        p.shares.record_found(None);
        p.shares
            .record_answer(crate::engine::stats::ShareEnd::Accepted);
        p.submit_latency.observe(0.002);
        Arc::new(Mutex::new(EngineState {
            devices: vec![d],
            pools: vec![p],
            current_pool: Some(0),
            difficulty: Some(0.5),
            ..Default::default()
        }))
    }

    #[test]
    fn exposition_has_the_conventional_names_in_both_formats() {
        let m = Metrics::new(state());
        let (text, ct) = m.encode(false).unwrap();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        for line in [
            "# TYPE rigworker_shares_total counter",
            r#"rigworker_shares_total{result="accepted",pool="stratum+tcp://127.0.0.1:3333"} 1"#,
            r#"rigworker_hashes_total{device="cpu0.0",backend="cpu"} 12345"#,
            r#"rigworker_device_temperature_celsius{device="cpu0.0",backend="cpu"} 61.5"#,
            r#"rigworker_pool_latency_seconds{pool="stratum+tcp://127.0.0.1:3333"} 0.002"#,
            r#"rigworker_submit_latency_seconds_bucket{pool="stratum+tcp://127.0.0.1:3333",le="0.0025"} 1"#,
            r#"rigworker_submit_latency_seconds_count{pool="stratum+tcp://127.0.0.1:3333"} 1"#,
            "rigworker_pool_difficulty 0.5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // No power reading: no power series (rather than a made-up 0).
        assert!(!text.contains("rigworker_device_power_watts{"), "{text}");
        // Proving off: no proof metrics.
        assert!(!text.contains("rigworker_proofs"), "{text}");
        let (open, ct) = m.encode(true).unwrap();
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(open.contains("# TYPE rigworker_shares counter"), "{open}");
    }
}
