//! The test harness: starts a real store and warehouse (in-process, on random
//! loopback ports, each with a fresh database on SQLite or PostgreSQL) and
//! talks HTTP to them like any client.
//!
//! The databases come from the test kit (`tests/common`, which the crate
//! including this file declares as `common`): PostgreSQL ones on the server
//! in `FULFILLMENT_TEST_PG_URL` (an admin URL; each pair gets new databases
//! on that server, dropped when the test is done), which
//! `scripts/with-postgres` sets. Without it, PostgreSQL tests skip locally
//! but FAIL under `CI=true`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fulfillment::domain::Role;
use fulfillment::engine::credentials;
use fulfillment::service::{Service, ServiceConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection};
use tokio::net::TcpListener;

pub use crate::common::db::{Backend, TestDb};

/// Runs an async test body once per backend. Each expands to two tests:
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

pub const SECRET: &str = "test-sync-secret";

/// One running service, with what it takes to restart it on the same port.
pub struct Side {
    pub role: Role,
    pub addr: SocketAddr,
    pub url: String,
    pub token: String,
    pub cfg: ServiceConfig,
    pub service: Option<Service>,
    pub db: TestDb,
    pub http: reqwest::Client,
}

/// A store and a warehouse wired to each other.
pub struct Pair {
    pub store: Side,
    pub warehouse: Side,
}

fn config(role: Role, db_url: &str, peer: SocketAddr) -> ServiceConfig {
    let mut cfg = ServiceConfig::new(role, db_url, format!("http://{peer}"), SECRET);
    // Short waits so outage tests recover quickly.
    cfg.breaker_open_for = Duration::from_millis(500);
    cfg
}

impl Pair {
    /// `None` when this backend is unavailable outside CI (the test skips).
    pub async fn start(backend: Backend) -> Option<Pair> {
        Self::start_with(backend, |_| {}).await
    }

    /// [`Pair::start`] with each side's configuration changed by `tweak`
    /// first (called once per side; `cfg.role` says which). The config is
    /// kept, so `Side::restart` reuses it.
    pub async fn start_with(backend: Backend, tweak: impl Fn(&mut ServiceConfig)) -> Option<Pair> {
        let store_db = TestDb::new(backend).await?;
        let warehouse_db = TestDb::new(backend).await?;
        let sl = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let wl = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (sa, wa) = (
            sl.local_addr().expect("addr"),
            wl.local_addr().expect("addr"),
        );
        let store = Side::start(Role::Store, store_db, sl, wa, &tweak).await;
        let warehouse = Side::start(Role::Warehouse, warehouse_db, wl, sa, &tweak).await;
        Some(Pair { store, warehouse })
    }

    pub async fn stop(mut self) {
        self.store.stop().await;
        self.warehouse.stop().await;
    }
}

impl Side {
    async fn start(
        role: Role,
        db: TestDb,
        listener: TcpListener,
        peer: SocketAddr,
        tweak: &impl Fn(&mut ServiceConfig),
    ) -> Side {
        let mut cfg = config(role, "", peer);
        tweak(&mut cfg);
        Self::start_with(role, db, listener, cfg).await
    }

    /// One service of `role` on a fresh database, delivering to `peer_url`
    /// (a [`FakePeer`], say), with `tweak` applied to its configuration.
    /// `None` when this backend is unavailable outside CI.
    pub async fn start_alone(
        role: Role,
        backend: Backend,
        peer_url: &str,
        tweak: impl FnOnce(&mut ServiceConfig),
    ) -> Option<Side> {
        let db = TestDb::new(backend).await?;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut cfg = config(role, "", listener.local_addr().expect("addr"));
        cfg.peer_url = peer_url.to_owned();
        tweak(&mut cfg);
        Some(Self::start_with(role, db, listener, cfg).await)
    }

