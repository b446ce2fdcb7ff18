//! Post/redirect/get: every admin form answers its POST with a redirect
//! (303) to the page that shows how it went, so reloading that page reads
//! it again and never sends the form twice. What the page then says comes
//! one of two ways, both read once:
//!
//! - **A notice** (it worked): the redirect sets the cookie
//!   `{role}_admin_notice` (`Path=/admin`, `HttpOnly`, `SameSite=Strict`,
//!   a minute at most) naming one [`Notice`]: a known key, and for a few a
//!   number or a warehouse name, parsed back strictly, so a cookie can only
//!   pick one of the texts here and never puts words of its own on a page.
//!   The next admin page shows it above its content, and the same response
//!   deletes the cookie ([`clear_notice`], from the layer every admin
//!   response passes), so a reload shows the page without it and the URL
//!   never carries it. The name holds the role, as the session cookie's
//!   does: browsers share cookies between the ports of one host.
//! - **A kept form** (it did not: a field is wrong, or the order's state
//!   refuses it): what was typed and what is wrong, as a [`Flash`], are
//!   kept on the session's row (JSON in `admin_sessions.flash`) for the one
//!   page the redirect names. That page takes it (compare-and-clear, so a
//!   reload or a second tab does not see it again), shows the form as it
//!   was with its errors, and answers with the failure's status (422, 409).
//!   It lives in the database, not in this process's memory, because
//!   replicas share sessions and the GET may reach another one. A flash
//!   older than [`FLASH_TTL`] or for another page is ignored; a newer form
//!   replaces it. A secret typed into a form (a warehouse's) is never kept:
//!   the form comes back without it, as it always did.
//!
//! Two forms still answer on their POST: signing in (there is no session
//! to keep anything on yet) and a new API token, which is shown on that
//! answer only, because the token must never be stored in clear, not even
//! for one read.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::AdminResult;
use super::session::{AdminUser, cookie, is_https};
use crate::domain::Role;
use crate::domain::warehouse::WarehouseName;
use crate::http::AppState;
use crate::storage::now_micros;

/// How long a kept form waits for the page its redirect names: the browser
/// follows at once; older ones are stale.
pub const FLASH_TTL: Duration = Duration::from_secs(120);

/// A notice no page showed (the browser never followed) expires on its own.
const NOTICE_MAX_AGE: u64 = 60;

/// The notice cookie's name for this role.
pub fn notice_cookie(role: Role) -> String {
    format!("{}_admin_notice", role.as_str())
}

/// What an action that worked says on the next page, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Created,
    Saved,
    CancelRequested,
    Picking,
    Packed,
    Shipped,
    OnHold,
    Released,
    /// One order's delivery restarted (its page).
    Replayed,
    Routed,
    RoutedSome,
    RouteNothing,
    NothingToRoute,
    Parcel,
    StoreHoldPlaced,
    StoreHoldReleased,
    HoldPlaced,
    HoldReleased,
    Rejected,
    TokenRevoked,
    ReconcileStarted,
    ReconcileRunning,
    /// Dead letters replayed from the sync page: how many.
    DeadLettersReplayed(u64),
    WarehouseAdded(WarehouseName),
    WarehouseSaved(WarehouseName),
}

