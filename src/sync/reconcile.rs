//! Reconciliation (anti-entropy): finds and repairs what the outbox cannot
//! know about — a restored backup, a bug, a manual edit.
//!
//! Both sides keep per-order digests of `(id, store_version)` and
//! `(id, warehouse_version)`, so the digest of any id range is one indexed
//! aggregate query. The reconciler compares the whole id space first, and
//! descends only into ranges whose digests differ: ranges are id prefixes,
//! split by the next hex digit, until a range holds few enough orders to
//! compare row by row. A million unchanged orders cost two aggregate
//! queries and one request.
//!
//! For each order that differs, this side repairs what it owns and asks the
//! peer to repair what it owns:
//! - the peer lacks the order, or holds an older version of this side's
//!   fields: enqueue this side's snapshot again;
//! - the peer holds a *newer* version of this side's fields than this side
//!   (this database was restored or rolled back): raise the local version
//!   above the peer's and enqueue, so this side's current data wins;
//! - this side holds an older or newer copy of the peer's fields: ask the
//!   peer to send its snapshot again (raising its version when it is the one
//!   that went back in time).
//!
//! An order that only the warehouse has cannot be recreated (its money lives
//! only at the store); it is reported as an orphan.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};

use super::peer::{PeerClient, PeerError};
use super::peers::Peers;
use crate::domain::role::{Command, WrongSide};
use crate::domain::{OrderId, Role};
use crate::engine::{Engine, EngineError, OrderVersions as Versions, RangeDigest, ReconcileRun};
use crate::storage::{from_micros, now_micros};

/// A range compares row by row once both sides hold at most this many.
pub const LEAF_SIZE: i64 = 256;
/// Most ranges in one digest request.
pub const MAX_RANGES: usize = 512;
/// Most rows in one versions answer.
pub const MAX_ROWS: i64 = 2000;
/// Most orders in one resend request.
pub const MAX_RESEND: usize = 2000;

/// A half-open range of order ids `[lo, hi)`, always an id prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = IdRange, description = "Order ids `lo <= id < hi` (text order).")]
pub struct Range {
    pub lo: String,
    pub hi: String,
}

impl Range {
    /// Every id (ids are lower-case hex UUIDs; `~` sorts after them all).
    pub fn all() -> Self {
        Self {
            lo: String::new(),
            hi: "~".into(),
        }
    }

    fn prefix(p: String) -> Self {
        let mut hi = p.clone();
        // The next string after every id starting with `p`.
        match hi.pop() {
            Some(c) => hi.push(char::from_u32(c as u32 + 1).unwrap_or('~')),
            None => hi.push('~'),
        }
        Self { lo: p, hi }
    }

    /// The ranges of the next id character (hex digits; the hyphens of a
    /// UUID are fixed, so those positions have one child).
    fn children(&self) -> Vec<Range> {
        let pos = self.lo.len();
        if pos >= 36 {
            return vec![];
        }
        if matches!(pos, 8 | 13 | 18 | 23) {
            return vec![Range::prefix(format!("{}-", self.lo))];
        }
        "0123456789abcdef"
            .chars()
            .map(|c| Range::prefix(format!("{}{c}", self.lo)))
            .collect()
    }
}

/// What one pass compared, found and did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[schema(as = ReconcileReport)]
pub struct Report {
    /// Orders in this database.
    #[schema(minimum = 0)]
    pub local_orders: i64,
    /// Orders in the peer's database.
    #[schema(minimum = 0)]
    pub peer_orders: i64,
    /// Id ranges whose digests were compared.
    pub ranges_compared: u64,
    /// Small ranges compared order by order.
    pub ranges_listed: u64,
    /// Orders the peer lacks or holds an older version of: sent again.
    pub resent_to_peer: u64,
    /// Orders whose local version was behind the peer's copy: raised and sent.
    pub raised_locally: u64,
    /// Orders the peer was asked to send again.
    pub requested_from_peer: u64,
    /// Orders only the warehouse has; they cannot be recreated.
    pub orphans: u64,
}

