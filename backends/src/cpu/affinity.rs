//! Pinning a worker thread to one CPU (Linux only; elsewhere pinning is a no-op).

/// Pins the calling thread to the `index`-th CPU it is allowed to run on (wrapping around
/// when there are fewer). Returns whether it is now pinned; a failure leaves the thread as it
/// was, since an unpinned worker still works.
#[cfg(target_os = "linux")]
pub(crate) fn pin_current_thread(index: usize) -> bool {
    // SAFETY: `cpu_set_t` is plain data (all-zero is the empty set); the libc calls get a
    // valid pointer and its exact size, and `CPU_SET`/`CPU_ISSET` are only given indices
    // below `CPU_SETSIZE`.
    unsafe {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return false;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &allowed))
            .collect();
        if cpus.is_empty() {
            return false;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus[index % cpus.len()], &mut one);
        libc::sched_setaffinity(0, size, &one) == 0
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn pin_current_thread(_index: usize) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn pins_a_fresh_thread_to_one_cpu() {
        std::thread::spawn(|| {
            assert!(super::pin_current_thread(1));
            // SAFETY: as in `pin_current_thread`.
            let count = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                assert_eq!(
                    libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                    0
                );
                libc::CPU_COUNT(&set)
            };
            assert_eq!(count, 1);
        })
        .join()
        .unwrap();
    }
}