impl Notice {
    /// The cookie's value: the key, then `.` and the argument if any.
    fn cookie_value(&self) -> String {
        let key = match self {
            Notice::Created => "created",
            Notice::Saved => "saved",
            Notice::CancelRequested => "cancel_requested",
            Notice::Picking => "picking",
            Notice::Packed => "packed",
            Notice::Shipped => "shipped",
            Notice::OnHold => "on_hold",
            Notice::Released => "released",
            Notice::Replayed => "replayed",
            Notice::Routed => "routed",
            Notice::RoutedSome => "routed_some",
            Notice::RouteNothing => "route_nothing",
            Notice::NothingToRoute => "nothing_to_route",
            Notice::Parcel => "parcel",
            Notice::StoreHoldPlaced => "store_hold_placed",
            Notice::StoreHoldReleased => "store_hold_released",
            Notice::HoldPlaced => "hold_placed",
            Notice::HoldReleased => "hold_released",
            Notice::Rejected => "rejected",
            Notice::TokenRevoked => "token_revoked",
            Notice::ReconcileStarted => "reconcile_started",
            Notice::ReconcileRunning => "reconcile_running",
            Notice::DeadLettersReplayed(n) => return format!("dead_letters_replayed.{n}"),
            Notice::WarehouseAdded(w) => return format!("warehouse_added.{}", w.as_str()),
            Notice::WarehouseSaved(w) => return format!("warehouse_saved.{}", w.as_str()),
        };
        key.to_owned()
    }

    /// A cookie's value back into a notice: only the keys above, each
    /// argument as strictly as it was made; anything else is no notice.
    pub fn parse(v: &str) -> Option<Notice> {
        let (key, arg) = match v.split_once('.') {
            Some((k, a)) => (k, Some(a)),
            None => (v, None),
        };
        let name = || arg.and_then(|a| WarehouseName::parse("name", a).ok());
        let plain = |n: Notice| arg.is_none().then_some(n);
        match key {
            "created" => plain(Notice::Created),
            "saved" => plain(Notice::Saved),
            "cancel_requested" => plain(Notice::CancelRequested),
            "picking" => plain(Notice::Picking),
            "packed" => plain(Notice::Packed),
            "shipped" => plain(Notice::Shipped),
            "on_hold" => plain(Notice::OnHold),
            "released" => plain(Notice::Released),
            "replayed" => plain(Notice::Replayed),
            "routed" => plain(Notice::Routed),
            "routed_some" => plain(Notice::RoutedSome),
            "route_nothing" => plain(Notice::RouteNothing),
            "nothing_to_route" => plain(Notice::NothingToRoute),
            "parcel" => plain(Notice::Parcel),
            "store_hold_placed" => plain(Notice::StoreHoldPlaced),
            "store_hold_released" => plain(Notice::StoreHoldReleased),
            "hold_placed" => plain(Notice::HoldPlaced),
            "hold_released" => plain(Notice::HoldReleased),
            "rejected" => plain(Notice::Rejected),
            "token_revoked" => plain(Notice::TokenRevoked),
            "reconcile_started" => plain(Notice::ReconcileStarted),
            "reconcile_running" => plain(Notice::ReconcileRunning),
            "dead_letters_replayed" => arg
                .filter(|a| a.len() <= 18 && a.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|a| a.parse().ok())
                .map(Notice::DeadLettersReplayed),
            "warehouse_added" => name().map(Notice::WarehouseAdded),
            "warehouse_saved" => name().map(Notice::WarehouseSaved),
            _ => None,
        }
    }

