//! The audit trail: who changed which fields of an order, and when, with
//! each field's old and new value (worked out by [`crate::domain::diff`];
//! kept here as JSON, read back as it was written).

use sqlx::AnyConnection;

use super::bulk::{Script, Val};
use super::{Result, Sql};
use crate::domain::diff::{self, Change};
use crate::domain::{Actor, OrderId};

/// One line of the trail: `actor` changed `changes` of order `id`.
pub struct Record<'a> {
    pub id: OrderId,
    pub actor: &'a Actor,
    /// Comma-separated field names (or an event: `created`, `routing`).
    pub changes: String,
    /// The changes' old and new values as JSON; `None` for an event.
    pub diff: Option<String>,
}

impl<'a> Record<'a> {
    /// The fields `diff` lists changed, with their values.
    pub fn changed(id: OrderId, actor: &'a Actor, diff: &[Change]) -> Record<'a> {
        Record {
            id,
            actor,
            changes: diff::fields(diff).join(","),
            diff: serde_json::to_string(diff).ok(),
        }
    }

    /// Something that happened to the order as a whole (`created`,
    /// `routing`): no field values.
    pub fn event(id: OrderId, actor: &'a Actor, name: &str) -> Record<'a> {
        Record {
            id,
            actor,
            changes: name.to_owned(),
            diff: None,
        }
    }
}

/// Records the changes of one write (nothing when there are none).
pub async fn record(
    c: &mut AnyConnection,
    id: OrderId,
    actor: &Actor,
    changes: &[Change],
    at: i64,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    record_many(c, &[Record::changed(id, actor, changes)], at).await
}

/// Records an event ([`Record::event`]).
pub async fn event(
    c: &mut AnyConnection,
    id: OrderId,
    actor: &Actor,
    name: &str,
    at: i64,
) -> Result<()> {
    record_many(c, &[Record::event(id, actor, name)], at).await
}

/// Appends many lines at once (one statement).
pub async fn record_many(c: &mut AnyConnection, list: &[Record<'_>], at: i64) -> Result<()> {
    let mut s = Script::new(c);
    plan_records(&mut s, list, at);
    s.run(c).await?;
    Ok(())
}

/// Plans [`record_many`].
pub fn plan_records(s: &mut Script, list: &[Record<'_>], at: i64) {
    let keys: Vec<String> = list.iter().map(|r| r.id.to_string()).collect();
    let mut rows: Vec<Val> = Vec::with_capacity(list.len() * 6);
    for (key, r) in keys.iter().zip(list) {
        rows.extend([
            Val::from(key.as_str()),
            at.into(),
            r.actor.kind().into(),
            r.actor.name().into(),
            r.changes.as_str().into(),
            r.diff.as_deref().into(),
        ]);
    }
    s.rows(&INSERT_RECORDS, &[], 6, &rows);
}

pub(super) const INSERT_RECORDS: Sql = Sql {
    sqlite: "INSERT INTO audit_log (order_id, at, actor_kind, actor_name, changes, diff) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 \
             FROM (SELECT jsonb(value) AS value FROM json_each(?) LIMIT -1 OFFSET 0)",
    postgres: "INSERT INTO audit_log (order_id, at, actor_kind, actor_name, changes, diff) \
               SELECT value ->> 0, (value ->> 1)::bigint, value ->> 2, value ->> 3, value ->> 4, \
               value ->> 5 FROM jsonb_array_elements($1::jsonb) AS e(value)",
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub at: i64,
    pub actor_kind: String,
    pub actor_name: String,
    pub changes: String,
    /// JSON; NULL for an event and for entries from before values were kept.
    pub diff: Option<String>,
}

impl Entry {
    pub fn change_list(&self) -> Vec<&str> {
        self.changes.split(',').filter(|s| !s.is_empty()).collect()
    }

    /// The old and new values of the changed fields; none for an event or
    /// an entry written before they were kept (or one that cannot be
    /// read: the names in `changes` still say what changed).
    pub fn diff(&self) -> Vec<Change> {
        self.diff
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default()
    }
}

/// The trail of one order, oldest first.
pub async fn list(c: &mut AnyConnection, id: OrderId) -> Result<Vec<Entry>> {
    Ok(sqlx::query_as::<_, Entry>(
        "SELECT at, actor_kind, actor_name, changes, diff FROM audit_log WHERE order_id = $1 ORDER BY id",
    )
    .bind(id.to_string())
    .fetch_all(&mut *c)
    .await?)
}
