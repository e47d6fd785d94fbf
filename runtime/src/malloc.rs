//! glibc `malloc` settings for training and inference on the CPU.
//!
//! A training step of a CIFAR ResNet allocates and frees many buffers of megabytes
//! (activations, gradients, convolution work buffers). glibc serves every allocation above
//! its mmap threshold with a fresh `mmap` and returns it with `munmap` on free, so each step
//! faults in and zeroes every page of those buffers again, and a freed heap top is trimmed
//! back to the kernel. On burn-flex that put about a fifth of the CPU time in the kernel
//! (`clear_page_erms`, page faults; see docs/benchmarks.md). [`keep_freed_memory`] raises the
//! mmap threshold to glibc's maximum (32 MiB on 64-bit) and stops trimming, so freed buffers
//! are reused by the next step. Peak memory did not grow in the measurements: the step's
//! live set is the same, it is just not handed back between steps.
//!
//! Any `MALLOC_*_` variable or `GLIBC_TUNABLES` in the environment means the user chose
//! their own settings, and nothing is changed. On other C libraries this does nothing.

/// Keep freed memory in the process instead of returning it to the kernel after each use
/// (see the module docs). Returns whether the settings were applied.
pub fn keep_freed_memory() -> bool {
    let user_chose = std::env::vars_os().any(|(k, _)| {
        let k = k.to_string_lossy();
        k == "GLIBC_TUNABLES" || (k.starts_with("MALLOC_") && k.ends_with('_'))
    });
    !user_chose && apply()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    const MMAP_THRESHOLD: libc::c_int = 32 << 20;
    const TOP_PAD: libc::c_int = 64 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
            && libc::mallopt(libc::M_TOP_PAD, TOP_PAD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}
