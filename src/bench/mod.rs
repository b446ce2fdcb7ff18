//! `fulfillment bench`: measures the real system. It starts a store and a
//! warehouse as child processes of this one (`serve`, on fresh databases, on
//! loopback), drives them over HTTP like real clients, and reports what the
//! issue asks for: end-to-end throughput both ways, create latency,
//! propagation latency, memory, idle CPU and the cost of reconciliation.
//!
//! - [`pair`]: databases, child processes, `/proc` readings, and a read-only
//!   probe into each service's database (to see when and when exactly the
//!   peer applied something);
//! - [`load`]: the HTTP clients and the scenarios;
//! - [`seed`]: bulk rows for the reconciliation scenario;
//! - [`report`]: the table, `bench.json`; [`svg`]: the plots;
//! - [`progress`]: the progress line on stderr; [`stats`]: percentiles;
//! - [`host`]: how much CPU other processes took during the run.
//!
//! The services are separate processes so that their RSS and CPU can be read
//! on their own, without the load generator's.

mod host;
mod load;
mod pair;
mod progress;
mod report;
mod seed;
mod stats;
mod svg;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use pair::Env;
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
    /// From a 201 at the store to the order applied at the warehouse.
    Propagation,
    /// CPU of an idle pair.
    Idle,
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
    /// Seconds per timed scenario (latency, propagation, idle) [default: 10;
    /// 2 in smoke mode].
    #[arg(long, env = "FULFILLMENT_BENCH_DURATION", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub duration: Option<u32>,
    /// Orders created for e2e, and orders updated for updates [default:
    /// 20000; 300 in smoke mode].
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
    /// Orders per second for the propagation scenario (open loop)
    /// [default: 500; 200 in smoke mode].
    #[arg(long, env = "FULFILLMENT_BENCH_RATE", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: Option<u32>,
    /// Run on PostgreSQL: an admin URL (e.g. postgres://postgres@127.0.0.1/postgres).
    /// Two fresh databases bench_store_<uuid> and bench_warehouse_<uuid> are
    /// created there and dropped afterwards. Default: temporary SQLite files.
    #[arg(long, env = "FULFILLMENT_BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for bench.json and the SVG plots (created if missing).
    #[arg(long, env = "FULFILLMENT_BENCH_OUT", default_value = "bench-results")]
    pub out: PathBuf,
    /// Smoke mode, for CI: tiny sizes, done in seconds; explicit sizes still
    /// win. The figures then mean nothing.
    #[arg(long, env = "FULFILLMENT_BENCH_SMOKE")]
    pub smoke: bool,
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
    let stop = crate::service::shutdown_signal();
    let cfg = args.config();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {:?}", args.out))?;
    let mut env = Env::new(args.database_url.as_deref()).await?;
    let before = host::sample(args.database_url.is_some());
    let outcome = tokio::select! {
        r = scenarios(&mut env, &cfg, args.scenario) => r,
        _ = stop => Err(anyhow::anyhow!("interrupted; the services were stopped")),
    };
    // Every child has been stopped and reaped by now, so its CPU time
    // counts as the bench's own.
    let after = host::sample(args.database_url.is_some());
    env.cleanup().await;
    let mut results = outcome?;
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

/// Runs the chosen scenarios. Pairs are dropped (children killed) when they
/// go out of scope; `env` keeps what must be cleaned up afterwards.
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
        + 2 * usize::from(wants(Reconcile));
    let mut progress = Progress::new(steps);
    let mut results = Results::new(cfg.clone());

    if load_steps > 0 {
        progress.phase("start", "starting a store and a warehouse");
        let pair = pair::Pair::start(env, "load", None, &progress).await?;
        progress.done(&format!(
            "store {} (pid {}), warehouse {} (pid {})",
            pair.store.url,
            pair.store.pid(),
            pair.warehouse.url,
            pair.warehouse.pid()
        ));
        let api = load::Api::new(&pair)?;
        if wants(E2e) {
            progress.phase(
                "e2e",
                &format!(
                    "{} orders from {} clients until all are at the warehouse",
                    cfg.orders, cfg.clients
                ),
            );
            let r = load::e2e(&api, &pair, cfg.orders, cfg.clients, &progress).await?;
            progress.done(&format!(
                "{:.0} orders/s end to end, {:.0}/s created",
                r.rate, r.create_rate
            ));
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
            let r = load::updates(&api, &pair, cfg.orders, cfg.clients, &progress).await?;
            progress.done(&format!(
                "{:.0} updates/s end to end, {:.0}/s posted",
                r.rate, r.post_rate
            ));
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
            let r =
                load::latency(&api, &pair, cfg.latency_clients, cfg.duration(), &progress).await?;
            progress.done(&format!(
                "p50 {:.2} ms, p99 {:.2} ms",
                r.latency.p50_ms, r.latency.p99_ms
            ));
            results.latency = Some(r);
        }
        if wants(Propagation) {
            progress.phase(
                "propagation",
                &format!(
                    "{} orders/s for {} s, open loop",
                    cfg.rate, cfg.duration_seconds
                ),
            );
            let r = load::propagation(&api, &pair, cfg.rate, cfg.duration(), &progress).await?;
            progress.done(&format!(
                "p50 {:.2} ms, p99 {:.2} ms",
                r.latency.p50_ms, r.latency.p99_ms
            ));
            results.propagation = Some(r);
        }
        if which == All {
            progress.phase(
                "rss",
                &format!("orders until the store holds {}, then RSS", cfg.rss_orders),
            );
            load::top_up(&api, &pair, cfg.rss_orders, cfg.clients, &progress).await?;
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
        let pair =
            pair::Pair::start(env, "reconcile", Some(cfg.reconcile_orders), &progress).await?;
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
    }
    progress.finish();
    Ok(results)
}
