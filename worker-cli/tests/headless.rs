//! The headless-operation settings as a user gives them: `--temp-limit` from the flag, the
//! environment (`RIGWORKER_TEMP_LIMIT`) and the config file (`temp_limit`), each checked
//! before anything starts.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rigworker");

fn mine(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut c = Command::new(BIN);
    c.arg("mine").args(args).args(["--threads", "1"]);
    if !args.contains(&"--duration") {
        c.args(["--duration", "1"]);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run rigworker mine");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn temp_limit_out_of_range_is_an_error_from_every_source() {
    let (ok, out) = mine(&["--temp-limit", "500"], &[]);
    assert!(
        !ok && out.contains("--temp-limit must be between 30 and 120"),
        "{out}"
    );
    let (ok, out) = mine(&[], &[("RIGWORKER_TEMP_LIMIT", "nan")]);
    assert!(!ok && out.contains("--temp-limit"), "{out}");
    let cfg = std::env::temp_dir().join(format!(
        "rigworker-temp-limit-{}-{}.toml",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::write(&cfg, "temp_limit = 10.0\n").expect("write config");
    let (ok, out) = mine(&["-c", cfg.to_str().expect("utf-8 temp path")], &[]);
    assert!(!ok && out.contains("got 10"), "{out}");
    // A flag wins over the file: a good flag with the bad file starts (built-in pool, 1 s).
    let (ok, out) = mine(
        &[
            "-c",
            cfg.to_str().expect("utf-8 temp path"),
            "--temp-limit",
            "85",
        ],
        &[],
    );
    assert!(ok, "{out}");
    let _ = std::fs::remove_file(&cfg);
}

/// Under systemd (`Type=notify`, `WatchdogSec=`): the real binary asks for more start-up time
/// before each device it opens, tells the notify socket it is ready once its devices run, pings the watchdog from the engine loop at half the
/// interval, reports its speed line as status, and says it is stopping before it drains.
#[test]
fn mine_speaks_the_systemd_notify_protocol() {
    use std::os::unix::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!(
        "rigworker-notify-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    // Read while the worker runs, as systemd does: the socket queues only 10 datagrams.
    sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut messages = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => messages.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            }
            messages
        })
    };
    let (ok, out) = mine(
        &["--print-time", "1", "--duration", "3"],
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let messages = reader.join().unwrap();
    assert!(ok, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    let has = |m: &str| messages.iter().any(|x| x.lines().any(|l| l == m));
    // Before READY: for each device it opens, more start-up time and a status naming it.
    let ready = messages
        .iter()
        .position(|m| m.lines().any(|l| l == "READY=1"))
        .unwrap_or_else(|| panic!("no READY=1: {messages:?}"));
    let before = &messages[..ready];
    assert!(
        before.iter().any(|m| m == "EXTEND_TIMEOUT_USEC=120000000"),
        "{messages:?}"
    );
    assert!(
        before.iter().any(|m| m.starts_with("STATUS=opening cpu#0")),
        "{messages:?}"
    );
    assert!(
        !before.iter().any(|m| m.lines().any(|l| l == "WATCHDOG=1")),
        "{messages:?}"
    );
    let pings = messages
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    assert!(pings >= 4, "a ping every 0.5 s for 3 s: {messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("STATUS=speed 10s/60s/15m")),
        "{messages:?}"
    );
    assert!(has("STOPPING=1"), "{messages:?}");
}
