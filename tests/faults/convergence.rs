//! The fault-injection scenario: clients write to both sides for a while,
//! through a fault proxy in each direction and with SIGKILLs; then faults
//! stop, and both sides must agree and hold every acknowledged write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{Backend, Cluster, Ports, ensure_running, free_port, start};
use crate::ledger::{Shape, WhKey};
use crate::proxy::{Fault, Proxy};
use crate::verify::{Divergence, Snapshot};
use crate::workload::{self, HOT_WRITER, Run, Scope, Stats, get};
use crate::{Config, join, lock, rng};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    converges_under_faults(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    converges_under_faults(Backend::Postgres).await;
}

const STORE_WORKERS: usize = 2;
const WAREHOUSE_WORKERS: usize = 2;
const MAX_ORDERS: usize = 120;

/// The two services with a fault proxy in front of each.
struct Setup {
    cluster: Cluster,
    /// Carries the store's relay to the warehouse.
    to_warehouse: Proxy,
    /// Carries the warehouse's relay to the store.
    to_store: Proxy,
}

/// What the client phase did besides what the ledger holds.
struct Phase {
    hot: usize,
    kills: (u32, u32),
    took: Duration,
}

async fn converges_under_faults(backend: Backend) {
    let cfg = Config::from_env();
    let begun = Instant::now();
    eprintln!(
        "faults[{backend}]: seed={} phase={}s weights={} (replay with FAULT_SEED={})",
        cfg.seed,
        cfg.phase.as_secs(),
        cfg.weights,
        cfg.seed
    );
    let Some(setup) = start_services(backend, &cfg).await else {
        return;
    };
    let (store, warehouse) = setup.cluster.apis();
    let run = Arc::new(Run {
        seed: cfg.seed,
        store,
        warehouses: vec![warehouse],
        shapes: vec![Shape::Plain],
        ledger: Mutex::default(),
        stats: Stats::default(),
        until: Instant::now() + cfg.phase,
        max_orders: MAX_ORDERS,
    });
    let phase = client_phase(&run, &setup, &cfg).await;

    // Faults off, both services up: now they must agree.
    setup.to_warehouse.set_faulty(false);
    setup.to_store.set_faulty(false);
    ensure_running(&setup.cluster.store).await;
    ensure_running(setup.cluster.warehouse()).await;
    eprintln!(
        "faults[{backend}]: client phase over after {:.1}s; faults off, waiting for convergence (≤ {}s)",
        phase.took.as_secs_f64(),
        cfg.converge.as_secs()
    );
    let hot_id = lock(&run.ledger).orders[phase.hot].id.clone();
    let warehouse = &run.warehouses[0];
    for (side, api) in [("store", &run.store), ("warehouse", warehouse)] {
        eprintln!(
            "  hot order at the {side}: {}",
            crate::verify::timeline(api, &hot_id).await
        );
    }
    let (snap, div, took) =
        crate::verify::wait_converged(&run.store, warehouse, cfg.converge).await;

    let lost = crate::verify::lost_updates(&lock(&run.ledger), &snap);
    let unexpected = lock(&run.stats.unexpected).clone();
    print_details(&run, &setup, &phase, &snap, &div, &lost, &unexpected);
    let min = Minimums::for_run(&cfg);
    eprintln!(
        "  required at least: faults {} kills={} orders={} writes_acked={}",
        Fault::ALL
            .iter()
            .zip(min.faults)
            .filter(|(f, _)| **f != Fault::Forward)
            .map(|(f, n)| format!("{}={n}", f.key()))
            .collect::<Vec<_>>()
            .join(" "),
        min.kills,
        min.orders,
        min.writes
    );
    eprintln!(
        "faults: backend={backend} seed={} {} lost={} divergent={} converged_in={:.1}s total={:.1}s",
        cfg.seed,
        summary(&run, &setup, &phase),
        lost.len(),
        div.orders.len(),
        took.as_secs_f64(),
        begun.elapsed().as_secs_f64()
    );
    let seed = cfg.seed;
    crate::verify::assert_clean(seed, cfg.converge, &div, &lost, &unexpected);
    // "Nothing was lost" means something only if the run did enough.
    let short = min.shortfalls(&run, &setup, &phase);
    assert!(
        short.is_empty(),
        "seed {seed}: the run did too little to prove anything: {}",
        short.join("; ")
    );
    setup.cluster.finish().await;
}

/// Requests per second of client phase that the two proxies carry at the
/// very least, on a slow 2-core machine: a run on the 2-core development
/// VM (SQLite, debug build) carried about 20 per second; this assumes a
/// machine four times slower.
pub const FLOOR_RATE: f64 = 5.0;

