//! The fault-injection scenario with one store and two warehouses: `eu`
//! stocks `A-` SKUs and `us` stocks `B-` SKUs, both ship everywhere, so an
//! order of both is split into two parts (docs/API.md §4.6), one at each
//! warehouse. Each warehouse is a service of its own, with its own database
//! and secret, and each link (store ⇄ eu, store ⇄ us) goes through a fault
//! proxy in each direction. Clients create, edit and cancel orders at the
//! store (some only `A-`, some only `B-`, most mixed, some moving between
//! mixed and `A-` only, which withdraws the `us` part and later makes a new
//! one) and move each warehouse's parts through fulfillment, while the
//! three services are SIGKILLed and restarted in turn. Then faults stop,
//! and every side must agree part by part and hold every acknowledged
//! write (`verify_parts`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::Reply;
use crate::cluster::{self, Backend, Cluster, WarehousePorts, ensure_running, free_port, start};
use crate::convergence::{FLOOR_RATE, acked_writes, fault_minimums};
use crate::ledger::{Shape, WhKey, WhTrack};
use crate::proxy::{Fault, Proxy};
use crate::verify::Divergence;
use crate::verify_parts::{Site, Snapshot};
use crate::workload::{self, HOT_WRITER, Run, Scope, Stats, get};
use crate::{Config, join, lock, rng};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    converges_with_two_warehouses(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    converges_with_two_warehouses(Backend::Postgres).await;
}

/// The warehouses: name, the SKU prefix it stocks, and its proxies' names
/// (store → it, it → store).
const WAREHOUSES: [(&str, &str, &str, &str); 2] = [
    ("eu", "A-", "store→eu", "eu→store"),
    ("us", "B-", "store→us", "us→store"),
];

/// What new orders are made of, drawn uniformly: two in three are split.
const SHAPES: [Shape; 6] = [
    Shape::OnlyA,
    Shape::OnlyB,
    Shape::Mixed,
    Shape::Mixed,
    Shape::Drift,
    Shape::Drift,
];

const STORE_WORKERS: usize = 2;
/// Warehouse clients per warehouse.
const WAREHOUSE_WORKERS: usize = 2;
const MAX_ORDERS: usize = 120;

/// One warehouse's link to the store: a fault proxy each way.
struct Link {
    /// Carries the store's relay to the warehouse.
    to_warehouse: Proxy,
    /// Carries the warehouse's relay to the store.
    to_store: Proxy,
}

impl Link {
    /// How many requests of both proxies met fault `f`.
    fn faults(&self, f: Fault) -> u64 {
        let i = Fault::ALL.iter().position(|x| *x == f).unwrap_or(0);
        self.to_warehouse.counts()[i] + self.to_store.counts()[i]
    }

    fn requests(&self) -> u64 {
        self.to_warehouse.counts().iter().sum::<u64>() + self.to_store.counts().iter().sum::<u64>()
    }

    fn set_faulty(&self, on: bool) {
        self.to_warehouse.set_faulty(on);
        self.to_store.set_faulty(on);
    }
}

struct Setup {
    cluster: Cluster,
    /// By warehouse index, as in [`WAREHOUSES`].
    links: Vec<Link>,
}

/// What the client phase did besides what the ledger holds.
struct Phase {
    hot: usize,
    /// The hot order's parts: (warehouse index, ledger key).
    hot_parts: Vec<(usize, WhKey)>,
    /// SIGKILLs of the store, then of each warehouse.
    kills: Vec<u32>,
    took: Duration,
}

fn sites(run: &Run) -> Vec<Site<'_>> {
    WAREHOUSES
        .iter()
        .zip(&run.warehouses)
        .map(|((name, prefix, ..), api)| Site { name, prefix, api })
        .collect()
}

