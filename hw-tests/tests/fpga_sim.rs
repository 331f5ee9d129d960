//! The Icarus RTL (`kernels/rtl/`) as hardware: each test starts `hw-tests/fpga/simulate`,
//! which builds the Verilog with Verilator and serves the simulated board on a pty, and talks
//! to it exactly as a host talks to a USB-UART board (raw 64-byte jobs, 4-byte replies).
//! Every reply is checked against SHA-256d computed on the CPU. Skipped (with the reason) where
//! Verilator is missing, except under CI, where that is a failure.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use backends::fpga::icarus::IcarusJob;
use backends::{HeaderTemplate, sha256d};
use hw_tests::fpga::{Board, have_verilator};

fn board(name: &str, zero_bits: u32, start_nonce: u32) -> Board {
    Board::start(name, zero_bits, start_nonce)
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
/// 68..71, 64..67), as the driver encodes it (its encoding is checked against SHA-256d in
/// `backends::fpga::icarus`).
fn job(header: &[u8; 80]) -> [u8; 64] {
    IcarusJob::from_header(&HeaderTemplate(*header)).to_bytes()
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
    let mut port = open(b.path());
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
    let mut port = open(b.path());
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
    let mut port = open(b.path());
    let h = random_header(7);
    port.write_all(&job(&h)).unwrap();
    let want: Vec<u32> = (start..=u32::MAX).filter(|&w| is_hit(&h, w, 4)).collect();
    let got = replies(&mut port, want.len() + 1, 5.0);
    assert_eq!(got, want);
}