impl Report {
    /// Adds another peer's report to this one.
    fn add(&mut self, other: &Report) {
        self.local_orders += other.local_orders;
        self.peer_orders += other.peer_orders;
        self.ranges_compared += other.ranges_compared;
        self.ranges_listed += other.ranges_listed;
        self.resent_to_peer += other.resent_to_peer;
        self.raised_locally += other.raised_locally;
        self.requested_from_peer += other.requested_from_peer;
        self.orphans += other.orphans;
    }

    pub fn differences(&self) -> u64 {
        self.resent_to_peer + self.raised_locally + self.requested_from_peer + self.orphans
    }

    pub fn repaired(&self) -> u64 {
        self.resent_to_peer + self.raised_locally + self.requested_from_peer
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "compared {} local and {} peer orders ({} ranges by digest, {} listed)",
            self.local_orders, self.peer_orders, self.ranges_compared, self.ranges_listed
        )?;
        writeln!(f, "found {} difference(s):", self.differences())?;
        writeln!(
            f,
            "  sent again to the peer (missing or older there): {}",
            self.resent_to_peer
        )?;
        writeln!(
            f,
            "  local version raised above the peer's copy, sent: {}",
            self.raised_locally
        )?;
        writeln!(
            f,
            "  asked the peer to send again:                     {}",
            self.requested_from_peer
        )?;
        write!(
            f,
            "  orphans (only at the warehouse, not repairable):  {}",
            self.orphans
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the peer: {0}")]
    Peer(#[from] PeerError),
    #[error("a reconciliation is already running")]
    Busy,
    #[error(
        "there is nothing to reconcile with: no warehouse is set up (add one with `fulfillment warehouse add`)"
    )]
    NoPeer,
    #[error("{0}")]
    Peers(String),
    #[error("no warehouse named {0:?} to reconcile with")]
    UnknownPeer(String),
    #[error(transparent)]
    WrongSide(#[from] WrongSide),
}

// -- the peer protocol (served in http::sync) -------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestsRequest {
    #[schema(schema_with = ranges_schema)]
    pub ranges: Vec<Range>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DigestsAnswer {
    /// One per range, in request order.
    pub digests: Vec<RangeDigest>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionsRequest {
    pub range: Range,
    /// At most this many orders of the range, by id.
    #[schema(schema_with = rows_limit_schema)]
    pub limit: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VersionsAnswer {
    pub rows: Vec<Versions>,
}

/// "Send me your snapshot of this order again", raising your version above
/// `above` first when yours is not higher.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendItem {
    pub id: OrderId,
    /// Raise this side's version above this first, when it is not higher.
    #[schema(schema_with = above_schema)]
    #[serde(default)]
    pub above: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    #[schema(schema_with = resend_items_schema)]
    pub items: Vec<ResendItem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResendAnswer {
    /// Orders enqueued again.
    pub resent: u64,
    /// Orders this side does not have.
    pub unknown: u64,
}

fn ranges_schema() -> Array {
    ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("IdRange"))
        .max_items(Some(MAX_RANGES))
        .build()
}

fn rows_limit_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_ROWS))
        .build()
}

fn resend_items_schema() -> Array {
    ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("ResendItem"))
        .max_items(Some(MAX_RESEND))
        .build()
}

fn above_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(0))
        .maximum(Some(crate::domain::snapshot::MAX_VERSION - 1))
        .build()
}

/// Digests of the given ranges in this database, as compared with `peer`.
pub async fn local_digests(
    engine: &Engine,
    peer: &str,
    ranges: &[Range],
) -> Result<Vec<RangeDigest>, EngineError> {
    let bounds: Vec<(&str, &str)> = ranges
        .iter()
        .map(|r| (r.lo.as_str(), r.hi.as_str()))
        .collect();
    engine.range_digests(peer, &bounds).await
}

pub async fn local_versions(
    engine: &Engine,
    peer: &str,
    range: &Range,
    limit: i64,
) -> Result<Vec<Versions>, EngineError> {
    engine
        .range_versions(peer, &range.lo, &range.hi, limit)
        .await
}