async fn converges_with_two_warehouses(backend: Backend) {
    let cfg = Config::from_env();
    let begun = Instant::now();
    eprintln!(
        "faults-2wh[{backend}]: seed={} phase={}s weights={} (replay with FAULT_SEED={})",
        cfg.seed,
        cfg.phase.as_secs(),
        cfg.weights,
        cfg.seed
    );
    let Some(setup) = start_services(backend, &cfg).await else {
        return;
    };
    let run = Arc::new(Run {
        seed: cfg.seed,
        store: cluster::api(&setup.cluster.store),
        warehouses: setup
            .cluster
            .warehouses
            .iter()
            .map(|n| cluster::api(n))
            .collect(),
        shapes: SHAPES.to_vec(),
        ledger: Mutex::default(),
        stats: Stats::default(),
        until: Instant::now() + cfg.phase,
        max_orders: MAX_ORDERS,
    });
    let phase = client_phase(&run, &setup, &cfg).await;

    // Faults off, every service up: now they must agree.
    for link in &setup.links {
        link.set_faulty(false);
    }
    for node in setup.cluster.nodes() {
        ensure_running(&node).await;
    }
    eprintln!(
        "faults-2wh[{backend}]: client phase over after {:.1}s; faults off, waiting for convergence (≤ {}s)",
        phase.took.as_secs_f64(),
        cfg.converge.as_secs()
    );
    let sites = sites(&run);
    let hot_id = lock(&run.ledger).orders[phase.hot].id.clone();
    eprintln!(
        "  hot order at the store: {}",
        crate::verify::timeline(&run.store, &hot_id).await
    );
    for (w, key) in &phase.hot_parts {
        let id = lock(&run.ledger).wh(*key).0.to_owned();
        eprintln!(
            "  hot part {id} at {}: {}",
            sites[*w].name,
            crate::verify::timeline(sites[*w].api, &id).await
        );
    }
    let (snap, div, took) =
        crate::verify_parts::wait_converged(&run.store, &sites, cfg.converge).await;

    let lost = crate::verify_parts::lost_updates(&lock(&run.ledger), &snap, &sites);
    let unexpected = lock(&run.stats.unexpected).clone();
    let figures = Figures::of(&run, &snap);
    print_details(
        &run,
        &setup,
        &phase,
        &snap,
        &figures,
        &div,
        &lost,
        &unexpected,
    );
    let min = Minimums::for_run(&cfg);
    eprintln!("  required at least: {}", min.describe());
    eprintln!(
        "faults-2wh: backend={backend} seed={} {} lost={} divergent={} converged_in={:.1}s total={:.1}s",
        cfg.seed,
        summary(&run, &setup, &phase, &figures),
        lost.len(),
        div.orders.len(),
        took.as_secs_f64(),
        begun.elapsed().as_secs_f64()
    );
    let seed = cfg.seed;
    crate::verify::assert_clean(seed, cfg.converge, &div, &lost, &unexpected);
    // "Nothing was lost" means something only if the run did enough.
    let short = min.shortfalls(&run, &setup, &phase, &figures);
    assert!(
        short.is_empty(),
        "seed {seed}: the run did too little to prove anything: {}",
        short.join("; ")
    );
    setup.cluster.finish().await;
}

/// Proxies first (the services need their ports: the warehouses as their
/// peer URL, the store as each warehouse's URL), then the store, told about
/// each warehouse through its API (the URL of the proxy in front of it, and
/// its secret), then the warehouses.
async fn start_services(backend: Backend, cfg: &Config) -> Option<Setup> {
    let sp = free_port();
    let mut links = Vec::new();
    let mut ports = Vec::new();
    for (i, (name, _, to_wh, to_store)) in WAREHOUSES.iter().enumerate() {
        let wp = free_port();
        let salt = 16 * (i as u64 + 1);
        let link = Link {
            to_warehouse: Proxy::start(to_wh, wp, cfg.weights.clone(), cfg.seed ^ (salt + 1)).await,
            to_store: Proxy::start(to_store, sp, cfg.weights.clone(), cfg.seed ^ (salt + 2)).await,
        };
        ports.push(WarehousePorts {
            name,
            port: wp,
            peer: link.to_store.port,
            secret: format!("fault-test-{name}-secret"),
        });
        links.push(link);
    }
    let cluster = Cluster::prepare_several(backend, sp, &ports).await?;
    start(&cluster.store).await;
    let store = cluster::api(&cluster.store);
    for ((link, p), (_, prefix, ..)) in links.iter().zip(&ports).zip(WAREHOUSES) {
        let body = json!({
            "name": p.name,
            "url": format!("http://127.0.0.1:{}", link.to_warehouse.port),
            "countries": [],
            "sku_prefixes": [prefix],
            "secret": p.secret,
        });
        match store
            .send(Method::POST, "/api/v1/warehouses", Some(&body), None)
            .await
        {
            Reply::Answered(StatusCode::CREATED, _) => {}
            other => panic!("adding warehouse {}: {other:?}", p.name),
        }
    }
    for node in &cluster.warehouses {
        start(node).await;
    }
    Some(Setup { cluster, links })
}

