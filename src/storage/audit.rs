//! The audit trail: who changed which fields of an order, and when.

use sqlx::AnyConnection;

use super::Result;
use crate::domain::{Actor, OrderId};

pub async fn record(
    c: &mut AnyConnection,
    id: OrderId,
    actor: &Actor,
    changes: &[&str],
    at: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (order_id, at, actor_kind, actor_name, changes) VALUES ($1, $2, $3, $4, $5)")
        .bind(id.to_string())
        .bind(at)
        .bind(actor.kind())
        .bind(actor.name())
        .bind(changes.join(","))
        .execute(&mut *c)
        .await?;
    Ok(())
}

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