/// Re-enqueues this side's snapshot of each order for `peer` (raising its
/// version above `above` where needed), in one transaction. Returns
/// (resent, unknown).
pub async fn resend(
    engine: &Engine,
    peer: &str,
    items: &[ResendItem],
) -> Result<(u64, u64), EngineError> {
    engine
        .resend(peer, items.iter().map(|i| (i.id, i.above)).collect())
        .await
}

/// What to do about the orders of one listed range.
#[derive(Default)]
struct Repairs {
    resend_local: Vec<ResendItem>,
    ask_peer: Vec<ResendItem>,
    orphans: u64,
}

/// Compares one range order by order.
fn compare(role: Role, local: &[Versions], peer: &[Versions], out: &mut Repairs) {
    let own = |v: &Versions| v.pair().of(role.counter());
    let theirs = |v: &Versions| v.pair().of(role.peer().counter());
    let mut all: BTreeMap<&str, (Option<&Versions>, Option<&Versions>)> = BTreeMap::new();
    for v in local {
        all.entry(v.id.as_str()).or_default().0 = Some(v);
    }
    for v in peer {
        all.entry(v.id.as_str()).or_default().1 = Some(v);
    }
    for (id, pair) in all {
        let Some(oid) = OrderId::parse(id) else {
            continue;
        };
        let item = |above| ResendItem { id: oid, above };
        match pair {
            // The side with the money can recreate an order the other
            // lacks; the other can only ask for it.
            (Some(_), None) if role.holds_money() => out.resend_local.push(item(None)),
            (None, Some(_)) if role.peer().holds_money() => out.ask_peer.push(item(None)),
            (Some(_), None) | (None, Some(_)) => out.orphans += 1,
            (Some(l), Some(p)) => {
                if own(l) > own(p) {
                    out.resend_local.push(item(None));
                } else if own(l) < own(p) {
                    out.resend_local.push(item(Some(own(p))));
                }
                if theirs(l) < theirs(p) {
                    out.ask_peer.push(item(None));
                } else if theirs(l) > theirs(p) {
                    out.ask_peer.push(item(Some(theirs(l))));
                }
            }
            (None, None) => {}
        }
    }
}

/// Progress of a pass, for a terminal progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Orders under ranges already settled (equal, or listed).
    pub settled: i64,
    pub total: i64,
}

/// Where a reconciliation job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Finished,
    Failed,
}

