//! `fulfillment bench`: measures the real system. It starts a store and a
//! warehouse as child processes of this one (`serve`, on fresh databases, on
//! loopback), drives them over HTTP like real clients, and reports what the
//! issue asks for: end-to-end throughput both ways, create latency,
//! propagation latency, memory, idle CPU and the cost of reconciliation.
//! The `split` scenario measures throughput and propagation again with a
//! store and two warehouses, half the orders split between them.
//!
//! - [`cluster`]: databases, child processes (a store and its warehouses),
//!   `/proc` readings, and a read-only probe into each service's database
//!   (to see when and when exactly the peer applied something);
//! - [`load`]: the HTTP clients and the scenarios;
//! - [`seed`]: bulk rows for the reconciliation scenario;
//! - [`report`]: the table, `bench.json`; [`svg`]: the plots (drawn with
//!   [`crate::plot`]); [`timeline`]: each scenario second by second;
//! - [`progress`]: the progress line on stderr; [`stats`]: percentiles;
//! - [`host`]: CPU time from `/proc`: the services', the local PostgreSQL
//!   server's, and other processes' during the run;
//! - [`compare`]: `--compare OTHER_BINARY`, this binary's runs and
//!   another's, alternately, side by side.
//!
//! The services are separate processes so that their RSS and CPU can be read
//! on their own, without the load generator's.

mod cluster;
mod compare;
mod host;
mod load;
mod progress;
mod report;
mod seed;
mod stats;
mod svg;
mod timeline;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use cluster::{Cluster, Env, PAIR, SPLIT};
use load::Mix;
use progress::Progress;
use report::Results;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Store→warehouse orders per second (then RSS).
    E2e,
    /// Warehouse→store fulfillment updates per second.
    Updates,
    /// Create latency at 8 clients.
    Latency,
    /// From a 201 at the store to the order applied at the warehouse, then
    /// from picking at the warehouse to the store.
    Propagation,
    /// CPU of an idle pair.
    Idle,
    /// e2e, updates and propagation again with two warehouses, half the
    /// orders split between them.
    Split,
    /// One reconciliation pass over many unchanged orders.
    Reconcile,
    /// Everything above, plus RSS after many orders.
    All,
}

/// Flags of `fulfillment bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Which scenario to run.
    #[arg(long, env = "FULFILLMENT_BENCH_SCENARIO", value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,
    /// Concurrent clients for e2e, updates and the RSS top-up [default: 32;
    /// the latency scenario uses 8 unless this is given].
    #[arg(long, env = "FULFILLMENT_BENCH_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: Option<u32>,
    /// Seconds per timed scenario (latency, idle, and each leg of
    /// propagation) [default: 10; 2 in smoke mode].
    #[arg(long, env = "FULFILLMENT_BENCH_DURATION", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub duration: Option<u32>,
    /// Orders created for e2e, and orders updated for updates (also with two
    /// warehouses) [default: 20000; 300 in smoke mode].
    #[arg(long, env = "FULFILLMENT_BENCH_ORDERS", value_parser = clap::value_parser!(u64).range(1..))]
    pub orders: Option<u64>,
    /// When running all scenarios: before reading RSS, create orders until
    /// the store holds this many [default: 5 × orders, i.e. 100000].
    #[arg(long, env = "FULFILLMENT_BENCH_RSS_ORDERS")]
    pub rss_orders: Option<u64>,
    /// Unchanged orders in both databases for the reconcile scenario
    /// [default: 1000000; 2000 in smoke mode].
    #[arg(long, env = "FULFILLMENT_BENCH_RECONCILE_ORDERS", value_parser = clap::value_parser!(u64).range(1..))]
    pub reconcile_orders: Option<u64>,
    /// Orders per second for the propagation scenario (open loop), then as
    /// many parts moved to picking [default: 500; 200 in smoke mode].
    #[arg(long, env = "FULFILLMENT_BENCH_RATE", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: Option<u32>,
    /// Run on PostgreSQL: an admin URL (e.g. postgres://postgres@127.0.0.1/postgres).
    /// Fresh databases bench_store_<uuid> and bench_warehouse_<uuid> (one per
    /// warehouse) are created there and dropped afterwards. Default:
    /// temporary SQLite files.
    #[arg(long, env = "FULFILLMENT_BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for bench.json and the SVG plots (created if missing).
    #[arg(long, env = "FULFILLMENT_BENCH_OUT", default_value = "bench-results")]
    pub out: PathBuf,
    /// Smoke mode, for CI: tiny sizes, done in seconds; explicit sizes still
    /// win. The figures then mean nothing.
    #[arg(long, env = "FULFILLMENT_BENCH_SMOKE")]
    pub smoke: bool,
    /// Compare with another fulfillment binary (the previous release, say):
    /// runs the chosen scenario(s) with this binary and with OTHER_BINARY
    /// alternately, a number of rounds of each, each run a `bench` child
    /// with these settings and its output in the subdirectory round-N-this
    /// (or round-N-other) of the output directory; then prints their main
    /// figures side by side (median and each round) and writes
    /// compare.json there. Figures the other binary does not report show
    /// as –.
    #[arg(long, env = "FULFILLMENT_BENCH_COMPARE", value_name = "OTHER_BINARY")]
    pub compare: Option<PathBuf>,
    /// With the comparison: runs of each binary, alternately.
    #[arg(long, env = "FULFILLMENT_BENCH_ROUNDS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
}

