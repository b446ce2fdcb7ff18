//! Fault injection: the proof of docs/DESIGN.md §5.1 ("no lost update"). The
//! built binary runs the store and the warehouse as child processes; a fault
//! proxy between them (both directions) drops, duplicates, delays, reorders
//! and fails sync requests; clients write to both sides while the services
//! are SIGKILLed and restarted. Once faults stop, both sides must converge to
//! the last acknowledged write of each owner, on SQLite and on PostgreSQL.
//! `convergence_two_warehouses` does the same with one store and two
//! warehouses (`eu` and `us`, each its own process, database, secret and
//! pair of proxies) that split orders between them: every part must end at
//! its warehouse as the store has it, and back.
//!
//! ```text
//! cargo nextest run --test faults --no-capture            # SQLite; PostgreSQL skips
//! scripts/with-postgres cargo nextest run --test faults   # both backends
//! ```
//!
//! Every run prints its seed; the environment tunes or replays it:
//! `FAULT_SEED` (replay), `FAULT_SECS` (client phase, default 30),
//! `FAULT_CONVERGE_SECS` (bound on convergence, default 90), `FAULT_KILLS=0`
//! (no SIGKILLs, to tell their effects from the proxy's), `FAULT_KEEP=1`
//! (keep logs and databases after success too) and
//! `FAULT_WEIGHTS` (e.g. `forward=50,drop_req=8,drop_resp=8,dup=8,delay=8,late=5,503=7,500=6`).
//! Timing still varies between runs, so a seed replays the same decisions,
//! not the same interleaving.
//!
//! A run that did too little proves nothing, so it fails too: it must meet
//! minimums scaled to its phase and weights (each fault kind with a weight,
//! a SIGKILL unless `FAULT_KILLS=0`, orders, acknowledged writes; see
//! `convergence::Minimums`), printed as "required at least".
//!
//! Nothing but 127.0.0.1 is contacted (and the PostgreSQL server given in
//! `FULFILLMENT_TEST_PG_URL`).

mod api;
mod clock;
mod cluster;
#[path = "../common/mod.rs"]
mod common;
mod convergence;
mod convergence_two_warehouses;
mod crash_safety;
mod ledger;
mod proxy;
mod verify;
mod verify_parts;
mod workload;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use proxy::Weights;

/// Locks a mutex; a panic elsewhere while it was held does not matter here
/// (the test is failing anyway, and the data is only counters and notes).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The knobs of a run, from the environment.
pub struct Config {
    pub seed: u64,
    /// How long the clients write (while faults and kills go on).
    pub phase: Duration,
    /// Longest wait for both sides to agree once faults stop.
    pub converge: Duration,
    pub weights: Weights,
    /// Whether the services are SIGKILLed during the client phase.
    pub kills: bool,
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number of seconds")),
        Err(_) => default,
    })
}

impl Config {
    pub fn from_env() -> Config {
        let seed = match std::env::var("FAULT_SEED") {
            Ok(s) => s
                .parse()
                .unwrap_or_else(|_| panic!("FAULT_SEED={s:?} is not a u64")),
            Err(_) => rand::random(),
        };
        let weights = match std::env::var("FAULT_WEIGHTS") {
            Ok(w) => Weights::parse(&w).unwrap_or_else(|e| panic!("FAULT_WEIGHTS: {e}")),
            Err(_) => Weights::default(),
        };
        Config {
            seed,
            phase: env_secs("FAULT_SECS", 30),
            converge: env_secs("FAULT_CONVERGE_SECS", 90),
            weights,
            kills: std::env::var("FAULT_KILLS").as_deref() != Ok("0"),
        }
    }
}

/// An independent random stream per task, all from one seed.
pub fn rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Awaits a task, re-raising its panic here (with its message).
pub async fn join<T>(task: tokio::task::JoinHandle<T>) -> T {
    match task.await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
