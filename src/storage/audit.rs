//! The audit trail: who changed which fields of an order, and when.

use sqlx::AnyConnection;

use super::bulk::{Script, Val};
use super::{Result, Sql};
use crate::domain::{Actor, OrderId};

/// One line of the trail: `actor` changed `changes` of order `id`.
pub struct Record<'a> {
    pub id: OrderId,
    pub actor: &'a Actor,
    pub changes: String,
}

pub async fn record(
    c: &mut AnyConnection,
    id: OrderId,
    actor: &Actor,
    changes: &[&str],
    at: i64,
) -> Result<()> {
    let one = Record {
        id,
        actor,
        changes: changes.join(","),
    };
    record_many(c, &[one], at).await
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
    let mut rows: Vec<Val> = Vec::with_capacity(list.len() * 5);
    for (key, r) in keys.iter().zip(list) {
        rows.extend([
            Val::from(key.as_str()),
            at.into(),
            r.actor.kind().into(),
            r.actor.name().into(),
            r.changes.as_str().into(),
        ]);
    }
    s.rows(&INSERT_RECORDS, &[], 5, &rows);
}

const INSERT_RECORDS: Sql = Sql {
    sqlite: "INSERT INTO audit_log (order_id, at, actor_kind, actor_name, changes) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)",
    postgres: "INSERT INTO audit_log (order_id, at, actor_kind, actor_name, changes) \
               SELECT value ->> 0, (value ->> 1)::bigint, value ->> 2, value ->> 3, value ->> 4 \
               FROM jsonb_array_elements($1::jsonb) AS e(value)",
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub at: i64,
    pub actor_kind: String,
    pub actor_name: String,
    pub changes: String,
}

impl Entry {
    pub fn change_list(&self) -> Vec<&str> {
        self.changes.split(',').filter(|s| !s.is_empty()).collect()
    }
}

/// The trail of one order, oldest first.
pub async fn list(c: &mut AnyConnection, id: OrderId) -> Result<Vec<Entry>> {
    Ok(sqlx::query_as::<_, Entry>(
        "SELECT at, actor_kind, actor_name, changes FROM audit_log WHERE order_id = $1 ORDER BY id",
    )
    .bind(id.to_string())
    .fetch_all(&mut *c)
    .await?)
}
