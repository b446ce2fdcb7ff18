//! The built binary (`fulfillment serve`) under connection pressure: it
//! raises its open-file limit at start, survives running out of file
//! descriptors without flooding its log, and gives back the memory of a
//! burst of idle connections once they are gone. Linux only (/proc).
#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::db::sqlite_url;
use common::net::{free_port, http_get as get};
use common::process::{Cmd, Proc};

/// A `fulfillment serve` child (a store on a fresh SQLite file, its peer
/// absent), killed on drop.
struct Served {
    child: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

/// What `serve` gets for RLIMIT_NOFILE, set in the child before exec.
#[derive(Clone, Copy)]
struct FdLimit {
    soft: u64,
    hard: Option<u64>,
}

impl Served {
    fn start(limit: Option<FdLimit>) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut cmd = Cmd::bin();
        cmd.args(["serve", "--role", "store", "--database-url"])
            .arg(sqlite_url(dir.path(), "store.db"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--peer-url",
                "http://127.0.0.1:9",
            ])
            .env("FULFILLMENT_SYNC_SECRET", "resources-test-secret")
            .env("RUST_LOG", "info")
            .env_remove("MALLOC_ARENA_MAX")
            .log_to(&dir.path().join("serve.log"));
        if let Some(FdLimit { soft, hard }) = limit {
            // SAFETY: only async-signal-safe calls (getrlimit, setrlimit)
            // run between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let mut lim = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    lim.rlim_cur = soft;
                    if let Some(h) = hard {
                        lim.rlim_max = h;
                    }
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn();
        child.wait_ready(port, Duration::from_secs(60));
        Served {
            child,
            port,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.pid()
    }

    fn log_text(&self) -> String {
        self.child.log_text()
    }

    fn proc_file(&self, name: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.pid())).expect("read /proc")
    }

    fn rss_kib(&self) -> u64 {
        self.proc_file("status")
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.exited() {
            panic!("serve exited with {status}: {}", self.log_text());
        }
    }
}

/// (soft, hard) of "Max open files" in a /proc/PID/limits text.
fn max_open_files(limits: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().expect("soft").to_owned(),
        fields.next().expect("hard").to_owned(),
    )
}

fn own_fd_limit() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

/// Raises this test process's own soft limit to its hard one (it opens
/// thousands of connections).
fn raise_own_fd_limit(need: u64) {
    let mut lim = own_fd_limit();
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    let now = own_fd_limit().rlim_cur;
    assert!(
        now >= need,
        "this test needs {need} file descriptors, the hard limit allows {now}: raise it (ulimit -Hn)"
    );
}

/// Opens `n` idle connections (nothing sent).
fn open_idle(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            TcpStream::connect(("127.0.0.1", port))
                .unwrap_or_else(|e| panic!("connection {i} of {n}: {e}"))
        })
        .collect()
}

fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_path(s: &Served) -> &Path {
    s.child.log().expect("serve logs to a file")
}

#[test]
fn serve_raises_its_soft_open_file_limit_to_the_hard_limit() {
    let hard = own_fd_limit().rlim_max;
    assert!(
        hard > 256,
        "the hard open-file limit ({hard}) must exceed 256 for this test"
    );
    let served = Served::start(Some(FdLimit {
        soft: 256,
        hard: None,
    }));
    let (soft, hard_seen) = max_open_files(&served.proc_file("limits"));
    let expected = if hard == libc::RLIM_INFINITY {
        hard_seen.clone()
    } else {
        hard.to_string()
    };
    assert_eq!(hard_seen, expected);
    assert_eq!(soft, expected, "the soft limit was raised to the hard one");
    let log = served.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("raised the open-file limit"))
        .unwrap_or_else(|| panic!("no line about the raised limit: {log}"));
    assert!(
        line.contains("INFO") && line.contains("old_soft=256"),
        "{line}"
    );
}

#[test]
fn out_of_file_descriptors_backs_off_logs_a_handful_and_recovers() {
    raise_own_fd_limit(2_000);
    let mut served = Served::start(Some(FdLimit {
        soft: 128,
        hard: Some(128),
    }));
    // More idle connections than the service has descriptors: it accepts
    // what it can, the rest wait in the listen backlog.
    let idle = open_idle(served.port, 400);
    let p = served.port;
    wait_until(10, "the service runs out of file descriptors", || {
        served.log_text().contains("accept failed")
    });
    // A few seconds of trying to accept with no descriptor left.
    std::thread::sleep(Duration::from_secs(3));
    served.assert_running();
    drop(idle);
    wait_until(20, "the service answers again once they close", || {
        get(p, "/readyz").map(|(s, _)| s) == Some(200)
    });
    let (status, _) = get(p, "/healthz").expect("an answer");
    assert_eq!(status, 200);
    served.assert_running();
    let log = served.log_text();
    let accept_lines = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        (1..=4).contains(&accept_lines),
        "{accept_lines} accept warnings (log {}):\n{log}",
        log_path(&served).display()
    );
    let line = log
        .lines()
        .find(|l| l.contains("accept failed"))
        .expect("line");
    assert!(line.contains("open-file limit"), "says what to do: {line}");
}

/// A burst of connections costs little while they are idle (no buffers
/// until a first byte arrives), and what the ones that started a request
/// took is given back once they close, although no request completes
/// afterwards to wake the trimmer. A tenth stay open, so what was freed is
/// scattered between live allocations (as when some clients stay), where
/// malloc does not give it back by itself.
#[test]
fn memory_of_a_burst_of_connections_is_given_back() {
    const CONNECTIONS: usize = 2_000;
    raise_own_fd_limit(CONNECTIONS as u64 + 500);
    let served = Served::start(None);
    // Warm up (first requests allocate lasting things), then let the
    // service settle.
    for _ in 0..20 {
        let _ = get(served.port, "/readyz");
    }
    std::thread::sleep(Duration::from_secs(1));
    let baseline = served.rss_kib();
    let fds_before = served.open_fds();

    let mut conns = open_idle(served.port, CONNECTIONS);
    wait_until(20, "the service holds every connection", || {
        served.open_fds() >= fds_before + CONNECTIONS
    });
    std::thread::sleep(Duration::from_millis(500));
    let idle = served.rss_kib();
    // Each now starts a request and stops half-way through its headers
    // (the header timeout, 10 s, is longer than the rest of the test).
    for c in &mut conns {
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .expect("write");
    }
    std::thread::sleep(Duration::from_millis(1000));
    let busy = served.rss_kib();
    let staying: Vec<TcpStream> = conns
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| (i % 10 == 0).then_some(c))
        .collect();
    let left = staying.len();
    wait_until(20, "the service closes the others", || {
        served.open_fds() <= fds_before + left + 5
    });
    // No request after the burst: only the connections' end may count.
    std::thread::sleep(Duration::from_secs(2));
    let after = served.rss_kib();
    drop(staying);
    eprintln!(
        "VmRSS: baseline {baseline} KiB, {CONNECTIONS} idle connections {idle} KiB, \
         with half a request each {busy} KiB, after all but {left} closed {after} KiB"
    );
    assert!(
        idle <= baseline + 6 * 1024,
        "idle connections cost too much: baseline {baseline} KiB, with {CONNECTIONS} idle {idle} KiB"
    );
    assert!(
        busy > baseline + 16 * 1024,
        "started requests should cost memory (baseline {baseline} KiB, then {busy} KiB); is the test still measuring anything?"
    );
    assert!(
        after <= baseline + 10 * 1024,
        "memory not given back: baseline {baseline} KiB, at the peak {busy} KiB, with {left} connections left {after} KiB"
    );
}