/// A reconciliation pass as the API reports it: the one running, or the
/// last one (from this process, or recorded in the database).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ReconcileJob)]
pub struct Job {
    pub state: JobState,
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[schema(required = true)]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Orders under the ranges settled so far, and how many there are on
    /// the larger side (while running).
    #[schema(required = true)]
    pub progress: Option<JobProgress>,
    /// What the pass found and did (once finished).
    #[schema(required = true)]
    pub report: Option<Report>,
    /// Why the pass failed.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// A pass could not start: one is running (since then, if known).
#[derive(Debug, Clone, Copy)]
pub struct AlreadyRunning {
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// While running: how many orders are under the id ranges compared so far,
/// of how many on the larger side.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct JobProgress {
    /// Orders under the id ranges compared so far.
    pub settled_orders: i64,
    /// Orders on the larger side.
    pub orders: i64,
}

impl Job {
    /// A pass recorded in the database.
    pub fn from_run(run: &ReconcileRun) -> Job {
        Job {
            state: if run.error.is_some() {
                JobState::Failed
            } else {
                JobState::Finished
            },
            started_at: from_micros(run.started_at),
            finished_at: Some(from_micros(run.finished_at)),
            progress: None,
            report: serde_json::from_str(&run.report).ok(),
            error: run.error.clone(),
        }
    }
}

/// Runs reconciliation passes against the peers (at the store: every
/// warehouse, one after another), one pass at a time, whoever asks (the
/// periodic timer, the API, the admin page, the CLI), and keeps the state
/// of the current or last pass for the API.
pub struct Reconciler {
    engine: Engine,
    peers: Arc<Peers>,
    running: Arc<tokio::sync::Mutex<()>>,
    job: std::sync::Mutex<Option<Job>>,
    /// A pass started in the background ([`Reconciler::start`]).
    background: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Reconciler {
    /// A reconciler of `engine`'s database with `peers` (as they are when
    /// a pass starts).
    pub fn new(engine: Engine, peers: Arc<Peers>) -> Self {
        Self {
            engine,
            peers,
            running: Arc::default(),
            job: std::sync::Mutex::new(None),
            background: std::sync::Mutex::new(None),
        }
    }

    fn set_job(&self, f: impl FnOnce(&mut Option<Job>)) {
        f(&mut self.job.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The pass running now, or the last one this process ran.
    pub fn job(&self) -> Option<Job> {
        self.job.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Starts a pass in the background and returns it as it starts, or
    /// says since when one is running already. (Only the side that runs
    /// reconciliation may: callers check [`Command::Reconcile`] first.)
    pub fn start(self: &Arc<Self>) -> Result<Job, AlreadyRunning> {
        self.start_with(None)
    }

    /// [`Reconciler::start`] with one peer only (`None`: every peer).
    pub fn start_with(self: &Arc<Self>, only: Option<String>) -> Result<Job, AlreadyRunning> {
        debug_assert!(self.engine.role().may(Command::Reconcile));
        let guard = self
            .running
            .clone()
            .try_lock_owned()
            .map_err(|_| AlreadyRunning {
                since: self.job().map(|j| j.started_at),
            })?;
        let started = self.begin();
        let this = self.clone();
        let task = tokio::spawn(async move {
            // Recorded and logged inside; nobody waits for the result.
            let _ = this.run_locked(guard, only.as_deref(), &|_| {}).await;
        });
        *self.background.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(started)
    }

    /// Stops a pass running in the background (the service is stopping; the
    /// next pass repairs whatever this one had not).
    pub fn stop(&self) {
        if let Some(task) = self
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }

    /// One pass, now, recorded in the database (also when it fails).
    pub async fn run(
        &self,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Report, ReconcileError> {
        self.engine.role().check(Command::Reconcile)?;
        let guard = self
            .running
            .clone()
            .try_lock_owned()
            .map_err(|_| ReconcileError::Busy)?;
        self.begin();
        self.run_locked(guard, None, progress).await
    }

    /// Marks a pass as running from now.
    fn begin(&self) -> Job {
        let job = Job {
            state: JobState::Running,
            started_at: chrono::Utc::now(),
            finished_at: None,
            progress: Some(JobProgress {
                settled_orders: 0,
                orders: 0,
            }),
            report: None,
            error: None,
        };
        self.set_job(|j| *j = Some(job.clone()));
        job
    }

    async fn run_locked(
        &self,
        _guard: tokio::sync::OwnedMutexGuard<()>,
        only: Option<&str>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Report, ReconcileError> {
        let started_at = now_micros();
        let tracked = |p: Progress| {
            self.set_job(|j| {
                if let Some(j) = j {
                    j.progress = Some(JobProgress {
                        settled_orders: p.settled,
                        orders: p.total,
                    });
                }
            });
            progress(p);
        };
        let result = self.pass_each_peer(only, &tracked).await;
        let run = ReconcileRun {
            started_at,
            finished_at: now_micros(),
            compared: result.as_ref().map_or(0, |r| r.local_orders),
            differences: result.as_ref().map_or(0, |r| r.differences() as i64),
            repaired: result.as_ref().map_or(0, |r| r.repaired() as i64),
            report: result
                .as_ref()
                .ok()
                .and_then(|r| serde_json::to_string(r).ok())
                .unwrap_or_else(|| "{}".into()),
            error: result.as_ref().err().map(ToString::to_string),
        };
        // Recorded before the job says it ended, so whoever sees it ended
        // also finds it in the sync status.
        let job = Job::from_run(&run);
        let recorded = self.engine.record_reconcile(run).await;
        self.set_job(|j| *j = Some(job));
        recorded?;
        match &result {
            Ok(r) => tracing::info!(
                compared = r.local_orders,
                differences = r.differences(),
                repaired = r.repaired(),
                orphans = r.orphans,
                "reconciliation finished"
            ),
            Err(e) => tracing::warn!(error = %e, "reconciliation failed"),
        }
        result
    }

    /// One pass with every peer in turn, their reports added up. A peer
    /// that cannot be compared does not stop the others; the pass then
    /// fails, naming it.
    async fn pass_each_peer(
        &self,
        only: Option<&str>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Report, ReconcileError> {
        let links: Vec<_> = self
            .peers
            .links()
            .into_iter()
            .filter(|(name, _)| only.is_none_or(|o| o == name))
            .collect();
        if links.is_empty() {
            return Err(match only {
                Some(o) => ReconcileError::UnknownPeer(o.to_owned()),
                None => ReconcileError::NoPeer,
            });
        }
        let mut total = Report::default();
        let mut failures = Vec::new();
        for (name, link) in links {
            // A digest of a million orders takes a fraction of a second;
            // the answer still gets a generous minute to begin.
            let client = PeerClient::new(
                &link.url,
                link.secrets,
                Duration::from_secs(60),
                Duration::from_secs(60),
            )
            .map_err(|e| PeerError::Transport(e.to_string()))?;
            match self.pass(&name, &client, progress).await {
                Ok(r) => total.add(&r),
                Err(e) => {
                    tracing::warn!(peer = %name, error = %e, "reconciliation with this peer failed");
                    failures.push(format!("{name}: {e}"));
                }
            }
        }
        if failures.is_empty() {
            Ok(total)
        } else {
            Err(ReconcileError::Peers(failures.join("; ")))
        }
    }

    async fn pass(
        &self,
        peer: &str,
        client: &PeerClient,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Report, ReconcileError> {
        let role = self.engine.role();
        let mut report = Report::default();
        let mut repairs = Repairs::default();
        let mut frontier = vec![Range::all()];
        let mut settled = 0i64;
        let mut total = None;
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for chunk in frontier.chunks(MAX_RANGES) {
                let local = local_digests(&self.engine, peer, chunk).await?;
                let answer: DigestsAnswer = client
                    .post(
                        "/api/v1/sync/digests",
                        &DigestsRequest {
                            ranges: chunk.to_vec(),
                        },
                    )
                    .await?;
                if answer.digests.len() != chunk.len() {
                    return Err(PeerError::BadAnswer(
                        "digest count differs from range count".into(),
                    )
                    .into());
                }
                if total.is_none() {
                    report.local_orders = local[0].count;
                    report.peer_orders = answer.digests[0].count;
                    total = Some(local[0].count.max(answer.digests[0].count));
                }
                report.ranges_compared += chunk.len() as u64;
                for ((range, l), p) in chunk.iter().zip(&local).zip(&answer.digests) {
                    if l == p {
                        settled += l.count;
                        continue;
                    }
                    let children = range.children();
                    if (l.count <= LEAF_SIZE && p.count <= LEAF_SIZE) || children.is_empty() {
                        self.list_and_compare(peer, client, role, range, &mut repairs, &mut report)
                            .await?;
                        settled += l.count.max(p.count);
                    } else {
                        next.extend(children);
                    }
                }
                progress(Progress {
                    settled,
                    total: total.unwrap_or(0),
                });
            }
            frontier = next;
        }
        self.apply(peer, client, repairs, &mut report).await?;
        Ok(report)
    }

    async fn list_and_compare(
        &self,
        peer: &str,
        client: &PeerClient,
        role: Role,
        range: &Range,
        repairs: &mut Repairs,
        report: &mut Report,
    ) -> Result<(), ReconcileError> {
        report.ranges_listed += 1;
        let local = local_versions(&self.engine, peer, range, MAX_ROWS).await?;
        let answer: VersionsAnswer = client
            .post(
                "/api/v1/sync/versions",
                &VersionsRequest {
                    range: range.clone(),
                    limit: MAX_ROWS,
                },
            )
            .await?;
        compare(role, &local, &answer.rows, repairs);
        Ok(())
    }

    async fn apply(
        &self,
        peer: &str,
        client: &PeerClient,
        repairs: Repairs,
        report: &mut Report,
    ) -> Result<(), ReconcileError> {
        report.orphans = repairs.orphans;
        for chunk in repairs.resend_local.chunks(MAX_RESEND) {
            resend(&self.engine, peer, chunk).await?;
        }
        report.raised_locally = repairs
            .resend_local
            .iter()
            .filter(|i| i.above.is_some())
            .count() as u64;
        report.resent_to_peer = repairs.resend_local.len() as u64 - report.raised_locally;
        for chunk in repairs.ask_peer.chunks(MAX_RESEND) {
            let _: ResendAnswer = client
                .post(
                    "/api/v1/sync/resend",
                    &ResendRequest {
                        items: chunk.to_vec(),
                    },
                )
                .await?;
        }
        report.requested_from_peer = repairs.ask_peer.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_uuid_text() {
        let root = Range::all();
        let kids = root.children();
        assert_eq!(kids.len(), 16);
        assert_eq!(
            kids[0],
            Range {
                lo: "0".into(),
                hi: "1".into()
            }
        );
        assert_eq!(
            kids[9],
            Range {
                lo: "9".into(),
                hi: ":".into()
            }
        );
        assert_eq!(
            kids[15],
            Range {
                lo: "f".into(),
                hi: "g".into()
            }
        );
        let at_hyphen = Range::prefix("0193a2b4".into()).children();
        assert_eq!(
            at_hyphen,
            vec![Range {
                lo: "0193a2b4-".into(),
                hi: "0193a2b4.".into()
            }]
        );
        let id = OrderId::new().to_string();
        let mut r = Range::all();
        for _ in 0..36 {
            assert!(
                r.lo.as_str() <= id.as_str() && id.as_str() < r.hi.as_str(),
                "{r:?} must hold {id}"
            );
            match r
                .children()
                .into_iter()
                .find(|c| c.lo.as_str() <= id.as_str() && id.as_str() < c.hi.as_str())
            {
                Some(c) => r = c,
                None => break,
            }
        }
        assert_eq!(r.lo, id, "descends to the single id");
    }

    fn v(id: &OrderId, s: i64, w: i64) -> Versions {
        Versions {
            id: id.to_string(),
            store_version: s,
            warehouse_version: w,
        }
    }

    #[test]
    fn store_side_repairs() {
        let (a, b, c, d, e) = (
            OrderId::new(),
            OrderId::new(),
            OrderId::new(),
            OrderId::new(),
            OrderId::new(),
        );
        let local = [v(&a, 3, 2), v(&b, 2, 1), v(&c, 1, 1), v(&d, 2, 5)];
        let peer = [v(&b, 1, 1), v(&c, 4, 3), v(&d, 2, 3), v(&e, 1, 1)];
        let mut r = Repairs::default();
        compare(Role::Store, &local, &peer, &mut r);
        let ids = |items: &[ResendItem]| items.iter().map(|i| (i.id, i.above)).collect::<Vec<_>>();
        let mut resend = ids(&r.resend_local);
        resend.sort();
        let mut expect = vec![(a, None), (b, None), (c, Some(4))];
        expect.sort();
        assert_eq!(
            resend, expect,
            "missing, older at peer, and rolled back here"
        );
        let mut ask = ids(&r.ask_peer);
        ask.sort();
        let mut expect = vec![(c, None), (d, Some(5))];
        expect.sort();
        assert_eq!(ask, expect, "newer there, and rolled back there");
        assert_eq!(r.orphans, 1, "e exists only at the warehouse");
    }

    #[test]
    fn warehouse_side_asks_the_store_for_missing_orders() {
        let a = OrderId::new();
        let mut r = Repairs::default();
        compare(Role::Warehouse, &[], &[v(&a, 1, 0)], &mut r);
        assert_eq!(r.ask_peer.len(), 1);
        let mut r = Repairs::default();
        compare(Role::Warehouse, &[v(&a, 1, 1)], &[], &mut r);
        assert_eq!(r.orphans, 1);
    }
}
