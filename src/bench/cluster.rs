//! A store and its warehouses as child processes, on databases made for
//! them: temporary SQLite files, or fresh PostgreSQL databases that are
//! dropped afterwards. Each child is killed when its handle is dropped.
//!
//! How the store learns of a warehouse is the product's own: the warehouse
//! named `main` is the store's `--peer-url` and signs with the store's
//! `--sync-secret` (the pair of the single-warehouse scenarios); any other
//! is added with `POST /api/v1/warehouses`, with its routing settings and a
//! secret of its own, as an operator would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use reqwest::header::AUTHORIZATION;
use serde::Serialize;

use super::host::PgServer;
use super::progress::Progress;
use super::seed;
use crate::domain::Role;
use crate::domain::warehouse::WarehouseName;
use crate::storage::bench::{self as fixtures, Probe};
use crate::storage::{Db, DbOptions};

/// Where the databases live, and what to remove at the end.
pub struct Env {
    /// Logs, and the SQLite files: removed on drop.
    dir: PathBuf,
    /// PostgreSQL admin URL (`None`: SQLite).
    pg_admin: Option<reqwest::Url>,
    /// Databases created on that server, dropped by [`Env::cleanup`].
    pg_created: Vec<String>,
    /// The store's `--sync-secret`, which `main` signs with too.
    secret: String,
    exe: PathBuf,
    /// The PostgreSQL server when it runs on this machine (its CPU is
    /// counted), or why it is not; `None` on SQLite.
    pub db_server: Option<Result<PgServer, String>>,
}

impl Env {
    pub async fn new(database_url: Option<&str>) -> anyhow::Result<Env> {
        let exe = std::env::current_exe()
            .context("cannot find this program's binary to start the services from")?;
        if !exe.is_file() {
            bail!(
                "the fulfillment binary {} is missing; was it rebuilt or deleted while running?",
                exe.display()
            );
        }
        let pg_admin = match database_url {
            None => None,
            Some(u) => {
                let url = reqwest::Url::parse(u).map_err(|_| {
                    anyhow!("--database-url is not a URL; give an admin URL like postgres://postgres@127.0.0.1/postgres")
                })?;
                if !matches!(url.scheme(), "postgres" | "postgresql") {
                    bail!(
                        "--database-url must be a postgres:// URL (without it the bench uses temporary SQLite files)"
                    );
                }
                // Fail early, with one line, if the server is not there.
                fixtures::check_server(url.as_str())
                    .await
                    .map_err(|e| anyhow!("cannot connect to PostgreSQL at --database-url: {e}"))?;
                Some(url)
            }
        };
        let db_server = pg_admin.as_ref().map(PgServer::find);
        // Made last: nothing after it can fail and leave it behind.
        let tag = uuid::Uuid::now_v7().simple().to_string();
        let dir = std::env::temp_dir().join(format!("fulfillment-bench-{tag}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the temporary directory {dir:?}"))?;
        Ok(Env {
            dir,
            pg_admin,
            pg_created: Vec::new(),
            secret: new_secret(),
            exe,
            db_server,
        })
    }

    /// The PostgreSQL server's version and durability settings (`fsync`,
    /// `synchronous_commit`, `full_page_writes`), as `(name, value)`;
    /// empty on SQLite.
    pub async fn database_settings(&self) -> anyhow::Result<Vec<(String, String)>> {
        match &self.pg_admin {
            None => Ok(Vec::new()),
            Some(url) => fixtures::server_settings(url.as_str())
                .await
                .map_err(|e| anyhow!("cannot read the PostgreSQL server's settings: {e}")),
        }
    }