/// Runs every client task and the chaos task until `run.until`.
async fn client_phase(run: &Arc<Run>, setup: &Setup, cfg: &Config) -> Phase {
    let started = Instant::now();
    let seed = cfg.seed;
    // The hot order: split, each part held and released at its warehouse
    // while the store edits it (notes and lines, which stay split).
    let body = workload::shaped_order_body("Hot order", Shape::Mixed);
    let o = workload::create(&run.store, &run.stats, &format!("faults-{seed}-hot"), &body).await;
    let hot_id = o["id"].as_str().expect("id").to_owned();
    let hot = workload::track(run, hot_id, true, HOT_WRITER, Shape::Mixed);
    let mut hot_parts = Vec::new();
    for p in o["parts"].as_array().into_iter().flatten() {
        let w = WAREHOUSES
            .iter()
            .position(|(name, ..)| p["warehouse"] == *name)
            .unwrap_or_else(|| panic!("hot order: a part at an unknown warehouse: {o}"));
        let id = p["id"].as_str().expect("part id");
        let i = workload::track_part(run, id, w, true, WhTrack::new());
        hot_parts.push((w, WhKey::Part(i)));
    }
    assert_eq!(
        hot_parts.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
        [0, 1],
        "the hot order must be split between eu and us: {o}"
    );

    let mut clients = Vec::new();
    for w in 0..STORE_WORKERS {
        let r = rng(seed, 10 + w as u64);
        clients.push(tokio::spawn(workload::store_worker(run.clone(), w, r)));
    }
    for w in 0..WAREHOUSES.len() {
        clients.push(tokio::spawn(workload::discover(run.clone(), w)));
        for j in 0..WAREHOUSE_WORKERS {
            let r = rng(seed, 100 + 10 * w as u64 + j as u64);
            let task =
                workload::warehouse_worker(run.clone(), Scope::Parts(w), j, WAREHOUSE_WORKERS, r);
            clients.push(tokio::spawn(task));
        }
    }
    clients.push(tokio::spawn(workload::hot_store(
        run.clone(),
        hot,
        rng(seed, 30),
    )));
    for (i, (_, key)) in hot_parts.iter().enumerate() {
        let task = workload::hot_warehouse(run.clone(), *key, rng(seed, 31 + i as u64));
        clients.push(tokio::spawn(task));
    }
    // Three services to kill in a phase: a kill every 4-7 s reaches each
    // of them in a 30 s phase.
    let chaos = tokio::spawn(workload::chaos(
        run.until,
        setup.cluster.nodes(),
        4000..7000,
        cfg.kills,
        rng(seed, 40),
    ));
    for c in clients {
        join(c).await;
    }
    Phase {
        hot,
        hot_parts,
        kills: join(chaos).await,
        took: started.elapsed(),
    }
}

/// What the run made, from the ledger and the final snapshot.
struct Figures {
    /// New orders by shape.
    shapes: BTreeMap<&'static str, usize>,
    /// Parts the store lists, withdrawn ones too.
    parts: usize,
    withdrawn: usize,
    /// Orders with two live parts at the end.
    split: usize,
    /// Parts the store lists at each warehouse.
    parts_at: Vec<usize>,
    /// Fulfillment steps acknowledged at each warehouse (its parts).
    steps_at: Vec<u32>,
    /// Parts with something shipped, on hold, cancelled, at the end.
    statuses: BTreeMap<String, usize>,
}