    /// What the page says.
    pub fn text(&self) -> String {
        let s = match self {
            Notice::Created => "Order created. It is on its way to the warehouse.",
            Notice::Saved => "Changes saved.",
            Notice::CancelRequested => "Cancellation requested; the warehouse will answer it.",
            Notice::Picking => "Picking started.",
            Notice::Packed => "Marked as packed.",
            Notice::Shipped => "Marked as shipped.",
            Notice::OnHold => "Put on hold.",
            Notice::Released => "Hold released.",
            Notice::Replayed => "Delivery restarted.",
            Notice::Routed => "Every waiting line is routed now, and on its way to its warehouse.",
            Notice::RoutedSome => {
                "Some waiting lines were routed; the others still wait, with the reason below."
            }
            Notice::RouteNothing => {
                "No warehouse takes the waiting lines yet, so nothing changed. Add or change a warehouse, then route again."
            }
            Notice::NothingToRoute => "No line was waiting to be routed.",
            Notice::Parcel => "Parcel shipped.",
            Notice::StoreHoldPlaced => {
                "Hold placed. Each warehouse holds its part (nothing is picked, packed or shipped) until you release it here."
            }
            Notice::StoreHoldReleased => {
                "Hold released. A part with no other active hold goes back to where it was at its warehouse."
            }
            Notice::HoldPlaced => {
                "Hold placed. Nothing is picked, packed or shipped until it is released."
            }
            Notice::HoldReleased => "Hold released.",
            Notice::Rejected => "Lines rejected; the store will route them to another warehouse.",
            Notice::TokenRevoked => "Token revoked: it no longer opens the API.",
            Notice::ReconcileStarted => {
                "Reconciliation started; reload this page to see how it went."
            }
            Notice::ReconcileRunning => {
                "A reconciliation was already running; reload this page to see how it went."
            }
            Notice::DeadLettersReplayed(0) => "Nothing to replay: no matching dead letter.",
            Notice::DeadLettersReplayed(1) => "1 dead letter is being delivered again.",
            Notice::DeadLettersReplayed(n) => {
                return format!("{n} dead letters are being delivered again.");
            }
            Notice::WarehouseAdded(w) => {
                return format!("Warehouse {w} added; orders can be routed to it from now on.");
            }
            Notice::WarehouseSaved(w) => return format!("Warehouse {w} saved."),
        };
        s.to_owned()
    }
}

/// A `Set-Cookie` for the notice cookie; `max_age` 0 deletes it.
fn notice_header(role: Role, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!(
        "{}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        notice_cookie(role)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A redirect (303) to `to` whose page shows `notice` once.
pub fn see(user: &AdminUser, to: &str, notice: Notice) -> Response {
    let mut res = Redirect::to(to).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        notice_header(
            user.role,
            &notice.cookie_value(),
            NOTICE_MAX_AGE,
            user.https,
        ),
    );
    res
}

/// Whether a request carries a notice cookie: `Some(https)` if it does
/// (a deleting cookie must be `Secure` like the one it deletes).
pub fn carried_notice(role: Role, request: &HeaderMap) -> Option<bool> {
    cookie(request, &notice_cookie(role)).map(|_| is_https(request))
}

/// Deletes the notice cookie on a page that showed it: called for every
/// admin response, with [`carried_notice`] of its request. A redirect
/// passes the notice on (its page shows it) or sets a new one; any other
/// HTML page has shown it (or, an error page, had no room for it).
pub fn clear_notice(role: Role, carried: Option<bool>, res: &mut Response) {
    let Some(https) = carried else {
        return;
    };
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html && !res.status().is_redirection() {
        res.headers_mut()
            .append(header::SET_COOKIE, notice_header(role, "", 0, https));
    }
}

/// A form that failed, kept for one read by the page that shows it again:
/// its values as typed, its errors by field and above the form, and the
/// status the page answers with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Flash {
    /// When it was kept (microseconds).
    at: i64,
    /// The path of the page that shows it.
    page: String,
    status: u16,
    /// Which of the page's forms failed, where it has several (the
    /// warehouses page: `add` or a warehouse's name).
    #[serde(default)]
    pub form: String,
    /// Said above the page.
    #[serde(default)]
    pub error: Option<String>,
    /// By field name, as the page places them.
    #[serde(default)]
    pub errors: HashMap<String, String>,
    /// What was typed, by field name, in the order sent.
    #[serde(default)]
    pub values: Vec<(String, String)>,
}

