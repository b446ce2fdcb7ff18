//! The load: HTTP clients that behave like real ones (a pooled reqwest
//! client, bearer tokens, the create body of docs/API.md §4.2), closed-loop workers for
//! throughput and latency, an open-loop ticker for propagation, and the
//! scenarios built from them. Every scenario runs on a [`Cluster`] of a
//! store and one or more warehouses, with a [`Mix`] of orders: an order
//! whose lines no one warehouse takes is split into parts, and "at the
//! warehouse" then means every part at its own.
//!
//! "Applied at the peer" is read from the peer's database: every snapshot
//! applied from the other side writes an audit entry (`actor_kind = 'sync'`)
//! with its time, so the bench knows not only *that* everything arrived but
//! *when* the last one did, to the microsecond, without polling tightly.
//! That time is taken by the receiver when its apply transaction starts.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Serialize;

use super::cluster::{Cluster, Service, WarehouseSpec};
use super::progress::Progress;
use super::stats::{Summary, summarize};
use super::timeline::{Sampler, Timeline};
use crate::domain::Role;
use crate::storage::now_micros;
use crate::sync::reconcile::Report;

/// The create body of docs/API.md §4.2; [`Mix`] replaces its lines.
pub const ORDER_JSON: &str = r#"{
  "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "company": null},
  "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Sq",
                       "line2": null, "city": "London", "region": null,
                       "postal_code": "SW1Y 4JH", "country": "GB"},
  "lines": [{"sku": "WID-1", "name": "Widget", "quantity": 2, "unit_price": 1999}],
  "currency": "GBP",
  "shipping_cost": 500,
  "notes": "leave at the door",
  "deliver_by": "2026-12-01T17:00:00Z"
}"#;

const PICKING_JSON: &str = r#"{"status": "picking"}"#;

/// How long the services may make no progress at all before the bench gives up.
const STALL: Duration = Duration::from_secs(60);
/// How often the services' databases are looked at while waiting.
const POLL: Duration = Duration::from_millis(50);

/// The orders a scenario creates: order `i` (the `i`-th request of a
/// scenario) is `bodies[i % bodies.len()]`, so how many parts each
/// warehouse gets is known in advance.
pub struct Mix {
    bodies: Vec<Body>,
}

struct Body {
    json: String,
    /// The warehouses (indices into the cluster's) that get a part of it.
    to: Vec<usize>,
}

impl Mix {
    /// Orders for `warehouses`, each line a SKU only one of them stocks.
    /// With one warehouse every order is the same one-line order. With
    /// more, every other order has a line for each warehouse (so it is
    /// split into as many parts) and the rest one line for one warehouse,
    /// each in turn: with two, half the orders split, and each warehouse
    /// gets as many parts as the other.
    pub fn new(warehouses: &[WarehouseSpec]) -> Mix {
        let all: Vec<usize> = (0..warehouses.len()).collect();
        let mut bodies = vec![Body::new(warehouses, &all)];
        if warehouses.len() > 1 {
            bodies = all
                .iter()
                .flat_map(|w| [Body::new(warehouses, &all), Body::new(warehouses, &[*w])])
                .collect();
        }
        Mix { bodies }
    }

    fn body(&self, i: u64) -> &Body {
        &self.bodies[(i % self.bodies.len() as u64) as usize]
    }

    /// Parts each warehouse is sent for orders `0..n`.
    fn expected(&self, n: u64, warehouses: usize) -> Vec<u64> {
        let len = self.bodies.len() as u64;
        let mut out = vec![0; warehouses];
        for (k, b) in self.bodies.iter().enumerate() {
            let times = n / len + u64::from((k as u64) < n % len);
            for w in &b.to {
                out[*w] += times;
            }
        }
        out
    }

    /// Checks the store routed order `i` as the mix says.
    fn check(&self, i: u64, placed: &Placed) -> anyhow::Result<()> {
        let mut got: Vec<usize> = placed.parts.iter().map(|p| p.0).collect();
        got.sort_unstable();
        if got != self.body(i).to {
            bail!(
                "the store made {} part(s) of order {} where the bench expected {}; are the warehouses set up as the bench set them?",
                got.len(),
                placed.id,
                self.body(i).to.len()
            );
        }
        Ok(())
    }
}

impl Body {
    fn new(warehouses: &[WarehouseSpec], to: &[usize]) -> Body {
        let mut order: serde_json::Value =
            serde_json::from_str(ORDER_JSON).expect("ORDER_JSON is JSON");
        order["lines"] = to
            .iter()
            .map(|w| {
                serde_json::json!({"sku": warehouses[*w].sku, "name": warehouses[*w].item,
                                   "quantity": 2, "unit_price": 1999})
            })
            .collect();
        Body {
            json: order.to_string(),
            to: to.to_vec(),
        }
    }
}

struct Peer {
    url: String,
    auth: HeaderValue,
}