impl Figures {
    fn of(run: &Run, snap: &Snapshot) -> Figures {
        let l = lock(&run.ledger);
        let mut shapes = BTreeMap::new();
        for t in &l.orders {
            *shapes.entry(t.shape.key()).or_default() += 1;
        }
        let mut f = Figures {
            shapes,
            parts: 0,
            withdrawn: 0,
            split: 0,
            parts_at: vec![0; WAREHOUSES.len()],
            steps_at: vec![0; WAREHOUSES.len()],
            statuses: BTreeMap::new(),
        };
        for p in &l.parts {
            f.steps_at[p.warehouse] += p.wh.acks;
        }
        for so in snap.store.values() {
            let parts = so["parts"].as_array().cloned().unwrap_or_default();
            let live = parts.iter().filter(|p| p["withdrawn"] != true).count();
            f.parts += parts.len();
            f.withdrawn += parts.len() - live;
            f.split += usize::from(live >= 2);
            for p in &parts {
                if let Some(w) = WAREHOUSES.iter().position(|(n, ..)| p["warehouse"] == *n) {
                    f.parts_at[w] += 1;
                }
                let s = p["status"].as_str().unwrap_or("null").to_owned();
                *f.statuses.entry(s).or_default() += 1;
            }
        }
        f
    }
}

/// Requests per second of client phase that each link's two proxies carry
/// at the very least: half of [`FLOOR_RATE`]. Runs on the 2-core
/// development VM (debug build, both backends) carried 14-18 per second on
/// each link; this assumes a machine four to six times slower.
const LINK_FLOOR_RATE: f64 = FLOOR_RATE / 2.0;

/// The least a run must do for its verdict to mean something, scaled to
/// its phase and weights: on each link, each fault kind as
/// [`fault_minimums`] requires at [`LINK_FLOOR_RATE`]; when kills are on,
/// every service SIGKILLed once if the phase is 25 s or more (one kill in
/// all from 15 s); an order per second of phase (up to the cap), a third
/// of them split at the end, a withdrawn part (from 15 s); ten acknowledged
/// writes per second, and one fulfillment step per second at each
/// warehouse.
struct Minimums {
    faults: [u64; 8],
    kills_each: u32,
    kills: u32,
    orders: usize,
    withdrawn: usize,
    writes: u64,
    steps: u32,
}

impl Minimums {
    fn for_run(cfg: &Config) -> Minimums {
        let secs = cfg.phase.as_secs_f64();
        Minimums {
            faults: fault_minimums(cfg, LINK_FLOOR_RATE),
            kills_each: u32::from(cfg.kills && secs >= 25.0),
            kills: u32::from(cfg.kills && secs >= 15.0),
            orders: MAX_ORDERS.min(secs as usize),
            withdrawn: usize::from(secs >= 15.0),
            writes: 10 * secs as u64,
            steps: secs as u32,
        }
    }

    fn describe(&self) -> String {
        format!(
            "faults per link {} kills={} (each service {}) orders={} (a third split) withdrawn_parts={} writes_acked={} steps_per_warehouse={}",
            Fault::ALL
                .iter()
                .zip(self.faults)
                .filter(|(f, _)| **f != Fault::Forward)
                .map(|(f, n)| format!("{}={n}", f.key()))
                .collect::<Vec<_>>()
                .join(" "),
            self.kills,
            self.kills_each,
            self.orders,
            self.withdrawn,
            self.writes,
            self.steps
        )
    }

    /// What the run did less of than required, one line each.
    fn shortfalls(&self, run: &Run, setup: &Setup, phase: &Phase, fig: &Figures) -> Vec<String> {
        let mut short = Vec::new();
        for (link, (name, ..)) in setup.links.iter().zip(WAREHOUSES) {
            for (i, f) in Fault::ALL.iter().enumerate() {
                let n = link.faults(*f);
                if n < self.faults[i] {
                    short.push(format!(
                        "{} faults on the {name} link: {n} < {} required",
                        f.key(),
                        self.faults[i]
                    ));
                }
            }
        }
        let names = std::iter::once("store").chain(WAREHOUSES.iter().map(|(n, ..)| *n));
        for (name, k) in names.zip(&phase.kills) {
            if *k < self.kills_each {
                short.push(format!(
                    "SIGKILLs of the {name}: {k} < {} required",
                    self.kills_each
                ));
            }
        }
        let kills: u32 = phase.kills.iter().sum();
        if kills < self.kills {
            short.push(format!("SIGKILLs: {kills} < {} required", self.kills));
        }
        let orders = lock(&run.ledger).orders.len();
        if orders < self.orders {
            short.push(format!("orders: {orders} < {} required", self.orders));
        }
        if fig.split * 3 < orders {
            short.push(format!(
                "split orders: {} of {orders}, less than a third",
                fig.split
            ));
        }
        if fig.withdrawn < self.withdrawn {
            short.push(format!(
                "withdrawn parts: {} < {} required",
                fig.withdrawn, self.withdrawn
            ));
        }
        let writes = acked_writes(run);
        if writes < self.writes {
            short.push(format!(
                "acknowledged writes: {writes} < {} required",
                self.writes
            ));
        }
        for ((name, ..), n) in WAREHOUSES.iter().zip(&fig.steps_at) {
            if *n < self.steps {
                short.push(format!(
                    "fulfillment steps acknowledged at {name}: {n} < {} required",
                    self.steps
                ));
            }
        }
        short
    }
}