    async fn start_with(
        role: Role,
        db: TestDb,
        listener: TcpListener,
        mut cfg: ServiceConfig,
    ) -> Side {
        cfg.database_url = db.url.clone();
        let addr = listener.local_addr().expect("addr");
        let service = Service::start(cfg.clone(), listener)
            .await
            .expect("service starts");
        let token = credentials::create_token(service.engine().db(), role, "tests")
            .await
            .expect("token");
        Side {
            role,
            addr,
            url: format!("http://{addr}"),
            token,
            cfg,
            service: Some(service),
            db,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the service (graceful); its port stays reserved for `restart`.
    pub async fn stop(&mut self) {
        if let Some(s) = self.service.take() {
            s.stop().await;
        }
    }

    /// Starts the service again on the same port and database.
    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        };
        self.service = Some(
            Service::start(self.cfg.clone(), listener)
                .await
                .expect("service restarts"),
        );
    }

    /// Sends a request with this side's token; returns status and JSON body
    /// (`Value::Null` when the body is empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.expect("body read");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Runs one SQL statement against this side's database and returns the
    /// first column of every row as text (for checking stored state).
    pub async fn sql(&self, query: &str) -> Vec<String> {
        sql_at(&self.db.url, query).await
    }
}

impl Side {
    /// Every value of every row of `table`, as text (for scanning).
    pub async fn dump_table(&self, table: &str) -> String {
        use sqlx::{Column, Row, TypeInfo};
        fulfillment::storage::install_drivers();
        let mut c = AnyConnection::connect(&self.db.url).await.expect("connect");
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(&mut c)
            .await
            .expect("select");
        c.close().await.ok();
        let mut out = String::new();
        for r in &rows {
            for (i, col) in r.columns().iter().enumerate() {
                let v = r
                    .try_get::<Option<String>, _>(i)
                    .map(|v| v.unwrap_or_default())
                    .or_else(|_| {
                        r.try_get::<Option<i64>, _>(i)
                            .map(|v| v.map(|n| n.to_string()).unwrap_or_default())
                    })
                    .or_else(|_| {
                        r.try_get::<Option<Vec<u8>>, _>(i)
                            .map(|v| String::from_utf8_lossy(&v.unwrap_or_default()).into_owned())
                    })
                    .unwrap_or_else(|_| format!("<{}>", col.type_info().name()));
                out.push_str(&v);
                out.push('\t');
            }
            out.push('\n');
        }
        out
    }
}

/// A store with no `--peer-url` and two warehouses told about by name:
/// `eu` (GB, DE, FR) and `us` (US, CA), each with a secret of its own.
pub struct Three {
    pub store: Side,
    pub eu: Side,
    pub us: Side,
}

pub const EU_SECRET: &str = "eu-sync-secret";
pub const US_SECRET: &str = "us-sync-secret";

pub async fn three(b: Backend) -> Option<Three> {
    use fulfillment::domain::warehouse::WarehouseInput;
    let store = Side::start_alone(Role::Store, b, "", |_| {}).await?;
    let warehouse = |secret: &'static str| {
        let url = store.url.clone();
        async move {
            Side::start_alone(Role::Warehouse, b, &url, |cfg| {
                cfg.sync_secrets = vec![secret.to_owned()];
            })
            .await
        }
    };
    let eu = warehouse(EU_SECRET).await?;
    let us = warehouse(US_SECRET).await?;
    let engine = store.service.as_ref().expect("running").engine();
    for (name, side, countries, secret) in [
        ("eu", &eu, vec!["GB", "DE", "FR"], EU_SECRET),
        ("us", &us, vec!["US", "CA"], US_SECRET),
    ] {
        engine
            .add_warehouse(&WarehouseInput {
                name: Some(name.into()),
                url: Some(side.url.clone()),
                countries: Some(countries.into_iter().map(String::from).collect()),
                secret: Some(secret.into()),
                ..Default::default()
            })
            .await
            .expect("warehouse added");
    }
    Some(Three { store, eu, us })
}

