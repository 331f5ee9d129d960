//! Progress of long commands (`prove --precompute`, `bench`, `bench --work prove`) on stderr:
//! a bar or spinner (indicatif) when stderr is a terminal, a plain line every
//! [`PLAIN_EVERY`] when it is not (a log file, systemd's journal, CI), and nothing at all with
//! `--json` unless stderr is a terminal, so machine-read output never carries progress text.
//! Stdout is never written here.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a non-terminal stderr gets a line while the work runs.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Where progress goes, chosen once per command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// Stderr is a terminal: a redrawn bar or spinner.
    Bar,
    /// Stderr is a file or a pipe: a plain line now and then.
    Lines,
    /// `--json` to a non-terminal: silence.
    Hidden,
}

impl ProgressMode {
    /// The mode for a command whose machine-readable output was (`json`) or was not asked for.
    pub fn detect(json: bool) -> ProgressMode {
        match (std::io::stderr().is_terminal(), json) {
            (true, _) => ProgressMode::Bar,
            (false, false) => ProgressMode::Lines,
            (false, true) => ProgressMode::Hidden,
        }
    }
}

/// The state a plain-line ticker reports.
struct Plain {
    what: String,
    message: String,
    position: u64,
    length: Option<u64>,
    started: Instant,
}

impl Plain {
    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs();
        let step = match self.length {
            Some(len) => format!(" [{}/{len}]", self.position),
            None => String::new(),
        };
        let sep = if self.message.is_empty() { "" } else { ": " };
        format!("{}{step}{sep}{} ({secs} s)", self.what, self.message)
    }
}

enum Inner {
    Bar(ProgressBar),
    Lines {
        state: Arc<Mutex<Plain>>,
        stop: Option<mpsc::Sender<()>>,
        ticker: Option<JoinHandle<()>>,
    },
    Hidden,
}

/// One piece of long work being shown; finished (and its ticker stopped) when dropped.
pub struct Progress {
    inner: Inner,
}

impl Progress {
    /// Work of unknown length: a spinner with the elapsed time.
    pub fn spinner(mode: ProgressMode, what: &str) -> Progress {
        Progress::new(mode, what, None)
    }

    /// Work of `length` steps: a bar.
    pub fn steps(mode: ProgressMode, what: &str, length: u64) -> Progress {
        Progress::new(mode, what, Some(length))
    }

    fn new(mode: ProgressMode, what: &str, length: Option<u64>) -> Progress {
        let inner = match mode {
            ProgressMode::Hidden => Inner::Hidden,
            ProgressMode::Bar => {
                let bar = match length {
                    Some(len) => {
                        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
                            .with_style(
                                ProgressStyle::with_template(
                                    "{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}",
                                )
                                .unwrap_or_else(|_| ProgressStyle::default_bar())
                                .progress_chars("=> "),
                            )
                    }
                    None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                        .with_style(
                            ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        ),
                };
                bar.set_prefix(what.to_string());
                bar.enable_steady_tick(Duration::from_millis(200));
                Inner::Bar(bar)
            }
            ProgressMode::Lines => {
                let state = Arc::new(Mutex::new(Plain {
                    what: what.to_string(),
                    message: String::new(),
                    position: 0,
                    length,
                    started: Instant::now(),
                }));
                emit(&state);
                let (stop, rx) = mpsc::channel::<()>();
                let shared = state.clone();
                let ticker = std::thread::Builder::new()
                    .name("progress".into())
                    .spawn(move || {
                        while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(PLAIN_EVERY) {
                            emit(&shared);
                        }
                    })
                    .ok();
                Inner::Lines {
                    state,
                    stop: Some(stop),
                    ticker,
                }
            }
        };
        Progress { inner }
    }

    /// What is being done now (a size, a device, a phase).
    pub fn set_message(&self, message: impl Into<String>) {
        let message = message.into();
        match &self.inner {
            Inner::Bar(b) => b.set_message(message),
            Inner::Lines { state, .. } => {
                state.lock().unwrap_or_else(|p| p.into_inner()).message = message;
            }
            Inner::Hidden => {}
        }
    }

    /// One step more is done.
    pub fn inc(&self) {
        match &self.inner {
            Inner::Bar(b) => b.inc(1),
            Inner::Lines { state, .. } => {
                state.lock().unwrap_or_else(|p| p.into_inner()).position += 1;
            }
            Inner::Hidden => {}
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        match &mut self.inner {
            // The bar disappears: the command's own output follows.
            Inner::Bar(b) => b.finish_and_clear(),
            Inner::Lines { stop, ticker, .. } => {
                drop(stop.take());
                if let Some(t) = ticker.take() {
                    let _ = t.join();
                }
            }
            Inner::Hidden => {}
        }
    }
}

fn emit(state: &Mutex<Plain>) {
    let line = state.lock().unwrap_or_else(|p| p.into_inner()).line();
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_to_a_pipe_is_silent_and_plain_lines_say_where_the_work_is() {
        // Under `cargo test` stderr is captured (not a terminal).
        if !std::io::stderr().is_terminal() {
            assert_eq!(ProgressMode::detect(true), ProgressMode::Hidden);
            assert_eq!(ProgressMode::detect(false), ProgressMode::Lines);
        }
        let p = Plain {
            what: "bench prove".into(),
            message: "G1 MSM 2^16 on opencl".into(),
            position: 3,
            length: Some(12),
            started: Instant::now(),
        };
        assert_eq!(p.line(), "bench prove [3/12]: G1 MSM 2^16 on opencl (0 s)");
        let s = Plain {
            what: "building MSM tables".into(),
            message: String::new(),
            position: 0,
            length: None,
            started: Instant::now(),
        };
        assert_eq!(s.line(), "building MSM tables (0 s)");
    }

    #[test]
    fn a_hidden_progress_does_nothing_and_a_line_ticker_stops_when_dropped() {
        let h = Progress::steps(ProgressMode::Hidden, "x", 2);
        h.inc();
        h.set_message("y");
        drop(h);
        let started = Instant::now();
        let l = Progress::spinner(ProgressMode::Lines, "ticker test");
        l.set_message("working");
        drop(l);
        // The ticker thread was joined: no wait for its PLAIN_EVERY period.
        assert!(started.elapsed() < PLAIN_EVERY);
    }
}
