//! `/admin/sync`: how delivery to the peer is doing and why. Counts
//! (pending, failing, dead letters, oldest waiting change, breaker, last
//! delivery); the changes waiting and failing, each with its order, last
//! error and next try; the dead letters, each with why it stopped, when,
//! and a replay button, plus "replay all"; charts of the last hour and day
//! ([`super::charts`]). At the store, `?warehouse=NAME` narrows all of it
//! to one warehouse. Replay is the same storage call the API and the CLI
//! use, in one transaction, then the relay is woken.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;

use super::charts::{self, ChartView, Window};
use super::flash::{self, Notice};
use super::format;
use super::session::{AdminUser, Fields};
use super::{AdminError, AdminResult, Chrome, render};
use crate::domain::OrderId;
use crate::domain::Role;
use crate::domain::role::Command;
use crate::engine::{OutboxStatus, Queued, ReplaySelection};
use crate::http::AppState;
use crate::storage::now_micros;
use crate::sync::breaker::BreakerState;
use crate::sync::reconcile::JobState;

const PATH: &str = "/admin/sync";

/// Rows listed in each table (the rest are counted).
const LISTED: i64 = 20;

/// One outbox row on the page.
pub struct QueueRow {
    /// The row's order id (a part's, at the store): what a replay names.
    pub id: String,
    /// The order page it links to (a part's order), if the order exists.
    pub link: Option<String>,
    pub number: String,
    pub customer: String,
    pub warehouse: String,
    /// `Pending` or `Failing` (people's words for the states).
    pub state: &'static str,
    pub state_class: &'static str,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// When it is tried next: the clock and how far from now.
    pub next: (String, String),
    /// How long the change has waited.
    pub waiting: String,
    /// For a dead letter: when it became one (its last attempt).
    pub dead_at: Option<(String, String)>,
}

/// A period's charts.
pub struct Period {
    pub key: &'static str,
    pub heading: &'static str,
    pub charts: Vec<ChartView>,
}

/// A choice of the warehouse selector.
pub struct Choice {
    pub label: String,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "sync.html")]
struct SyncPage {
    chrome: Chrome,
    heading: String,
    /// `store`, `warehouse`, or `warehouse eu`: whom changes go to.
    peer: String,
    /// At the store with several warehouses: all of them, or one.
    choices: Vec<Choice>,
    /// Whether rows say which warehouse they go to (the store).
    per_warehouse: bool,
    pending: i64,
    failing: i64,
    dead: i64,
    oldest_pending: Option<String>,
    breaker: &'static str,
    breaker_class: &'static str,
    breaker_help: String,
    last_delivered: Option<(String, String)>,
    waiting: Vec<QueueRow>,
    waiting_more: i64,
    letters: Vec<QueueRow>,
    letters_more: i64,
    periods: Vec<Period>,
    /// The last reconciliation pass recorded in this database.
    reconcile: Option<LastReconcile>,
    /// The pass running now: how far it is.
    reconcile_running: Option<String>,
    /// Reconciliation runs from the store; the warehouse only answers it.
    can_reconcile: bool,
}

pub struct LastReconcile {
    pub finished: String,
    pub compared: i64,
    pub differences: i64,
    pub repaired: i64,
    pub error: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    /// At the store: one warehouse's name.
    warehouse: Option<String>,
}

/// What the breaker means for an operator. With nothing waiting, its state
/// says nothing about now (after every change went dead it stays half
/// open, waiting for a change to probe with): the page says the relay is
/// idle, and what the next change will do.
pub fn breaker_view(
    state: BreakerState,
    pending: i64,
    peer: &str,
) -> (&'static str, &'static str, String) {
    match (state, pending) {
        (BreakerState::Closed, 0) => (
            "Closed",
            "ok",
            "nothing waiting; deliveries flow normally".into(),
        ),
        (_, 0) => (
            "Idle",
            "warn",
            format!(
                "nothing waiting; the {peer} failed last time, so the next change goes first as a probe"
            ),
        ),
        (BreakerState::Closed, _) => ("Closed", "ok", "deliveries flow normally".into()),
        (BreakerState::Open, _) => (
            "Open",
            "bad",
            format!("the {peer} failed repeatedly; sending pauses, then one probe is tried"),
        ),
        (BreakerState::HalfOpen, _) => (
            "Half open",
            "warn",
            format!("a probe delivery is testing the {peer}"),
        ),
    }
}

