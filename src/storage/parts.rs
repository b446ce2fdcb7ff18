//! Store only: an order's parts (its rows of `orders`, one per warehouse
//! share; docs/DESIGN.md §6.3), its items (the lines as ordered) and the
//! roll-up of its parts' statuses that lists filter on.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::bulk::{self, Script, Val};
use super::orders::{LineRow, corrupt};
use super::{Result, Sql};
use crate::domain::FulfillmentStatus;
use crate::domain::order::{Line, OrderId};
use crate::domain::parts::roll_up_status;
use crate::domain::values::MinorUnits;

/// One part of an order, as routing and views see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    pub id: OrderId,
    pub order_id: OrderId,
    pub part: i64,
    /// `None`: the order's first row while none of its lines is routed.
    pub warehouse: Option<String>,
    /// Its lines went elsewhere (an edit): cancelled at its warehouse.
    pub withdrawn: bool,
}

#[derive(sqlx::FromRow)]
struct PartRow {
    id: String,
    order_id: String,
    part_no: i64,
    warehouse: Option<String>,
    withdrawn: i64,
}

/// The parts of these orders, by order, in part order.
pub async fn of_orders(
    c: &mut AnyConnection,
    order_ids: &[OrderId],
) -> Result<HashMap<OrderId, Vec<PartRef>>> {
    let mut out: HashMap<OrderId, Vec<PartRef>> = HashMap::new();
    if order_ids.is_empty() {
        return Ok(out);
    }
    let keys: Vec<String> = order_ids.iter().map(OrderId::to_string).collect();
    let rows = sqlx::query_as::<_, PartRow>(PARTS_OF.on(c))
        .bind(bulk::keys(&keys))
        .fetch_all(&mut *c)
        .await?;
    for r in rows {
        let parse = |s: &str| OrderId::parse(s).ok_or_else(|| corrupt(&r.id, "id is not a UUID"));
        let part = PartRef {
            id: parse(&r.id)?,
            order_id: parse(&r.order_id)?,
            part: r.part_no,
            warehouse: r.warehouse.clone(),
            withdrawn: r.withdrawn != 0,
        };
        out.entry(part.order_id).or_default().push(part);
    }
    Ok(out)
}

pub(super) const PARTS_OF: Sql = Sql {
    sqlite: "SELECT id, order_id, part_no, warehouse, withdrawn FROM orders \
             WHERE order_id IN (SELECT value FROM json_each($1)) ORDER BY order_id, part_no",
    postgres: "SELECT id, order_id, part_no, warehouse, withdrawn FROM orders \
               WHERE order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb))) ORDER BY order_id, part_no",
};

/// The order a row belongs to (itself for an order's first row); `None`
/// for an unknown id.
pub async fn order_of(c: &mut AnyConnection, id: OrderId) -> Result<Option<OrderId>> {
    let found: Option<Option<String>> =
        sqlx::query_scalar("SELECT order_id FROM orders WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *c)
            .await?;
    Ok(found.map(|o| o.and_then(|o| OrderId::parse(&o)).unwrap_or(id)))
}

/// The orders these rows belong to (the ids of their first rows), each
/// once; unknown ids are left out. A row never changes order, so this
/// needs no lock.
pub async fn orders_of(c: &mut AnyConnection, ids: &[OrderId]) -> Result<Vec<OrderId>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = ids.iter().map(OrderId::to_string).collect();
    let rows: Vec<(Option<String>,)> = sqlx::query_as(ORDERS_OF.on(c))
        .bind(bulk::keys(&keys))
        .fetch_all(&mut *c)
        .await?;
    rows.into_iter()
        .filter_map(|(o,)| o)
        .map(|o| OrderId::parse(&o).ok_or_else(|| corrupt(&o, "order_id is not a UUID")))
        .collect()
}

const ORDERS_OF: Sql = Sql {
    sqlite: "SELECT DISTINCT order_id FROM orders WHERE id IN (SELECT value FROM json_each($1))",
    postgres: "SELECT DISTINCT order_id FROM orders WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
};

/// The items (lines as ordered) of these orders.
pub async fn items(
    c: &mut AnyConnection,
    order_ids: &[OrderId],
) -> Result<HashMap<OrderId, Vec<Line>>> {
    let mut out: HashMap<OrderId, Vec<Line>> = HashMap::new();
    if order_ids.is_empty() {
        return Ok(out);
    }
    let keys: Vec<String> = order_ids.iter().map(OrderId::to_string).collect();
    let rows = sqlx::query_as::<_, LineRow>(LOAD_ITEMS.on(c))
        .bind(bulk::keys(&keys))
        .fetch_all(&mut *c)
        .await?;
    for r in rows {
        let id = OrderId::parse(&r.order_id)
            .ok_or_else(|| corrupt(&r.order_id, "order_id is not a UUID"))?;
        out.entry(id).or_default().push(r.line()?);
    }
    Ok(out)
}

const LOAD_ITEMS: Sql = Sql {
    sqlite: "SELECT order_id, sku, name, quantity FROM order_items \
             WHERE order_id IN (SELECT value FROM json_each($1)) ORDER BY order_id, line_no",
    postgres: "SELECT order_id, sku, name, quantity FROM order_items \
               WHERE order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb))) ORDER BY order_id, line_no",
};

