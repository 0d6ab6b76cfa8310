//! Fair conditions for benchmarks that compare processes.
//!
//! Peak RSS comes from `/usr/bin/time -f %M` (the kernel's `ru_maxrss`), not from `wait4` on a
//! child the benchmark spawns itself: Linux counts the RSS a process had before `exec` into it,
//! and a child forked from the benchmark starts as large as the benchmark (6.7 MiB for `check`
//! measured that way, 4.1 MiB through `time`, whose own image is small).

use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::path::Path;

/// Writes `file` back if dirty and drops it from the page cache, so the next `exec` reads it
/// from disk by readahead, as for any binary installed a while ago. Benchmarks that compare peak
/// RSS do this to every binary they compare: how a file entered the page cache changes what a
/// process maps of it (one freshly written in a single `write` sits in large folios, which the
/// kernel maps whole: +1.7–1.9 MiB for `check`), and a fresh build and a cached tool differ there.
pub fn drop_from_page_cache(file: &Path) {
    let f = File::open(file).unwrap_or_else(|e| panic!("open {}: {e}", file.display()));
    f.sync_all()
        .unwrap_or_else(|e| panic!("fsync {}: {e}", file.display()));
    // SAFETY: a valid open descriptor; the advice changes no memory of this process.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise {}", file.display());
}
