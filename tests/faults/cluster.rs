//! The store and the warehouse as child processes of the built binary
//! (`fulfillment serve`), each with a fresh database, an API token, and a
//! stderr log file that survives restarts. SIGKILL and restart on the same
//! port are what the fault test does to them.
//!
//! Children never outlive the test: [`Cluster`]'s `Drop` kills them (also
//! when the test panics), and on Linux each child also gets SIGKILL from the
//! kernel if the test process dies without unwinding (a nextest timeout).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Connection, Executor};

use crate::api::{Api, http_client};
use crate::lock;

pub const BIN: &str = env!("CARGO_BIN_EXE_fulfillment");
pub const SECRET: &str = "fault-test-sync-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[path = "../common/pg.rs"]
mod pg;

/// The PostgreSQL admin URL, or `None` (skip) outside CI when it is unset.
fn pg_admin_url() -> Option<String> {
    pg::admin_url("the PostgreSQL fault tests")
}

/// Creates a fresh database on the PostgreSQL server and returns its URL.
async fn create_pg_database(admin: &str, name: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut c = AnyConnection::connect(admin)
        .await
        .expect("connect to the test PostgreSQL server");
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    c.close().await.ok();
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    format!("{base}/{name}")
}

/// `fulfillment token create`: prints only the token.
fn create_token(role: &str, database_url: &str) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["token", "create", "--role", role, "--database-url"])
        .arg(database_url)
        .args(["--name", "fault-test"]);
    scrub_env(&mut cmd);
    let out = cmd.output().expect("run `fulfillment token create`");
    assert!(
        out.status.success(),
        "token create for {role} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).expect("token is UTF-8");
    let token = token.trim().to_owned();
    assert!(!token.is_empty() && !token.contains(char::is_whitespace));
    token
}

/// Children get only what the command line says: no configuration, log
/// level or HTTP proxy inherited from whoever runs the tests (a proxy
/// variable would send the relay's loopback traffic elsewhere).
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
    cmd.env("RUST_LOG", "warn");
    // Plain text: the logs go to files, and are printed when a test fails.
    cmd.env("NO_COLOR", "1");
}

/// Asks the kernel to SIGKILL the child when the thread that spawned it
/// dies. Spawns happen on the test's main thread or a runtime worker, both
/// of which live as long as the test.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::ffi::{c_int, c_ulong};
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn prctl(option: c_int, ...) -> c_int;
    }
    const PR_SET_PDEATHSIG: c_int = 1;
    const SIGKILL: c_ulong = 9;
    // SAFETY: prctl is async-signal-safe and touches no memory of ours, so
    // it may run between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// One service: how to run it, and the running child if any.
pub struct Node {
    pub role: &'static str,
    pub port: u16,
    pub token: String,
    args: Vec<String>,
    /// Environment variables of its own (say, libfaketime's), on top of
    /// the scrubbed environment every child gets.
    pub env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    pub starts: u32,
    pub kills: u32,
}