    /// A fresh, empty database for the service `name` (`store`, or a
    /// warehouse's name); returns its URL.
    async fn database(&mut self, role: Role, name: &str, tag: &str) -> anyhow::Result<String> {
        match &self.pg_admin {
            None => Ok(format!(
                "sqlite://{}",
                self.dir.join(format!("{tag}-{name}.db")).display()
            )),
            Some(admin_url) => {
                let name = format!("bench_{role}_{}", uuid::Uuid::now_v7().simple());
                fixtures::create_database(admin_url.as_str(), &name)
                    .await
                    .map_err(|e| anyhow!("cannot create database {name}: {e}"))?;
                self.pg_created.push(name.clone());
                let mut url = admin_url.clone();
                url.set_path(&format!("/{name}"));
                Ok(url.to_string())
            }
        }
    }

    /// Drops the PostgreSQL databases made for this run. The services must
    /// be stopped first (their connections are closed by force anyway).
    pub async fn cleanup(&mut self) {
        let Some(admin_url) = &self.pg_admin else {
            return;
        };
        if self.pg_created.is_empty() {
            return;
        }
        let names: Vec<String> = self.pg_created.drain(..).collect();
        for (name, why) in fixtures::drop_databases(admin_url.as_str(), &names).await {
            eprintln!("warning: could not drop database {name}: {why}");
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `the store`, `the warehouse eu`.
fn who(role: Role, name: &str) -> String {
    match role {
        Role::Store => "the store".into(),
        Role::Warehouse => format!("the warehouse {name}"),
    }
}

fn new_secret() -> String {
    format!("bench-{}", uuid::Uuid::now_v7().simple())
}

/// One running service.
pub struct Service {
    /// `store`, or the warehouse's name at the store.
    pub name: String,
    pub role: Role,
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// An API token of this service.
    pub token: String,
    /// Read-only connection to its database, for looking at what it applied.
    pub probe: Probe,
    proc: Proc,
}

/// A child process, killed when dropped (also on an error or Ctrl-C).
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    /// Resident memory now, in bytes (Linux `/proc`).
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_bytes(self.pid())
    }

    /// User + system CPU time used so far, in seconds (Linux `/proc`).
    pub fn cpu_seconds(&self) -> Option<f64> {
        super::host::cpu_seconds(self.pid())
    }

    /// `the store`, `the warehouse eu`: for messages.
    pub fn describe(&self) -> String {
        who(self.role, &self.name)
    }

    /// The highest audit entry id: later entries are newer.
    pub async fn audit_mark(&self) -> anyhow::Result<i64> {
        self.read(self.probe.audit_mark().await)
    }

    /// Count and latest time of the audit entries after `mark` that this
    /// service wrote when applying the peer's snapshots (`changes` as given,
    /// or any).
    pub async fn applied_since(
        &self,
        mark: i64,
        changes: Option<&str>,
    ) -> anyhow::Result<(u64, Option<i64>)> {
        self.read(self.probe.applied_since(mark, changes).await)
    }

    /// The order (part) ids and apply times (µs) of the entries after
    /// `mark` that applying the peer's snapshots wrote with `changes`
    /// (`created`: the peer's new orders).
    pub async fn applied_ids(
        &self,
        mark: i64,
        changes: &str,
    ) -> anyhow::Result<Vec<(String, i64)>> {
        self.read(self.probe.applied_ids(mark, changes).await)
    }

    /// What this service logged at WARN or ERROR level so far (its stderr,
    /// kept in the run's temporary directory): `None` if nothing, else how
    /// many lines of each and the first error (or warning), without its
    /// time.
    pub fn logged(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.proc.log).ok()?;
        summarize_log(&text).map(|s| format!("{} logged {s}", self.describe()))
    }

    pub async fn order_count(&self) -> anyhow::Result<u64> {
        self.read(self.probe.order_count().await)
    }

    fn read<T>(&self, r: crate::storage::Result<T>) -> anyhow::Result<T> {
        r.with_context(|| format!("cannot read {}'s database", self.describe()))
    }
}

