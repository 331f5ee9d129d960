//! Load harness for the HTTP API (`docs/api.md`, "Measured"): N concurrent scrapers, each
//! fetching a path over a fresh connection (as Prometheus and curl do) as fast as answers
//! come, for a fixed time; prints the median, 95th and 99th percentile answer times and the
//! request rate. Not a test: answer times depend on the machine.
//!
//! `cargo run --example api_load -- 127.0.0.1:4080 50 10 /api/v1/summary /metrics`

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn fetch(addr: &str, path: &str) -> std::io::Result<Duration> {
    let t0 = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await?;
    if !body.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("{path}: not a 200 answer")));
    }
    Ok(t0.elapsed())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: api_load ADDR SCRAPERS SECONDS PATH...");
        std::process::exit(2);
    }
    let addr = args[0].clone();
    let (Ok(scrapers), Ok(secs)) = (args[1].parse::<usize>(), args[2].parse::<f64>()) else {
        eprintln!("SCRAPERS must be a whole number and SECONDS a number");
        std::process::exit(2);
    };
    for path in &args[3..] {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let tasks: Vec<_> = (0..scrapers)
            .map(|_| {
                let (addr, path) = (addr.clone(), path.clone());
                tokio::spawn(async move {
                    let (mut times, mut errors) = (Vec::new(), 0u64);
                    while Instant::now() < end {
                        match fetch(&addr, &path).await {
                            Ok(t) => times.push(t),
                            Err(_) => errors += 1,
                        }
                    }
                    (times, errors)
                })
            })
            .collect();
        let (mut all, mut errors) = (Vec::new(), 0);
        for t in tasks {
            if let Ok((times, e)) = t.await {
                all.extend(times);
                errors += e;
            }
        }
        all.sort();
        println!(
            "{path}: {scrapers} scrapers, {} answers in {secs} s ({:.0}/s), {errors} errors, median {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
            all.len(),
            all.len() as f64 / secs,
            pct(&all, 0.5),
            pct(&all, 0.95),
            pct(&all, 0.99)
        );
    }
}
