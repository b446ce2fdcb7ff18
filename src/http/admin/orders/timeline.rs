//! The two timelines of an order's page, as people read them: the
//! deliveries to the other side (identical failures in a row folded into
//! one row with a count, the moment delivery stopped shown as an event of
//! its own) and the audit trail (each change as `field: old → new`, objects
//! and lists summarised, their full value a click away). Times are to the
//! second, each with how long ago it was.

use serde_json::Value;

use super::*;
use crate::domain::diff::Change;
use crate::engine::{Attempt, AuditEntry};

/// A moment as the page shows it.
pub struct Moment {
    /// To the second (`14:53:07 UTC`, with the date when not today).
    pub text: String,
    /// `3 min ago`, `in 12 s`.
    pub ago: String,
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
}

impl Moment {
    pub fn new(t: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) -> Moment {
        Moment {
            text: format::clock(t, now),
            ago: format::relative(t, now),
            iso: t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    pub fn micros(us: i64, now: chrono::DateTime<Utc>) -> Moment {
        Moment::new(crate::storage::from_micros(us), now)
    }
}

/// One row of a delivery timeline: one attempt, several identical ones in
/// a row, or the moment the order's delivery stopped.
pub struct DeliveryRow {
    /// The event "delivery stopped" (a dead letter) rather than attempts.
    pub stopped: bool,
    pub outcome: String,
    pub detail: Option<String>,
    /// How many attempts the row stands for.
    pub count: usize,
    /// The newest of them (the only one when `count` is 1).
    pub last: Moment,
    /// The oldest, when there are several.
    pub first: Option<Moment>,
    pub next_retry: Option<Moment>,
}

/// The deliveries of one order (or, at the store, of one part) to one peer.
pub struct Deliveries {
    /// The store: the warehouse the part goes to.
    pub warehouse: Option<String>,
    /// The store: that warehouse (and which part, when there are several).
    pub label: Option<String>,
    /// Newest first.
    pub rows: Vec<DeliveryRow>,
}

/// Folds `attempts` (newest first) into rows: consecutive failed attempts
/// with the same detail become one row, and an attempt that made
/// the row a dead letter is preceded (it is newer) by a "stopped" event.
pub fn deliveries(attempts: &[Attempt], now: chrono::DateTime<Utc>) -> Vec<DeliveryRow> {
    let mut rows: Vec<DeliveryRow> = Vec::new();
    for a in attempts {
        if a.dead_letter != 0 {
            rows.push(DeliveryRow {
                stopped: true,
                outcome: a.outcome.clone(),
                detail: a.detail.clone(),
                count: 1,
                last: Moment::micros(a.at, now),
                first: None,
                next_retry: None,
            });
        }
        // Only failures fold: each delivery is news (another version).
        if let Some(row) = rows.last_mut()
            && !row.stopped
            && a.outcome == "error"
            && row.outcome == a.outcome
            && row.detail == a.detail
        {
            // An older attempt like the row's newer ones.
            row.count += 1;
            row.first = Some(Moment::micros(a.at, now));
            continue;
        }
        rows.push(DeliveryRow {
            stopped: false,
            outcome: a.outcome.clone(),
            detail: a.detail.clone(),
            count: 1,
            last: Moment::micros(a.at, now),
            first: None,
            next_retry: a.next_retry_at.map(|t| Moment::micros(t, now)),
        });
    }
    rows
}

/// A value of a changed field: short enough for a line, and in full when
/// the short form leaves something out.
pub struct Shown {
    pub short: String,
    pub full: Option<String>,
}

/// One changed field of an audit entry.
pub struct ChangeView {
    /// The field's recorded name (`shipping_address`).
    pub name: String,
    /// As people read it (`shipping address`).
    pub label: String,
    pub from: Shown,
    pub to: Shown,
}

impl ChangeView {
    /// Whether a full value is worth opening (an object, a list, a long text).
    pub fn has_full(&self) -> bool {
        self.from.full.is_some() || self.to.full.is_some()
    }
}

/// One entry of the audit trail.
pub struct AuditRow {
    pub at: Moment,
    pub actor_kind: String,
    pub actor_name: String,
    /// The store, for an entry of a part other than the order's first:
    /// which part, at which warehouse.
    pub part: Option<String>,
    /// An event that changes no single field (`Created`).
    pub event: Option<String>,
    pub changes: Vec<ChangeView>,
    /// The field names of an entry recorded before values were kept.
    pub names: Option<String>,
}

/// The audit row of `e`; `part` labels it (the store, a part's entry),
/// `currency` shows money (the store only).
pub fn audit_row(
    e: AuditEntry,
    part: Option<&str>,
    currency: Option<&str>,
    now: chrono::DateTime<Utc>,
) -> AuditRow {
    let diff = e.diff();
    let names = e.change_list();
    let event = match names.as_slice() {
        ["created"] => Some("Created".to_owned()),
        ["routing"] => Some("Lines routed to warehouses".to_owned()),
        _ => None,
    };
    let old = (event.is_none() && diff.is_empty()).then(|| names.join(", ").replace('_', " "));
    AuditRow {
        at: Moment::micros(e.at, now),
        actor_kind: e.actor_kind,
        actor_name: e.actor_name,
        part: part.map(str::to_owned),
        event,
        changes: diff.iter().map(|c| change(c, currency, now)).collect(),
        names: old,
    }
}

fn change(c: &Change, currency: Option<&str>, now: chrono::DateTime<Utc>) -> ChangeView {
    ChangeView {
        name: c.field.to_string(),
        label: label(&c.field),
        from: shown(&c.field, &c.from, currency, now),
        to: shown(&c.field, &c.to, currency, now),
    }
}

fn label(field: &str) -> String {
    match field {
        // The recorded name dates from orders with one parcel.
        "shipment" => "parcels".to_owned(),
        "content_changed_after_pick" => "changed after pick".to_owned(),
        f => f.replace('_', " "),
    }
}

/// Longest text shown whole on a line.
const CLIP: usize = 60;

fn clip(s: &str) -> String {
    match s.char_indices().nth(CLIP) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// At most three items, then how many more.
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    let mut out = items.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 3 {
        out.push_str(&format!(" and {} more", items.len() - 3));
    }
    out
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn shown(field: &str, v: &Value, currency: Option<&str>, now: chrono::DateTime<Utc>) -> Shown {
    let short = summary(field, v, currency, now);
    let full = match v {
        Value::Object(_) | Value::Array(_) => serde_json::to_string_pretty(v).ok(),
        // A text cut short; a status shown by its label is not.
        Value::String(s) if s.chars().count() > CLIP => Some(s.clone()),
        _ => None,
    };
    Shown { short, full }
}

fn summary(field: &str, v: &Value, currency: Option<&str>, now: chrono::DateTime<Utc>) -> String {
    match v {
        Value::Null => "none".to_owned(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => match (field, currency, n.as_i64()) {
            ("shipping_cost", Some(c), Some(m)) => format::money(m, c),
            _ => n.to_string(),
        },
        Value::String(s) => match field {
            "status" => FulfillmentStatus::parse(s)
                .map(format::status_label)
                .unwrap_or(s)
                .to_owned(),
            "deliver_by" => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| format::clock(t.with_timezone(&Utc), now))
                .unwrap_or_else(|_| clip(s)),
            _ => clip(s),
        },
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => match field {
            "lines" | "rejections" => list(items.iter().map(|l| {
                let mut s = format!("{} × {}", l["quantity"], text(l, "sku"));
                if let (Some(c), Some(p)) = (currency, l["unit_price"].as_i64()) {
                    s.push_str(&format!(" at {}", format::money(p, c)));
                }
                s
            })),
            "shipment" => {
                let latest = items.last().unwrap_or(&Value::Null);
                let n = items.len();
                format!(
                    "{n} parcel{}, latest {} {}",
                    if n == 1 { "" } else { "s" },
                    text(latest, "carrier"),
                    text(latest, "tracking_number")
                )
            }
            "holds" => {
                let active: Vec<String> = items
                    .iter()
                    .filter(|h| h["released_at"].is_null())
                    .map(|h| clip(&format!("{}: {}", text(h, "type"), text(h, "reason"))))
                    .collect();
                let released = items.len() - active.len();
                let mut s = if active.is_empty() {
                    "none active".to_owned()
                } else {
                    format!("{} active: {}", active.len(), list(active.into_iter()))
                };
                if released > 0 {
                    s.push_str(&format!(" ({released} released)"));
                }
                s
            }
            _ => format!("{} items", items.len()),
        },
        Value::Object(_) => match field {
            "customer" => {
                let mut s = format!("{} <{}>", text(v, "name"), text(v, "email"));
                if let Some(c) = v["company"].as_str() {
                    s.push_str(&format!(", {c}"));
                }
                clip(&s)
            }
            "shipping_address" => clip(
                &["line1", "line2", "city", "postal_code", "region", "country"]
                    .iter()
                    .filter_map(|k| v[*k].as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            "cancel_request" => match v["reason"].as_str() {
                Some(r) => clip(&format!("requested: {r}")),
                None => "requested".to_owned(),
            },
            _ => clip(&v.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attempt(at: i64, outcome: &str, detail: Option<&str>, dead: bool) -> Attempt {
        Attempt {
            at,
            outcome: outcome.into(),
            detail: detail.map(str::to_owned),
            next_retry_at: (outcome == "error" && !dead).then_some(at + 1_000_000),
            dead_letter: i64::from(dead),
        }
    }

    #[test]
    fn identical_failures_fold_and_the_stop_is_its_own_row() {
        let now = Utc::now();
        let down = Some("cannot connect");
        // Newest first: it went dead after three identical failures, which
        // followed a success.
        let list = [
            attempt(5_000_000, "error", down, true),
            attempt(4_000_000, "error", down, false),
            attempt(3_000_000, "error", down, false),
            attempt(2_000_000, "error", Some("timeout"), false),
            attempt(1_500_000, "applied", None, false),
            attempt(1_000_000, "applied", None, false),
        ];
        let rows = deliveries(&list, now);
        let shape: Vec<(bool, &str, usize)> = rows
            .iter()
            .map(|r| (r.stopped, r.outcome.as_str(), r.count))
            .collect();
        assert_eq!(
            shape,
            [
                (true, "error", 1),
                (false, "error", 3),
                (false, "error", 1),
                (false, "applied", 1),
                (false, "applied", 1)
            ]
        );
        // The folded row spans its first and last attempt.
        let folded = &rows[1];
        assert_eq!(folded.last.iso, rows[0].last.iso);
        let first = folded.first.as_ref().map(|f| f.iso.as_str());
        assert_eq!(first, Some("1970-01-01T00:00:03.000Z"));
        assert!(rows[2].first.is_none());
        assert!(folded.next_retry.is_none(), "the newest attempt had none");
    }

    #[test]
    fn values_are_summarised_and_kept_whole() {
        let now = Utc::now();
        let addr = json!({"name": "Ada", "line1": "12 St James's Sq", "line2": null,
            "city": "Leeds", "region": null, "postal_code": "LS1", "country": "GB"});
        let s = shown("shipping_address", &addr, None, now);
        assert_eq!(s.short, "12 St James's Sq, Leeds, LS1, GB");
        assert!(s.full.as_deref().is_some_and(|f| f.contains("\"Ada\"")));
        let lines = json!([{"sku": "WID-1", "name": "Widget", "quantity": 3, "unit_price": 2500}]);
        assert_eq!(
            shown("lines", &lines, Some("GBP"), now).short,
            "3 × WID-1 at 25.00 GBP"
        );
        assert_eq!(shown("lines", &lines, None, now).short, "3 × WID-1");
        assert_eq!(
            shown("status", &json!("on_hold"), None, now).short,
            "On hold"
        );
        assert_eq!(shown("notes", &Value::Null, None, now).short, "none");
        let long = "x".repeat(100);
        let s = shown("notes", &json!(long), None, now);
        assert_eq!(s.short.chars().count(), CLIP + 1);
        assert_eq!(s.full.as_deref(), Some(long.as_str()));
        assert_eq!(
            shown("shipping_cost", &json!(500), Some("GBP"), now).short,
            "5.00 GBP"
        );
    }
}