/// The counts of the summary line.
fn summary(run: &Run, setup: &Setup, phase: &Phase, fig: &Figures) -> String {
    let kills: Vec<String> = std::iter::once("store")
        .chain(WAREHOUSES.iter().map(|(n, ..)| *n))
        .zip(&phase.kills)
        .map(|(n, k)| format!("{n} {k}"))
        .collect();
    let per_link: Vec<String> = setup
        .links
        .iter()
        .zip(WAREHOUSES)
        .map(|(l, (name, ..))| {
            let injected: u64 = Fault::ALL
                .iter()
                .filter(|f| **f != Fault::Forward)
                .map(|f| l.faults(*f))
                .sum();
            format!("{name}={injected}/{}", l.requests())
        })
        .collect();
    format!(
        "orders={} split={} parts={} (eu {}, us {}, withdrawn {}) writes_acked={} steps(eu {}, us {}) kills={} ({}) faults_injected/requests: {}",
        lock(&run.ledger).orders.len(),
        fig.split,
        fig.parts,
        fig.parts_at[0],
        fig.parts_at[1],
        fig.withdrawn,
        acked_writes(run),
        fig.steps_at[0],
        fig.steps_at[1],
        phase.kills.iter().sum::<u32>(),
        kills.join(", "),
        per_link.join(" ")
    )
}

/// Everything worth knowing about the run, and every problem found.
#[allow(clippy::too_many_arguments)]
fn print_details(
    run: &Run,
    setup: &Setup,
    phase: &Phase,
    snap: &Snapshot,
    fig: &Figures,
    div: &Divergence,
    lost: &[String],
    unexpected: &[String],
) {
    let s = &run.stats;
    for link in &setup.links {
        eprintln!("  {}", link.to_warehouse.describe());
        eprintln!("  {}", link.to_store.describe());
    }
    eprintln!(
        "  store: creates={} {:?} edits_acked={} cancels_acked={} 409={} unanswered={} refused={}",
        get(&s.creates),
        fig.shapes,
        get(&s.store_acked),
        get(&s.cancels_acked),
        get(&s.store_conflict),
        get(&s.store_unknown),
        get(&s.store_refused)
    );
    eprintln!(
        "  warehouses: parts found={} acked={} 409={} 404={} unanswered={} refused={} client_timeouts={}",
        lock(&run.ledger).parts.len(),
        get(&s.wh_acked),
        get(&s.wh_conflict),
        get(&s.wh_not_found),
        get(&s.wh_unknown),
        get(&s.wh_refused),
        get(&s.timeouts)
    );
    eprintln!("  part statuses at the store: {:?}", fig.statuses);
    eprintln!("  {}", hot_summary(run, phase, snap));
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
    let mut ledger = lock(&run.ledger);
    let hot = &ledger.orders[phase.hot];
    let store = snap.store.get(&hot.id);
    let last = hot.notes(hot.acked_k);
    let mut out = format!(
        "hot order: {} store edits acked (last {last}), {} warehouse acks; final at the store: notes {} status {}",
        get(&run.stats.hot_store_acked),
        get(&run.stats.hot_wh_acked),
        store.map_or("-".into(), |o| o["notes"].to_string()),
        store.map_or("-".into(), |o| o["fulfillment"]["status"].to_string()),
    );
    for (w, key) in &phase.hot_parts {
        let id = ledger.wh(*key).0.to_owned();
        let o = snap.warehouses[*w].get(&id);
        out.push_str(&format!(
            "; at {}: notes {} status {}",
            WAREHOUSES[*w].0,
            o.map_or("-".into(), |o| o["notes"].to_string()),
            o.map_or("-".into(), |o| o["status"].to_string()),
        ));
    }
    out
}
