//! Every create answered 201 is durable: orders are created concurrently at
//! the store while the warehouse is down (so they exist only in the store's
//! database and outbox), and the store is SIGKILLed the moment the
//! `ORDERS`-th 201 arrives, with other creates still in flight. After a
//! restart the store has every acknowledged order and an outbox row for
//! each; the creates that were in flight, repeated with their
//! Idempotency-Key, make no duplicates; and once the warehouse starts,
//! everything reaches it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;

use crate::api::{Api, Reply};
use crate::cluster::{Backend, Cluster, Ports, start};
use crate::workload::{Stats, create_order, order_body};
use crate::{Config, join, lock, verify};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    acknowledged_creates_survive_sigkill(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    acknowledged_creates_survive_sigkill(Backend::Postgres).await;
}

const ORDERS: usize = 150;
const CREATORS: usize = 6;

/// A create that got no 201 before the kill: its key and customer name,
/// to repeat it exactly.
type Unanswered = (String, String);

async fn acknowledged_creates_survive_sigkill(backend: Backend) {
    let cfg = Config::from_env();
    let seed = cfg.seed;
    let begun = Instant::now();
    eprintln!("crash[{backend}]: seed={seed}");
    // No proxy: the relays talk to each other directly.
    let Some(cluster) = Cluster::prepare(backend, Ports::direct()).await else {
        return;
    };
    let (store, warehouse) = cluster.apis();
    start(&cluster.store).await;

    let (acked, in_flight) = create_until_killed(&cluster, &store, seed).await;
    eprintln!(
        "crash[{backend}]: store SIGKILLed after {} acknowledged creates ({} in flight)",
        acked.len(),
        in_flight.len()
    );

    // The store alone: every acknowledged order, each waiting in the outbox.
    start(&cluster.store).await;
    let after = verify::order_ids(&store).await;
    let missing: Vec<&String> = acked.iter().filter(|id| !after.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "seed {seed}: {} of {} acknowledged orders are gone after SIGKILL (first: {})",
        missing.len(),
        acked.len(),
        missing[0]
    );
    let st = store
        .get_ok("/api/v1/sync/status", Duration::from_secs(10))
        .await;
    assert_eq!(
        st["pending"].as_u64(),
        Some(after.len() as u64),
        "seed {seed}: every order must wait in the outbox while the warehouse is down: {st}"
    );

    // The unanswered creates, repeated with their keys: no duplicates.
    let stats = Stats::default();
    for (key, name) in &in_flight {
        create_order(&store, &stats, key, name).await;
    }
    let total = verify::order_ids(&store).await.len();
    assert_eq!(
        total,
        acked.len() + in_flight.len(),
        "seed {seed}: repeated creates must not duplicate orders"
    );

    // Now the warehouse: every order arrives and both sides agree.
    start(cluster.warehouse()).await;
    let (snap, div, took) = verify::wait_converged(&store, &warehouse, cfg.converge).await;
    for (id, what) in div.orders.iter().take(20) {
        eprintln!("  DIVERGENT {id}: {}", what.join("; "));
    }
    cluster.print_log_errors();
    eprintln!(
        "crash: backend={backend} seed={seed} acked={} in_flight={} store_orders={total} warehouse_orders={} divergent={} delivered_in={:.1}s total={:.1}s",
        acked.len(),
        in_flight.len(),
        snap.warehouse.len(),
        div.orders.len(),
        took.as_secs_f64(),
        begun.elapsed().as_secs_f64()
    );
    assert!(
        div.is_clean(),
        "seed {seed}: not delivered after restart: {} orders differ, outbox {:?}",
        div.orders.len(),
        div.outbox
    );
    cluster.finish().await;
}

/// Creates orders from `CREATORS` tasks at once and SIGKILLs the store as
/// soon as `ORDERS` creates are answered 201. Returns the ids of all
/// acknowledged orders and the creates left without an answer.
async fn create_until_killed(
    cluster: &Cluster,
    store: &Api,
    seed: u64,
) -> (Vec<String>, Vec<Unanswered>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let stop = Arc::new(AtomicBool::new(false));
    let creators: Vec<_> = (0..CREATORS)
        .map(|c| tokio::spawn(creator(store.clone(), tx.clone(), stop.clone(), seed, c)))
        .collect();
    drop(tx);
    let mut acked = Vec::new();
    while acked.len() < ORDERS {
        acked.push(rx.recv().await.expect("creators stopped early"));
    }
    lock(&cluster.store).kill();
    stop.store(true, Ordering::SeqCst);
    // 201s already on their way when the process died count too.
    while let Some(id) = rx.recv().await {
        acked.push(id);
    }
    let mut in_flight = Vec::new();
    for c in creators {
        in_flight.extend(join(c).await);
    }
    (acked, in_flight)
}

/// Creates orders one after the other, sending each acknowledged id, until
/// told to stop or a create gets no 201 (the kill): that one is returned.
async fn creator(
    store: Api,
    acked: mpsc::UnboundedSender<String>,
    stop: Arc<AtomicBool>,
    seed: u64,
    c: usize,
) -> Option<Unanswered> {
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let key = format!("crash-{seed}-{c}-{i}");
        let name = format!("Crash {c}-{i}");
        let body = order_body(&name);
        match store
            .send(Method::POST, "/api/v1/orders", Some(&body), Some(&key))
            .await
        {
            Reply::Answered(StatusCode::CREATED, o) => {
                let _ = acked.send(o["id"].as_str().expect("id").to_owned());
            }
            Reply::Answered(s, b) => panic!("create {key}: {s} {b}"),
            // Sent or not, its fate is unknown: the caller repeats it.
            Reply::Lost { .. } | Reply::Refused => return Some((key, name)),
        }
    }
    None
}
