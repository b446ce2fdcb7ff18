//! The store and the warehouse (or several warehouses) as child processes
//! of the built binary (`fulfillment serve`), each with a fresh database,
//! an API token, and a stderr log file that survives restarts. SIGKILL and
//! restart on the same port are what the fault test does to them.
//!
//! Children never outlive the test: [`Cluster`]'s `Drop` kills them (also
//! when the test panics), and on Linux each child also gets SIGKILL from the
//! kernel if the test process dies without unwinding (a nextest timeout).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::Api;
use crate::common::db::sqlite_url;
use crate::common::pg::{self, PgDb};
use crate::common::process::{self, Cmd, Proc, Readiness, run};
use crate::lock;

pub use crate::common::db::Backend;
pub use crate::common::net::free_port;

pub const SECRET: &str = "fault-test-sync-secret";

/// One warehouse of a store that has several: its name at the store (also
/// its node's), where it listens, where its relay sends (the store, or a
/// proxy in front of it), and the secret it signs with.
#[derive(Debug, Clone)]
pub struct WarehousePorts {
    pub name: &'static str,
    pub port: u16,
    pub peer: u16,
    pub secret: String,
}

/// `fulfillment token create`: prints only the token.
fn create_token(role: &str, database_url: &str) -> String {
    let (ok, token, err) = run(
        &[
            "token",
            "create",
            "--role",
            role,
            "--database-url",
            database_url,
            "--name",
            "fault-test",
        ],
        None,
    );
    assert!(ok, "token create for {role} failed: {err}");
    let token = token.trim().to_owned();
    assert!(!token.is_empty() && !token.contains(char::is_whitespace));
    token
}

/// One service: how to run it, and the running child if any.
pub struct Node {
    /// `store` or `warehouse`, or the warehouse's name when there are
    /// several: names its log and its database.
    pub name: &'static str,
    pub port: u16,
    pub token: String,
    args: Vec<String>,
    /// Environment variables of its own (say, libfaketime's), on top of
    /// the scrubbed environment every child gets.
    pub env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Proc>,
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

    /// Starts the child (from the test's thread or a runtime worker: see
    /// `Cmd::spawn`), its stderr appended to the log of all its runs.
    fn spawn(&mut self) {
        self.starts += 1;
        self.note(&format!("start #{}", self.starts));
        self.child = Some(
            Cmd::bin()
                .args(&self.args)
                .env("RUST_LOG", "warn")
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .log_to(&self.log)
                .spawn(),
        );
    }