/// A warehouse the bench starts: its name at the store, what it takes, and
/// the SKU the bench orders from it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WarehouseSpec {
    pub name: &'static str,
    /// Where it ships (empty: everywhere).
    pub countries: &'static [&'static str],
    /// The SKUs it stocks (empty: every SKU).
    pub sku_prefixes: &'static [&'static str],
    /// What the bench's orders ask of it: a SKU only it stocks.
    #[serde(skip)]
    pub sku: &'static str,
    #[serde(skip)]
    pub item: &'static str,
}

/// The single-warehouse scenarios' warehouse: `main`, the store's
/// `--peer-url`, which takes everything.
pub const PAIR: [WarehouseSpec; 1] = [WarehouseSpec {
    name: WarehouseName::MAIN,
    countries: &[],
    sku_prefixes: &[],
    sku: "WID-1",
    item: "Widget",
}];

/// The split scenario's two warehouses: both ship everywhere, `eu` stocks
/// `A-` SKUs and `us` `B-` SKUs, so an order with a line of each is split
/// in two parts.
pub const SPLIT: [WarehouseSpec; 2] = [
    WarehouseSpec {
        name: "eu",
        countries: &[],
        sku_prefixes: &["A-"],
        sku: "A-1",
        item: "Anvil",
    },
    WarehouseSpec {
        name: "us",
        countries: &[],
        sku_prefixes: &["B-"],
        sku: "B-1",
        item: "Bucket",
    },
];

/// A store and the warehouses it routes orders to, all running.
pub struct Cluster {
    pub store: Service,
    /// In the order they were given to [`Cluster::start`].
    pub warehouses: Vec<Service>,
    /// The PostgreSQL server, when it runs on this machine: its CPU counts.
    pub db_server: Option<PgServer>,
}

