//! The built binary (`CARGO_BIN_EXE_fulfillment`), or another program a
//! test needs (chromedriver), as a child process of the test.
//!
//! [`Cmd`] is `std::process::Command` with what every test wants:
//! - a scrubbed environment: no `FULFILLMENT_*`, `DATABASE_URL`,
//!   `RUST_LOG` or `*_PROXY` inherited from whoever runs the tests (a proxy
//!   variable would send loopback traffic elsewhere), `NO_COLOR=1`; what a
//!   test sets with [`Cmd::env`] comes on top;
//! - stdin and stdout from/to nowhere, stderr to a log file
//!   ([`Cmd::log_to`], appended to, so it survives restarts) or nowhere;
//! - on Linux, SIGKILL from the kernel when the test dies without unwinding
//!   (a nextest timeout): see [`Cmd::spawn`] for the one rule that follows.
//!
//! [`Proc`], the running child, is killed (SIGKILL) when dropped, also
//! when the test panics. [`run`] runs a CLI command to its end and returns
//! its status, stdout and stderr.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::net;

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_fulfillment");

/// A child process to start: see the module documentation.
pub struct Cmd {
    cmd: Command,
    log: Option<PathBuf>,
    group: bool,
}

impl Cmd {
    /// The built binary.
    pub fn bin() -> Cmd {
        Cmd::program(BIN)
    }

    /// Another program, treated the same way.
    pub fn program(program: impl AsRef<OsStr>) -> Cmd {
        let mut cmd = Command::new(program);
        scrub_env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd);
        Cmd {
            cmd,
            log: None,
            group: false,
        }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cmd {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable (on top of the scrubbed environment).
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Cmd {
        self.cmd.env(key, value);
        self
    }

    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Cmd
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    /// Removes one more inherited variable.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Cmd {
        self.cmd.env_remove(key);
        self
    }

    /// Appends the child's stderr to `path` (created if need be).
    pub fn log_to(&mut self, path: &Path) -> &mut Cmd {
        self.log = Some(path.to_owned());
        self
    }

    /// Runs the child in a process group of its own, and kills the whole
    /// group (what the child started, too: chromedriver's browsers) when it
    /// is killed.
    pub fn own_process_group(&mut self) -> &mut Cmd {
        self.group = true;
        self
    }

    /// Runs `f` in the child between fork and exec (after the kit's own
    /// set-up), e.g. to change a resource limit.
    ///
    /// # Safety
    ///
    /// As for [`std::os::unix::process::CommandExt::pre_exec`]: `f` may only
    /// make async-signal-safe calls.
    #[cfg(unix)]
    pub unsafe fn pre_exec<F>(&mut self, f: F) -> &mut Cmd
    where
        F: FnMut() -> std::io::Result<()> + Send + Sync + 'static,
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: passed on to the caller.
        unsafe {
            self.cmd.pre_exec(f);
        }
        self
    }

    /// Starts the child.
    ///
    /// On Linux the kernel kills the child when the *thread* that started
    /// it ends. Start long-lived children from the test's own thread or a
    /// runtime worker (both live as long as the test), never from
    /// `spawn_blocking`, whose threads end when idle a while.
    pub fn spawn(&mut self) -> Proc {
        if let Some(log) = &self.log {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|e| panic!("open the child's log {}: {e}", log.display()));
            self.cmd.stderr(file);
        }
        #[cfg(unix)]
        if self.group {
            use std::os::unix::process::CommandExt;
            self.cmd.process_group(0);
        }
        let child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", self.cmd.get_program()));
        Proc {
            child,
            log: self.log.clone(),
            group: self.group,
        }
    }

    /// Runs the child to its end with `stdin` as its input, and returns
    /// what it wrote to stdout and stderr (both captured, whatever
    /// [`Cmd::log_to`] says) and its status.
    pub fn output(&mut self, stdin: Option<&str>) -> Output {
        let mut child = self
            .cmd
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {:?}: {e}", self.cmd.get_program()));
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write the child's stdin");
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {:?}: {e}", self.cmd.get_program()))
    }
}

/// Runs the built binary with `args` (and `stdin`, if any, as its input) to
/// its end: whether it succeeded, its stdout and its stderr.
pub fn run(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    run_with_env(args, stdin, &[])
}

/// [`run`] with these environment variables set.
pub fn run_with_env(
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let out = Cmd::bin()
        .args(args)
        .envs(env.iter().copied())
        .output(stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Children get only what the command line says: see the module
/// documentation.
fn scrub_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(k) = key.to_str() else { continue };
        let upper = k.to_ascii_uppercase();
        if upper.starts_with("FULFILLMENT_")
            || upper == "DATABASE_URL"
            || upper == "RUST_LOG"
            || upper.ends_with("_PROXY")
        {
            cmd.env_remove(&key);
        }
    }
    // Plain text: the logs go to files and pipes.
    cmd.env("NO_COLOR", "1");
}

/// Asks the kernel to SIGKILL the child when the thread that started it
/// dies (see [`Cmd::spawn`]), and ends the child at once if the test
/// process is already gone.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory
    // of ours, so they may run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("the test process is gone"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// A running child (see [`Cmd::spawn`]), killed when dropped.
pub struct Proc {
    child: Child,
    log: Option<PathBuf>,
    group: bool,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited (by itself or killed).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn is_running(&mut self) -> bool {
        self.exited().is_none()
    }

    /// SIGKILL (to its whole group, with [`Cmd::own_process_group`]), and
    /// waits until it is gone. Nothing is flushed: only what the child
    /// committed survives.
    pub fn kill(&mut self) {
        #[cfg(unix)]
        if self.group
            && let Ok(pgid) = libc::pid_t::try_from(self.child.id())
        {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (a graceful stop), then waits up to `within` for the child
    /// to exit. `None` when it did not (it is killed then).
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill has no memory-safety preconditions; the child is
            // not reaped yet, so the pid is still its own.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                self.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where its stderr goes, if to a file.
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Everything in its log file (all runs that shared it).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    }

    /// The last `n` lines of its log file.
    pub fn log_tail(&self, n: usize) -> String {
        self.log.as_deref().map_or_else(String::new, |l| tail(l, n))
    }

    /// Waits (blocking) until the service answers `GET /readyz` on `port`
    /// with 200; panics with its log when it exits first or is not ready
    /// `within`.
    pub fn wait_ready(&mut self, port: u16, within: Duration) {
        let deadline = Instant::now() + within;
        while !net::is_ready(port) {
            if let Some(status) = self.exited() {
                panic!("the child exited with {status}: {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "not ready after {within:?}: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What [`wait_ready`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// The child is not running any more.
    Exited,
    /// Not ready by the deadline.
    TimedOut,
}

/// Waits (async) until the service on `port` answers `GET /readyz` with
/// 200, while `running()` says its child still runs, until `deadline`. For
/// callers that keep the [`Proc`] behind a lock and start it again when it
/// exits.
pub async fn wait_ready(
    port: u16,
    deadline: Instant,
    mut running: impl FnMut() -> bool,
) -> Readiness {
    loop {
        if net::is_ready_async(port).await {
            return Readiness::Ready;
        }
        if !running() {
            return Readiness::Exited;
        }
        if Instant::now() >= deadline {
            return Readiness::TimedOut;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The last `n` lines of the file at `path` (empty if there is none).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
