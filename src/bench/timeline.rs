//! What a scenario looked like over time, second by second: the writes the
//! services accepted from their clients, the snapshots they applied from
//! their peers (both ways) and the changes waiting in their outboxes. A
//! [`Sampler`] reads every service's database once a second (read-only,
//! from its own task, so the load is never held up by it) until the
//! scenario ends; the plots draw throughput and backlog over time from it.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::cluster::Cluster;
use crate::domain::Role;
use crate::storage::bench::{Activity, Probe};

/// How often the databases are read.
const EVERY: Duration = Duration::from_secs(1);

/// One scenario's series, a value per sample.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// Seconds since the scenario started.
    pub t: Vec<f64>,
    /// Client writes accepted per second over the second before (creates
    /// at the store, updates at the warehouses).
    pub accepted_per_s: Vec<f64>,
    /// Snapshots applied from the peer per second over the second before
    /// (at the warehouses and back at the store).
    pub applied_per_s: Vec<f64>,
    /// Changes waiting in the outboxes (every service) at that moment.
    pub backlog: Vec<u64>,
}

/// A running sampler; [`Sampler::finish`] stops it and returns what it saw.
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Timeline>,
}

/// A service to read: its probe, where its audit trail stood at the
/// start, and whom it sends to.
struct Target {
    probe: Probe,
    mark: i64,
    peers: Vec<String>,
}

impl Sampler {
    /// Starts sampling every service of `cluster`, counting from now.
    pub async fn start(cluster: &Cluster) -> anyhow::Result<Sampler> {
        let names: Vec<String> = cluster.warehouses.iter().map(|w| w.name.clone()).collect();
        let mut targets = Vec::with_capacity(1 + names.len());
        for s in std::iter::once(&cluster.store).chain(&cluster.warehouses) {
            targets.push(Target {
                probe: s.probe.clone(),
                mark: s.audit_mark().await?,
                peers: match s.role {
                    Role::Store => names.clone(),
                    Role::Warehouse => vec!["store".to_owned()],
                },
            });
        }
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut timeline = Timeline::default();
            let mut last = (started, Activity::default());
            // The start: nothing done yet, and what was already waiting.
            if let Some(now) = read(&targets).await {
                timeline.t.push(0.0);
                timeline.accepted_per_s.push(0.0);
                timeline.applied_per_s.push(0.0);
                timeline.backlog.push(now.pending);
            }
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                let done = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut stopped => true,
                };
                // A read that fails (the database busy) leaves a gap.
                if let Some(now) = read(&targets).await {
                    let at = Instant::now();
                    let dt = at.duration_since(last.0).as_secs_f64().max(1e-3);
                    let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
                    timeline.t.push(at.duration_since(started).as_secs_f64());
                    timeline
                        .accepted_per_s
                        .push(rate(now.accepted, last.1.accepted));
                    timeline
                        .applied_per_s
                        .push(rate(now.applied, last.1.applied));
                    timeline.backlog.push(now.pending);
                    last = (at, now);
                }
                if done {
                    return timeline;
                }
            }
        });
        Ok(Sampler { stop, task })
    }

    /// Stops sampling (after a last sample) and returns the series.
    pub async fn finish(self) -> Timeline {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// Every service's activity since its mark, summed; `None` when a read
/// failed.
async fn read(targets: &[Target]) -> Option<Activity> {
    let mut sum = Activity::default();
    for t in targets {
        let a = t.probe.activity(t.mark, &t.peers).await.ok()?;
        sum.applied += a.applied;
        sum.accepted += a.accepted;
        sum.pending += a.pending;
    }
    Some(sum)
}
