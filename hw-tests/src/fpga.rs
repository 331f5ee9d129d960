//! The simulated Icarus board as a test fixture: `hw-tests/fpga/simulate` (the RTL under
//! Verilator, served on a pty) started as a child process, with the handles a test needs to
//! unplug it, hang it or put faults on its line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether Verilator is here. Missing under CI (`CI` set) is a failure, elsewhere a skip
/// that says why.
pub fn have_verilator() -> bool {
    if Command::new("verilator").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("verilator is required under CI (apt-get install verilator)");
    }
    println!("SKIPPED (fpga simulation): verilator not found (apt-get install verilator)");
    false
}

/// A simulated board, killed (and its link removed) on drop.
pub struct Board {
    child: Option<Child>,
    path: PathBuf,
    zero_bits: u32,
    start_nonce: u32,
}

impl Board {
    /// Builds the model if needed and serves a board with `zero_bits` hit bits whose counter
    /// starts each job at `start_nonce`, at a fresh path named after `name`.
    pub fn start(name: &str, zero_bits: u32, start_nonce: u32) -> Board {
        let path =
            std::env::temp_dir().join(format!("rigworker-icarus-{name}-{}", std::process::id()));
        let mut b = Board {
            child: None,
            path,
            zero_bits,
            start_nonce,
        };
        b.plug_in();
        b
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the simulator (again) at the board's path and waits for the link.
    pub fn plug_in(&mut self) {
        assert!(self.child.is_none(), "already plugged in");
        let _ = std::fs::remove_file(&self.path);
        let child = Command::new(root().join("hw-tests/fpga/simulate"))
            .arg(&self.path)
            .args([
                "--zero-bits",
                &self.zero_bits.to_string(),
                "--start-nonce",
                &self.start_nonce.to_string(),
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("start the simulator");
        self.child = Some(child);
        let t = Instant::now();
        while !self.path.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(300),
                "the simulated board never appeared"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the simulator: the pty hangs up and its link goes, as when a USB board is pulled.
    pub fn unplug(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM lets the simulator remove its link.
            self.signal(&c, libc::SIGTERM);
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Sends `sig` to the simulator (SIGUSR1: a short reply; SIGUSR2: a garbled one;
    /// SIGSTOP/SIGCONT: hang and resume the board).
    pub fn send(&self, sig: i32) {
        if let Some(c) = &self.child {
            self.signal(c, sig);
        }
    }

    fn signal(&self, c: &Child, sig: i32) {
        // SAFETY: a signal to our own child process.
        unsafe { libc::kill(c.id() as i32, sig) };
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A stopped board must be woken to see the SIGTERM.
            self.signal(c, libc::SIGCONT);
        }
        self.unplug();
    }
}