/// Runs one SQL statement against the database at `url` and returns the
/// first column of every row as text.
pub async fn sql_at(url: &str, query: &str) -> Vec<String> {
    fulfillment::storage::install_drivers();
    let mut c = AnyConnection::connect(url).await.expect("connect");
    let rows = sqlx::query(query).fetch_all(&mut c).await.expect("query");
    c.close().await.ok();
    rows.iter()
        .map(|r| {
            use sqlx::Row;
            r.try_get::<String, _>(0)
                .or_else(|_| r.try_get::<i64, _>(0).map(|v| v.to_string()))
                .unwrap_or_else(|_| "NULL".into())
        })
        .collect()
}

/// The example order of docs/API.md §4.2, with a distinctive customer name.
pub fn order_body(name: &str) -> Value {
    json!({
        "customer": {"name": name, "email": "ada@example.com", "company": null},
        "shipping_address": {"name": name, "line1": "12 St James's Sq", "line2": null,
                             "city": "London", "region": null, "postal_code": "SW1Y 4JH", "country": "GB"},
        "lines": [{"sku": "WID-1", "name": "Widget", "quantity": 2, "unit_price": 1999}],
        "currency": "GBP",
        "shipping_cost": 500,
        "notes": "leave at the door",
        "deliver_by": "2026-12-01T17:00:00Z"
    })
}

/// Creates an order at the store and returns its JSON.
pub async fn create_order(store: &Side, name: &str) -> Value {
    let (status, body) = store.post("/api/v1/orders", &order_body(name)).await;
    assert_eq!(status, StatusCode::CREATED, "create failed: {body}");
    body
}

pub fn id_of(order: &Value) -> String {
    order["id"].as_str().expect("order has an id").to_owned()
}

/// Polls `check` until it returns `Some`, or panics after `secs` seconds
/// with `what` in the message.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `side` shows order `id` with `pred` true, and returns it.
pub async fn wait_for_order(
    side: &Side,
    id: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    eventually(20, what, || async {
        let (status, body) = side.get(&format!("/api/v1/orders/{id}")).await;
        (status == StatusCode::OK && pred(&body)).then_some(body)
    })
    .await
}

/// Every log line this test process writes, captured in memory. (nextest
/// runs each test in its own process, so the lines are this test's.)
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Installs a subscriber with `filter` that writes here. Fails the test
    /// when another subscriber was installed first: nothing would be
    /// captured, and a scan for what must not be logged would pass without
    /// looking at anything. (nextest runs each test in its own process;
    /// several log tests in one `cargo test` process would trip this.)
    pub fn install(filter: &str) -> CapturedLogs {
        let log = CapturedLogs::default();
        let writer = log.clone();
        let installed = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .is_ok();
        assert!(
            installed,
            "log capture is not installed (another subscriber was first): run this test alone, as cargo nextest does"
        );
        log
    }

    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Everything captured, after checking that each of `expected` (lines
    /// the test knows were logged) is there: proof that the capture saw the
    /// services' logs, so that scanning the text for what must be absent
    /// means something.
    pub fn checked_text(&self, expected: &[&str]) -> String {
        let text = self.text();
        for e in expected {
            assert!(
                text.contains(e),
                "the captured logs lack {e:?}, so they are not the services' logs ({} bytes captured)",
                text.len()
            );
        }
        text
    }
}

/// How long a store started with [`short_horizon`] retries a change.
pub const SHORT_HORIZON: Duration = Duration::from_secs(1);

/// A tweak for [`Pair::start_with`]: the store gives up on a change
/// [`SHORT_HORIZON`] after it was queued (a dead letter), and its relay
/// looks at the outbox at least every 300 ms, so that a replay made by
/// another process (the CLI) is sent soon.
pub fn short_horizon(cfg: &mut ServiceConfig) {
    if cfg.role == Role::Store {
        cfg.retry_horizon = SHORT_HORIZON;
        cfg.idle_poll = Duration::from_millis(300);
    }
}