fn queue_row(q: Queued, now: i64, dead: bool) -> QueueRow {
    let state = if q.attempts > 0 { "Failing" } else { "Pending" };
    let next = if dead {
        ("–".to_owned(), String::new())
    } else if q.lease_until > now {
        ("sending now".to_owned(), String::new())
    } else if q.next_attempt_at <= now {
        ("due now".to_owned(), String::new())
    } else {
        format::clock_and_relative(q.next_attempt_at, now)
    };
    QueueRow {
        link: q.parent_id.clone(),
        number: q.number.unwrap_or_else(|| q.order_id.clone()),
        customer: q.customer.unwrap_or_default(),
        warehouse: q.peer,
        state: if dead { "Dead letter" } else { state },
        state_class: match (dead, q.attempts) {
            (true, _) => "sync-dead",
            (false, 0) => "sync-pending",
            _ => "sync-failing",
        },
        attempts: q.attempts,
        last_error: q.last_error,
        next,
        waiting: format::age((now - q.enqueued_at) / 1_000_000),
        dead_at: q
            .last_attempt_at
            .filter(|_| dead)
            .map(|t| format::clock_and_relative(t, now)),
        id: q.order_id,
    }
}

/// `GET /admin/sync` (`?warehouse=NAME` at the store for one warehouse).
pub async fn page(
    State(state): State<AppState>,
    user: AdminUser,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult {
    let q = q.ok().map(|Query(q)| q);
    let state = &state;
    let user = &user;
    let engine = &state.engine;
    let role = engine.role();
    let now = now_micros();

    // Which peer the page is about: one warehouse, or every peer.
    let names: Vec<String> = match role {
        Role::Store => engine
            .warehouses()
            .await?
            .into_iter()
            .map(|w| w.name.to_string())
            .collect(),
        Role::Warehouse => vec![engine.peer().to_owned()],
    };
    let asked = q
        .as_ref()
        .and_then(|q| q.warehouse.as_deref())
        .filter(|w| !w.is_empty());
    let selected: Option<&str> = match asked {
        Some(w) if role == Role::Store && names.iter().any(|n| n == w) => Some(w),
        Some(w) if role == Role::Store => {
            return Err(AdminError::BadRequest(format!(
                "There is no warehouse “{w}” here. Open the sync page from the menu and pick one of the warehouses it lists."
            )));
        }
        Some(_) => {
            return Err(AdminError::BadRequest(
                "A warehouse syncs with the store only, so there is no warehouse to choose. Open the sync page from the menu."
                    .into(),
            ));
        }
        None => None,
    };
    let choices = if role == Role::Store && names.len() > 1 {
        std::iter::once(Choice {
            label: "All warehouses".into(),
            href: "/admin/sync".into(),
            current: selected.is_none(),
        })
        .chain(names.iter().map(|n| Choice {
            label: n.clone(),
            href: format!("/admin/sync?warehouse={n}"),
            current: selected == Some(n.as_str()),
        }))
        .collect()
    } else {
        Vec::new()
    };

    // One pass over the outbox for every peer; the page's totals are
    // summed from it.
    let by_peer = engine.outbox_status_by_peer().await?;
    let s = match selected {
        Some(w) => by_peer.get(w).cloned().unwrap_or_default(),
        None => by_peer
            .values()
            .fold(OutboxStatus::default(), |mut sum, o| {
                sum.pending += o.pending;
                sum.dead += o.dead;
                sum.oldest_pending_at = match (sum.oldest_pending_at, o.oldest_pending_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                // `None` (never) is less than any time.
                sum.last_delivered_at = sum.last_delivered_at.max(o.last_delivered_at);
                sum
            }),
    };
    let failing = engine.failing_count(selected).await?;
    // The breaker that matters: the selected warehouse's; else the worst
    // of those with changes waiting (a warehouse with nothing to send is
    // not holding anything up), or of all when nothing waits anywhere.
    let breaker_state = match selected {
        Some(w) => state.peers.state(w),
        None => {
            let worst = |list: &mut dyn Iterator<Item = &String>| {
                list.map(|n| state.peers.state(n))
                    .max_by_key(|b| b.as_gauge())
                    .unwrap_or(BreakerState::Closed)
            };
            let waiting: Vec<&String> = names
                .iter()
                .filter(|n| by_peer.get(n.as_str()).is_some_and(|o| o.pending > 0))
                .collect();
            if waiting.is_empty() {
                worst(&mut names.iter())
            } else {
                worst(&mut waiting.into_iter())
            }
        }
    };
    let peer = match (role, selected) {
        (Role::Warehouse, _) => "store".to_owned(),
        (Role::Store, Some(w)) => format!("warehouse {w}"),
        (Role::Store, None) if names.len() > 1 => "warehouses".to_owned(),
        (Role::Store, None) => "warehouse".to_owned(),
    };
    let (breaker, breaker_class, breaker_help) = breaker_view(breaker_state, s.pending, &peer);
    let heading = match (role, selected) {
        (Role::Warehouse, _) => "Sync with the store".to_owned(),
        (Role::Store, Some(w)) => format!("Sync with the warehouse {w}"),
        (Role::Store, None) if names.len() > 1 => "Sync with the warehouses".to_owned(),
        (Role::Store, None) => "Sync with the warehouse".to_owned(),
    };

    let waiting: Vec<QueueRow> = engine
        .waiting(selected, LISTED)
        .await?
        .into_iter()
        .map(|q| queue_row(q, now, false))
        .collect();
    let letters: Vec<QueueRow> = engine
        .dead_letters(selected, LISTED)
        .await?
        .into_iter()
        .map(|q| queue_row(q, now, true))
        .collect();
    let history = engine
        .sync_history(selected, charts::DAY.start(now))
        .await?;
    let periods = [charts::HOUR, charts::DAY]
        .iter()
        .map(|w: &Window| Period {
            key: w.key,
            heading: w.heading,
            charts: charts::charts(w, &history, now),
        })
        .collect();

    let reconcile_running = state
        .reconciler
        .job()
        .filter(|j| j.state == JobState::Running)
        .map(|j| match j.progress {
            Some(p) if p.orders > 0 => format!(
                "A pass is running (since {}): {} of {} orders compared so far.",
                format::time(j.started_at),
                p.settled_orders,
                p.orders
            ),
            _ => format!("A pass is running (since {}).", format::time(j.started_at)),
        });
    let reconcile = engine.last_reconcile().await?.map(|r| LastReconcile {
        finished: format::micros(r.finished_at),
        compared: r.compared,
        differences: r.differences,
        repaired: r.repaired,
        error: r.error,
    });
    let page = SyncPage {
        chrome: Chrome::new(role, user, "Sync", "sync"),
        heading,
        peer,
        choices,
        per_warehouse: role == Role::Store,
        pending: s.pending,
        failing,
        dead: s.dead,
        oldest_pending: s
            .oldest_pending_at
            .map(|t| format::age((now - t) / 1_000_000)),
        breaker,
        breaker_class,
        breaker_help,
        last_delivered: s
            .last_delivered_at
            .map(|t| format::clock_and_relative(t, now)),
        waiting_more: (s.pending - waiting.len() as i64).max(0),
        waiting,
        letters_more: (s.dead - letters.len() as i64).max(0),
        letters,
        periods,
        reconcile,
        reconcile_running,
        can_reconcile: role.may(Command::Reconcile),
    };
    render(StatusCode::OK, &page)
}

/// `POST /admin/sync/reconcile`: starts a reconciliation pass in the
/// background (store only); the page shows it running, then its outcome.
pub async fn reconcile(
    State(state): State<AppState>,
    user: AdminUser,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    if let Err(e) = state.engine.role().check(Command::Reconcile) {
        return Err(AdminError::BadRequest(format!("Not on this side: {e}.")));
    }
    match state.reconciler.start() {
        Ok(_) => {
            tracing::info!(user = %user.username, "reconciliation started from admin");
            Ok(flash::see(&user, PATH, Notice::ReconcileStarted))
        }
        Err(_) => Ok(flash::see(&user, PATH, Notice::ReconcileRunning)),
    }
}

/// `POST /admin/sync/replay` with `id` (one dead letter) or `all`.
/// With `back=order` it returns to that order's page (or to `order`'s,
/// for a part of a store order).
pub async fn replay(State(state): State<AppState>, user: AdminUser, fields: Fields) -> AdminResult {
    user.check_csrf(&fields)?;
    let (which, one) = if fields.get("all").is_some() {
        (ReplaySelection::All, None)
    } else {
        let id = OrderId::parse(fields.text("id"))
            .ok_or_else(|| AdminError::BadRequest("No dead letter was chosen.".into()))?;
        (ReplaySelection::Ids(vec![id]), Some(id))
    };
    let n = state.engine.replay_dead_letters(which, false).await?;
    tracing::info!(user = %user.username, replayed = n, "dead letters replayed from admin");
    if let (Some(id), "order") = (one, fields.text("back")) {
        // A later part of a store order goes back to its order's page.
        let page = OrderId::parse(fields.text("order")).unwrap_or(id);
        return Ok(flash::see(
            &user,
            &format!("/admin/orders/{page}"),
            Notice::Replayed,
        ));
    }
    Ok(flash::see(&user, PATH, Notice::DeadLettersReplayed(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_breaker_is_not_shown_half_open() {
        assert_eq!(breaker_view(BreakerState::HalfOpen, 0, "store").0, "Idle");
        assert_eq!(breaker_view(BreakerState::Open, 0, "store").0, "Idle");
        assert_eq!(
            breaker_view(BreakerState::HalfOpen, 3, "store").0,
            "Half open"
        );
        assert_eq!(breaker_view(BreakerState::Open, 3, "store").1, "bad");
        assert_eq!(breaker_view(BreakerState::Closed, 0, "store").0, "Closed");
        assert!(
            breaker_view(BreakerState::Open, 0, "warehouse eu")
                .2
                .contains("warehouse eu")
        );
    }
}
