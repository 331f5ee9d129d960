//! A serial port as an Icarus board needs it: raw 8N1, no flow control, exclusive, read with
//! a timeout through `poll`. Written on libc's termios (already a dependency of this crate)
//! rather than `serialport`: the driver needs exactly open/configure/flush/write/poll-read,
//! and those are a few calls.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct SerialPort {
    fd: OwnedFd,
    path: PathBuf,
}

fn check(r: libc::c_int, what: &str) -> io::Result<()> {
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(())
    }
}

/// The termios speed constant of a baud rate (Linux supports exactly these).
fn speed(baud: u32) -> Option<libc::speed_t> {
    Some(match baud {
        9600 => libc::B9600,
        19200 => libc::B19200,
        38400 => libc::B38400,
        57600 => libc::B57600,
        115200 => libc::B115200,
        230400 => libc::B230400,
        460800 => libc::B460800,
        500000 => libc::B500000,
        921600 => libc::B921600,
        1000000 => libc::B1000000,
        1500000 => libc::B1500000,
        2000000 => libc::B2000000,
        3000000 => libc::B3000000,
        _ => return None,
    })
}

/// The baud rates `open` accepts, for error messages.
pub const BAUD_RATES: &str = "9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 921600, 1000000, 1500000, 2000000, 3000000";

pub fn valid_baud(baud: u32) -> bool {
    speed(baud).is_some()
}

impl SerialPort {
    /// Opens `path` raw at `baud` 8N1 without flow control, and discards anything pending.
    pub fn open(path: &Path, baud: u32) -> io::Result<SerialPort> {
        let speed = speed(baud).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported baud rate {baud} (supported: {BAUD_RATES})"),
            )
        })?;
        // Non-blocking: reads wait in `poll`, never in `read`, so a cancel is seen at once;
        // O_NOCTTY so a board never becomes our controlling terminal.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)?;
        let fd: OwnedFd = file.into();
        let raw = fd.as_raw_fd();
        // SAFETY: termios calls on a descriptor we own; `t` is fully written by tcgetattr.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            check(
                libc::tcgetattr(raw, &mut t),
                "not a serial port (tcgetattr)",
            )?;
            libc::cfmakeraw(&mut t);
            t.c_cflag &= !(libc::CSTOPB | libc::PARENB | libc::CRTSCTS | libc::CSIZE);
            t.c_cflag |= libc::CS8 | libc::CLOCAL | libc::CREAD;
            t.c_iflag &= !(libc::IXON | libc::IXOFF | libc::IXANY);
            t.c_cc[libc::VMIN] = 0;
            t.c_cc[libc::VTIME] = 0;
            check(libc::cfsetispeed(&mut t, speed), "cfsetispeed")?;
            check(libc::cfsetospeed(&mut t, speed), "cfsetospeed")?;
            check(libc::tcsetattr(raw, libc::TCSANOW, &t), "tcsetattr")?;
            // Two drivers on one board would corrupt each other's jobs; exclusive use is
            // advisory for root, so a failure here is not fatal.
            let _ = libc::ioctl(raw, libc::TIOCEXCL);
            libc::tcflush(raw, libc::TCIOFLUSH);
        }
        Ok(SerialPort {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Discards unread input and unsent output: a new job must not follow half of an old one,
    /// and replies still queued belong to the job being replaced.
    pub fn flush(&mut self) {
        // SAFETY: tcflush on our own descriptor.
        unsafe {
            libc::tcflush(self.fd.as_raw_fd(), libc::TCIOFLUSH);
        }
    }

    /// Writes all of `bytes`, waiting at most `timeout` for room in the output queue.
    pub fn write_all(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut done = 0;
        while done < bytes.len() {
            // SAFETY: writing from a live slice to our own descriptor.
            let n = unsafe {
                libc::write(
                    self.fd.as_raw_fd(),
                    bytes[done..].as_ptr().cast(),
                    bytes.len() - done,
                )
            };
            if n > 0 {
                done += n as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            if n < 0
                && e.kind() != io::ErrorKind::WouldBlock
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the board does not take data",
                ));
            }
            self.poll(libc::POLLOUT, left.min(Duration::from_millis(10)))?;
        }
        Ok(())
    }

    /// Reads what has arrived, waiting at most `timeout` for the first byte; `Ok(0)` when
    /// nothing came. A hung-up line (USB unplug) is an error.
    pub fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let revents = self.poll(libc::POLLIN, timeout)?;
        if revents == 0 {
            return Ok(0);
        }
        // SAFETY: reading into a live mutable slice from our own descriptor.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return Ok(n as usize);
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the line hung up (unplugged?)",
            ));
        }
        Ok(0)
    }

    /// `poll` for `events`; the returned events, 0 on timeout.
    fn poll(&self, events: libc::c_short, timeout: Duration) -> io::Result<libc::c_short> {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one pollfd on our own descriptor.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(0);
        }
        if p.revents & libc::POLLNVAL != 0 {
            return Err(io::Error::other("the port's descriptor is no longer valid"));
        }
        Ok(p.revents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_tty_is_refused() {
        let p = std::env::temp_dir().join(format!("rigworker-not-a-tty-{}", std::process::id()));
        std::fs::write(&p, b"x").unwrap();
        let e = SerialPort::open(&p, 115200).err().unwrap();
        assert!(e.to_string().contains("not a serial port"), "{e}");
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn odd_baud_rates_are_refused_with_the_list() {
        let e = SerialPort::open(Path::new("/dev/null"), 12345)
            .err()
            .unwrap();
        assert!(e.to_string().contains("115200"), "{e}");
        assert!(valid_baud(115200) && !valid_baud(0));
    }

    /// A real pty: bytes written by the "board" side arrive, silence times out, and closing
    /// the board side is seen as a hang-up, not as endless silence.
    #[test]
    fn pty_read_timeout_and_hangup() {
        // SAFETY: plain pty setup calls; the master is closed at the end.
        let (master, slave) = unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(m >= 0);
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let name = std::ffi::CStr::from_ptr(libc::ptsname(m))
                .to_string_lossy()
                .into_owned();
            (m, PathBuf::from(name))
        };
        let mut port = SerialPort::open(&slave, 115200).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(port.read(&mut buf, Duration::from_millis(20)).unwrap(), 0);
        // SAFETY: writing 4 bytes from a static array to the master.
        unsafe { libc::write(master, [1u8, 2, 3, 4].as_ptr().cast(), 4) };
        let mut got = Vec::new();
        let t = Instant::now();
        while got.len() < 4 && t.elapsed() < Duration::from_secs(5) {
            let n = port.read(&mut buf, Duration::from_millis(50)).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, [1, 2, 3, 4]);
        port.write_all(&[9; 64], Duration::from_secs(1)).unwrap();
        // SAFETY: closing the master we opened.
        unsafe { libc::close(master) };
        let t = Instant::now();
        let err = loop {
            match port.read(&mut buf, Duration::from_millis(50)) {
                Err(e) => break e,
                Ok(_) => assert!(t.elapsed() < Duration::from_secs(5), "no hang-up seen"),
            }
        };
        assert!(!err.to_string().is_empty());
    }
}