impl Flash {
    /// A failure that the page will answer with `status`.
    pub fn new(status: StatusCode) -> Flash {
        Flash {
            status: status.as_u16(),
            ..Default::default()
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
    }

    /// The first value typed for `name`, or "".
    pub fn value(&self, name: &str) -> &str {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The values as a map (the last of a repeated name wins).
    pub fn value_map(&self) -> HashMap<String, String> {
        self.values.iter().cloned().collect()
    }

    /// Keeps this on the session for the page at `page` (a path under
    /// `/admin/`) and answers with a redirect (303) there.
    pub async fn keep(mut self, state: &AppState, user: &AdminUser, page: &str) -> AdminResult {
        self.at = now_micros();
        self.page = page.to_owned();
        let json = serde_json::to_string(&self).map_err(|e| {
            tracing::error!(error = %e, "admin flash not serialisable");
            super::AdminError::Internal
        })?;
        state.engine.keep_admin_flash(&user.session, json).await?;
        Ok(Redirect::to(page).into_response())
    }
}

/// The form kept for the page at `page`, if one is (and is fresh): taken
/// off the session, so that only this read shows it.
pub async fn take(state: &AppState, user: &AdminUser, page: &str) -> AdminResult<Option<Flash>> {
    let Some(raw) = user.flash.as_deref() else {
        return Ok(None);
    };
    let Ok(flash) = serde_json::from_str::<Flash>(raw) else {
        return Ok(None);
    };
    let fresh = now_micros() - flash.at <= FLASH_TTL.as_micros() as i64;
    if flash.page != page || !fresh {
        return Ok(None);
    }
    let mine = state
        .engine
        .take_admin_flash(&user.session, raw.to_owned())
        .await?;
    Ok(mine.then_some(flash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every() -> Vec<Notice> {
        let w = WarehouseName::parse("name", "eu-2").expect("name");
        vec![
            Notice::Created,
            Notice::Saved,
            Notice::CancelRequested,
            Notice::Picking,
            Notice::Packed,
            Notice::Shipped,
            Notice::OnHold,
            Notice::Released,
            Notice::Replayed,
            Notice::Routed,
            Notice::RoutedSome,
            Notice::RouteNothing,
            Notice::NothingToRoute,
            Notice::Parcel,
            Notice::StoreHoldPlaced,
            Notice::StoreHoldReleased,
            Notice::HoldPlaced,
            Notice::HoldReleased,
            Notice::Rejected,
            Notice::TokenRevoked,
            Notice::ReconcileStarted,
            Notice::ReconcileRunning,
            Notice::DeadLettersReplayed(0),
            Notice::DeadLettersReplayed(12),
            Notice::WarehouseAdded(w.clone()),
            Notice::WarehouseSaved(w),
        ]
    }

    #[test]
    fn notices_round_trip_through_their_cookie() {
        for n in every() {
            let v = n.cookie_value();
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "{v} is not a plain cookie value"
            );
            assert_eq!(Notice::parse(&v), Some(n.clone()), "{v}");
            assert!(!n.text().is_empty());
        }
    }

    /// A cookie picks a text; it never brings one.
    #[test]
    fn unknown_or_malformed_notices_are_none() {
        for v in [
            "",
            "nope",
            "created.extra",
            "warehouse_added",
            "warehouse_added.<script>",
            "warehouse_saved.EU",
            "dead_letters_replayed",
            "dead_letters_replayed.-1",
            "dead_letters_replayed.1e3",
            "dead_letters_replayed.99999999999999999999",
        ] {
            assert_eq!(Notice::parse(v), None, "{v}");
        }
    }

    #[test]
    fn notice_cookie_flags() {
        let h = notice_header(Role::Store, "saved", 60, true);
        let h = h.to_str().unwrap_or("");
        for part in [
            "store_admin_notice=saved",
            "Path=/admin",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(h.contains(part), "{h} lacks {part}");
        }
    }

    #[test]
    fn a_flash_reads_back() {
        let mut f = Flash::new(StatusCode::CONFLICT);
        f.values = vec![("reason".into(), "typed".into())];
        f.errors.insert("reason".into(), "is required".into());
        let back: Flash =
            serde_json::from_str(&serde_json::to_string(&f).expect("json")).expect("parse");
        assert_eq!(back.status(), StatusCode::CONFLICT);
        assert_eq!(back.value("reason"), "typed");
        assert_eq!(back.value("other"), "");
        assert_eq!(back.errors["reason"], "is required");
    }
}