/// How many requests must meet each fault kind, in [`Fault::ALL`] order,
/// on proxies that carry at least `rate` requests per second of phase:
/// half of what the weights make expected (so a kind too rare to be
/// expected in a short phase is not required, and a kind with weight 0
/// never is; forwarding never is).
pub fn fault_minimums(cfg: &Config, rate: f64) -> [u64; 8] {
    let secs = cfg.phase.as_secs_f64();
    let total = f64::from(cfg.weights.0.iter().sum::<u32>().max(1));
    std::array::from_fn(|i| {
        if Fault::ALL[i] == Fault::Forward {
            return 0;
        }
        let expected = rate * secs * f64::from(cfg.weights.0[i]) / total;
        (expected / 2.0).floor() as u64
    })
}

/// The least a run must do for its verdict to mean something, scaled to its
/// phase and weights: each fault kind with a weight half of what it would
/// meet at [`FLOOR_RATE`] (so a kind too rare to be expected in a short
/// phase is not required, and a kind with weight 0 never is), one SIGKILL
/// when kills are on and the phase is long enough for one (the first comes
/// 5-10 s in), an order per second of phase (up to the cap) and ten
/// acknowledged writes per second.
struct Minimums {
    faults: [u64; 8],
    kills: u32,
    orders: usize,
    writes: u64,
}

impl Minimums {
    fn for_run(cfg: &Config) -> Minimums {
        let secs = cfg.phase.as_secs_f64();
        Minimums {
            faults: fault_minimums(cfg, FLOOR_RATE),
            kills: u32::from(cfg.kills && secs >= 15.0),
            orders: MAX_ORDERS.min(secs as usize),
            writes: 10 * secs as u64,
        }
    }

    /// What the run did less of than required, one line each.
    fn shortfalls(&self, run: &Run, setup: &Setup, phase: &Phase) -> Vec<String> {
        let mut short = Vec::new();
        for (i, f) in Fault::ALL.iter().enumerate() {
            let n = faults(setup, *f);
            if n < self.faults[i] {
                short.push(format!(
                    "{} faults: {n} < {} required",
                    f.key(),
                    self.faults[i]
                ));
            }
        }
        let kills = phase.kills.0 + phase.kills.1;
        if kills < self.kills {
            short.push(format!("SIGKILLs: {kills} < {} required", self.kills));
        }
        let orders = lock(&run.ledger).orders.len();
        if orders < self.orders {
            short.push(format!("orders: {orders} < {} required", self.orders));
        }
        let writes = acked_writes(run);
        if writes < self.writes {
            short.push(format!(
                "acknowledged writes: {writes} < {} required",
                self.writes
            ));
        }
        short
    }
}

/// Every write a client got acknowledged (creates, edits, cancels, steps).
pub fn acked_writes(run: &Run) -> u64 {
    let s = &run.stats;
    get(&s.creates) + get(&s.store_acked) + get(&s.cancels_acked) + get(&s.wh_acked)
}

/// Proxies first (the services need their ports as peer URLs), then the
/// services, each with its relay pointed at the proxy in front of the other.
async fn start_services(backend: Backend, cfg: &Config) -> Option<Setup> {
    let (sp, wp) = (free_port(), free_port());
    let weights = &cfg.weights;
    let to_warehouse = Proxy::start("store→warehouse", wp, weights.clone(), cfg.seed ^ 1).await;
    let to_store = Proxy::start("warehouse→store", sp, weights.clone(), cfg.seed ^ 2).await;
    let ports = Ports {
        store: sp,
        store_peer: to_warehouse.port,
        warehouse: wp,
        warehouse_peer: to_store.port,
    };
    let cluster = Cluster::prepare(backend, ports).await?;
    start(&cluster.store).await;
    start(cluster.warehouse()).await;
    Some(Setup {
        cluster,
        to_warehouse,
        to_store,
    })
}