/// Creates one order per name at a store started with [`short_horizon`]
/// whose warehouse is stopped, and waits until each is a dead letter (the
/// store gave up after the retry horizon). Returns their ids in order.
pub async fn create_dead_letters(store: &Side, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        ids.push(id_of(&create_order(store, name).await));
    }
    for id in &ids {
        let o = wait_for_order(store, id, "the order becomes a dead letter", |o| {
            o["sync"]["state"] == "dead"
        })
        .await;
        assert!(
            o["sync"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("gave up after the retry horizon")),
            "{o}"
        );
    }
    ids
}

/// The ids of the orders whose outbox row at `side` is in `state`, sorted
/// (read with SQL: what is stored, not what the API derives).
pub async fn outbox_ids(side: &Side, state: &str) -> Vec<String> {
    side.sql(&format!(
        "SELECT order_id FROM outbox WHERE state = '{state}' ORDER BY order_id"
    ))
    .await
}

/// `ids`, sorted (to compare with [`outbox_ids`]).
pub fn sorted(ids: &[String]) -> Vec<String> {
    let mut v = ids.to_vec();
    v.sort();
    v
}

/// What a [`FakePeer`] answers to one request: status, JSON body, and how
/// long it waits before answering.
pub struct FakeAnswer {
    pub status: u16,
    pub body: Value,
    pub delay: Duration,
}

impl FakeAnswer {
    pub fn status(status: u16) -> FakeAnswer {
        FakeAnswer {
            status,
            body: json!({"type": "about:blank", "title": "fake", "status": status, "detail": "a fake peer's answer"}),
            delay: Duration::ZERO,
        }
    }
}

/// One request a [`FakePeer`] received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub body: Value,
}

type Answerer = dyn Fn(&Seen) -> FakeAnswer + Send + Sync;
type SeenLog = std::sync::Arc<std::sync::Mutex<Vec<Seen>>>;

/// A stand-in for the other service on a loopback port: it records every
/// request and answers what `answer` says (a peer that is overloaded,
/// refuses us, is slow, ...).
pub struct FakePeer {
    pub url: String,
    seen: SeenLog,
    task: tokio::task::JoinHandle<()>,
}

impl FakePeer {
    pub async fn start(answer: impl Fn(&Seen) -> FakeAnswer + Send + Sync + 'static) -> FakePeer {
        use axum::extract::State;
        let seen = SeenLog::default();
        let answer: std::sync::Arc<Answerer> = std::sync::Arc::new(answer);
        let state = (seen.clone(), answer);
        let app = axum::Router::new()
            .fallback(
                |State((seen, answer)): State<(SeenLog, std::sync::Arc<Answerer>)>,
                 uri: axum::http::Uri,
                 body: axum::body::Bytes| async move {
                    let request = Seen {
                        path: uri.path().to_owned(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    };
                    let a = answer(&request);
                    seen.lock().expect("fake peer log").push(request);
                    tokio::time::sleep(a.delay).await;
                    (
                        axum::http::StatusCode::from_u16(a.status).expect("status"),
                        axum::Json(a.body),
                    )
                },
            )
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePeer { url, seen, task }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("fake peer log").clone()
    }

    /// The order ids of one sync batch the fake received.
    pub fn batch_ids(seen: &Seen) -> Vec<String> {
        seen.body["changes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The rank the admin lists sort a fulfillment status by: pending first,
/// the ends last, not reported yet (null) before all.
pub fn status_rank(status: &Value) -> usize {
    let order = [
        "pending",
        "picking",
        "packed",
        "on_hold",
        "partially_shipped",
        "shipped",
        "rejected",
        "cancelled",
    ];
    status
        .as_str()
        .and_then(|s| order.iter().position(|x| *x == s))
        .map_or(0, |p| p + 1)
}
