//! The load: HTTP clients that behave like real ones (a pooled reqwest
//! client, bearer tokens, the create body of docs/API.md §4.2), closed-loop workers for
//! throughput and latency, an open-loop ticker for propagation, and the
//! scenarios built from them.
//!
//! "Applied at the peer" is read from the peer's database: every snapshot
//! applied from the other side writes an audit entry (`actor_kind = 'sync'`)
//! with its time, so the bench knows not only *that* everything arrived but
//! *when* the last one did, to the microsecond, without polling tightly.
//! That time is taken by the receiver when its apply transaction starts.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Serialize;

use super::pair::{Pair, Service};
use super::progress::Progress;
use super::stats::{Summary, summarize};
use crate::storage::now_micros;
use crate::sync::reconcile::Report;

/// The create body of docs/API.md §4.2.
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

/// How long the peer may make no progress at all before the bench gives up.
const STALL: Duration = Duration::from_secs(60);
/// How often the peer's database is looked at while waiting.
const POLL: Duration = Duration::from_millis(50);

struct Inner {
    client: reqwest::Client,
    create_url: String,
    store_url: String,
    warehouse_url: String,
    store_auth: HeaderValue,
    warehouse_auth: HeaderValue,
}

/// The two services' APIs, as a client sees them. Cheap to clone.
#[derive(Clone)]
pub struct Api(Arc<Inner>);

#[derive(serde::Deserialize)]
struct Created {
    id: String,
}

