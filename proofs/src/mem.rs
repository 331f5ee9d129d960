//! Process memory figures from `/proc/self/status` (Linux): the peak resident set (`VmHWM`),
//! which is what "peak memory" means in the prover's reports, and the current one (`VmRSS`);
//! also another process's peak, for `bench` timing other provers.

fn status_kib(key: &str) -> Option<u64> {
    status_kib_of("self", key)
}

fn status_kib_of(pid: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Peak resident memory of this process in bytes (None where /proc is not available).
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Peak resident memory of process `pid` in bytes, as long as it lives (None once it is gone,
/// or where /proc is not available).
pub fn peak_rss_bytes_of(pid: u32) -> Option<u64> {
    status_kib_of(&pid.to_string(), "VmHWM:").map(|k| k * 1024)
}

/// Current resident memory of this process in bytes.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// One `/proc/meminfo` figure (`key` with its colon, such as `MemTotal:`), in bytes.
pub fn meminfo_bytes(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// Memory the kernel says can be given to a new program without swapping (`MemAvailable`),
/// in bytes.
pub fn available_bytes() -> Option<u64> {
    meminfo_bytes("MemAvailable:")
}

/// Starts a new peak: sets `VmHWM` back to the current resident set (Linux ≥ 4.0, by writing
/// 5 to `/proc/self/clear_refs`), so that a later [`peak_rss_bytes`] measures one piece of
/// work rather than the whole process so far. Returns false where that is not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_peak_forgets_memory_freed_before_it() {
        let Some(before) = peak_rss_bytes() else {
            if cfg!(target_os = "linux") {
                panic!("Linux has /proc/self/status");
            }
            eprintln!("skipped: no /proc/self/status here");
            return;
        };
        // 96 MiB, written so that every page is resident, then freed (a block this large is
        // its own mapping, so freeing returns it to the system).
        let v = std::hint::black_box(vec![7u8; 96 << 20]);
        let high = peak_rss_bytes().unwrap_or(0);
        assert!(
            high >= before + (64 << 20),
            "the peak saw the 96 MiB: {before} → {high}"
        );
        drop(v);
        if !reset_peak_rss() {
            if cfg!(target_os = "linux") {
                panic!("Linux can reset the peak (clear_refs)");
            }
            eprintln!("skipped: /proc/self/clear_refs cannot be written here");
            return;
        }
        let after = peak_rss_bytes().unwrap_or(u64::MAX);
        assert!(
            after + (64 << 20) <= high,
            "peak after the reset {after}, before {high}"
        );
    }
}