/// The flags with their defaults filled in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    pub scenario: String,
    pub clients: usize,
    pub latency_clients: usize,
    pub duration_seconds: u64,
    pub orders: u64,
    pub rss_orders: u64,
    pub reconcile_orders: u64,
    pub rate: u32,
    pub backend: String,
    pub smoke: bool,
}

impl Config {
    fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_seconds)
    }
}

impl BenchArgs {
    fn config(&self) -> Config {
        let smoke = self.smoke;
        let orders = self.orders.unwrap_or(if smoke { 300 } else { 20_000 });
        Config {
            scenario: format!("{:?}", self.scenario).to_lowercase(),
            clients: self.concurrency.unwrap_or(32) as usize,
            latency_clients: self.concurrency.unwrap_or(8) as usize,
            duration_seconds: u64::from(self.duration.unwrap_or(if smoke { 2 } else { 10 })),
            orders,
            rss_orders: self.rss_orders.unwrap_or(orders.saturating_mul(5)),
            reconcile_orders: self.reconcile_orders.unwrap_or(if smoke {
                2_000
            } else {
                1_000_000
            }),
            rate: self.rate.unwrap_or(if smoke { 200 } else { 500 }),
            backend: if self.database_url.is_some() {
                "postgres".into()
            } else {
                "sqlite".into()
            },
            smoke,
        }
    }
}