/// Runs every client task and the chaos task until `run.until`.
async fn client_phase(run: &Arc<Run>, setup: &Setup, cfg: &Config) -> Phase {
    let started = Instant::now();
    let seed = cfg.seed;
    let hot_id = workload::create_order(
        &run.store,
        &run.stats,
        &format!("faults-{seed}-hot"),
        "Hot order",
    )
    .await;
    let hot = workload::track(run, hot_id, true, HOT_WRITER, Shape::Plain);
    let mut clients = Vec::new();
    for w in 0..STORE_WORKERS {
        let r = rng(seed, 10 + w as u64);
        clients.push(tokio::spawn(workload::store_worker(run.clone(), w, r)));
    }
    for j in 0..WAREHOUSE_WORKERS {
        let r = rng(seed, 20 + j as u64);
        let task = workload::warehouse_worker(run.clone(), Scope::Orders, j, WAREHOUSE_WORKERS, r);
        clients.push(tokio::spawn(task));
    }
    clients.push(tokio::spawn(workload::hot_store(
        run.clone(),
        hot,
        rng(seed, 30),
    )));
    clients.push(tokio::spawn(workload::hot_warehouse(
        run.clone(),
        WhKey::Order(hot),
        rng(seed, 31),
    )));
    let chaos = tokio::spawn(workload::chaos(
        run.until,
        setup.cluster.nodes(),
        5000..10000,
        cfg.kills,
        rng(seed, 40),
    ));
    for c in clients {
        join(c).await;
    }
    let kills = join(chaos).await;
    Phase {
        hot,
        kills: (kills[0], kills[1]),
        took: started.elapsed(),
    }
}

/// How many requests of both proxies met fault `f`.
fn faults(setup: &Setup, f: Fault) -> u64 {
    let i = Fault::ALL.iter().position(|x| *x == f).unwrap_or(0);
    setup.to_warehouse.counts()[i] + setup.to_store.counts()[i]
}

/// The counts of the summary line.
fn summary(run: &Run, setup: &Setup, phase: &Phase) -> String {
    let acked = acked_writes(run);
    format!(
        "orders={} writes_acked={acked} kills={} (store {}, warehouse {}) dropped_req={} dropped_resp={} dup={} delayed={} late={} 5xx={}",
        lock(&run.ledger).orders.len(),
        phase.kills.0 + phase.kills.1,
        phase.kills.0,
        phase.kills.1,
        faults(setup, Fault::DropRequest),
        faults(setup, Fault::DropResponse),
        faults(setup, Fault::Duplicate),
        faults(setup, Fault::Delay),
        faults(setup, Fault::Late),
        faults(setup, Fault::Unavailable) + faults(setup, Fault::ServerError),
    )
}

/// Everything worth knowing about the run, and every problem found.
fn print_details(
    run: &Run,
    setup: &Setup,
    phase: &Phase,
    snap: &Snapshot,
    div: &Divergence,
    lost: &[String],
    unexpected: &[String],
) {
    let s = &run.stats;
    eprintln!("  {}", setup.to_warehouse.describe());
    eprintln!("  {}", setup.to_store.describe());
    eprintln!(
        "  store: creates={} edits_acked={} cancels_acked={} 409={} unanswered={} refused={}",
        get(&s.creates),
        get(&s.store_acked),
        get(&s.cancels_acked),
        get(&s.store_conflict),
        get(&s.store_unknown),
        get(&s.store_refused)
    );
    eprintln!(
        "  warehouse: acked={} 409={} 404={} unanswered={} refused={} client_timeouts={}",
        get(&s.wh_acked),
        get(&s.wh_conflict),
        get(&s.wh_not_found),
        get(&s.wh_unknown),
        get(&s.wh_refused),
        get(&s.timeouts)
    );
    eprintln!("  {}", hot_summary(run, phase, snap));
    eprintln!(
        "  warehouse statuses: {}",
        crate::verify::status_histogram(snap)
    );
    for l in lost.iter().take(20) {
        eprintln!("  LOST {l}");
    }
    for (id, what) in div.orders.iter().take(20) {
        eprintln!("  DIVERGENT {id}: {}", what.join("; "));
    }
    for o in &div.outbox {
        eprintln!("  NOT DRAINED {o}");
    }
    for u in unexpected {
        eprintln!("  UNEXPECTED ANSWER {u}");
    }
    setup.cluster.print_log_errors();
}

fn hot_summary(run: &Run, phase: &Phase, snap: &Snapshot) -> String {
    let ledger = lock(&run.ledger);
    let hot = &ledger.orders[phase.hot];
    let field = |side: &BTreeMap<String, Value>, k: &str| {
        side.get(&hot.id).map_or("-".into(), |o| o[k].to_string())
    };
    format!(
        "hot order: {} store edits acked (last {}), {} warehouse acks; final: store notes {}, warehouse notes {} status {}",
        get(&run.stats.hot_store_acked),
        hot.notes(hot.acked_k),
        get(&run.stats.hot_wh_acked),
        field(&snap.store, "notes"),
        field(&snap.warehouse, "notes"),
        field(&snap.warehouse, "status"),
    )
}