impl Api {
    pub fn new(pair: &Pair) -> anyhow::Result<Api> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()?;
        let auth = |t: &str| {
            HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| anyhow!("bad token"))
        };
        Ok(Api(Arc::new(Inner {
            client,
            create_url: format!("{}/api/v1/orders", pair.store.url),
            store_url: pair.store.url.clone(),
            warehouse_url: pair.warehouse.url.clone(),
            store_auth: auth(&pair.store.token)?,
            warehouse_auth: auth(&pair.warehouse.token)?,
        })))
    }

    /// Creates an order at the store; its id when asked for.
    pub async fn create(&self, want_id: bool) -> anyhow::Result<Option<String>> {
        let r = self
            .0
            .client
            .post(&self.0.create_url)
            .header(AUTHORIZATION, self.0.store_auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(ORDER_JSON)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach the store: {e}"))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| anyhow!("store answer: {e}"))?;
        if status != reqwest::StatusCode::CREATED {
            bail!("POST /api/v1/orders answered {status}: {}", snippet(&body));
        }
        if !want_id {
            return Ok(None);
        }
        let c: Created = serde_json::from_slice(&body)
            .map_err(|e| anyhow!("the store's 201 has no order id: {e}"))?;
        Ok(Some(c.id))
    }

    /// Moves an order to `picking` at the warehouse.
    pub async fn pick(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .0
            .client
            .post(format!(
                "{}/api/v1/orders/{id}/fulfillment",
                self.0.warehouse_url
            ))
            .header(AUTHORIZATION, self.0.warehouse_auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(PICKING_JSON)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach the warehouse: {e}"))?;
        let status = r.status();
        let body = r
            .bytes()
            .await
            .map_err(|e| anyhow!("warehouse answer: {e}"))?;
        if status != reqwest::StatusCode::OK {
            bail!(
                "POST /api/v1/orders/{id}/fulfillment answered {status}: {}",
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
struct Run {
    latencies_ms: Vec<f64>,
    /// `(job number, what the job returned)`.
    ids: Vec<(u64, String)>,
    elapsed: Duration,
}

/// `clients` workers, each sending its next request as soon as the previous
/// one is answered. The first error stops every worker and is returned.
async fn closed_loop<F, Fut>(
    clients: usize,
    jobs: Jobs,
    progress: &Progress,
    op: F,
) -> anyhow::Result<Run>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Option<String>>> + Send + 'static,
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
    match first_error {
        Some(e) => Err(e),
        None => Ok(run),
    }
}

/// Waits until `svc` has applied `expected` snapshots from its peer since
/// `mark` (audit entries with `changes`); returns when it applied the last
/// one (µs since the epoch).
async fn wait_applied(
    svc: &Service,
    mark: i64,
    changes: &str,
    expected: u64,
    progress: &Progress,
) -> anyhow::Result<i64> {
    let mut seen = 0;
    let mut moved = Instant::now();
    loop {
        let (n, last) = svc.applied_since(mark, Some(changes)).await?;
        progress.advance(n);
        if n >= expected {
            return Ok(last.unwrap_or_else(now_micros));
        }
        if n > seen {
            seen = n;
            moved = Instant::now();
        } else if moved.elapsed() > STALL {
            bail!(
                "the {} applied {n} of {expected} changes from its peer and then nothing for {} s; is sync stuck?",
                svc.role,
                STALL.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// CPU seconds each service used during a scenario.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Cpu {
    pub store_seconds: Option<f64>,
    pub warehouse_seconds: Option<f64>,
    /// The load generator (this process), which shares the machine.
    pub bench_seconds: Option<f64>,
}

impl Cpu {
    fn now(pair: &Pair) -> Cpu {
        Cpu {
            store_seconds: pair.store.cpu_seconds(),
            warehouse_seconds: pair.warehouse.cpu_seconds(),
            bench_seconds: super::pair::cpu_seconds(std::process::id()),
        }
    }

    fn since(before: Cpu, pair: &Pair) -> Cpu {
        let now = Cpu::now(pair);
        let d = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        Cpu {
            store_seconds: d(now.store_seconds, before.store_seconds),
            warehouse_seconds: d(now.warehouse_seconds, before.warehouse_seconds),
            bench_seconds: d(now.bench_seconds, before.bench_seconds),
        }
    }
}

/// Waits for both directions of the sync of `n` new orders: created at the
/// warehouse, and the warehouse's first state (pending) back at the store.
/// Returns when the warehouse applied the last one.
async fn settle_created(
    pair: &Pair,
    marks: (i64, i64),
    n: u64,
    progress: &Progress,
) -> anyhow::Result<i64> {
    progress.set("applied at the warehouse", 0, n);
    let last = wait_applied(&pair.warehouse, marks.1, "created", n, progress).await?;
    progress.set("back at the store", 0, n);
    wait_applied(&pair.store, marks.0, "status", n, progress).await?;
    Ok(last)
}

async fn marks(pair: &Pair) -> anyhow::Result<(i64, i64)> {
    Ok((
        pair.store.audit_mark().await?,
        pair.warehouse.audit_mark().await?,
    ))
}

fn per_second(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

#[derive(Debug, Clone, Serialize)]
pub struct E2e {
    pub orders: u64,
    pub clients: usize,
    /// From the first create sent to the last 201.
    pub create_seconds: f64,
    pub create_rate: f64,
    /// From the first create sent to the last order applied at the warehouse.
    pub seconds: f64,
    pub rate: f64,
    pub create_latency: Summary,
    /// CPU the services used over `seconds`.
    pub cpu: Cpu,
}

/// `clients` workers create `n` orders; done when the warehouse has them all.
pub async fn e2e(
    api: &Api,
    pair: &Pair,
    n: u64,
    clients: usize,
    progress: &Progress,
) -> anyhow::Result<E2e> {
    let m = marks(pair).await?;
    let cpu = Cpu::now(pair);
    progress.set("created", 0, n);
    let start = now_micros();
    let api2 = api.clone();
    let run = closed_loop(clients, Jobs::Count(n), progress, move |_| {
        let api = api2.clone();
        async move { api.create(false).await }
    })
    .await?;
    progress.set("applied at the warehouse", 0, n);
    let last = wait_applied(&pair.warehouse, m.1, "created", n, progress).await?;
    let cpu = Cpu::since(cpu, pair);
    progress.set("back at the store", 0, n);
    wait_applied(&pair.store, m.0, "status", n, progress).await?;
    let seconds = (last - start).max(1) as f64 / 1e6;
    let create_seconds = run.elapsed.as_secs_f64();
    Ok(E2e {
        orders: n,
        clients,
        create_seconds,
        create_rate: per_second(n, create_seconds),
        seconds,
        rate: per_second(n, seconds),
        create_latency: summarize(run.latencies_ms),
        cpu,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Updates {
    pub orders: u64,
    pub clients: usize,
    /// From the first update sent to the last 200.
    pub post_seconds: f64,
    pub post_rate: f64,
    /// From the first update sent to the last one applied at the store.
    pub seconds: f64,
    pub rate: f64,
    pub post_latency: Summary,
    pub cpu: Cpu,
}

/// Creates `n` orders and waits until they are synced both ways; then
/// `clients` workers move each to picking at the warehouse; done when the
/// store has every update.
pub async fn updates(
    api: &Api,
    pair: &Pair,
    n: u64,
    clients: usize,
    progress: &Progress,
) -> anyhow::Result<Updates> {
    let m = marks(pair).await?;
    progress.set("created (setup)", 0, n);
    let api2 = api.clone();
    let made = closed_loop(clients, Jobs::Count(n), progress, move |_| {
        let api = api2.clone();
        async move { api.create(true).await }
    })
    .await?;
    settle_created(pair, m, n, progress).await?;
    let ids: Arc<Vec<String>> = Arc::new(made.ids.into_iter().map(|(_, id)| id).collect());

    let mark = pair.store.audit_mark().await?;
    let cpu = Cpu::now(pair);
    progress.set("moved to picking", 0, n);
    let start = now_micros();
    let api2 = api.clone();
    let run = closed_loop(clients, Jobs::Count(n), progress, move |i| {
        let (api, ids) = (api2.clone(), ids.clone());
        async move {
            api.pick(&ids[i as usize]).await?;
            Ok(None)
        }
    })
    .await?;
    progress.set("applied at the store", 0, n);
    let last = wait_applied(&pair.store, mark, "status", n, progress).await?;
    let cpu = Cpu::since(cpu, pair);
    let seconds = (last - start).max(1) as f64 / 1e6;
    let post_seconds = run.elapsed.as_secs_f64();
    Ok(Updates {
        orders: n,
        clients,
        post_seconds,
        post_rate: per_second(n, post_seconds),
        seconds,
        rate: per_second(n, seconds),
        post_latency: summarize(run.latencies_ms),
        cpu,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub clients: usize,
    pub seconds: f64,
    pub requests: u64,
    pub rate: f64,
    pub latency: Summary,
    pub cpu: Cpu,
}

/// `clients` workers create orders for `duration`; the latency of each create.
pub async fn latency(
    api: &Api,
    pair: &Pair,
    clients: usize,
    duration: Duration,
    progress: &Progress,
) -> anyhow::Result<Latency> {
    let m = marks(pair).await?;
    let cpu = Cpu::now(pair);
    progress.set("created", 0, 0);
    let api2 = api.clone();
    let run = closed_loop(
        clients,
        Jobs::Until(Instant::now() + duration),
        progress,
        move |_| {
            let api = api2.clone();
            async move { api.create(false).await }
        },
    )
    .await?;
    let cpu = Cpu::since(cpu, pair);
    let requests = run.latencies_ms.len() as u64;
    // Let the sync catch up, so the next scenario starts from a quiet pair.
    settle_created(pair, m, requests, progress).await?;
    let seconds = run.elapsed.as_secs_f64();
    Ok(Latency {
        clients,
        seconds,
        requests,
        rate: per_second(requests, seconds),
        latency: summarize(run.latencies_ms),
        cpu,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Propagation {
    pub target_rate: u32,
    pub seconds: f64,
    pub orders: u64,
    /// Orders created per second, as achieved.
    pub rate: f64,
    /// From the client's 201 to the warehouse applying the order.
    pub latency: Summary,
    /// Orders the warehouse started applying before the client had its 201
    /// (counted as 0 ms in `latency`).
    pub before_201: u64,
    pub create_latency: Summary,
    pub cpu: Cpu,
}

/// Creates `rate` orders per second for `duration` whatever the answers
/// (open loop), noting when each 201 arrived; then reads when the
/// warehouse applied each order.
pub async fn propagation(
    api: &Api,
    pair: &Pair,
    rate: u32,
    duration: Duration,
    progress: &Progress,
) -> anyhow::Result<Propagation> {
    let m = marks(pair).await?;
    let cpu = Cpu::now(pair);
    let expected = u64::from(rate) * duration.as_secs();
    progress.set("created", 0, expected);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let end = started + duration;
    let done = Arc::new(AtomicU64::new(0));
    let mut inflight = Vec::with_capacity(expected as usize);
    loop {
        tick.tick().await;
        if Instant::now() >= end {
            break;
        }
        let (api, counter) = (api.clone(), done.clone());
        inflight.push(tokio::spawn(async move {
            let t = Instant::now();
            let id = api.create(true).await?.unwrap_or_default();
            let at = now_micros();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            counter.fetch_add(1, Ordering::Relaxed);
            anyhow::Ok((id, at, ms))
        }));
        progress.advance(done.load(Ordering::Relaxed));
    }
    let mut answered = Vec::with_capacity(inflight.len());
    for h in inflight {
        answered.push(h.await.map_err(|e| anyhow!("a load task failed: {e}"))??);
    }
    let seconds = started.elapsed().as_secs_f64();
    let n = answered.len() as u64;
    progress.set("applied at the warehouse", 0, n);
    wait_applied(&pair.warehouse, m.1, "created", n, progress).await?;
    let cpu = Cpu::since(cpu, pair);
    let applied: std::collections::HashMap<String, i64> = pair
        .warehouse
        .created_by_sync(m.1)
        .await?
        .into_iter()
        .collect();
    let mut lat = Vec::with_capacity(answered.len());
    let mut create = Vec::with_capacity(answered.len());
    let mut before_201 = 0;
    for (id, at_201, ms) in &answered {
        let applied_at = applied
            .get(id)
            .ok_or_else(|| anyhow!("order {id} never reached the warehouse"))?;
        let d = (applied_at - at_201) as f64 / 1e3;
        if d < 0.0 {
            before_201 += 1;
        }
        lat.push(d.max(0.0));
        create.push(*ms);
    }
    progress.set("back at the store", 0, n);
    wait_applied(&pair.store, m.0, "status", n, progress).await?;
    Ok(Propagation {
        target_rate: rate,
        seconds,
        orders: n,
        rate: per_second(n, seconds),
        latency: summarize(lat),
        before_201,
        create_latency: summarize(create),
        cpu,
    })
}

/// Creates orders until the store holds `target` (no-op when it does).
pub async fn top_up(
    api: &Api,
    pair: &Pair,
    target: u64,
    clients: usize,
    progress: &Progress,
) -> anyhow::Result<()> {
    let have = pair.store.order_count().await?;
    if have >= target {
        return Ok(());
    }
    let n = target - have;
    let m = marks(pair).await?;
    progress.set("created", 0, n);
    let api2 = api.clone();
    closed_loop(clients, Jobs::Count(n), progress, move |_| {
        let api = api2.clone();
        async move { api.create(false).await }
    })
    .await?;
    settle_created(pair, m, n, progress).await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Rss {
    /// Orders each service holds.
    pub orders: u64,
    pub store_mib: f64,
    pub warehouse_mib: f64,
}

/// Resident memory of both services now (after a short pause for the
/// sync's last round to finish).
pub async fn rss(pair: &Pair) -> anyhow::Result<Rss> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mib = |s: &Service| {
        s.rss_bytes()
            .map(|b| b as f64 / (1024.0 * 1024.0))
            .ok_or_else(|| anyhow!("cannot read the {}'s memory from /proc", s.role))
    };
    Ok(Rss {
        orders: pair.store.order_count().await?,
        store_mib: mib(&pair.store)?,
        warehouse_mib: mib(&pair.warehouse)?,
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

/// CPU time of both services over `duration`, after 2 s of quiet.
pub async fn idle(pair: &Pair, duration: Duration, progress: &Progress) -> anyhow::Result<Idle> {
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
            .ok_or_else(|| anyhow!("cannot read the {}'s CPU time from /proc", s.role))
    };
    let (s0, w0, t0) = (read(&pair.store)?, read(&pair.warehouse)?, Instant::now());
    tick(Duration::from_secs(2) + duration).await;
    let (s1, w1) = (read(&pair.store)?, read(&pair.warehouse)?);
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