    /// SIGKILL: no graceful shutdown, nothing flushed; only what was
    /// committed survives.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
            self.kills += 1;
            self.note(&format!("SIGKILL #{}", self.kills));
        }
    }

    /// Whether the child is alive (`false` if it exited or never started).
    pub fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.exited() {
            None => true,
            Some(status) => {
                self.note(&format!("exited by itself: {status}"));
                self.child = None;
                false
            }
        }
    }

    /// The last `n` lines of the child's stderr (all its runs).
    pub fn log_tail(&self, n: usize) -> String {
        process::tail(&self.log, n)
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

/// Starts `node` (again) and waits until it answers `/readyz`. A child that
/// exits at once (its port still held a moment by the killed one, say) is
/// started again.
pub async fn start(node: &Mutex<Node>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let port = {
            let mut n = lock(node);
            if n.is_running() {
                n.kill();
            }
            n.spawn();
            n.port
        };
        match process::wait_ready(port, deadline, || lock(node).is_running()).await {
            Readiness::Ready => return,
            Readiness::Exited => {}
            Readiness::TimedOut => {
                let n = lock(node);
                panic!(
                    "{} did not become ready in 60 s; log tail:\n{}",
                    n.name,
                    n.log_tail(40)
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

/// The services of one test (a store and one or more warehouses), and what
/// must be cleaned up after it.
pub struct Cluster {
    pub store: Arc<Mutex<Node>>,
    /// In the order given; the first is "the" warehouse of a pair.
    pub warehouses: Vec<Arc<Mutex<Node>>>,
    dir: Option<tempfile::TempDir>,
    /// Dropped after the children are killed (the fields after `Drop`),
    /// kept when the test panics.
    pg: Vec<PgDb>,
}

/// How one service is started: its flags (`peer`: its relay's target, none
/// for a store whose warehouses are data).
struct Spec {
    name: &'static str,
    role: &'static str,
    db: String,
    port: u16,
    peer: Option<u16>,
    secret: String,
}

impl Spec {
    fn node(self, dir: &std::path::Path) -> Node {
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--role".into(),
            self.role.into(),
            "--database-url".into(),
            self.db.clone(),
            "--listen".into(),
            format!("127.0.0.1:{}", self.port),
        ];
        if let Some(peer) = self.peer {
            args.extend(["--peer-url".into(), format!("http://127.0.0.1:{peer}")]);
        }
        args.extend([
            "--sync-secret".into(),
            self.secret,
            "--retry-horizon".into(),
            "1h".into(),
            // The outbox alone must converge; reconciliation (a safety
            // net for drift) would hide a delivery that never happened.
            "--reconcile-interval".into(),
            "0".into(),
        ]);
        Node {
            name: self.name,
            port: self.port,
            token: create_token(self.role, &self.db),
            args,
            env: Vec::new(),
            log: dir.join(format!("{}.log", self.name)),
            child: None,
            starts: 0,
            kills: 0,
        }
    }
}

impl Cluster {
    /// Fresh databases and tokens for both sides; nothing runs yet. `None`
    /// when PostgreSQL is unavailable outside CI (the test skips).
    pub async fn prepare(backend: Backend, ports: Ports) -> Option<Cluster> {
        let wh = WarehousePorts {
            name: "warehouse",
            port: ports.warehouse,
            peer: ports.warehouse_peer,
            secret: SECRET.into(),
        };
        Self::prepare_nodes(backend, ports.store, Some(ports.store_peer), &[wh]).await
    }

    /// A store without `--peer-url` (its warehouses are data: the test adds
    /// them) and one service per warehouse, each with its own database and
    /// secret; nothing runs yet. `None` when PostgreSQL is unavailable
    /// outside CI (the test skips; under `CI=true` it fails).
    pub async fn prepare_several(
        backend: Backend,
        store_port: u16,
        warehouses: &[WarehousePorts],
    ) -> Option<Cluster> {
        Self::prepare_nodes(backend, store_port, None, warehouses).await
    }

    async fn prepare_nodes(
        backend: Backend,
        store_port: u16,
        store_peer: Option<u16>,
        warehouses: &[WarehousePorts],
    ) -> Option<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("fulfillment-faults-")
            .tempdir()
            .expect("temp dir");
        // The database of each node: store first, then the warehouses. Two
        // nodes keep the names they always had (`faults_s_…`, `faults_w_…`).
        let names: Vec<&str> = std::iter::once("store")
            .chain(warehouses.iter().map(|w| w.name))
            .collect();
        let (dbs, pg) = match backend {
            Backend::Sqlite => (
                names
                    .iter()
                    .map(|n| sqlite_url(dir.path(), &format!("{n}.db")))
                    .collect::<Vec<_>>(),
                Vec::new(),
            ),
            Backend::Postgres => {
                let admin = pg::admin_url("the PostgreSQL fault tests")?;
                let id = uuid::Uuid::now_v7().simple().to_string();
                let mut pg = Vec::new();
                for n in &names {
                    let short = match *n {
                        "store" => "s",
                        "warehouse" => "w",
                        other => other,
                    };
                    pg.push(
                        PgDb::create_named(&admin, &format!("faults_{short}_{id}"))
                            .await
                            .keep_on_panic(),
                    );
                }
                (pg.iter().map(|d| d.url.clone()).collect(), pg)
            }
        };
        let store = Spec {
            name: "store",
            role: "store",
            db: dbs[0].clone(),
            port: store_port,
            peer: store_peer,
            secret: SECRET.into(),
        }
        .node(dir.path());
        let warehouses = warehouses
            .iter()
            .zip(&dbs[1..])
            .map(|(w, db)| {
                let node = Spec {
                    name: w.name,
                    role: "warehouse",
                    db: db.clone(),
                    port: w.port,
                    peer: Some(w.peer),
                    secret: w.secret.clone(),
                }
                .node(dir.path());
                Arc::new(Mutex::new(node))
            })
            .collect();
        Some(Cluster {
            store: Arc::new(Mutex::new(store)),
            warehouses,
            dir: Some(dir),
            pg,
        })
    }

    /// The (first) warehouse.
    pub fn warehouse(&self) -> &Arc<Mutex<Node>> {
        &self.warehouses[0]
    }

    /// Every node: the store first.
    pub fn nodes(&self) -> Vec<Arc<Mutex<Node>>> {
        std::iter::once(&self.store)
            .chain(&self.warehouses)
            .cloned()
            .collect()
    }

    /// After a successful test: stops the children and drops the PostgreSQL
    /// databases. (After a failure, a panic, they are kept for a
    /// post-mortem; the kit's `PgDb` sees to that.)
    /// With `FAULT_KEEP=1` everything is kept, also after success.
    pub async fn finish(mut self) {
        for n in self.nodes() {
            lock(&n).kill();
        }
        if std::env::var("FAULT_KEEP").as_deref() == Ok("1") {
            if let Some(dir) = self.dir.take() {
                eprintln!(
                    "FAULT_KEEP: kept the logs (and SQLite files) in {}",
                    dir.keep().display()
                );
            }
            if !self.pg.is_empty() {
                let names: Vec<String> = self.pg.drain(..).map(PgDb::keep).collect();
                eprintln!("FAULT_KEEP: kept the PostgreSQL databases {names:?}");
            }
            return;
        }
        // Dropped now (WITH (FORCE)), before the test ends.
        self.pg.clear();
    }
}

impl Cluster {
    /// Prints the ERROR lines of every child's log: not failures by
    /// themselves, but where to look when something is off.
    pub fn print_log_errors(&self) {
        for node in self.nodes() {
            let n = lock(&node);
            let errors = n.log_errors();
            let total: usize = errors.iter().map(|(k, _)| k).sum();
            eprintln!("  {} log: {total} ERROR lines", n.name);
            for (k, msg) in errors.iter().take(8) {
                eprintln!("    {k}× {msg}");
            }
        }
    }

    /// An API client for each side (the store and the first warehouse).
    pub fn apis(&self) -> (Api, Api) {
        (api(&self.store), api(self.warehouse()))
    }
}

/// An API client for `node`.
pub fn api(node: &Mutex<Node>) -> Api {
    let n = lock(node);
    Api::new(n.url(), n.token.clone())
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let nodes = self.nodes();
        for n in &nodes {
            lock(n).kill();
        }
        if std::thread::panicking() {
            for node in &nodes {
                let n = lock(node);
                eprintln!(
                    "---- {} stderr (last 60 lines, all runs) ----\n{}\n----",
                    n.name,
                    n.log_tail(60)
                );
            }
            if let Some(dir) = self.dir.take() {
                eprintln!("kept the databases and logs in {}", dir.keep().display());
            }
            // The PostgreSQL databases (`pg`) say themselves that they are
            // kept.
        }
    }
}
