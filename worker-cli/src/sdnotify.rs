//! The systemd notify protocol (`sd_notify(3)`), without libsystemd: tell the service
//! manager that the worker is ready, what it is doing, that it is alive (watchdog), and that
//! it is stopping.
//!
//! The protocol is one unix datagram per message to the socket named by `NOTIFY_SOCKET`: a
//! filesystem path, or `@name` for a socket in the abstract namespace. Each message is
//! newline-separated `KEY=VALUE` lines. Without `NOTIFY_SOCKET` (not started by systemd, or
//! not `Type=notify`) every call does nothing, so the worker runs the same anywhere.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where notifications go.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Path(PathBuf),
    /// The name after `@`, without the leading NUL the kernel uses.
    Abstract(Vec<u8>),
}

/// A connection to the service manager's notify socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    target: Target,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`; `None` when it is unset, empty or not a unix socket address.
    pub fn from_env() -> Option<Notifier> {
        Notifier::from_socket(&std::env::var_os("NOTIFY_SOCKET")?)
    }

    /// From a `NOTIFY_SOCKET` value: an absolute path or `@abstract-name`.
    pub fn from_socket(value: &OsStr) -> Option<Notifier> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = value.as_bytes();
        let target = match bytes.first()? {
            b'/' => Target::Path(PathBuf::from(value)),
            b'@' if bytes.len() > 1 => Target::Abstract(bytes[1..].to_vec()),
            // systemd also allows vsock:CID:PORT (for VMs); a worker inside a VM gets a
            // unix socket from its own systemd, so that form is not supported.
            _ => return None,
        };
        let socket = UnixDatagram::unbound().ok()?;
        // Never wait for the service manager: with its queue full (10 datagrams by default) a
        // blocking send would stall the engine; a dropped ping is sent again half a watchdog
        // period later.
        socket.set_nonblocking(true).ok()?;
        Some(Notifier { socket, target })
    }

    /// Sends one message of `KEY=VALUE` lines. A full queue at the manager's end is an
    /// error of kind `WouldBlock`, returned at once.
    pub fn notify(&self, message: &str) -> io::Result<()> {
        let sent = match &self.target {
            Target::Path(p) => self.socket.send_to(message.as_bytes(), p)?,
            Target::Abstract(name) => {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                {
                    #[cfg(target_os = "android")]
                    use std::os::android::net::SocketAddrExt;
                    #[cfg(target_os = "linux")]
                    use std::os::linux::net::SocketAddrExt;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                    self.socket.send_to_addr(message.as_bytes(), &addr)?
                }
                #[cfg(not(any(target_os = "linux", target_os = "android")))]
                {
                    let _ = name;
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "abstract unix sockets exist only on Linux",
                    ));
                }
            }
        };
        if sent != message.len() {
            // A datagram is sent whole or not at all; anything else is a broken socket.
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notify message truncated",
            ));
        }
        Ok(())
    }

    /// Startup is finished: the devices are open and the first pool is being connected.
    pub fn ready(&self) -> io::Result<()> {
        self.notify("READY=1")
    }

    /// A one-line status for `systemctl status` (e.g. the hashrate line).
    pub fn status(&self, status: &str) -> io::Result<()> {
        self.notify(&format!("STATUS={}", one_line(status)))
    }

    /// Ready, with a status, in one message (as `sd_notify` callers usually do).
    pub fn ready_with_status(&self, status: &str) -> io::Result<()> {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// "Still alive": must come more often than `WatchdogSec=` (see [`watchdog_interval`]).
    pub fn watchdog(&self) -> io::Result<()> {
        self.notify("WATCHDOG=1")
    }

    /// Shutdown has begun (sent before draining the devices and the pool connection).
    pub fn stopping(&self) -> io::Result<()> {
        self.notify("STOPPING=1")
    }

    /// Asks for more start (or stop) time than `TimeoutStartSec=`, for a long PTX JIT or
    /// kernel tuning on a rig with many GPUs.
    pub fn extend_timeout(&self, by: Duration) -> io::Result<()> {
        self.notify(&format!("EXTEND_TIMEOUT_USEC={}", by.as_micros()))
    }
}

/// STATUS is one line: a newline would start a new `KEY=VALUE` assignment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// How often to send `WATCHDOG=1`: half the watchdog timeout systemd gives in `WATCHDOG_USEC`
/// (its own advice, so one late ping is not fatal), or `None` when there is no watchdog for
/// this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval_from(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// [`watchdog_interval`] from the two variables' values and our own pid. `WATCHDOG_PID`, when
/// set, names the process the watchdog is for: a child that inherited the environment must
/// not ping on its parent's behalf.
pub fn watchdog_interval_from(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok()? != own_pid
    {
        return None;
    }
    Some(Duration::from_micros(usec) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn temp_socket_path(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "rigworker-notify-{tag}-{}-{}.sock",
            std::process::id(),
            rand::random::<u32>()
        ))
    }

    fn recv(s: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = s.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_arrive_on_a_path_socket() {
        let path = temp_socket_path("path");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::from_socket(path.as_os_str()).expect("a path is a target");
        n.ready().unwrap();
        assert_eq!(recv(&server), "READY=1");
        n.status("mining: 1.2 GH/s\nsecond line").unwrap();
        assert_eq!(recv(&server), "STATUS=mining: 1.2 GH/s second line");
        n.ready_with_status("started").unwrap();
        assert_eq!(recv(&server), "READY=1\nSTATUS=started");
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.extend_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(recv(&server), "EXTEND_TIMEOUT_USEC=30000000");
        n.stopping().unwrap();
        assert_eq!(recv(&server), "STOPPING=1");
        drop(server);
        let _ = std::fs::remove_file(&path);
        // Nobody listening any more: an error to report, not a panic.
        assert!(n.watchdog().is_err());
    }

    #[test]
    fn a_manager_that_does_not_read_never_blocks_the_worker() {
        let path = temp_socket_path("full");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::from_socket(path.as_os_str()).expect("a path is a target");
        // Far more than the kernel queues (10 by default): the sends past it fail at once.
        let results: Vec<_> = (0..200).map(|_| n.watchdog()).collect();
        assert!(results.iter().take(5).all(|r| r.is_ok()));
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock)),
            "{results:?}"
        );
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        drop(server);
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn messages_arrive_on_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "rigworker-test-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let value = format!("@{name}");
        let n = Notifier::from_socket(OsStr::new(&value)).expect("@name is a target");
        n.ready().unwrap();
        assert_eq!(recv(&server), "READY=1");
        n.stopping().unwrap();
        assert_eq!(recv(&server), "STOPPING=1");
    }

    #[test]
    fn other_socket_values_are_ignored() {
        for v in ["", "@", "relative/path", "vsock:2:1234"] {
            assert!(
                Notifier::from_socket(OsStr::from_bytes(v.as_bytes())).is_none(),
                "{v}"
            );
        }
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout_for_our_pid_only() {
        let me = 4242;
        assert_eq!(
            watchdog_interval_from(Some("30000000"), None, me),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("4242"), me),
            Some(Duration::from_secs(15))
        );
        // For another process (we are its child, or the pid was reused).
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("1"), me),
            None
        );
        for bad in [None, Some("0"), Some("-5"), Some("soon"), Some("")] {
            assert_eq!(watchdog_interval_from(bad, None, me), None, "{bad:?}");
        }
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("x"), me),
            None
        );
    }
}
