//! The Icarus RTL (`kernels/rtl/`) as hardware: each test starts `hw-tests/fpga/simulate`,
//! which builds the Verilog with Verilator and serves the simulated board on a pty, and talks
//! to it exactly as a host talks to a USB-UART board (raw 64-byte jobs, 4-byte replies).
//! Every reply is checked against SHA-256d computed on the CPU. Skipped (with the reason) where
//! Verilator is missing, except under CI, where that is a failure.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backends::sha256d;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn have_verilator() -> bool {
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
struct Board {
    child: Child,
    path: PathBuf,
}

impl Drop for Board {
    fn drop(&mut self) {
        // SIGTERM lets the simulator remove its link.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn board(name: &str, zero_bits: u32, start_nonce: u32) -> Board {
    let path = std::env::temp_dir().join(format!("rigworker-icarus-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let child = Command::new(root().join("hw-tests/fpga/simulate"))
        .arg(&path)
        .args([
            "--zero-bits",
            &zero_bits.to_string(),
            "--start-nonce",
            &start_nonce.to_string(),
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("start the simulator");
    let t = Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "the simulated board never appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Board { child, path }
}

/// The pty opened as a driver opens a serial port: raw, flushed.
fn open(path: &Path) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let fd = f.as_raw_fd();
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0);
        libc::cfmakeraw(&mut t);
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = 1; // reads return after 0.1 s without data
        assert_eq!(libc::tcsetattr(fd, libc::TCSANOW, &t), 0);
        libc::tcflush(fd, libc::TCIOFLUSH);
    }
    f
}

/// The 64-byte Icarus job for a header (midstate H7..H0 big-endian, fill, bytes 72..75,
/// 68..71, 64..67).
fn job(header: &[u8; 80]) -> [u8; 64] {
    let mid = midstate(header);
    let mut ob = [0u8; 64];
    for (i, w) in mid.iter().rev().enumerate() {
        ob[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
    }
    ob[52..56].copy_from_slice(&header[72..76]);
    ob[56..60].copy_from_slice(&header[68..72]);
    ob[60..64].copy_from_slice(&header[64..68]);
    ob
}

/// SHA-256 state after header bytes 0..64 (a plain compression from the IV).
fn midstate(h: &[u8; 80]) -> [u32; 8] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let iv: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut w = [0u32; 64];
    for t in 0..16 {
        w[t] = u32::from_be_bytes([h[4 * t], h[4 * t + 1], h[4 * t + 2], h[4 * t + 3]]);
    }
    for t in 16..64 {
        let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
        let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16]
            .wrapping_add(s0)
            .wrapping_add(w[t - 7])
            .wrapping_add(s1);
    }
    let mut s = iv;
    for t in 0..64 {
        let [a, b, c, d, e, f, g, hh] = s;
        let t1 = hh
            .wrapping_add(e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25))
            .wrapping_add((e & f) ^ (!e & g))
            .wrapping_add(K[t])
            .wrapping_add(w[t]);
        let t2 = (a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22))
            .wrapping_add((a & b) ^ (a & c) ^ (b & c));
        s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
    }
    std::array::from_fn(|i| iv[i].wrapping_add(s[i]))
}

/// Whether W3 (header bytes 76..79 read big-endian) gives a hash with `zero_bits` leading zero
/// bits, computed on the CPU.
fn is_hit(header: &[u8; 80], w3: u32, zero_bits: u32) -> bool {
    let mut h = *header;
    h[76..80].copy_from_slice(&w3.to_be_bytes());
    let d = sha256d(&h);
    let top = u32::from_le_bytes([d[28], d[29], d[30], d[31]]);
    top >> (32 - zero_bits) == 0
}

/// Reads 4-byte replies for `secs`, or until `want` have arrived.
fn replies(port: &mut std::fs::File, want: usize, secs: f64) -> Vec<u32> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let t = Instant::now();
    while out.len() < want && t.elapsed().as_secs_f64() < secs {
        // Never read past the replies asked for: the rest stays in the pty for the next call.
        let need = (4 * (want - out.len()) - buf.len()).min(64);
        let mut b = [0u8; 64];
        let n = port.read(&mut b[..need]).unwrap_or(0);
        buf.extend_from_slice(&b[..n]);
        while buf.len() >= 4 {
            out.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
            buf.drain(..4);
        }
    }
    out
}

fn random_header(seed: u64) -> [u8; 80] {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    std::array::from_fn(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    })
}

#[test]
fn golden_job_gives_000187a2() {
    if !have_verilator() {
        return;
    }
    let b = board("golden", 32, 0);
    let mut port = open(&b.path);
    // cgminer's golden job: block 171874.
    let ob = hex::decode(
        "4679ba4ec99876bf4bfe086082b400254df6c356451471139a3afa71e48f544a\
         000000000000000000000000000000000000000087320b1a1426674f2fa722ce",
    )
    .unwrap();
    port.write_all(&ob).unwrap();
    let r = replies(&mut port, 1, 60.0);
    assert_eq!(r, vec![0x0001_87a2]);
}

/// Random headers, 4 zero bits (a hit every 16 hashes, so many close together): the board
/// reports exactly the CPU's hits, in order, none lost; a new job replaces a running one; a
/// short, garbled packet is dropped and the next full one works.
#[test]
fn replies_match_the_cpu_and_jobs_restart() {
    if !have_verilator() {
        return;
    }
    let b = board("random", 4, 0);
    let mut port = open(&b.path);
    let mut prev: Option<[u8; 80]> = None;
    for seed in 1..=3u64 {
        let h = random_header(seed);
        port.write_all(&job(&h)).unwrap();
        let want: Vec<u32> = (0u32..).filter(|&w| is_hit(&h, w, 4)).take(40).collect();
        let got = current_job_replies(&mut port, prev.as_ref(), want.len());
        assert_eq!(got, want, "seed {seed}");
        prev = Some(h);
    }
    // A short packet, then silence longer than the inter-byte gap, then a full job.
    port.write_all(&[0x55; 30]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let h = random_header(99);
    port.write_all(&job(&h)).unwrap();
    let want: Vec<u32> = (0u32..).filter(|&w| is_hit(&h, w, 4)).take(10).collect();
    let got = current_job_replies(&mut port, prev.as_ref(), want.len());
    assert_eq!(got, want, "after a short packet");
}

/// The first `n` replies after a new job, past any that were still on their way for the job
/// before it — told apart as a host does, by checking them against the previous header.
fn current_job_replies(port: &mut std::fs::File, prev: Option<&[u8; 80]>, n: usize) -> Vec<u32> {
    let mut got = Vec::new();
    let t = Instant::now();
    while got.len() < n && t.elapsed() < Duration::from_secs(60) {
        for r in replies(port, 1, 1.0) {
            let stale = got.is_empty() && prev.is_some_and(|p| is_hit(p, r, 4)) && r > 64;
            if !stale {
                got.push(r);
            }
        }
    }
    got.truncate(n);
    got
}

/// The end of the range: from a start near 2^32 the board reports the last hits, then says
/// nothing at all.
#[test]
fn silent_at_the_end_of_the_range() {
    if !have_verilator() {
        return;
    }
    let start = 0xffff_ff00u32;
    let b = board("end", 4, start);
    let mut port = open(&b.path);
    let h = random_header(7);
    port.write_all(&job(&h)).unwrap();
    let want: Vec<u32> = (start..=u32::MAX).filter(|&w| is_hit(&h, w, 4)).collect();
    let got = replies(&mut port, want.len() + 1, 5.0);
    assert_eq!(got, want);
}