impl Cluster {
    /// Makes a database for each service and creates a token in each (and,
    /// with `seed`, that many identical orders in the store's and its one
    /// warehouse's), then starts every service, waits until each is ready,
    /// and tells the store about the warehouses other than `main`.
    pub async fn start(
        env: &mut Env,
        tag: &str,
        specs: &[WarehouseSpec],
        seed: Option<u64>,
        progress: &Progress,
    ) -> anyhow::Result<Cluster> {
        let store_db = env.database(Role::Store, "store", tag).await?;
        let store_token = token(env, Role::Store, &store_db)?;
        let mut dbs = Vec::with_capacity(specs.len());
        for w in specs {
            let db = env.database(Role::Warehouse, w.name, tag).await?;
            let token = token(env, Role::Warehouse, &db)?;
            let secret = if w.name == WarehouseName::MAIN {
                env.secret.clone()
            } else {
                new_secret()
            };
            dbs.push((db, token, secret));
        }
        if let Some(n) = seed {
            let [(wh_db, ..)] = dbs.as_slice() else {
                bail!("the bench seeds orders for a store with one warehouse only");
            };
            let opts = DbOptions::default();
            let (s, w) = tokio::try_join!(
                Db::open(&store_db, Role::Store, &opts),
                Db::open(wh_db, Role::Warehouse, &opts)
            )?;
            seed::orders(&s, &w, n, progress).await?;
            s.close().await;
            w.close().await;
        }
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        // A port is chosen free, then bound by the child a moment later:
        // another process (a parallel test) may take it in between. Each
        // service proves it is ours (our token opens it), and a start whose
        // port was taken is started again on new ports.
        let mut attempt = 1;
        let (store_port, ports, store, procs) = loop {
            let store_port = free_port()?;
            let ports = specs
                .iter()
                .map(|_| free_port())
                .collect::<anyhow::Result<Vec<u16>>>()?;
            let main_url = specs
                .iter()
                .zip(&ports)
                .find(|(w, _)| w.name == WarehouseName::MAIN)
                .map(|(_, p)| url(*p));
            let mut store = spawn(
                env,
                Role::Store,
                "store",
                &store_db,
                store_port,
                main_url.as_deref(),
                &env.secret,
                tag,
            )?;
            let mut procs = Vec::with_capacity(specs.len());
            for ((w, port), (db, _, secret)) in specs.iter().zip(&ports).zip(&dbs) {
                let peer = url(store_port);
                procs.push(spawn(
                    env,
                    Role::Warehouse,
                    w.name,
                    db,
                    *port,
                    Some(&peer),
                    secret,
                    tag,
                )?);
            }
            let mut ready = wait_ready(
                &client,
                "the store",
                &url(store_port),
                &store_token,
                &mut store,
            )
            .await?;
            for ((w, port), (p, (_, token, _))) in
                specs.iter().zip(&ports).zip(procs.iter_mut().zip(&dbs))
            {
                if ready != Ready::Ours {
                    break;
                }
                ready = wait_ready(
                    &client,
                    &who(Role::Warehouse, w.name),
                    &url(*port),
                    token,
                    p,
                )
                .await?;
            }
            match ready {
                Ready::Ours => break (store_port, ports, store, procs),
                Ready::PortTaken(who) if attempt < START_ATTEMPTS => {
                    progress.note(&format!(
                        "another process took the port chosen for {who}; starting the services again on new ports"
                    ));
                    attempt += 1;
                }
                Ready::PortTaken(who) => bail!(
                    "another process took the port chosen for {who}, {START_ATTEMPTS} times in a row; \
                     run the bench again when fewer services start on this machine"
                ),
            }
        };
        for ((w, port), (_, _, secret)) in specs.iter().zip(&ports).zip(&dbs) {
            if w.name != WarehouseName::MAIN {
                add_warehouse(
                    &client,
                    &url(store_port),
                    &store_token,
                    w,
                    &url(*port),
                    secret,
                )
                .await?;
            }
        }
        // Opened once the services run: a read-only SQLite connection needs
        // the WAL files they keep open.
        let store = Service {
            name: "store".into(),
            role: Role::Store,
            url: url(store_port),
            token: store_token,
            probe: probe(&store_db).await?,
            proc: store,
        };
        let mut warehouses = Vec::with_capacity(specs.len());
        for (((w, port), (db, token, _)), proc) in specs.iter().zip(&ports).zip(dbs).zip(procs) {
            warehouses.push(Service {
                name: w.name.to_owned(),
                role: Role::Warehouse,
                url: url(*port),
                token,
                probe: probe(&db).await?,
                proc,
            });
        }
        Ok(Cluster {
            store,
            warehouses,
            db_server: env.db_server.clone().and_then(Result::ok),
        })
    }

    /// A line for each service that logged warnings or errors so far.
    pub fn logged(&self) -> Vec<String> {
        std::iter::once(&self.store)
            .chain(&self.warehouses)
            .filter_map(Service::logged)
            .collect()
    }

    /// The first warehouse: the only one of a pair.
    pub fn warehouse(&self) -> &Service {
        &self.warehouses[0]
    }

    /// `store (pid 1), main (pid 2)`: what was started.
    pub fn describe(&self) -> String {
        std::iter::once(&self.store)
            .chain(&self.warehouses)
            .map(|s| format!("{} {} (pid {})", s.name, s.url, s.pid()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Tells the store about a warehouse (`POST /api/v1/warehouses`).
async fn add_warehouse(
    client: &reqwest::Client,
    store: &str,
    token: &str,
    w: &WarehouseSpec,
    url: &str,
    secret: &str,
) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "name": w.name,
        "url": url,
        "countries": w.countries,
        "sku_prefixes": w.sku_prefixes,
        "priority": 0,
        "secret": secret,
    });
    let r = client
        .post(format!("{store}/api/v1/warehouses"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "cannot reach the store to add the warehouse {}: {e}",
                w.name
            )
        })?;
    let status = r.status();
    if status != reqwest::StatusCode::CREATED {
        let text = r.text().await.unwrap_or_default();
        bail!(
            "adding the warehouse {} answered {status}: {}",
            w.name,
            text.chars().take(300).collect::<String>()
        );
    }
    Ok(())
}