impl Node {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn note(&self, line: &str) {
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&self.log) {
            let _ = writeln!(f, "==== fault test: {line} ====");
        }
    }

    fn spawn(&mut self) {
        self.starts += 1;
        self.note(&format!("start #{}", self.starts));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open child log");
        let mut cmd = Command::new(BIN);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        scrub_env(&mut cmd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        die_with_parent(&mut cmd);
        self.child = Some(cmd.spawn().expect("spawn `fulfillment serve`"));
    }

    /// SIGKILL: no graceful shutdown, nothing flushed; only what was
    /// committed survives.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.kills += 1;
            self.note(&format!("SIGKILL #{}", self.kills));
        }
    }

    /// Whether the child is alive (`false` if it exited or never started).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                self.note(&format!("exited by itself: {status}"));
                self.child = None;
                false
            }
            _ => false,
        }
    }

    /// The last `n` lines of the child's stderr (all its runs).
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Node {
    /// The distinct ERROR lines of the child's log (timestamps cut), with
    /// how often each occurred: server-side errors that retries may hide.
    pub fn log_errors(&self) -> Vec<(usize, String)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut seen: Vec<(usize, String)> = Vec::new();
        for line in text.lines().filter(|l| l.contains("ERROR")) {
            let msg = line
                .split_once("ERROR")
                .map_or(line, |(_, rest)| rest)
                .trim()
                .to_owned();
            match seen.iter_mut().find(|(_, m)| *m == msg) {
                Some((n, _)) => *n += 1,
                None => seen.push((1, msg)),
            }
        }
        seen
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `node` (again) and waits until it answers `/readyz`. A child that
/// exits at once (its port still held a moment by the killed one, say) is
/// started again.
pub async fn start(node: &Mutex<Node>) {
    let http = http_client(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = {
            let mut n = lock(node);
            if n.is_running() {
                n.kill();
            }
            n.spawn();
            format!("{}/readyz", n.url())
        };
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            if !still_starting(node, deadline) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `false` when the child exited (start it again); panics past `deadline`.
fn still_starting(node: &Mutex<Node>, deadline: Instant) -> bool {
    let mut n = lock(node);
    assert!(
        Instant::now() < deadline,
        "{} did not become ready in 60 s; log tail:\n{}",
        n.role,
        n.log_tail(40)
    );
    n.is_running()
}

/// SIGKILLs `node`, leaves it down for `down`, and starts it again.
pub async fn kill_and_restart(node: &Mutex<Node>, down: Duration) {
    lock(node).kill();
    tokio::time::sleep(down).await;
    start(node).await;
}

/// Starts `node` if it is not running (after the fault phase).
pub async fn ensure_running(node: &Mutex<Node>) {
    let running = lock(node).is_running();
    if !running {
        start(node).await;
    }
}

/// Where each service listens and where its relay sends (its peer URL port:
/// the peer itself, or a proxy in front of it).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub store: u16,
    pub store_peer: u16,
    pub warehouse: u16,
    pub warehouse_peer: u16,
}

impl Ports {
    /// Two free ports, each service sending straight to the other (no
    /// proxy in between).
    pub fn direct() -> Ports {
        let (store, warehouse) = (free_port(), free_port());
        Ports {
            store,
            store_peer: warehouse,
            warehouse,
            warehouse_peer: store,
        }
    }
}

/// The two services of one test, and what must be cleaned up after it.
pub struct Cluster {
    pub store: Arc<Mutex<Node>>,
    pub warehouse: Arc<Mutex<Node>>,
    dir: Option<tempfile::TempDir>,
    pg: Option<(String, Vec<String>)>,
}

impl Cluster {
    /// Fresh databases and tokens for both sides; nothing runs yet. `None`
    /// when PostgreSQL is unavailable outside CI (the test skips).
    pub async fn prepare(backend: Backend, ports: Ports) -> Option<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("fulfillment-faults-")
            .tempdir()
            .expect("temp dir");
        let (store_db, wh_db, pg) = match backend {
            Backend::Sqlite => {
                let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
                (url("store.db"), url("warehouse.db"), None)
            }
            Backend::Postgres => {
                let admin = pg_admin_url()?;
                let id = uuid::Uuid::now_v7().simple().to_string();
                let names = vec![format!("faults_s_{id}"), format!("faults_w_{id}")];
                let s = create_pg_database(&admin, &names[0]).await;
                let w = create_pg_database(&admin, &names[1]).await;
                (s, w, Some((admin, names)))
            }
        };
        let node = |role: &'static str, db: String, port: u16, peer: u16| Node {
            role,
            port,
            token: create_token(role, &db),
            args: vec![
                "serve".into(),
                "--role".into(),
                role.into(),
                "--database-url".into(),
                db,
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--peer-url".into(),
                format!("http://127.0.0.1:{peer}"),
                "--sync-secret".into(),
                SECRET.into(),
                "--retry-horizon".into(),
                "1h".into(),
                // The outbox alone must converge; reconciliation (a safety
                // net for drift) would hide a delivery that never happened.
                "--reconcile-interval".into(),
                "0".into(),
            ],
            env: Vec::new(),
            log: dir.path().join(format!("{role}.log")),
            child: None,
            starts: 0,
            kills: 0,
        };
        let store = node("store", store_db, ports.store, ports.store_peer);
        let warehouse = node("warehouse", wh_db, ports.warehouse, ports.warehouse_peer);
        Some(Cluster {
            store: Arc::new(Mutex::new(store)),
            warehouse: Arc::new(Mutex::new(warehouse)),
            dir: Some(dir),
            pg,
        })
    }

    /// After a successful test: stops the children and drops the PostgreSQL
    /// databases. (After a failure they are kept for a post-mortem.)
    /// With `FAULT_KEEP=1` everything is kept, also after success.
    pub async fn finish(mut self) {
        lock(&self.store).kill();
        lock(&self.warehouse).kill();
        if std::env::var("FAULT_KEEP").as_deref() == Ok("1") {
            if let Some(dir) = self.dir.take() {
                eprintln!(
                    "FAULT_KEEP: kept the logs (and SQLite files) in {}",
                    dir.keep().display()
                );
            }
            if let Some((_, names)) = self.pg.take() {
                eprintln!("FAULT_KEEP: kept the PostgreSQL databases {names:?}");
            }
            return;
        }
        if let Some((admin, names)) = self.pg.take()
            && let Ok(mut c) = AnyConnection::connect(&admin).await
        {
            for n in names {
                let _ = c
                    .execute(format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)").as_str())
                    .await;
            }
            c.close().await.ok();
        }
    }
}

impl Cluster {
    /// Prints the ERROR lines of both children's logs: not failures by
    /// themselves, but where to look when something is off.
    pub fn print_log_errors(&self) {
        for node in [&self.store, &self.warehouse] {
            let n = lock(node);
            let errors = n.log_errors();
            let total: usize = errors.iter().map(|(k, _)| k).sum();
            eprintln!("  {} log: {total} ERROR lines", n.role);
            for (k, msg) in errors.iter().take(8) {
                eprintln!("    {k}× {msg}");
            }
        }
    }

    /// An API client for each side.
    pub fn apis(&self) -> (Api, Api) {
        let api = |n: &Mutex<Node>| {
            let n = lock(n);
            Api::new(n.url(), n.token.clone())
        };
        (api(&self.store), api(&self.warehouse))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        lock(&self.store).kill();
        lock(&self.warehouse).kill();
        if std::thread::panicking() {
            for node in [&self.store, &self.warehouse] {
                let n = lock(node);
                eprintln!(
                    "---- {} stderr (last 60 lines, all runs) ----\n{}\n----",
                    n.role,
                    n.log_tail(60)
                );
            }
            if let Some(dir) = self.dir.take() {
                eprintln!("kept the databases and logs in {}", dir.keep().display());
            }
            if let Some((_, names)) = &self.pg {
                eprintln!("kept the PostgreSQL databases {names:?}");
            }
        }
    }
}
