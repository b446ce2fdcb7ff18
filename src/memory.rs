//! Gives memory freed after a burst of work back to the operating system.
//!
//! glibc's malloc returns freed memory to the OS only from the top of its
//! heaps; pages freed in the middle stay resident until reused. After a
//! burst (a bulk import, a backlog drained) a service would keep its peak
//! footprint for good. So once the service has been quiet for a moment
//! ([`QUIET`]) after being busy, one `malloc_trim` releases every free page.
//! An idle service never wakes for this: the trimmer sleeps until the next
//! request.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// How long without a request counts as the end of a burst.
pub const QUIET: Duration = Duration::from_millis(200);

static BUSY: AtomicBool = AtomicBool::new(false);

fn wake() -> &'static Notify {
    static WAKE: OnceLock<Notify> = OnceLock::new();
    WAKE.get_or_init(Notify::new)
}

/// Notes that the process is doing work (called once per request; an
/// atomic swap when the trimmer is already awake).
pub fn busy() {
    if !BUSY.swap(true, Ordering::Relaxed) {
        wake().notify_one();
    }
}

/// Runs forever: after each burst of [`busy`] calls, once [`QUIET`] has
/// passed without one, trims the heap. One task per process is enough.
pub async fn trim_after_bursts() {
    loop {
        wake().notified().await;
        while BUSY.swap(false, Ordering::Relaxed) {
            tokio::time::sleep(QUIET).await;
        }
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

/// Releases the free pages of every malloc arena.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own structures, under
    // its locks; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Limits glibc to two malloc arenas. glibc gives each thread that
/// allocates its own arena (up to eight per core), and SQLite's connection
/// threads all allocate: most of a service's resident memory was
/// half-empty arenas. (One arena saves little more and costs about 5 % of
/// throughput.) glibc's own `MALLOC_ARENA_MAX`, when set, wins. Call before
/// any other thread starts.
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
