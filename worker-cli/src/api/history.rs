//! The last hour of hashrate, for the dashboard's chart (`GET /api/v1/history`): every
//! [`INTERVAL`] the 10-second rate of the whole rig and of each device is recorded, and
//! samples older than an hour are dropped, so the history is at most [`KEEP`] small entries
//! whatever the uptime. It lives in the API because nothing else needs it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::engine::EngineState;
use crate::engine::stats::WINDOWS;

pub const INTERVAL: Duration = Duration::from_secs(5);
/// One hour of samples.
pub const KEEP: usize = 720;

struct Sample {
    unix_ms: u64,
    total: Option<f64>,
    devices: Vec<Option<f64>>,
}

#[derive(Default)]
pub struct History {
    samples: VecDeque<Sample>,
    devices: Vec<String>,
}

impl History {
    pub fn record(&mut self, st: &EngineState, unix_ms: u64) {
        self.devices = st.devices.iter().map(|d| d.label.clone()).collect();
        if self.samples.len() == KEEP {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            unix_ms,
            total: st.total_rate.rate(WINDOWS[0]),
            devices: st.devices.iter().map(|d| d.rate.rate(WINDOWS[0])).collect(),
        });
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "interval_secs": INTERVAL.as_secs(),
            "devices": self.devices,
            "samples": self.samples.iter().map(|s| json!({
                "t": s.unix_ms,
                "total": s.total,
                "devices": s.devices,
            })).collect::<Vec<_>>(),
        })
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Records a sample every [`INTERVAL`] until the task is dropped with the runtime.
pub async fn sample_forever(state: Arc<Mutex<EngineState>>, history: Arc<Mutex<History>>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let st = state.lock().unwrap_or_else(|e| e.into_inner());
        // Before the engine has sampled, there is nothing to chart.
        if st.started.is_none() {
            continue;
        }
        history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(&st, unix_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_hour() {
        let st = EngineState::default();
        let mut h = History::default();
        for i in 0..(KEEP as u64 + 50) {
            h.record(&st, i * 5000);
        }
        assert_eq!(h.len(), KEEP);
        let v = h.to_json();
        let samples = v["samples"].as_array().unwrap();
        assert_eq!(samples.len(), KEEP);
        assert_eq!(samples[0]["t"], 50 * 5000);
        assert!(samples[0]["total"].is_null());
    }
}