struct Inner {
    client: reqwest::Client,
    create_url: String,
    store_url: String,
    store_auth: HeaderValue,
    /// Names as the store knows them, in the cluster's order.
    names: Vec<String>,
    warehouses: Vec<Peer>,
}

/// The services' APIs, as a client sees them. Cheap to clone.
#[derive(Clone)]
pub struct Api(Arc<Inner>);

/// What the bench reads of the store's 201.
#[derive(serde::Deserialize)]
struct Created {
    id: String,
    parts: Vec<PartRef>,
}

#[derive(serde::Deserialize)]
struct PartRef {
    id: String,
    warehouse: String,
}

/// An order as the store placed it: its id, and each part's warehouse
/// (index into the cluster's) and id there.
pub struct Placed {
    pub id: String,
    pub parts: Vec<(usize, String)>,
}

impl Api {
    pub fn new(cluster: &Cluster) -> anyhow::Result<Api> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()?;
        let auth = |t: &str| {
            HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| anyhow!("bad token"))
        };
        let warehouses = cluster
            .warehouses
            .iter()
            .map(|w| {
                Ok(Peer {
                    url: w.url.clone(),
                    auth: auth(&w.token)?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Api(Arc::new(Inner {
            client,
            create_url: format!("{}/api/v1/orders", cluster.store.url),
            store_url: cluster.store.url.clone(),
            store_auth: auth(&cluster.store.token)?,
            names: cluster.warehouses.iter().map(|w| w.name.clone()).collect(),
            warehouses,
        })))
    }

    /// Creates an order at the store; its id and parts when asked for.
    pub async fn create(&self, body: &str, want: bool) -> anyhow::Result<Option<Placed>> {
        let r = self
            .0
            .client
            .post(&self.0.create_url)
            .header(AUTHORIZATION, self.0.store_auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach the store: {e}"))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| anyhow!("store answer: {e}"))?;
        if status != reqwest::StatusCode::CREATED {
            bail!("POST /api/v1/orders answered {status}: {}", snippet(&body));
        }
        if !want {
            return Ok(None);
        }
        let c: Created = serde_json::from_slice(&body)
            .map_err(|e| anyhow!("the store's 201 has no order id and parts: {e}"))?;
        let parts = c
            .parts
            .into_iter()
            .map(|p| match self.0.names.iter().position(|n| *n == p.warehouse) {
                Some(w) => Ok((w, p.id)),
                None => Err(anyhow!(
                    "the store routed part {} of order {} to {:?}, a warehouse the bench did not start",
                    p.id,
                    c.id,
                    p.warehouse
                )),
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Some(Placed { id: c.id, parts }))
    }

    /// Moves part `id` to `picking` at warehouse `w`.
    pub async fn pick(&self, w: usize, id: &str) -> anyhow::Result<()> {
        let peer = &self.0.warehouses[w];
        let r = self
            .0
            .client
            .post(format!("{}/api/v1/orders/{id}/fulfillment", peer.url))
            .header(AUTHORIZATION, peer.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(PICKING_JSON)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach the warehouse {}: {e}", self.0.names[w]))?;
        let status = r.status();
        let body = r
            .bytes()
            .await
            .map_err(|e| anyhow!("warehouse answer: {e}"))?;
        if status != reqwest::StatusCode::OK {
            bail!(
                "POST /api/v1/orders/{id}/fulfillment at the warehouse {} answered {status}: {}",
                self.0.names[w],
                snippet(&body)
            );
        }
        Ok(())
    }

    /// Runs one reconciliation pass at the store (a job: started, then
    /// followed until it ends) and returns its report and how long the
    /// pass itself took.
    async fn reconcile(&self) -> anyhow::Result<(Report, f64)> {
        let url = format!("{}/api/v1/sync/reconcile", self.0.store_url);
        self.store_call(self.0.client.post(&url), reqwest::StatusCode::ACCEPTED)
            .await?;
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let body = self
                .store_call(self.0.client.get(&url), reqwest::StatusCode::OK)
                .await?;
            let job: JobAnswer =
                serde_json::from_slice(&body).context("the reconciliation job does not parse")?;
            match (job.state.as_str(), job.report, job.finished_at) {
                ("running", ..) => continue,
                ("finished", Some(report), Some(end)) => {
                    let seconds =
                        (end - job.started_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
                    return Ok((report, seconds));
                }
                _ => bail!(
                    "the reconciliation failed: {}",
                    job.error.unwrap_or_else(|| snippet(&body))
                ),
            }
        }
    }

    /// Sends a request to the store with its token; the body of an answer
    /// with status `expected`, or why not.
    async fn store_call(
        &self,
        req: reqwest::RequestBuilder,
        expected: reqwest::StatusCode,
    ) -> anyhow::Result<axum::body::Bytes> {
        let r = req
            .header(AUTHORIZATION, self.0.store_auth.clone())
            .build()
            .map_err(|e| anyhow!("cannot build the request: {e}"))?;
        let what = format!("{} {}", r.method(), r.url().path());
        let r = self
            .0
            .client
            .execute(r)
            .await
            .map_err(|e| anyhow!("cannot reach the store: {e}"))?;
        let status = r.status();
        let body = r.bytes().await?;
        if status != expected {
            bail!("{what} answered {status}: {}", snippet(&body));
        }
        Ok(body)
    }
}

/// What `GET /api/v1/sync/reconcile` answers, as far as the bench reads it.
#[derive(serde::Deserialize)]
struct JobAnswer {
    state: String,
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    report: Option<Report>,
    error: Option<String>,
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(300).collect()
}

/// How many requests a closed loop makes.
#[derive(Clone, Copy)]
enum Jobs {
    /// Exactly this many, shared by all workers.
    Count(u64),
    /// As many as fit before this instant.
    Until(Instant),
}

/// What a closed loop did.
struct Run<T> {
    latencies_ms: Vec<f64>,
    /// `(job number, what the job returned)`.
    ids: Vec<(u64, T)>,
    elapsed: Duration,
}

/// `clients` workers, each sending its next request as soon as the previous
/// one is answered. The first error stops every worker and is returned.
async fn closed_loop<T, F, Fut>(
    clients: usize,
    jobs: Jobs,
    progress: &Progress,
    op: F,
) -> anyhow::Result<Run<T>>
where
    T: Send + 'static,
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Option<T>>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (op, next, done, stop) = (op.clone(), next.clone(), done.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut ids = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let i = match jobs {
                    Jobs::Count(n) => {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        i
                    }
                    Jobs::Until(end) => {
                        if Instant::now() >= end {
                            break;
                        }
                        next.fetch_add(1, Ordering::Relaxed)
                    }
                };
                let t = Instant::now();
                match op(i).await {
                    Ok(id) => {
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        if let Some(id) = id {
                            ids.push((i, id));
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            Ok((lat, ids))
        }));
    }
    while !workers.iter().all(|w| w.is_finished()) {
        progress.advance(done.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    progress.advance(done.load(Ordering::Relaxed));
    let mut run = Run {
        latencies_ms: Vec::new(),
        ids: Vec::new(),
        elapsed,
    };
    let mut first_error = None;
    for w in workers {
        match w.await {
            Ok(Ok((lat, ids))) => {
                run.latencies_ms.extend(lat);
                run.ids.extend(ids);
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow!("a load worker failed: {e}"));
            }
        }
    }
    run.ids.sort_unstable_by_key(|(i, _)| *i);
    match first_error {
        Some(e) => Err(e),
        None => Ok(run),
    }
}

/// What one request of an open loop returned, when its answer arrived (µs
/// since the epoch) and how long it took (ms).
struct Answered<T> {
    value: T,
    at: i64,
    ms: f64,
}

/// Starts `op(i)` `rate` times a second for `duration` (at most `limit`
/// times), whatever the answers (open loop). Returns the answers in the
/// order the requests were started, and the seconds it took.
async fn open_loop<T, F, Fut>(
    rate: u32,
    duration: Duration,
    limit: u64,
    progress: &Progress,
    op: F,
) -> anyhow::Result<(Vec<Answered<T>>, f64)>
where
    T: Send + 'static,
    F: Fn(u64) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let planned = (u64::from(rate) * duration.as_secs()).min(limit);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let end = started + duration;
    let done = Arc::new(AtomicU64::new(0));
    let mut inflight = Vec::with_capacity(planned as usize);
    for i in 0..limit {
        tick.tick().await;
        if Instant::now() >= end {
            break;
        }
        let (fut, counter) = (op(i), done.clone());
        inflight.push(tokio::spawn(async move {
            let t = Instant::now();
            let value = fut.await?;
            let at = now_micros();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            counter.fetch_add(1, Ordering::Relaxed);
            anyhow::Ok(Answered { value, at, ms })
        }));
        progress.advance(done.load(Ordering::Relaxed));
    }
    let mut answered = Vec::with_capacity(inflight.len());
    for h in inflight {
        answered.push(h.await.map_err(|e| anyhow!("a load task failed: {e}"))??);
    }
    progress.advance(answered.len() as u64);
    Ok((answered, started.elapsed().as_secs_f64()))
}

/// Waits until each service of `targets` has applied its number of
/// snapshots from its peer since its mark (audit entries with `changes`);
/// returns when the last one was applied (µs since the epoch). A warehouse
/// that gets more new orders than expected fails at once: the store routed
/// otherwise than the bench expects.
async fn wait_applied(
    targets: &[(&Service, i64, u64)],
    changes: &str,
    progress: &Progress,
) -> anyhow::Result<i64> {
    let mut seen = 0;
    let mut moved = Instant::now();
    loop {
        let (mut total, mut done, mut last) = (0, true, None);
        let mut counts = Vec::with_capacity(targets.len());
        for (svc, mark, expected) in targets {
            let (n, at) = svc.applied_since(*mark, Some(changes)).await?;
            if svc.role == Role::Warehouse && n > *expected {
                bail!(
                    "{} applied {n} {changes} changes from the store where the bench expected {expected}; are orders routed as the bench set the warehouses up?",
                    svc.describe()
                );
            }
            total += n;
            done &= n >= *expected;
            last = last.max(at);
            counts.push(format!("{} {n} of {expected}", svc.describe()));
        }
        progress.advance(total);
        if done {
            return Ok(last.unwrap_or_else(now_micros));
        }
        if total > seen {
            seen = total;
            moved = Instant::now();
        } else if moved.elapsed() > STALL {
            bail!(
                "{changes} changes applied from the peer: {}, and then nothing for {} s; is sync stuck?",
                counts.join(", "),
                STALL.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The warehouses, each with its mark and how many new parts it expects.
fn at_warehouses<'a>(
    cluster: &'a Cluster,
    marks: &Marks,
    expected: &[u64],
) -> Vec<(&'a Service, i64, u64)> {
    cluster
        .warehouses
        .iter()
        .zip(&marks.warehouses)
        .zip(expected)
        .map(|((w, m), e)| (w, *m, *e))
        .collect()
}

/// CPU seconds the services used during a scenario (from `/proc`, user +
/// system, read before and after its timed window).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Cpu {
    pub store_seconds: Option<f64>,
    /// Every warehouse together.
    pub warehouse_seconds: Option<f64>,
    /// The PostgreSQL server, when it runs on this machine: the postmaster
    /// and every child of it (backends, WAL writer, checkpointer...), live
    /// or exited during the window ([`super::host::PgServer::cpu_seconds`]);
    /// the bench's own probe connections included. `None` on SQLite or a
    /// remote server.
    pub database_seconds: Option<f64>,
    /// The load generator (this process), which shares the machine.
    pub bench_seconds: Option<f64>,
}

impl Cpu {
    fn now(cluster: &Cluster) -> Cpu {
        Cpu {
            store_seconds: cluster.store.cpu_seconds(),
            warehouse_seconds: cluster
                .warehouses
                .iter()
                .map(Service::cpu_seconds)
                .sum::<Option<f64>>(),
            database_seconds: cluster.db_server.and_then(|s| s.cpu_seconds()),
            bench_seconds: super::host::cpu_seconds(std::process::id()),
        }
    }

    fn since(before: Cpu, cluster: &Cluster) -> Cpu {
        let now = Cpu::now(cluster);
        let d = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        Cpu {
            store_seconds: d(now.store_seconds, before.store_seconds),
            warehouse_seconds: d(now.warehouse_seconds, before.warehouse_seconds),
            database_seconds: d(now.database_seconds, before.database_seconds),
            bench_seconds: d(now.bench_seconds, before.bench_seconds),
        }
    }

    /// The same divided by `n` orders (or updates, `per`), in ms.
    pub fn per(&self, per: &'static str, n: u64) -> PerOrder {
        let ms = |s: Option<f64>| s.filter(|_| n > 0).map(|s| s * 1000.0 / n as f64);
        let (store_ms, warehouse_ms, database_ms) = (
            ms(self.store_seconds),
            ms(self.warehouse_seconds),
            ms(self.database_seconds),
        );
        let services_ms = store_ms.zip(warehouse_ms).map(|(s, w)| s + w);
        PerOrder {
            per,
            count: n,
            store_ms,
            warehouse_ms,
            database_ms,
            services_ms,
            total_ms: services_ms.map(|s| s + database_ms.unwrap_or(0.0)),
        }
    }
}

/// CPU per order (or per update) of a scenario, in ms: [`Cpu`] divided by
/// what the scenario did in its window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PerOrder {
    /// `order` or `update`.
    pub per: &'static str,
    /// Orders (updates) it is divided by.
    pub count: u64,
    pub store_ms: Option<f64>,
    /// Every warehouse together.
    pub warehouse_ms: Option<f64>,
    /// The local PostgreSQL server (`None`: SQLite, or not on this machine).
    pub database_ms: Option<f64>,
    /// Store + warehouses.
    pub services_ms: Option<f64>,
    /// Store + warehouses + the PostgreSQL server when counted.
    pub total_ms: Option<f64>,
}

/// Waits for both directions of the sync of new orders: each warehouse
/// has its `expected` new parts, and the store has every part's first
/// state (pending) back. Returns when the last part was applied at its
/// warehouse.
async fn settle_created(
    cluster: &Cluster,
    marks: &Marks,
    expected: &[u64],
    progress: &Progress,
) -> anyhow::Result<i64> {
    let parts = expected.iter().sum();
    progress.set(at_the_warehouse(cluster), 0, parts);
    let last = wait_applied(
        &at_warehouses(cluster, marks, expected),
        "created",
        progress,
    )
    .await?;
    progress.set("back at the store", 0, parts);
    wait_applied(&[(&cluster.store, marks.store, parts)], "status", progress).await?;
    Ok(last)
}

fn at_the_warehouse(cluster: &Cluster) -> &'static str {
    if cluster.warehouses.len() > 1 {
        "parts applied at their warehouses"
    } else {
        "applied at the warehouse"
    }
}

/// Where each service's audit trail ends now.
struct Marks {
    store: i64,
    warehouses: Vec<i64>,
}

async fn marks(cluster: &Cluster) -> anyhow::Result<Marks> {
    let mut warehouses = Vec::with_capacity(cluster.warehouses.len());
    for w in &cluster.warehouses {
        warehouses.push(w.audit_mark().await?);
    }
    Ok(Marks {
        store: cluster.store.audit_mark().await?,
        warehouses,
    })
}

fn per_second(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// Creates `n` orders of `mix` from `clients` workers and checks each was
/// routed as the mix says; returns the orders in the order they were
/// asked for, and the create latencies.
async fn create_placed(
    api: &Api,
    mix: &Arc<Mix>,
    n: u64,
    clients: usize,
    progress: &Progress,
) -> anyhow::Result<Vec<Placed>> {
    let (api2, mix2) = (api.clone(), mix.clone());
    let made = closed_loop(clients, Jobs::Count(n), progress, move |i| {
        let (api, mix) = (api2.clone(), mix2.clone());
        async move { api.create(&mix.body(i).json, true).await }
    })
    .await?;
    let mut out = Vec::with_capacity(made.ids.len());
    for (i, placed) in made.ids {
        mix.check(i, &placed)?;
        out.push(placed);
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct E2e {
    pub orders: u64,
    /// Parts the orders were split into (as many as orders with one warehouse).
    pub parts: u64,
    pub clients: usize,
    /// From the first create sent to the last 201.
    pub create_seconds: f64,
    pub create_rate: f64,
    /// From the first create sent to the last part applied at its warehouse.
    pub seconds: f64,
    pub rate: f64,
    /// From the first create sent to the last part's first state (pending)
    /// applied back at the store.
    pub back_seconds: f64,
    pub create_latency: Summary,
    /// CPU the services used over `seconds`.
    pub cpu: Cpu,
    pub cpu_per_order: PerOrder,
    /// Second by second, from the first create to the last first state
    /// back at the store.
    pub timeline: Timeline,
}

/// `clients` workers create `n` orders of `mix`; done when every part is
/// at its warehouse (and its first state back at the store).
pub async fn e2e(
    api: &Api,
    cluster: &Cluster,
    mix: &Arc<Mix>,
    n: u64,
    clients: usize,
    progress: &Progress,
) -> anyhow::Result<E2e> {
    let m = marks(cluster).await?;
    let cpu = Cpu::now(cluster);
    let sampler = Sampler::start(cluster).await?;
    progress.set("created", 0, n);
    let start = now_micros();
    let (api2, mix2) = (api.clone(), mix.clone());
    let run = closed_loop::<Placed, _, _>(clients, Jobs::Count(n), progress, move |i| {
        let (api, mix) = (api2.clone(), mix2.clone());
        async move { api.create(&mix.body(i).json, false).await }
    })
    .await?;
    let expected = mix.expected(n, cluster.warehouses.len());
    let parts = expected.iter().sum();
    progress.set(at_the_warehouse(cluster), 0, parts);
    let last = wait_applied(&at_warehouses(cluster, &m, &expected), "created", progress).await?;
    let cpu = Cpu::since(cpu, cluster);
    progress.set("back at the store", 0, parts);
    let back = wait_applied(&[(&cluster.store, m.store, parts)], "status", progress).await?;
    let seconds = (last - start).max(1) as f64 / 1e6;
    let create_seconds = run.elapsed.as_secs_f64();
    Ok(E2e {
        orders: n,
        parts,
        clients,
        create_seconds,
        create_rate: per_second(n, create_seconds),
        seconds,
        rate: per_second(n, seconds),
        back_seconds: (back - start).max(1) as f64 / 1e6,
        create_latency: summarize(run.latencies_ms),
        cpu,
        cpu_per_order: cpu.per("order", n),
        timeline: sampler.finish().await,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Updates {
    pub orders: u64,
    /// Parts moved to picking: one update each.
    pub parts: u64,
    pub clients: usize,
    /// From the first update sent to the last 200.
    pub post_seconds: f64,
    pub post_rate: f64,
    /// From the first update sent to the last one applied at the store.
    pub seconds: f64,
    pub rate: f64,
    pub post_latency: Summary,
    pub cpu: Cpu,
    /// Per update (part moved to picking).
    pub cpu_per_order: PerOrder,
    /// Second by second, from the first update to the last at the store.
    pub timeline: Timeline,
}

/// Creates `n` orders of `mix` and waits until they are synced both ways;
/// then `clients` workers move each part to picking at its warehouse; done
/// when the store has every update.
pub async fn updates(
    api: &Api,
    cluster: &Cluster,
    mix: &Arc<Mix>,
    n: u64,
    clients: usize,
    progress: &Progress,
) -> anyhow::Result<Updates> {
    let m = marks(cluster).await?;
    progress.set("created (setup)", 0, n);
    let placed = create_placed(api, mix, n, clients, progress).await?;
    settle_created(
        cluster,
        &m,
        &mix.expected(n, cluster.warehouses.len()),
        progress,
    )
    .await?;
    let parts: Arc<Vec<(usize, String)>> =
        Arc::new(placed.into_iter().flat_map(|p| p.parts).collect());
    let count = parts.len() as u64;

    let mark = cluster.store.audit_mark().await?;
    let cpu = Cpu::now(cluster);
    let sampler = Sampler::start(cluster).await?;
    progress.set("moved to picking", 0, count);
    let start = now_micros();
    let api2 = api.clone();
    let run = closed_loop::<(), _, _>(clients, Jobs::Count(count), progress, move |i| {
        let (api, parts) = (api2.clone(), parts.clone());
        async move {
            let (w, id) = &parts[i as usize];
            api.pick(*w, id).await?;
            Ok(None)
        }
    })
    .await?;
    progress.set("applied at the store", 0, count);
    let last = wait_applied(&[(&cluster.store, mark, count)], "status", progress).await?;
    let cpu = Cpu::since(cpu, cluster);
    let seconds = (last - start).max(1) as f64 / 1e6;
    let post_seconds = run.elapsed.as_secs_f64();
    Ok(Updates {
        orders: n,
        parts: count,
        clients,
        post_seconds,
        post_rate: per_second(count, post_seconds),
        seconds,
        rate: per_second(count, seconds),
        post_latency: summarize(run.latencies_ms),
        cpu,
        cpu_per_order: cpu.per("update", count),
        timeline: sampler.finish().await,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub clients: usize,
    pub seconds: f64,
    pub requests: u64,
    pub rate: f64,
    pub latency: Summary,
    /// Over the creates' window; the sync's catching up afterwards is not
    /// counted.
    pub cpu: Cpu,
    pub cpu_per_order: PerOrder,
    /// Second by second, until the sync caught up.
    pub timeline: Timeline,
}

/// `clients` workers create orders of `mix` for `duration`; the latency of
/// each create.
pub async fn latency(
    api: &Api,
    cluster: &Cluster,
    mix: &Arc<Mix>,
    clients: usize,
    duration: Duration,
    progress: &Progress,
) -> anyhow::Result<Latency> {
    let m = marks(cluster).await?;
    let cpu = Cpu::now(cluster);
    let sampler = Sampler::start(cluster).await?;
    progress.set("created", 0, 0);
    let (api2, mix2) = (api.clone(), mix.clone());
    let run = closed_loop::<Placed, _, _>(
        clients,
        Jobs::Until(Instant::now() + duration),
        progress,
        move |i| {
            let (api, mix) = (api2.clone(), mix2.clone());
            async move { api.create(&mix.body(i).json, false).await }
        },
    )
    .await?;
    let cpu = Cpu::since(cpu, cluster);
    let requests = run.latencies_ms.len() as u64;
    // Let the sync catch up, so the next scenario starts from a quiet pair.
    let expected = mix.expected(requests, cluster.warehouses.len());
    settle_created(cluster, &m, &expected, progress).await?;
    let seconds = run.elapsed.as_secs_f64();
    Ok(Latency {
        clients,
        seconds,
        requests,
        rate: per_second(requests, seconds),
        latency: summarize(run.latencies_ms),
        cpu,
        cpu_per_order: cpu.per("order", requests),
        timeline: sampler.finish().await,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Propagation {
    pub target_rate: u32,
    pub seconds: f64,
    pub orders: u64,
    /// Parts the orders were split into (as many as orders with one warehouse).
    pub parts: u64,
    /// Orders created per second, as achieved.
    pub rate: f64,
    /// From the client's 201 to the last of the order's parts applied at
    /// its warehouse.
    pub latency: Summary,
    /// From the client's 201 to each part applied at its warehouse (the
    /// same as `latency` with one warehouse).
    pub part_latency: Summary,
    /// Orders whose last part its warehouse started applying before the
    /// client had its 201 (counted as 0 ms in `latency`).
    pub before_201: u64,
    pub create_latency: Summary,
    /// From the first create to the last part applied at its warehouse.
    pub cpu: Cpu,
    pub cpu_per_order: PerOrder,
    /// Second by second, from the first create to the last pick back at
    /// the store.
    pub timeline: Timeline,
    /// The way back: the same parts moved to picking at their warehouses.
    pub back: Back,
}

/// Parts moved to picking at their warehouses, `target_rate` a second
/// (open loop), each timed until the store applied it.
#[derive(Debug, Clone, Serialize)]
pub struct Back {
    pub seconds: f64,
    pub parts: u64,
    /// Picks answered per second, as achieved.
    pub rate: f64,
    /// From the warehouse's 200 to the store applying the new status.
    pub latency: Summary,
    /// Picks the store started applying before the client had its 200
    /// (counted as 0 ms in `latency`).
    pub before_200: u64,
    pub post_latency: Summary,
    pub cpu: Cpu,
    /// Per pick (update).
    pub cpu_per_order: PerOrder,
}

/// Each answer's latency from its answer to its apply (`applied`, by id),
/// and how many were applied before they were answered (counted as 0).
fn apply_latencies<'a>(
    answered: impl Iterator<Item = (&'a str, i64)>,
    applied: &HashMap<String, i64>,
    whom: &str,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let mut lat = Vec::new();
    let mut early = 0;
    for (id, at) in answered {
        let applied_at = applied
            .get(id)
            .ok_or_else(|| anyhow!("{id} never reached {whom}"))?;
        let d = (applied_at - at) as f64 / 1e3;
        if d < 0.0 {
            early += 1;
        }
        lat.push(d.max(0.0));
    }
    Ok((lat, early))
}

/// Creates `rate` orders of `mix` per second for `duration` whatever the
/// answers (open loop), noting when each 201 arrived; then reads when each
/// part was applied at its warehouse. Then, once every first state is back
/// at the store, moves the same parts to picking at the same rate and reads
/// when the store applied each.
pub async fn propagation(
    api: &Api,
    cluster: &Cluster,
    mix: &Arc<Mix>,
    rate: u32,
    duration: Duration,
    progress: &Progress,
) -> anyhow::Result<Propagation> {
    let m = marks(cluster).await?;
    let cpu = Cpu::now(cluster);
    let sampler = Sampler::start(cluster).await?;
    progress.set("created", 0, u64::from(rate) * duration.as_secs());
    let (answered, seconds) = open_loop(rate, duration, u64::MAX, progress, |i| {
        let (api, mix) = (api.clone(), mix.clone());
        async move {
            let placed = api.create(&mix.body(i).json, true).await?;
            let placed = placed.ok_or_else(|| anyhow!("the store's 201 was not read"))?;
            mix.check(i, &placed)?;
            Ok(placed)
        }
    })
    .await?;
    let n = answered.len() as u64;
    let mut expected = vec![0; cluster.warehouses.len()];
    for a in &answered {
        for (w, _) in &a.value.parts {
            expected[*w] += 1;
        }
    }
    let parts: u64 = expected.iter().sum();
    progress.set(at_the_warehouse(cluster), 0, parts);
    wait_applied(&at_warehouses(cluster, &m, &expected), "created", progress).await?;
    let cpu = Cpu::since(cpu, cluster);
    let mut applied = HashMap::new();
    for (w, mark) in cluster.warehouses.iter().zip(&m.warehouses) {
        applied.extend(w.applied_ids(*mark, "created").await?);
    }
    // An order is at its warehouses when its last part is.
    let mut lat = Vec::with_capacity(answered.len());
    let mut part_lat = Vec::with_capacity(parts as usize);
    let mut before_201 = 0;
    for a in &answered {
        let ids = a.value.parts.iter().map(|(_, id)| (id.as_str(), a.at));
        let (each, early) = apply_latencies(ids, &applied, "its warehouse")?;
        before_201 += u64::from(early == each.len() as u64);
        lat.push(each.iter().copied().fold(0.0, f64::max));
        part_lat.extend(each);
    }
    let create = answered.iter().map(|a| a.ms).collect();
    progress.set("back at the store", 0, parts);
    wait_applied(&[(&cluster.store, m.store, parts)], "status", progress).await?;

    let back = back(api, cluster, rate, duration, &answered, progress).await?;
    Ok(Propagation {
        target_rate: rate,
        seconds,
        orders: n,
        parts,
        rate: per_second(n, seconds),
        latency: summarize(lat),
        part_latency: summarize(part_lat),
        before_201,
        create_latency: summarize(create),
        cpu,
        cpu_per_order: cpu.per("order", n),
        timeline: sampler.finish().await,
        back,
    })
}

/// [`propagation`]'s way back: the parts of `orders`, in the order they were
/// created, moved to picking `rate` a second for `duration` (or until none
/// is left).
async fn back(
    api: &Api,
    cluster: &Cluster,
    rate: u32,
    duration: Duration,
    orders: &[Answered<Placed>],
    progress: &Progress,
) -> anyhow::Result<Back> {
    let parts: Arc<Vec<(usize, String)>> = Arc::new(
        orders
            .iter()
            .flat_map(|o| o.value.parts.iter().cloned())
            .collect(),
    );
    let mark = cluster.store.audit_mark().await?;
    let cpu = Cpu::now(cluster);
    let planned = (u64::from(rate) * duration.as_secs()).min(parts.len() as u64);
    progress.set("moved to picking", 0, planned);
    let (answered, seconds) = open_loop(rate, duration, parts.len() as u64, progress, |i| {
        let (api, parts) = (api.clone(), parts.clone());
        async move {
            let (w, id) = &parts[i as usize];
            api.pick(*w, id).await?;
            Ok(i as usize)
        }
    })
    .await?;
    let n = answered.len() as u64;
    progress.set("applied at the store", 0, n);
    wait_applied(&[(&cluster.store, mark, n)], "status", progress).await?;
    let cpu = Cpu::since(cpu, cluster);
    let applied: HashMap<String, i64> = cluster
        .store
        .applied_ids(mark, "status")
        .await?
        .into_iter()
        .collect();
    let ids = answered.iter().map(|a| (parts[a.value].1.as_str(), a.at));
    let (lat, before_200) = apply_latencies(ids, &applied, "the store")?;
    Ok(Back {
        seconds,
        parts: n,
        rate: per_second(n, seconds),
        latency: summarize(lat),
        before_200,
        post_latency: summarize(answered.iter().map(|a| a.ms).collect()),
        cpu,
        cpu_per_order: cpu.per("update", n),
    })
}

/// Creates orders of `mix` until the store holds `target` (no-op when it
/// does).
pub async fn top_up(
    api: &Api,
    cluster: &Cluster,
    mix: &Arc<Mix>,
    target: u64,
    clients: usize,
    progress: &Progress,
) -> anyhow::Result<()> {
    let have = cluster.store.order_count().await?;
    if have >= target {
        return Ok(());
    }
    let n = target - have;
    let m = marks(cluster).await?;
    progress.set("created", 0, n);
    let (api2, mix2) = (api.clone(), mix.clone());
    closed_loop::<Placed, _, _>(clients, Jobs::Count(n), progress, move |i| {
        let (api, mix) = (api2.clone(), mix2.clone());
        async move { api.create(&mix.body(i).json, false).await }
    })
    .await?;
    settle_created(
        cluster,
        &m,
        &mix.expected(n, cluster.warehouses.len()),
        progress,
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Rss {
    /// Orders each service holds.
    pub orders: u64,
    pub store_mib: f64,
    pub warehouse_mib: f64,
}

/// Resident memory of the store and its (first) warehouse now (after a
/// short pause for the sync's last round to finish).
pub async fn rss(cluster: &Cluster) -> anyhow::Result<Rss> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mib = |s: &Service| {
        s.rss_bytes()
            .map(|b| b as f64 / (1024.0 * 1024.0))
            .ok_or_else(|| anyhow!("cannot read {}'s memory from /proc", s.describe()))
    };
    Ok(Rss {
        orders: cluster.store.order_count().await?,
        store_mib: mib(&cluster.store)?,
        warehouse_mib: mib(cluster.warehouse())?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub seconds: f64,
    pub store_cpu_seconds: f64,
    pub warehouse_cpu_seconds: f64,
    /// Percent of one core.
    pub store_cpu_percent: f64,
    pub warehouse_cpu_percent: f64,
}

/// CPU time of the store and its (first) warehouse over `duration`, after
/// 2 s of quiet.
pub async fn idle(
    cluster: &Cluster,
    duration: Duration,
    progress: &Progress,
) -> anyhow::Result<Idle> {
    let total = 2000 + duration.as_millis() as u64;
    progress.set("ms", 0, total);
    let started = Instant::now();
    let tick = |until: Duration| async move {
        while started.elapsed() < until {
            progress.advance(started.elapsed().as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tick(Duration::from_secs(2)).await;
    let read = |s: &Service| {
        s.cpu_seconds()
            .ok_or_else(|| anyhow!("cannot read {}'s CPU time from /proc", s.describe()))
    };
    let (store, warehouse) = (&cluster.store, cluster.warehouse());
    let (s0, w0, t0) = (read(store)?, read(warehouse)?, Instant::now());
    tick(Duration::from_secs(2) + duration).await;
    let (s1, w1) = (read(store)?, read(warehouse)?);
    let seconds = t0.elapsed().as_secs_f64();
    Ok(Idle {
        seconds,
        store_cpu_seconds: s1 - s0,
        warehouse_cpu_seconds: w1 - w0,
        store_cpu_percent: (s1 - s0) / seconds * 100.0,
        warehouse_cpu_percent: (w1 - w0) / seconds * 100.0,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Reconcile {
    /// Orders in each database.
    pub orders: u64,
    /// Writing them and starting the services.
    pub seed_seconds: f64,
    /// One pass, as the API call took.
    pub seconds: f64,
    pub differences: u64,
    pub report: Report,
}

/// One pass through `POST /api/v1/sync/reconcile` at the store, timed by
/// the job itself (not by how often the bench asks how it is going).
pub async fn reconcile(api: &Api, orders: u64, progress: &Progress) -> anyhow::Result<Reconcile> {
    progress.set("reconciling", 0, 0);
    let (report, seconds) = api.reconcile().await?;
    let n = i64::try_from(orders).unwrap_or(i64::MAX);
    if report.local_orders != n || report.peer_orders != n {
        bail!(
            "reconciliation compared {} store and {} warehouse orders, but {orders} were written to each",
            report.local_orders,
            report.peer_orders
        );
    }
    Ok(Reconcile {
        orders,
        seed_seconds: 0.0,
        seconds,
        differences: report.differences(),
        report,
    })
}