/// A port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot open a loopback port for the services")?;
    Ok(l.local_addr()?.port())
}

/// Creates an API token with `token create`, as an operator would.
fn token(env: &Env, role: Role, url: &str) -> anyhow::Result<String> {
    let out = Command::new(&env.exe)
        .args([
            "token",
            "create",
            "--role",
            role.as_str(),
            "--name",
            "bench",
        ])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", env.exe.display()))?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || token.is_empty() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "cannot create a {role} token: {}",
            err.lines().last().unwrap_or("no reason given")
        );
    }
    Ok(token)
}

#[allow(clippy::too_many_arguments)]
fn spawn(
    env: &Env,
    role: Role,
    name: &str,
    db: &str,
    port: u16,
    peer: Option<&str>,
    secret: &str,
    tag: &str,
) -> anyhow::Result<Proc> {
    let log = env.dir.join(format!("{tag}-{name}.log"));
    let file = std::fs::File::create(&log).with_context(|| format!("cannot create {log:?}"))?;
    let mut cmd = Command::new(&env.exe);
    cmd.args(["serve", "--role", role.as_str()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--reconcile-interval", "0"]);
    if let Some(peer) = peer {
        cmd.args(["--peer-url", peer]);
    }
    let child = cmd
        // In the environment rather than argv, so `ps` shows no secret or password.
        .env("DATABASE_URL", db)
        .env("FULFILLMENT_SYNC_SECRET", secret)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .with_context(|| format!("cannot start {} ({})", who(role, name), env.exe.display()))?;
    Ok(Proc { child, log })
}

/// How many times [`Cluster::start`] picks ports before it gives up.
const START_ATTEMPTS: u32 = 3;

/// What answers on a started service's port.
#[derive(Debug, PartialEq, Eq)]
enum Ready {
    /// Our service, ready.
    Ours,
    /// Another process holds the port (named: whose port it was).
    PortTaken(String),
}

/// Waits until `who` answers `/readyz` and opens to `token` (a service
/// that does not know the token is another process on the port), or it
/// exits because its port was taken.
async fn wait_ready(
    client: &reqwest::Client,
    who: &str,
    base: &str,
    token: &str,
    p: &mut Proc,
) -> anyhow::Result<Ready> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("{base}/readyz");
    loop {
        if let Some(status) = p.child.try_wait()? {
            let last = last_line(&p.log);
            if last.contains("cannot listen on") {
                return Ok(Ready::PortTaken(who.to_owned()));
            }
            bail!("{who} exited ({status}) before it was ready: {last}");
        }
        if let Ok(r) = client.get(&url).send().await
            && r.status().is_success()
        {
            let mine = client
                .get(format!("{base}/api/v1/sync/status"))
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .send()
                .await
                .map(|r| r.status());
            match mine {
                Ok(s) if s.is_success() => return Ok(Ready::Ours),
                Ok(reqwest::StatusCode::UNAUTHORIZED) => {
                    return Ok(Ready::PortTaken(who.to_owned()));
                }
                // Anything else (a timeout, a 503 while it starts): ask again.
                _ => {}
            }
        }
        if Instant::now() > deadline {
            bail!("{who} was not ready within 60 s: {}", last_line(&p.log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `2 errors and 1 warning; the first error: ...` for a service's log
/// text (tracing's text format: time, level, target, message), or `None`
/// when it holds no warning or error.
fn summarize_log(text: &str) -> Option<String> {
    let (mut errors, mut warnings) = (0, 0);
    let (mut first_error, mut first_warning) = (None, None);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(_time), Some(level)) = (words.next(), words.next()) else {
            continue;
        };
        let rest = || {
            let at = line.find(level).map_or(0, |i| i + level.len());
            line[at..].trim().chars().take(200).collect::<String>()
        };
        match level {
            "ERROR" => {
                errors += 1;
                first_error.get_or_insert_with(rest);
            }
            "WARN" => {
                warnings += 1;
                first_warning.get_or_insert_with(rest);
            }
            _ => {}
        }
    }
    let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let first = match (first_error, first_warning) {
        (Some(e), _) => format!("the first error: {e}"),
        (None, Some(w)) => format!("the first warning: {w}"),
        (None, None) => return None,
    };
    Some(format!(
        "{} and {}; {first}",
        plural(errors, "error"),
        plural(warnings, "warning")
    ))
}

/// The last line a service wrote to stderr (why it stopped, usually).
fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "(it wrote nothing)".into())
}

/// A read-only connection to a service's database.
async fn probe(url: &str) -> anyhow::Result<Probe> {
    Probe::open(url)
        .await
        .map_err(|e| anyhow!("cannot open a service database to watch it: {e}"))
}

fn proc_file(pid: u32, name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join(name)).ok()
}

/// `VmRSS` from `/proc/<pid>/status`, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = proc_file(pid, "status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_summed_up() {
        assert_eq!(
            summarize_log("2026-11-29T21:00:00Z  INFO x: started\n"),
            None
        );
        let log = "2026-11-29T21:00:00Z  WARN fulfillment::a: slow\n\
                   2026-11-29T21:00:01Z ERROR fulfillment::sync::relay: relay round failed error=deadlock\n\
                   2026-11-29T21:00:02Z ERROR fulfillment::sync::relay: relay round failed again\n";
        assert_eq!(
            summarize_log(log).as_deref(),
            Some(
                "2 errors and 1 warning; the first error: fulfillment::sync::relay: relay round failed error=deadlock"
            )
        );
    }

    /// A service on loopback that is ready and opens to `token` only.
    async fn service(token: &'static str) -> String {
        use axum::http::{HeaderMap, StatusCode};
        let app = axum::Router::new()
            .route("/readyz", axum::routing::get(|| async { "ready" }))
            .route(
                "/api/v1/sync/status",
                axum::routing::get(move |h: HeaderMap| async move {
                    let sent = h.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
                    if sent == Some(&format!("Bearer {token}")) {
                        StatusCode::OK
                    } else {
                        StatusCode::UNAUTHORIZED
                    }
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        base
    }

    /// A stand-in for a started child: `sh -c script`, its stderr in a log.
    fn proc(dir: &Path, script: &str) -> Proc {
        let log = dir.join("child.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    #[tokio::test]
    async fn a_start_tells_its_own_service_from_another_on_its_port() {
        let dir = tempfile::tempdir().unwrap();
        let client = reqwest::Client::new();
        let base = service("ours").await;

        let mut p = proc(dir.path(), "exec sleep 30");
        assert_eq!(
            wait_ready(&client, "the store", &base, "ours", &mut p)
                .await
                .unwrap(),
            Ready::Ours
        );
        // Ready, but our token is unknown there: someone else's service.
        assert_eq!(
            wait_ready(&client, "the store", &base, "theirs", &mut p)
                .await
                .unwrap(),
            Ready::PortTaken("the store".into())
        );
        // Our child could not bind: the port was taken before it.
        let mut p = proc(
            dir.path(),
            "echo 'Error: cannot listen on 127.0.0.1:9: Address in use' >&2; exit 1",
        );
        let closed = format!("http://127.0.0.1:{}", free_port().unwrap());
        assert_eq!(
            wait_ready(&client, "main", &closed, "ours", &mut p)
                .await
                .unwrap(),
            Ready::PortTaken("main".into())
        );
        // Any other exit is an error that shows the child's last words.
        let mut p = proc(
            dir.path(),
            "echo 'Error: the database is locked' >&2; exit 1",
        );
        let e = wait_ready(&client, "main", &closed, "ours", &mut p)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("database is locked"), "{e}");
    }

    #[test]
    fn own_process_is_readable() {
        if cfg!(target_os = "linux") {
            let pid = std::process::id();
            assert!(rss_bytes(pid).is_some_and(|b| b > 0));
        }
    }
}