/// Plans the items of new orders, each line with its unit price (money:
/// `order_items` exists at the store only), numbered from 0 per order as
/// a part's lines are numbered. One row per line holds both,
/// so a new order writes one b-tree entry per line for them, not two
/// (migration 21 moved the prices here from `order_line_prices`).
pub fn plan_items<'a>(
    s: &mut Script,
    orders: impl Iterator<Item = (OrderId, &'a [Line], &'a [MinorUnits])>,
) {
    let orders: Vec<(String, &[Line], &[MinorUnits])> =
        orders.map(|(id, l, p)| (id.to_string(), l, p)).collect();
    let mut rows: Vec<Val> = Vec::new();
    for (key, lines, prices) in &orders {
        for (i, l) in lines.iter().enumerate() {
            rows.extend(super::orders::line_row(key, i, l));
            // One price per line (the domain's rule). A missing one is
            // NULL, which the column refuses: the write fails rather than
            // store a line without its price or drop the line.
            rows.push(prices.get(i).map(|p| p.get()).into());
        }
    }
    s.rows(&INSERT_ITEMS, &[], 6, &rows);
}

pub(super) const INSERT_ITEMS: Sql = Sql {
    sqlite: "INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_price) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM (SELECT jsonb(value) AS value FROM json_each(?) LIMIT -1 OFFSET 0)",
    postgres: "INSERT INTO order_items (order_id, line_no, sku, name, quantity, unit_price) \
               SELECT value ->> 0, (value ->> 1)::bigint, value ->> 2, value ->> 3, (value ->> 4)::bigint, (value ->> 5)::bigint \
               FROM jsonb_array_elements($1::jsonb) AS e(value)",
};

/// Replaces an order's items and their unit prices (an edit of its lines).
pub async fn replace_items(
    c: &mut AnyConnection,
    order_id: OrderId,
    lines: &[Line],
    prices: &[MinorUnits],
) -> Result<()> {
    if lines.len() != prices.len() {
        return Err(corrupt(
            &order_id.to_string(),
            format!("{} lines but {} unit prices", lines.len(), prices.len()),
        ));
    }
    sqlx::query("DELETE FROM order_items WHERE order_id = $1")
        .bind(order_id.to_string())
        .execute(&mut *c)
        .await?;
    let mut s = Script::new(c);
    plan_items(&mut s, std::iter::once((order_id, lines, prices)));
    s.run(c).await?;
    Ok(())
}

/// Marks parts withdrawn: their lines went to other warehouses.
pub async fn withdraw(c: &mut AnyConnection, ids: &[OrderId]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = ids.iter().map(OrderId::to_string).collect();
    sqlx::query(WITHDRAW.on(c))
        .bind(bulk::keys(&keys))
        .execute(&mut *c)
        .await?;
    Ok(())
}

const WITHDRAW: Sql = Sql {
    sqlite: "UPDATE orders SET withdrawn = 1 WHERE id IN (SELECT value FROM json_each($1))",
    postgres: "UPDATE orders SET withdrawn = 1 WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
};

/// Recomputes the rolled-up status kept on each of these orders' first row
/// (what lists filter on) from its parts' statuses: one read and one write
/// for the lot. Withdrawn parts and the unrouted placeholder count for
/// nothing.
pub async fn refresh_status(c: &mut AnyConnection, order_ids: &[OrderId]) -> Result<()> {
    if order_ids.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = order_ids.iter().map(OrderId::to_string).collect();
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(STATUSES_OF.on(c))
        .bind(bulk::keys(&keys))
        .fetch_all(&mut *c)
        .await?;
    let mut by: HashMap<String, Vec<Option<FulfillmentStatus>>> =
        keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for (order_id, status) in rows {
        let status = match status {
            Some(s) => Some(
                FulfillmentStatus::parse(&s)
                    .ok_or_else(|| corrupt(&order_id, format!("unknown status {s:?}")))?,
            ),
            None => None,
        };
        by.entry(order_id).or_default().push(status);
    }
    let rolled: Vec<(String, Option<&'static str>)> = by
        .into_iter()
        .map(|(k, statuses)| (k, roll_up_status(&statuses).map(|s| s.as_str())))
        .collect();
    let mut rows: Vec<Val> = Vec::with_capacity(rolled.len() * 2);
    for (k, s) in &rolled {
        rows.extend([Val::from(k.as_str()), (*s).into()]);
    }
    let mut s = Script::new(c);
    s.rows(&SET_ORDER_STATUS, &[], 2, &rows);
    s.run(c).await?;
    Ok(())
}

pub(super) const STATUSES_OF: Sql = Sql {
    sqlite: "SELECT order_id, status FROM orders \
             WHERE warehouse IS NOT NULL AND withdrawn = 0 \
             AND order_id IN (SELECT value FROM json_each($1)) ORDER BY order_id, part_no",
    postgres: "SELECT order_id, status FROM orders \
               WHERE warehouse IS NOT NULL AND withdrawn = 0 \
               AND order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb))) ORDER BY order_id, part_no",
};

const SET_ORDER_STATUS: Sql = Sql {
    sqlite: "UPDATE orders SET order_status = v.status \
             FROM (SELECT value ->> 0 AS id, value ->> 1 AS status FROM json_each(?)) AS v \
             WHERE orders.id = v.id AND orders.order_status IS NOT v.status",
    postgres: "UPDATE orders SET order_status = v.status \
               FROM (SELECT value ->> 0 AS id, value ->> 1 AS status \
                     FROM jsonb_array_elements($1::jsonb) AS e(value)) AS v \
               WHERE orders.id = v.id AND orders.order_status IS DISTINCT FROM v.status \
               AND orders.id = ANY(ARRAY(SELECT value ->> 0 FROM jsonb_array_elements($1::jsonb) AS e(value)))",
};
