//! `/admin/sync`: how delivery to the peer is doing (outbox depth, oldest
//! pending change, breaker, last delivery) and the dead letters, each with a
//! replay button, plus "replay all". Replay is the same storage call the API
//! and the CLI use, in one transaction, then the relay is woken.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;

use super::flash::{self, Notice};
use super::format;
use super::orders::{ListRow, list_row};
use super::session::{AdminUser, Fields};
use super::{AdminError, AdminResult, Chrome, render};
use crate::domain::OrderId;
use crate::domain::delivery::SyncState;
use crate::domain::role::Command;
use crate::engine::{ListFilter, ReplaySelection};
use crate::http::AppState;
use crate::storage::now_micros;
use crate::sync::breaker::BreakerState;
use crate::sync::reconcile::JobState;

const PATH: &str = "/admin/sync";

/// Dead letters listed on the page (replay all covers every one).
const DEAD_SHOWN: u32 = 200;

pub struct DeadLetter {
    pub row: ListRow,
    pub last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "sync.html")]
struct SyncPage {
    chrome: Chrome,
    peer: &'static str,
    pending: i64,
    dead: i64,
    oldest_pending: Option<String>,
    breaker: &'static str,
    breaker_class: &'static str,
    breaker_help: &'static str,
    last_delivered: Option<String>,
    letters: Vec<DeadLetter>,
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

/// `GET /admin/sync`.
pub async fn page(State(state): State<AppState>, user: AdminUser) -> AdminResult {
    let state = &state;
    let user = &user;
    let engine = &state.engine;
    let s = engine.outbox_status().await?;
    let now = now_micros();
    let dead = engine
        .list(&ListFilter {
            sync_state: Some(SyncState::Dead.as_str().to_owned()),
            limit: DEAD_SHOWN,
            ..Default::default()
        })
        .await?;
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
    let (breaker, breaker_class, breaker_help) = match state.peers.worst() {
        BreakerState::Closed => ("Closed", "ok", "deliveries flow normally"),
        BreakerState::Open => (
            "Open",
            "bad",
            "the peer failed repeatedly; deliveries pause before a probe",
        ),
        BreakerState::HalfOpen => ("Half open", "warn", "a probe delivery is testing the peer"),
    };
    let page = SyncPage {
        chrome: Chrome::new(engine.role(), user, "Sync", "sync"),
        peer: engine.role().peer().as_str(),
        pending: s.pending,
        dead: s.dead,
        oldest_pending: s
            .oldest_pending_at
            .map(|t| format::age((now - t) / 1_000_000)),
        breaker,
        breaker_class,
        breaker_help,
        last_delivered: s.last_delivered_at.map(format::micros),
        letters: dead
            .iter()
            .map(|v| DeadLetter {
                row: list_row(v),
                last_error: v.sync.last_error.clone(),
            })
            .collect(),
        reconcile,
        reconcile_running,
        can_reconcile: engine.role().may(Command::Reconcile),
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