/// Runs the benchmark: one line and an error on failure; Ctrl-C or SIGTERM
/// stop it, and the child services and databases are removed either way.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(other) = &args.compare {
        return compare::run(&args, other).await;
    }
    let stop = crate::service::shutdown_signal();
    let cfg = args.config();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {:?}", args.out))?;
    let mut env = Env::new(args.database_url.as_deref()).await?;
    let settings = env.database_settings().await?;
    let before = host::sample(args.database_url.is_some());
    let outcome = tokio::select! {
        r = scenarios(&mut env, &cfg, args.scenario) => r,
        _ = stop => Err(anyhow::anyhow!("interrupted; the services were stopped")),
    };
    // Every child has been stopped and reaped by now, so its CPU time
    // counts as the bench's own.
    let after = host::sample(args.database_url.is_some());
    env.cleanup().await;
    let database_server = env.db_server.clone();
    let mut results = outcome?;
    results.database_settings = settings;
    results.database_server = database_server;
    if let (Some(a), Some(b)) = (before, after) {
        results.contention = Some(host::contention(a, b, results.cores));
    }
    results.print_table();
    let json = args.out.join("bench.json");
    std::fs::write(&json, serde_json::to_string_pretty(&results.to_json())?)
        .with_context(|| format!("cannot write {json:?}"))?;
    let mut written = vec![json];
    written.extend(svg::write_all(&results, &args.out)?);
    println!();
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Runs the chosen scenarios. Clusters are dropped (children killed) when
/// they go out of scope; `env` keeps what must be cleaned up afterwards.
async fn scenarios(env: &mut Env, cfg: &Config, which: Scenario) -> anyhow::Result<Results> {
    use Scenario::*;
    let wants = |s: Scenario| which == s || which == All;
    let load_steps = [E2e, Updates, Latency, Propagation, Idle]
        .iter()
        .filter(|s| wants(**s))
        .count();
    let steps = usize::from(load_steps > 0)
        + load_steps
        + usize::from(which == All)
        + 4 * usize::from(wants(Split))
        + 2 * usize::from(wants(Reconcile));
    let mut progress = Progress::new(steps);
    let mut results = Results::new(cfg.clone());

    if load_steps > 0 {
        progress.phase("start", "starting a store and a warehouse");
        let pair = Cluster::start(env, "load", &PAIR, None, &progress).await?;
        progress.done(&pair.describe());
        let api = load::Api::new(&pair)?;
        let mix = Arc::new(Mix::new(&PAIR));
        if wants(E2e) {
            progress.phase(
                "e2e",
                &format!(
                    "{} orders from {} clients until all are at the warehouse",
                    cfg.orders, cfg.clients
                ),
            );
            let r = load::e2e(&api, &pair, &mix, cfg.orders, cfg.clients, &progress).await?;
            progress.done(&e2e_summary(&r));
            results.e2e = Some(r);
            if which == E2e {
                results.rss = Some(load::rss(&pair).await?);
            }
        }
        if wants(Updates) {
            progress.phase(
                "updates",
                &format!(
                    "{} orders to picking from {} clients until all are at the store",
                    cfg.orders, cfg.clients
                ),
            );
            let r = load::updates(&api, &pair, &mix, cfg.orders, cfg.clients, &progress).await?;
            progress.done(&updates_summary(&r));
            results.updates = Some(r);
        }
        if wants(Latency) {
            progress.phase(
                "latency",
                &format!(
                    "creates from {} clients for {} s",
                    cfg.latency_clients, cfg.duration_seconds
                ),
            );
            let r = load::latency(
                &api,
                &pair,
                &mix,
                cfg.latency_clients,
                cfg.duration(),
                &progress,
            )
            .await?;
            progress.done(&format!(
                "p50 {:.2} ms, p99 {:.2} ms",
                r.latency.p50_ms, r.latency.p99_ms
            ));
            results.latency = Some(r);
        }
        if wants(Propagation) {
            progress.phase("propagation", &propagation_plan(cfg));
            let r =
                load::propagation(&api, &pair, &mix, cfg.rate, cfg.duration(), &progress).await?;
            progress.done(&propagation_summary(&r));
            results.propagation = Some(r);
        }
        if which == All {
            progress.phase(
                "rss",
                &format!("orders until the store holds {}, then RSS", cfg.rss_orders),
            );
            load::top_up(&api, &pair, &mix, cfg.rss_orders, cfg.clients, &progress).await?;
            let r = load::rss(&pair).await?;
            progress.done(&format!(
                "store {:.1} MiB, warehouse {:.1} MiB after {} orders",
                r.store_mib, r.warehouse_mib, r.orders
            ));
            results.rss = Some(r);
        }
        if wants(Idle) {
            progress.phase(
                "idle",
                &format!("CPU of the idle pair over {} s", cfg.duration_seconds),
            );
            let r = load::idle(&pair, cfg.duration(), &progress).await?;
            progress.done(&format!(
                "store {:.2} %, warehouse {:.2} % of a core",
                r.store_cpu_percent, r.warehouse_cpu_percent
            ));
            results.idle = Some(r);
        }
        results.logged.extend(
            pair.logged()
                .into_iter()
                .map(|l| format!("1 warehouse: {l}")),
        );
    }

    if wants(Split) {
        progress.phase(
            "split start",
            "starting a store and two warehouses: eu stocks A- SKUs, us B- SKUs",
        );
        let cluster = Cluster::start(env, "split", &SPLIT, None, &progress).await?;
        progress.done(&cluster.describe());
        let api = load::Api::new(&cluster)?;
        let mix = Arc::new(Mix::new(&SPLIT));
        progress.phase(
            "split e2e",
            &format!(
                "{} orders, half of them split, from {} clients until every part is at its warehouse",
                cfg.orders, cfg.clients
            ),
        );
        let e2e = load::e2e(&api, &cluster, &mix, cfg.orders, cfg.clients, &progress).await?;
        progress.done(&e2e_summary(&e2e));
        progress.phase(
            "split updates",
            &format!(
                "the parts of {} orders to picking from {} clients until all are at the store",
                cfg.orders, cfg.clients
            ),
        );
        let updates =
            load::updates(&api, &cluster, &mix, cfg.orders, cfg.clients, &progress).await?;
        progress.done(&updates_summary(&updates));
        progress.phase("split propagation", &propagation_plan(cfg));
        let propagation =
            load::propagation(&api, &cluster, &mix, cfg.rate, cfg.duration(), &progress).await?;
        progress.done(&propagation_summary(&propagation));
        results.logged.extend(
            cluster
                .logged()
                .into_iter()
                .map(|l| format!("2 warehouses: {l}")),
        );
        results.split = Some(report::Split {
            warehouses: SPLIT.to_vec(),
            e2e,
            updates,
            propagation,
        });
    }

    if wants(Reconcile) {
        progress.phase(
            "seed",
            &format!(
                "{} identical orders into both databases",
                cfg.reconcile_orders
            ),
        );
        let started = std::time::Instant::now();
        let pair = Cluster::start(
            env,
            "reconcile",
            &PAIR,
            Some(cfg.reconcile_orders),
            &progress,
        )
        .await?;
        let seed_seconds = started.elapsed().as_secs_f64();
        progress.done(&format!("seeded and started in {seed_seconds:.1} s"));
        progress.phase("reconcile", "one pass, store against warehouse");
        let api = load::Api::new(&pair)?;
        let mut r = load::reconcile(&api, cfg.reconcile_orders, &progress).await?;
        r.seed_seconds = seed_seconds;
        progress.done(&format!(
            "{:.2} s, {} difference(s)",
            r.seconds, r.differences
        ));
        results.reconcile = Some(r);
        results
            .logged
            .extend(pair.logged().into_iter().map(|l| format!("reconcile: {l}")));
    }
    progress.finish();
    Ok(results)
}

fn e2e_summary(r: &load::E2e) -> String {
    let parts = if r.parts == r.orders {
        String::new()
    } else {
        format!(" ({:.2} parts per order)", r.parts as f64 / r.orders as f64)
    };
    format!(
        "{:.0} orders/s end to end{parts}, {:.0}/s created",
        r.rate, r.create_rate
    )
}

fn updates_summary(r: &load::Updates) -> String {
    format!(
        "{:.0} updates/s end to end, {:.0}/s posted",
        r.rate, r.post_rate
    )
}

fn propagation_plan(cfg: &Config) -> String {
    format!(
        "{} orders/s for {} s, open loop; then as many parts/s to picking",
        cfg.rate, cfg.duration_seconds
    )
}

fn propagation_summary(r: &load::Propagation) -> String {
    format!(
        "to the warehouse p50 {:.2} ms, p99 {:.2} ms; back at the store p50 {:.2} ms, p99 {:.2} ms",
        r.latency.p50_ms, r.latency.p99_ms, r.back.latency.p50_ms, r.back.latency.p99_ms
    )
}
