//! Orders, their lines and shipments, and (at the store only) their money.
//!
//! Rows are parsed back into domain types on load, so an order read from the
//! database obeys the same rules as one built from a request.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use super::bulk::{self, Script, Val};
use super::{Dialect, Result, Sql, StorageError, from_micros, to_micros};
use crate::domain::Role;
use crate::domain::digest::id_hash;
use crate::domain::fulfillment::{
    Fulfillment, FulfillmentStatus, Hold, Rejection, Shipment, ShippedLine,
};
use crate::domain::holds::{HoldSnapshot, TypedHold};
use crate::domain::order::{
    Address, CancelRequest, Customer, Line, Order, OrderContent, OrderId, Pricing,
};
use crate::domain::values::{
    CountryCode, Currency, Email, LineName, MinorUnits, Quantity, Sku, Text,
};

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: String,
    order_id: Option<String>,
    part_no: i64,
    number: String,
    store_version: i64,
    warehouse_version: i64,
    customer_name: String,
    customer_email: String,
    customer_company: Option<String>,
    ship_name: String,
    ship_line1: String,
    ship_line2: Option<String>,
    ship_city: String,
    ship_region: Option<String>,
    ship_postal_code: String,
    ship_country: String,
    notes: Option<String>,
    deliver_by: Option<i64>,
    cancel_requested: i64,
    cancel_reason: Option<String>,
    status: Option<String>,
    hold_reason: Option<String>,
    held_from: Option<String>,
    cancel_rejected_reason: Option<String>,
    content_changed_after_pick: i64,
    rejections: String,
    store_holds: String,
    warehouse_holds: String,
    withdrawn: i64,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
pub(super) struct LineRow {
    pub(super) order_id: String,
    sku: String,
    name: String,
    quantity: i64,
}

impl LineRow {
    /// The line, checked as a request's would be.
    pub(super) fn line(&self) -> Result<Line> {
        let bad = |e: crate::domain::FieldError| corrupt(&self.order_id, e);
        Ok(Line {
            sku: Sku::parse("sku", &self.sku).map_err(bad)?,
            name: LineName::parse("name", &self.name).map_err(bad)?,
            quantity: Quantity::parse("quantity", self.quantity).map_err(bad)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ShipmentRow {
    order_id: String,
    carrier: String,
    tracking_number: String,
    shipped_at: i64,
    lines: String,
}

impl ShipmentRow {
    fn shipment(self) -> Result<Shipment> {
        let raw: Vec<(String, i64)> = serde_json::from_str(&self.lines)
            .map_err(|e| corrupt(&self.order_id, format!("parcel lines: {e}")))?;
        let mut lines = Vec::with_capacity(raw.len());
        for (sku, q) in raw {
            let bad = |e: crate::domain::FieldError| corrupt(&self.order_id, e);
            lines.push(ShippedLine {
                sku: Sku::parse("sku", &sku).map_err(bad)?,
                quantity: Quantity::parse("quantity", q).map_err(bad)?.get(),
            });
        }
        Ok(Shipment {
            carrier: self.carrier,
            tracking_number: self.tracking_number,
            shipped_at: from_micros(self.shipped_at),
            lines,
        })
    }
}

/// Holds as stored: the JSON the peers send ([`HoldSnapshot`]).
fn parse_holds(id: &str, json: &str, by: Role) -> Result<Vec<TypedHold>> {
    let list: Vec<HoldSnapshot> =
        serde_json::from_str(json).map_err(|e| corrupt(id, format!("holds: {e}")))?;
    Ok(list
        .into_iter()
        .map(|h| TypedHold {
            id: h.id,
            kind: h.kind,
            reason: h.reason,
            placed_by: by,
            placed_at: h.placed_at,
            released_at: h.released_at,
        })
        .collect())
}

/// Holds to store.
fn holds_json(list: &[TypedHold]) -> String {
    let list: Vec<HoldSnapshot> = list.iter().map(HoldSnapshot::from_domain).collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

pub(super) fn corrupt(id: &str, what: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("order {id}: {what}"))
}

fn parse_status(id: &str, s: &str) -> Result<FulfillmentStatus> {
    FulfillmentStatus::parse(s).ok_or_else(|| corrupt(id, format!("unknown status {s:?}")))
}

impl OrderRow {
    fn into_order(self, lines: Vec<Line>, shipments: Vec<Shipment>) -> Result<Order> {
        let id = self.id.as_str();
        let bad = |e: crate::domain::FieldError| corrupt(id, e);
        let fulfillment = match self.status.as_deref() {
            None => None,
            Some(s) => {
                let status = parse_status(id, s)?;
                let hold = match (status, self.hold_reason, self.held_from.as_deref()) {
                    (FulfillmentStatus::OnHold, Some(reason), Some(from)) => Some(Hold {
                        reason,
                        from: parse_status(id, from)?,
                    }),
                    (FulfillmentStatus::OnHold, _, _) => {
                        return Err(corrupt(id, "on hold without a reason"));
                    }
                    _ => None,
                };
                let raw: Vec<(String, i64, String)> = serde_json::from_str(&self.rejections)
                    .map_err(|e| corrupt(id, format!("rejections: {e}")))?;
                let mut rejections = Vec::with_capacity(raw.len());
                for (sku, q, reason) in raw {
                    rejections.push(Rejection {
                        sku: Sku::parse("sku", &sku).map_err(bad)?,
                        quantity: Quantity::parse("quantity", q).map_err(bad)?.get(),
                        reason,
                    });
                }
                Some(Fulfillment {
                    status,
                    hold,
                    shipments,
                    rejections,
                    holds: parse_holds(id, &self.warehouse_holds, Role::Warehouse)?,
                    cancel_rejected_reason: self.cancel_rejected_reason,
                    content_changed_after_pick: self.content_changed_after_pick != 0,
                })
            }
        };
        let own = OrderId::parse(id).ok_or_else(|| corrupt(id, "id is not a UUID"))?;
        let order_id = match self.order_id.as_deref() {
            None => own,
            Some(o) => OrderId::parse(o).ok_or_else(|| corrupt(id, "order_id is not a UUID"))?,
        };
        Ok(Order {
            id: own,
            order_id,
            part: self.part_no,
            content: OrderContent {
                customer: Customer {
                    name: Text::parse("customer_name", &self.customer_name).map_err(bad)?,
                    email: Email::parse("customer_email", &self.customer_email).map_err(bad)?,
                    company: self.customer_company,
                },
                shipping_address: Address {
                    name: Text::parse("ship_name", &self.ship_name).map_err(bad)?,
                    line1: Text::parse("ship_line1", &self.ship_line1).map_err(bad)?,
                    line2: self.ship_line2,
                    city: Text::parse("ship_city", &self.ship_city).map_err(bad)?,
                    region: self.ship_region,
                    postal_code: Text::parse("ship_postal_code", &self.ship_postal_code)
                        .map_err(bad)?,
                    country: CountryCode::parse("ship_country", &self.ship_country).map_err(bad)?,
                },
                lines,
                notes: self.notes,
                deliver_by: self.deliver_by.map(from_micros),
                cancel: (self.cancel_requested != 0).then_some(CancelRequest {
                    reason: self.cancel_reason,
                }),
                holds: parse_holds(id, &self.store_holds, Role::Store)?,
            },
            number: self.number,
            store_version: self.store_version,
            warehouse_version: self.warehouse_version,
            fulfillment,
            withdrawn: self.withdrawn != 0,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        })
    }
}

/// How much of an order to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    All,
    /// Everything but the content's lines (left empty): for code that only
    /// reads versions and fulfillment, such as applying fulfillment
    /// snapshots at the store. Saves a query and most of the rows.
    WithoutLines,
}

/// Loads orders by id, in the order of `ids`; unknown ids are left out.
pub async fn load_many(c: &mut AnyConnection, ids: &[OrderId]) -> Result<Vec<Order>> {
    load_parts(c, ids, Parts::All, &LOAD_ORDERS).await
}

/// [`load_many`]'s order rows; its lines and shipments are
/// [`LOAD_LINES`] and [`LOAD_SHIPMENTS`].
const LOAD_ORDERS: Sql = Sql {
    sqlite: "SELECT id, order_id, part_no, number, store_version, warehouse_version, customer_name, customer_email, \
             customer_company, ship_name, ship_line1, ship_line2, ship_city, ship_region, ship_postal_code, \
             ship_country, notes, deliver_by, cancel_requested, cancel_reason, status, hold_reason, held_from, \
             cancel_rejected_reason, content_changed_after_pick, rejections, store_holds, warehouse_holds, withdrawn, created_at, updated_at \
             FROM orders WHERE id IN (SELECT value FROM json_each($1))",
    postgres: "SELECT id, order_id, part_no, number, store_version, warehouse_version, customer_name, customer_email, \
               customer_company, ship_name, ship_line1, ship_line2, ship_city, ship_region, ship_postal_code, \
               ship_country, notes, deliver_by, cancel_requested, cancel_reason, status, hold_reason, held_from, \
               cancel_rejected_reason, content_changed_after_pick, rejections, store_holds, warehouse_holds, withdrawn, created_at, updated_at \
               FROM orders WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
};

const LOAD_LINES: Sql = Sql {
    sqlite: "SELECT order_id, sku, name, quantity FROM order_lines \
             WHERE order_id IN (SELECT value FROM json_each($1)) ORDER BY order_id, line_no",
    postgres: "SELECT order_id, sku, name, quantity FROM order_lines \
               WHERE order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb))) ORDER BY order_id, line_no",
};

const LOAD_SHIPMENTS: Sql = Sql {
    sqlite: "SELECT order_id, carrier, tracking_number, shipped_at, lines FROM shipments \
             WHERE order_id IN (SELECT value FROM json_each($1)) ORDER BY order_id, shipment_no",
    postgres: "SELECT order_id, carrier, tracking_number, shipped_at, lines FROM shipments \
               WHERE order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb))) ORDER BY order_id, shipment_no",
};

/// Loads the orders `ids` with their order rows read by `rows` (the plain
/// [`LOAD_ORDERS`] or the locking [`LOAD_ORDERS_FOR_UPDATE`]).
async fn load_parts(
    c: &mut AnyConnection,
    ids: &[OrderId],
    parts: Parts,
    rows: &Sql,
) -> Result<Vec<Order>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = ids.iter().map(OrderId::to_string).collect();
    let list = || vec![bulk::Arg::Text(Some(bulk::keys(&keys)))];
    // Rows, lines and shipments: on PostgreSQL one round trip.
    let mut statements = vec![(rows, list()), (&LOAD_SHIPMENTS, list())];
    if parts == Parts::All {
        statements.push((&LOAD_LINES, list()));
    }
    let mut answers = bulk::fetch_each(c, &statements).await?.into_iter();
    let mut next = || answers.next().unwrap_or_default();
    let rows = next()
        .iter()
        .map(OrderRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut shipments: HashMap<String, Vec<Shipment>> = HashMap::new();
    for row in next() {
        let s = ShipmentRow::from_row(&row)?;
        shipments
            .entry(s.order_id.clone())
            .or_default()
            .push(s.shipment()?);
    }
    let mut lines: HashMap<String, Vec<Line>> = HashMap::new();
    for row in next() {
        let l = LineRow::from_row(&row)?;
        let line = l.line()?;
        lines.entry(l.order_id).or_default().push(line);
    }

    let mut by_id: HashMap<String, Order> = HashMap::with_capacity(rows.len());
    for row in rows {
        let key = row.id.clone();
        let order = row.into_order(
            lines.remove(&key).unwrap_or_default(),
            shipments.remove(&key).unwrap_or_default(),
        )?;
        by_id.insert(key, order);
    }
    Ok(keys.iter().filter_map(|k| by_id.remove(k)).collect())
}

pub async fn load(c: &mut AnyConnection, id: OrderId) -> Result<Option<Order>> {
    Ok(load_many(c, &[id]).await?.pop())
}

/// Loads an order for a read-modify-write inside `c`'s transaction, locking
/// its row on PostgreSQL so concurrent writers of the same order queue up.
pub async fn load_for_update(c: &mut AnyConnection, id: OrderId) -> Result<Option<Order>> {
    Ok(load_many_for_update(c, &[id], Parts::All).await?.pop())
}

/// [`load_for_update`] for a whole batch. Rows are locked in id order, so
/// two batches never wait on each other crosswise.
pub async fn load_many_for_update(
    c: &mut AnyConnection,
    ids: &[OrderId],
    parts: Parts,
) -> Result<Vec<Order>> {
    load_parts(c, ids, parts, &LOAD_ORDERS_FOR_UPDATE).await
}

/// [`LOAD_ORDERS`], locking the rows on PostgreSQL (a row updated by a
/// writer this one waited for is read as that writer left it). SQLite's
/// one writer already serialises read-modify-writes.
const LOAD_ORDERS_FOR_UPDATE: Sql = Sql {
    sqlite: LOAD_ORDERS.sqlite,
    postgres: "SELECT id, order_id, part_no, number, store_version, warehouse_version, customer_name, customer_email, \
               customer_company, ship_name, ship_line1, ship_line2, ship_city, ship_region, ship_postal_code, \
               ship_country, notes, deliver_by, cancel_requested, cancel_reason, status, hold_reason, held_from, \
               cancel_rejected_reason, content_changed_after_pick, rejections, store_holds, warehouse_holds, withdrawn, created_at, updated_at \
               FROM orders WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb))) ORDER BY id FOR UPDATE",
};

/// The store's order numbers (1, 2, ...; shown as `SO-000001`).
///
/// A number is unique in the database and numbers increase in the order
/// they are taken; a batch that rolls back (or a crash) leaves its numbers
/// unused, a gap. Neither backend holds a lock from taking numbers to the
/// commit, so concurrent create batches do not wait on each other:
///
/// - PostgreSQL: the `order_numbers` sequence (migration 19), shared by
///   every replica on the database; `nextval` holds no lock.
/// - SQLite: the last number is kept here, in memory, backed by the
///   `counters` row: each batch writes its last number back to the row in
///   its own script (no round trip of its own), guarded: the write fails if
///   the row holds more than this process last knew, i.e. another process
///   on the same file took numbers since. Then [`OrderNumbers::forget`]
///   drops the memory, the next [`OrderNumbers::take`] reads the row again,
///   and the batch is planned anew. (Before, each batch took its numbers
///   with a statement of its own.)
///
/// One per database handle ([`super::Db::order_numbers`]).
#[derive(Debug, Default)]
pub struct OrderNumbers {
    /// SQLite: the last number taken here or read from the row; `None`
    /// until read, and after another process was seen taking numbers.
    last: std::sync::Mutex<Option<i64>>,
}

/// Numbers taken for one batch of creates, in the order to give them.
#[derive(Debug)]
pub struct TakenNumbers {
    pub numbers: Vec<i64>,
    /// SQLite: the row's expected most and the value to write back.
    guard: Option<(i64, i64)>,
}

/// `n` numbers from the sequence, in increasing order.
const NEXT_NUMBERS: &str = "SELECT nextval('order_numbers') FROM generate_series(1, $1::bigint)";

/// The counter row, created at 0 if missing (a store from before
/// migration 19 that never gave a number has none).
const READ_COUNTER: &str = "INSERT INTO counters (name, value) VALUES ('order_number', 0) \
     ON CONFLICT (name) DO UPDATE SET value = counters.value RETURNING value";

/// The write-back of the SQLite counter: `[expected most, new value]`. A
/// row above the expected value becomes NULL, which the NOT NULL column
/// refuses: the statement fails, and being the first of its script, it
/// fails before anything else of the batch ran. (PostgreSQL's text is
/// never run: it uses the sequence.)
const WRITE_COUNTER: Sql = Sql {
    sqlite: "UPDATE counters SET value = CASE WHEN value <= ? THEN ? END WHERE name = 'order_number'",
    postgres: "UPDATE counters SET value = CASE WHEN value <= $1 THEN $2 END WHERE name = 'order_number'",
};

impl OrderNumbers {
    fn last(&self) -> std::sync::MutexGuard<'_, Option<i64>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the next `n` numbers inside the caller's transaction. On
    /// SQLite the batch's script must start with [`TakenNumbers::plan`].
    pub async fn take(&self, c: &mut AnyConnection, n: usize) -> Result<TakenNumbers> {
        if n == 0 {
            return Ok(TakenNumbers {
                numbers: Vec::new(),
                guard: None,
            });
        }
        let count =
            i64::try_from(n).map_err(|_| StorageError::Corrupt("batch too large".into()))?;
        if Dialect::of(c) == Dialect::Postgres {
            let numbers: Vec<i64> = sqlx::query_scalar(NEXT_NUMBERS)
                .bind(count)
                .fetch_all(&mut *c)
                .await?;
            if numbers.len() != n {
                return Err(StorageError::Corrupt(format!(
                    "the order_numbers sequence gave {} numbers for {n}",
                    numbers.len()
                )));
            }
            return Ok(TakenNumbers {
                numbers,
                guard: None,
            });
        }
        // SQLite: one writer per process (the group-commit writer runs one
        // write at a time), so nothing takes numbers between the read and
        // the update of `last` below.
        let known = *self.last();
        let last = match known {
            Some(last) => last,
            None => {
                sqlx::query_scalar::<_, i64>(READ_COUNTER)
                    .fetch_one(&mut *c)
                    .await?
            }
        };
        let after = last + count;
        // Moved on now: if this batch rolls back, its numbers stay unused.
        *self.last() = Some(after);
        Ok(TakenNumbers {
            numbers: (last + 1..=after).collect(),
            guard: Some((last, after)),
        })
    }

    /// Another process took numbers: read the row again next time.
    pub fn forget(&self) {
        *self.last() = None;
    }
}

impl TakenNumbers {
    /// Plans the write-back of the counter (SQLite; nothing on
    /// PostgreSQL): the first statement of the batch's script.
    pub fn plan(&self, s: &mut Script) {
        if let Some((before, after)) = self.guard {
            s.push(
                &WRITE_COUNTER,
                vec![bulk::Arg::Int(Some(before)), bulk::Arg::Int(Some(after))],
            );
        }
    }

    /// Whether `e` is the write-back's refusal: another process took
    /// numbers since this one last read the row (nothing of the batch
    /// ran; [`OrderNumbers::forget`], then plan it again).
    pub fn taken_elsewhere(&self, e: &StorageError) -> bool {
        match e {
            StorageError::Sqlx(sqlx::Error::Database(d)) => {
                self.guard.is_some()
                    && d.kind() == sqlx::error::ErrorKind::NotNullViolation
                    && d.message().contains("counters.value")
            }
            _ => false,
        }
    }
}

fn fulfillment_columns(
    f: Option<&Fulfillment>,
) -> (
    Option<&'static str>,
    Option<String>,
    Option<&'static str>,
    Option<String>,
    i64,
) {
    match f {
        None => (None, None, None, None, 0),
        Some(f) => (
            Some(f.status.as_str()),
            f.hold.as_ref().map(|h| h.reason.clone()),
            f.hold.as_ref().map(|h| h.from.as_str()),
            f.cancel_rejected_reason.clone(),
            i64::from(f.content_changed_after_pick),
        ),
    }
}

/// Inserts new orders with their lines and shipments, in as few statements
/// as the batch allows. Returns the ids actually inserted: an order whose id
/// or number is already taken is skipped and nothing of it is written (two
/// deliveries of one new order racing on PostgreSQL must not fail a batch).
pub async fn insert_many(c: &mut AnyConnection, list: &[Order]) -> Result<HashSet<OrderId>> {
    if list.is_empty() {
        return Ok(HashSet::new());
    }
    let mut s = Script::new(c);
    plan_orders(&mut s, list, None);
    let inserted = inserted_ids(s.run(c).await?)?;
    let mut s = Script::new(c);
    plan_children(&mut s, list.iter().filter(|o| inserted.contains(&o.id)));
    s.run(c).await?;
    Ok(inserted)
}

/// Plans the insert of new orders and their lines and shipments, all of
/// them, for a caller that knows none is taken (new orders at the store):
/// the rows the script returns are the ids inserted, and a shortfall means
/// a number was taken after all, so the caller must roll back.
///
/// Each order is written with the warehouse it is routed to (`None`: not
/// routed), in the insert itself: a second statement setting it rewrote
/// every new row and its index entries (the routing column is indexed),
/// and on PostgreSQL cost a round trip of its own.
pub fn plan_insert_all(s: &mut Script, list: &[Order], warehouses: &[Option<&str>]) {
    debug_assert_eq!(list.len(), warehouses.len());
    plan_orders(s, list, Some(warehouses));
    plan_children(s, list.iter());
}

/// The ids in what an orders insert (or update) returned.
pub fn inserted_ids(returned: Vec<AnyRow>) -> Result<HashSet<OrderId>> {
    let mut inserted = HashSet::with_capacity(returned.len());
    for row in returned {
        let id: String = row.try_get(0)?;
        inserted.insert(OrderId::parse(&id).ok_or_else(|| corrupt(&id, "not a UUID"))?);
    }
    Ok(inserted)
}

/// The order rows; the statement returns the ids it inserted.
/// With `warehouses` (the store's new orders): each row's warehouse too.
fn plan_orders(s: &mut Script, list: &[Order], warehouses: Option<&[Option<&str>]>) {
    let cols = if warehouses.is_some() { 31 } else { 30 };
    let keys: Vec<String> = list.iter().map(|o| o.id.to_string()).collect();
    let hashes: Vec<i64> = keys.iter().map(|k| id_hash(k)).collect();
    let fulfillment: Vec<_> = list
        .iter()
        .map(|o| fulfillment_columns(o.fulfillment.as_ref()))
        .collect();
    let order_ids: Vec<String> = list.iter().map(|o| o.order_id.to_string()).collect();
    let holds: Vec<(String, String)> = list
        .iter()
        .map(|o| {
            (
                holds_json(&o.content.holds),
                holds_json(o.fulfillment.as_ref().map_or(&[][..], |f| &f.holds[..])),
            )
        })
        .collect();
    let mut rows: Vec<Val> = Vec::with_capacity(list.len() * cols);
    for (
        i,
        (
            ((((o, key), hash), (status, hold_reason, held_from, rejected, changed)), order_id),
            (store_holds, warehouse_holds),
        ),
    ) in list
        .iter()
        .zip(&keys)
        .zip(&hashes)
        .zip(&fulfillment)
        .zip(&order_ids)
        .zip(&holds)
        .enumerate()
    {
        let ct = &o.content;
        rows.extend([
            Val::from(key.as_str()),
            o.number.as_str().into(),
            o.store_version.into(),
            o.warehouse_version.into(),
            ct.customer.name.as_str().into(),
            ct.customer.email.as_str().into(),
            ct.customer.company.as_deref().into(),
            ct.shipping_address.name.as_str().into(),
            ct.shipping_address.line1.as_str().into(),
            ct.shipping_address.line2.as_deref().into(),
            ct.shipping_address.city.as_str().into(),
            ct.shipping_address.region.as_deref().into(),
            ct.shipping_address.postal_code.as_str().into(),
            ct.shipping_address.country.as_str().into(),
            ct.notes.as_deref().into(),
            ct.deliver_by.map(to_micros).into(),
            i64::from(ct.cancel.is_some()).into(),
            ct.cancel.as_ref().and_then(|r| r.reason.as_deref()).into(),
            (*status).into(),
            hold_reason.as_deref().into(),
            (*held_from).into(),
            rejected.as_deref().into(),
            (*changed).into(),
            to_micros(o.created_at).into(),
            to_micros(o.updated_at).into(),
            (*hash).into(),
            order_id.as_str().into(),
            o.part.into(),
            store_holds.as_str().into(),
            warehouse_holds.as_str().into(),
        ]);
        if let Some(w) = warehouses {
            rows.push(w.get(i).copied().flatten().into());
        }
    }
    let insert = if warehouses.is_some() {
        &INSERT_STORE_ORDERS
    } else {
        &INSERT_ORDERS
    };
    s.rows(insert, &[], cols, &rows);
}

/// The start of [`insert_orders`]' texts, both dialects: the 30 columns
/// every order row has, in the order of [`plan_orders`]' rows.
macro_rules! order_insert_columns {
    () => {
        "INSERT INTO orders (id, number, store_version, warehouse_version, customer_name, customer_email, \
         customer_company, ship_name, ship_line1, ship_line2, ship_city, ship_region, ship_postal_code, \
         ship_country, notes, deliver_by, cancel_requested, cancel_reason, status, hold_reason, held_from, \
         cancel_rejected_reason, content_changed_after_pick, created_at, updated_at, id_hash, order_id, part_no, \
         store_holds, warehouse_holds"
    };
}

/// The text of [`INSERT_ORDERS`] and [`INSERT_STORE_ORDERS`]: the 30
/// columns every order row has, then `$col` (`""`, or `", warehouse"`, read
/// from `value ->> 30`).
macro_rules! insert_orders {
    ($col:literal, $val:literal) => {
        Sql {
            sqlite: concat!(
                order_insert_columns!(),
                $col,
                ") SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
                 value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, value ->> 12, \
                 value ->> 13, value ->> 14, value ->> 15, value ->> 16, value ->> 17, value ->> 18, value ->> 19, \
                 value ->> 20, value ->> 21, value ->> 22, value ->> 23, value ->> 24, value ->> 25, value ->> 26, \
                 value ->> 27, value ->> 28, value ->> 29",
                $val,
                " FROM (SELECT jsonb(value) AS value FROM json_each(?) LIMIT -1 OFFSET 0) WHERE true \
                 ON CONFLICT DO NOTHING RETURNING id"
            ),
            postgres: concat!(
                order_insert_columns!(),
                $col,
                ") SELECT value ->> 0, value ->> 1, (value ->> 2)::bigint, (value ->> 3)::bigint, value ->> 4, value ->> 5, \
                 value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, value ->> 12, \
                 value ->> 13, value ->> 14, (value ->> 15)::bigint, (value ->> 16)::bigint, value ->> 17, value ->> 18, \
                 value ->> 19, value ->> 20, value ->> 21, (value ->> 22)::bigint, (value ->> 23)::bigint, \
                 (value ->> 24)::bigint, (value ->> 25)::bigint, value ->> 26, (value ->> 27)::bigint, \
                 value ->> 28, value ->> 29",
                $val,
                " FROM jsonb_array_elements($1::jsonb) AS e(value) ON CONFLICT DO NOTHING RETURNING id"
            ),
        }
    };
}

/// [`plan_orders`]'s statement: one row per JSON array, in the column order
/// of the insert. (`WHERE true` settles SQLite's parsing of `ON CONFLICT`
/// after a `SELECT`.)
pub(super) const INSERT_ORDERS: Sql = insert_orders!("", "");

/// [`INSERT_ORDERS`] at the store, with the warehouse each order is routed
/// to (`value ->> 30`).
pub(super) const INSERT_STORE_ORDERS: Sql = insert_orders!(", warehouse", ", value ->> 30");

/// The lines and shipments of new orders.
fn plan_children<'a>(s: &mut Script, list: impl Iterator<Item = &'a Order> + Clone) {
    plan_lines(s, list.clone().map(|o| (o.id, o.content.lines.as_slice())));
    plan_shipments(
        s,
        list.flat_map(|o| {
            o.fulfillment
                .iter()
                .flat_map(|f| f.shipments.iter())
                .map(|sh| (o.id, sh))
        }),
    );
}

/// Inserts one new order; false when its id or number is taken (see
/// [`insert_many`]).
pub async fn insert(c: &mut AnyConnection, o: &Order) -> Result<bool> {
    Ok(!insert_many(c, std::slice::from_ref(o)).await?.is_empty())
}

/// Plans the `order_lines` of new orders (or parts), numbered from 0 per
/// order.
fn plan_lines<'a>(s: &mut Script, orders: impl Iterator<Item = (OrderId, &'a [Line])>) {
    let orders: Vec<(String, &[Line])> = orders.map(|(id, l)| (id.to_string(), l)).collect();
    let mut rows: Vec<Val> = Vec::new();
    for (key, lines) in &orders {
        for (i, l) in lines.iter().enumerate() {
            rows.extend(line_row(key, i, l));
        }
    }
    s.rows(&INSERT_LINES, &[], 5, &rows);
}

/// An order line's columns as the line tables hold them: the order's key,
/// its position, SKU, name and quantity (the store's items add a price).
pub(super) fn line_row<'a>(key: &'a str, i: usize, l: &'a Line) -> [Val<'a>; 5] {
    [
        Val::from(key),
        (i as i64).into(),
        l.sku.as_str().into(),
        l.name.as_str().into(),
        i64::from(l.quantity.get()).into(),
    ]
}

pub(super) const INSERT_LINES: Sql = Sql {
    sqlite: "INSERT INTO order_lines (order_id, line_no, sku, name, quantity) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM (SELECT jsonb(value) AS value FROM json_each(?) LIMIT -1 OFFSET 0)",
    postgres: "INSERT INTO order_lines (order_id, line_no, sku, name, quantity) \
               SELECT value ->> 0, (value ->> 1)::bigint, value ->> 2, value ->> 3, (value ->> 4)::bigint \
               FROM jsonb_array_elements($1::jsonb) AS e(value)",
};

/// Plans the parcels of orders, each order's numbered from 1 in the order
/// given (oldest first).
fn plan_shipments<'a>(s: &mut Script, shipments: impl Iterator<Item = (OrderId, &'a Shipment)>) {
    let mut numbered: Vec<(String, i64, &Shipment, String)> = Vec::new();
    for (id, sh) in shipments {
        let key = id.to_string();
        let no = match numbered.last() {
            Some((k, n, _, _)) if *k == key => n + 1,
            _ => 1,
        };
        let lines: Vec<(&str, u32)> = sh
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.quantity))
            .collect();
        let lines = serde_json::to_string(&lines).unwrap_or_else(|_| "[]".into());
        numbered.push((key, no, sh, lines));
    }
    let mut rows: Vec<Val> = Vec::with_capacity(numbered.len() * 6);
    for (key, no, sh, lines) in &numbered {
        rows.extend([
            Val::from(key.as_str()),
            (*no).into(),
            sh.carrier.as_str().into(),
            sh.tracking_number.as_str().into(),
            to_micros(sh.shipped_at).into(),
            lines.as_str().into(),
        ]);
    }
    s.rows(&INSERT_SHIPMENTS, &[], 6, &rows);
}

pub(super) const INSERT_SHIPMENTS: Sql = Sql {
    sqlite: "INSERT INTO shipments (order_id, shipment_no, carrier, tracking_number, shipped_at, lines) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM (SELECT jsonb(value) AS value FROM json_each(?) LIMIT -1 OFFSET 0)",
    postgres: "INSERT INTO shipments (order_id, shipment_no, carrier, tracking_number, shipped_at, lines) \
               SELECT value ->> 0, (value ->> 1)::bigint, value ->> 2, value ->> 3, (value ->> 4)::bigint, value ->> 5 \
               FROM jsonb_array_elements($1::jsonb) AS e(value)",
};

/// Marks an order as changed now without changing what syncs (an edit of
/// its money only).
pub async fn touch(c: &mut AnyConnection, id: OrderId, now: i64) -> Result<()> {
    sqlx::query("UPDATE orders SET updated_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(now)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Replaces the store-owned content and sets `store_version`, unless the
/// row already holds that version or a newer one (version fencing).
/// Returns false when fenced off.
pub async fn update_content(
    c: &mut AnyConnection,
    id: OrderId,
    ct: &OrderContent,
    store_version: i64,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE orders SET store_version = $2, customer_name = $3, customer_email = $4, customer_company = $5, \
         ship_name = $6, ship_line1 = $7, ship_line2 = $8, ship_city = $9, ship_region = $10, \
         ship_postal_code = $11, ship_country = $12, notes = $13, deliver_by = $14, cancel_requested = $15, \
         cancel_reason = $16, updated_at = $17, store_holds = $18 WHERE id = $1 AND store_version < $2",
    )
    .bind(id.to_string())
    .bind(store_version)
    .bind(ct.customer.name.as_str())
    .bind(ct.customer.email.as_str())
    .bind(ct.customer.company.as_deref())
    .bind(ct.shipping_address.name.as_str())
    .bind(ct.shipping_address.line1.as_str())
    .bind(ct.shipping_address.line2.as_deref())
    .bind(ct.shipping_address.city.as_str())
    .bind(ct.shipping_address.region.as_deref())
    .bind(ct.shipping_address.postal_code.as_str())
    .bind(ct.shipping_address.country.as_str())
    .bind(ct.notes.as_deref())
    .bind(ct.deliver_by.map(to_micros))
    .bind(i64::from(ct.cancel.is_some()))
    .bind(ct.cancel.as_ref().and_then(|r| r.reason.as_deref()))
    .bind(now)
    .bind(holds_json(&ct.holds))
    .execute(&mut *c)
    .await?
    .rows_affected();
    if done == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM order_lines WHERE order_id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    let mut s = Script::new(c);
    plan_lines(&mut s, std::iter::once((id, ct.lines.as_slice())));
    s.run(c).await?;
    Ok(true)
}

/// Replaces the warehouse-owned fulfillment and sets `warehouse_version`,
/// unless the row already holds that version or a newer one.
/// Returns false when fenced off.
pub async fn update_fulfillment(
    c: &mut AnyConnection,
    id: OrderId,
    f: &Fulfillment,
    warehouse_version: i64,
    now: i64,
) -> Result<bool> {
    Ok(!update_fulfillments(c, &[(id, f, warehouse_version)], now)
        .await?
        .is_empty())
}

/// [`update_fulfillment`] for many orders, in one statement (plus their
/// shipments). Returns the ids actually updated.
pub async fn update_fulfillments(
    c: &mut AnyConnection,
    list: &[(OrderId, &Fulfillment, i64)],
    now: i64,
) -> Result<HashSet<OrderId>> {
    write_fulfillments(c, &UPDATE_FULFILLMENTS, list, now).await
}

/// [`update_fulfillments`] at the store, whose caller then rolls the
/// order's status up over its parts ([`super::parts::refresh_status`]).
/// On PostgreSQL the row of an order that is one part writes its rolled-up
/// status (its own) in the same statement, so that the roll-up finds
/// nothing to change: a second update of the row was a second row version
/// and one more entry in each of its seven indexes, as much as the update
/// itself (pg_stat_statements: 60 µs an order each, the two largest
/// statements of e2e and updates on a durable cluster).
pub async fn update_fulfillments_at_store(
    c: &mut AnyConnection,
    list: &[(OrderId, &Fulfillment, i64)],
    now: i64,
) -> Result<HashSet<OrderId>> {
    write_fulfillments(c, &UPDATE_FULFILLMENTS_AT_STORE, list, now).await
}

async fn write_fulfillments(
    c: &mut AnyConnection,
    statement: &'static Sql,
    list: &[(OrderId, &Fulfillment, i64)],
    now: i64,
) -> Result<HashSet<OrderId>> {
    let keys: Vec<String> = list.iter().map(|(id, _, _)| id.to_string()).collect();
    let columns: Vec<_> = list
        .iter()
        .map(|(_, f, _)| fulfillment_columns(Some(f)))
        .collect();
    let rejections: Vec<String> = list
        .iter()
        .map(|(_, f, _)| {
            let raw: Vec<(&str, u32, &str)> = f
                .rejections
                .iter()
                .map(|r| (r.sku.as_str(), r.quantity, r.reason.as_str()))
                .collect();
            serde_json::to_string(&raw).unwrap_or_else(|_| "[]".into())
        })
        .collect();
    let holds: Vec<String> = list.iter().map(|(_, f, _)| holds_json(&f.holds)).collect();
    let mut rows: Vec<Val> = Vec::with_capacity(list.len() * 9);
    for (
        (((key, (_, _, version)), (status, hold_reason, held_from, rejected, changed)), refused),
        held,
    ) in keys
        .iter()
        .zip(list)
        .zip(&columns)
        .zip(&rejections)
        .zip(&holds)
    {
        rows.extend([
            Val::from(key.as_str()),
            (*version).into(),
            (*status).into(),
            hold_reason.as_deref().into(),
            (*held_from).into(),
            rejected.as_deref().into(),
            (*changed).into(),
            refused.as_str().into(),
            held.as_str().into(),
        ]);
    }
    let mut s = Script::new(c);
    s.rows(statement, &[Val::Int(now)], 9, &rows);
    let updated = inserted_ids(s.run(c).await?)?;
    // Shipments are replaced wholesale (usually there is none on either
    // side): the delete and the inserts go together.
    let replaced: Vec<&str> = keys
        .iter()
        .zip(list)
        .filter(|(_, (id, _, _))| updated.contains(id))
        .map(|(key, _)| key.as_str())
        .collect();
    let mut s = Script::new(c);
    s.keys(&DELETE_SHIPMENTS, &[], &replaced);
    plan_shipments(
        &mut s,
        list.iter()
            .filter(|(id, _, _)| updated.contains(id))
            .flat_map(|(id, f, _)| f.shipments.iter().map(|sh| (*id, sh))),
    );
    s.run(c).await?;
    Ok(updated)
}

/// PostgreSQL's text of the fulfillment updates (see below), setting
/// `$extra` too (`""`, or `", column = ..."`).
macro_rules! update_fulfillments_pg {
    ($extra:literal) => {
        concat!(
            "UPDATE orders SET warehouse_version = v.version, status = v.status, hold_reason = v.hold_reason, \
             held_from = v.held_from, cancel_rejected_reason = v.rejected, content_changed_after_pick = v.changed, \
             rejections = v.refused, warehouse_holds = v.held, updated_at = $1",
            $extra,
            " FROM (SELECT value ->> 0 AS id, (value ->> 1)::bigint AS version, value ->> 2 AS status, \
             value ->> 3 AS hold_reason, value ->> 4 AS held_from, value ->> 5 AS rejected, \
             (value ->> 6)::bigint AS changed, value ->> 7 AS refused, value ->> 8 AS held \
             FROM jsonb_array_elements($2::jsonb) AS e(value)) AS v \
             WHERE orders.id = v.id AND orders.warehouse_version < v.version \
             AND orders.id = ANY(ARRAY(SELECT value ->> 0 FROM jsonb_array_elements($2::jsonb) AS e(value))) \
             RETURNING orders.id"
        )
    };
}

/// [`update_fulfillments`]' statement: arguments `updated_at`, then the
/// rows `[id, warehouse_version, status, hold_reason, held_from,
/// cancel_rejected_reason, content_changed_after_pick, rejections, warehouse_holds]`. Fenced: a row that
/// holds that version or a newer one is left alone.
pub(super) const UPDATE_FULFILLMENTS: Sql = Sql {
    sqlite: "UPDATE orders SET warehouse_version = v.version, status = v.status, hold_reason = v.hold_reason, \
             held_from = v.held_from, cancel_rejected_reason = v.rejected, content_changed_after_pick = v.changed, \
             rejections = v.refused, warehouse_holds = v.held, updated_at = ? \
             FROM (SELECT value ->> 0 AS id, value ->> 1 AS version, value ->> 2 AS status, \
                   value ->> 3 AS hold_reason, value ->> 4 AS held_from, value ->> 5 AS rejected, \
                   value ->> 6 AS changed, value ->> 7 AS refused, value ->> 8 AS held FROM (SELECT jsonb(value) AS value FROM json_each(?) LIMIT -1 OFFSET 0)) AS v \
             WHERE orders.id = v.id AND orders.warehouse_version < v.version RETURNING orders.id",
    postgres: update_fulfillments_pg!(""),
};

/// [`update_fulfillments_at_store`]'s statement (the same arguments). An
/// order's first row is its own order (`order_id = id`); with no other
/// row, its rolled-up status is its own status. SQLite's text is the
/// plain one (the roll-up writes the row again there).
pub(super) const UPDATE_FULFILLMENTS_AT_STORE: Sql = Sql {
    sqlite: UPDATE_FULFILLMENTS.sqlite,
    postgres: update_fulfillments_pg!(
        ", order_status = CASE WHEN orders.order_id = orders.id AND orders.withdrawn = 0 \
         AND orders.warehouse IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM orders p WHERE p.order_id = orders.order_id AND p.id <> orders.id) \
         THEN v.status ELSE orders.order_status END"
    ),
};

const DELETE_SHIPMENTS: Sql = Sql {
    sqlite: "DELETE FROM shipments WHERE order_id IN (SELECT value FROM json_each(?))",
    postgres: "DELETE FROM shipments WHERE order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
};

// ---------------------------------------------------------------------------
// Money: store only. These tables do not exist in a warehouse database.
// ---------------------------------------------------------------------------

/// Replaces the money of an order whose lines stay as they are: its
/// currency and shipping cost, and the unit price kept on each of its
/// items (`order_items`, by line number). An edit that changes the lines
/// writes their prices with them ([`super::parts::replace_items`]).
pub async fn save_pricing(c: &mut AnyConnection, id: OrderId, p: &Pricing) -> Result<()> {
    let mut s = Script::new(c);
    plan_pricing(&mut s, &[(id, p)]);
    s.run(c).await?;
    let key = id.to_string();
    for (i, price) in p.unit_prices.iter().enumerate() {
        sqlx::query("UPDATE order_items SET unit_price = $1 WHERE order_id = $2 AND line_no = $3")
            .bind(price.get())
            .bind(key.as_str())
            .bind(i as i64)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Plans the currency and shipping cost of orders (new ones, or replaced).
/// Their unit prices go with their items ([`super::parts::plan_items`]).
pub fn plan_pricing(s: &mut Script, list: &[(OrderId, &Pricing)]) {
    let keys: Vec<String> = list.iter().map(|(id, _)| id.to_string()).collect();
    let mut orders: Vec<Val> = Vec::with_capacity(list.len() * 3);
    for (key, (_, p)) in keys.iter().zip(list) {
        orders.extend([
            Val::from(key.as_str()),
            p.currency.as_str().into(),
            p.shipping_cost.get().into(),
        ]);
    }
    s.rows(&INSERT_PRICES, &[], 3, &orders);
}

const INSERT_PRICES: Sql = Sql {
    sqlite: "INSERT INTO order_prices (order_id, currency, shipping_cost) \
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true \
             ON CONFLICT (order_id) DO UPDATE SET currency = excluded.currency, shipping_cost = excluded.shipping_cost",
    postgres: "INSERT INTO order_prices (order_id, currency, shipping_cost) \
               SELECT value ->> 0, value ->> 1, (value ->> 2)::bigint FROM jsonb_array_elements($1::jsonb) AS e(value) \
               ON CONFLICT (order_id) DO UPDATE SET currency = excluded.currency, shipping_cost = excluded.shipping_cost",
};

#[derive(sqlx::FromRow)]
struct PriceRow {
    order_id: String,
    currency: String,
    shipping_cost: i64,
}

#[derive(sqlx::FromRow)]
struct LinePriceRow {
    order_id: String,
    unit_price: i64,
}

/// The money of the given orders.
pub async fn load_pricing(
    c: &mut AnyConnection,
    ids: &[OrderId],
) -> Result<HashMap<OrderId, Pricing>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let keys: Vec<String> = ids.iter().map(OrderId::to_string).collect();
    let list = bulk::keys(&keys);
    let q = sqlx::query_as::<_, LinePriceRow>(LOAD_LINE_PRICES.on(c)).bind(list.as_str());
    let mut prices: HashMap<String, Vec<MinorUnits>> = HashMap::new();
    for r in q.fetch_all(&mut *c).await? {
        let p =
            MinorUnits::parse("unit_price", r.unit_price).map_err(|e| corrupt(&r.order_id, e))?;
        prices.entry(r.order_id).or_default().push(p);
    }
    let q = sqlx::query_as::<_, PriceRow>(LOAD_PRICES.on(c)).bind(list.as_str());
    for r in q.fetch_all(&mut *c).await? {
        let bad = |e: crate::domain::FieldError| corrupt(&r.order_id, e);
        let id =
            OrderId::parse(&r.order_id).ok_or_else(|| corrupt(&r.order_id, "id is not a UUID"))?;
        out.insert(
            id,
            Pricing {
                currency: Currency::parse("currency", &r.currency).map_err(bad)?,
                shipping_cost: MinorUnits::parse("shipping_cost", r.shipping_cost).map_err(bad)?,
                unit_prices: prices.remove(&r.order_id).unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

const LOAD_LINE_PRICES: Sql = Sql {
    sqlite: "SELECT order_id, unit_price FROM order_items \
             WHERE order_id IN (SELECT value FROM json_each($1)) ORDER BY order_id, line_no",
    postgres: "SELECT order_id, unit_price FROM order_items \
               WHERE order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb))) ORDER BY order_id, line_no",
};

const LOAD_PRICES: Sql = Sql {
    sqlite: "SELECT order_id, currency, shipping_cost FROM order_prices \
             WHERE order_id IN (SELECT value FROM json_each($1))",
    postgres: "SELECT order_id, currency, shipping_cost FROM order_prices \
               WHERE order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
};

// ---------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------

/// Which orders a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusFilter {
    Fulfillment(FulfillmentStatus),
    /// Store: no cancel requested.
    Open,
    /// Store: cancel requested.
    CancelRequested,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<StatusFilter>,
    /// Only orders changed at or after this time (microseconds).
    pub updated_since: Option<i64>,
    /// Order number, customer name or e-mail (substring), or exact SKU.
    pub search: Option<String>,
    /// Only orders whose sync state (towards whichever peer they go to) is
    /// this one.
    pub sync_state: Option<String>,
    /// Continue after this id (newest first, so: ids below it).
    pub after: Option<OrderId>,
    pub limit: u32,
    /// The store: rows are parts, and a list shows orders (their first
    /// rows), filters their rolled-up status, searches the SKUs they were
    /// ordered with and the sync state of every part.
    pub orders_only: bool,
    /// The order of the list (newest first unless said).
    pub sort: Sort,
    /// The admin's pages: only the rows after (or before) this position in
    /// `sort`'s order, the nearest first. (The API's `after` is the same
    /// for the default order, newest first.)
    pub seek: Option<(Direction, Seek)>,
}

/// What a list is sorted by; ties are broken by the id, so that every row
/// has one place and pages can seek from a row's [`Seek`] both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// The id: UUID v7, so the order of creation.
    #[default]
    Created,
    /// Last change.
    Updated,
    /// Fulfillment status, in the order work moves (see [`STATUS_RANK`]);
    /// at the store not reported yet comes first, as the rank 0.
    Status,
    /// The delivery deadline; orders without one come after every one.
    DeliverBy,
}

impl SortKey {
    pub const ALL: [SortKey; 4] = [
        SortKey::Created,
        SortKey::Updated,
        SortKey::Status,
        SortKey::DeliverBy,
    ];

    /// The name in a query string (`?sort=deliver_by`, `-` first for
    /// descending).
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Created => "created",
            SortKey::Updated => "updated",
            SortKey::Status => "status",
            SortKey::DeliverBy => "deliver_by",
        }
    }

    /// The key as SQL (`None`: the id alone). Written exactly as the
    /// indexes of migration 18 are, so that they serve the sort.
    fn sql(self, orders_only: bool) -> Option<String> {
        match self {
            SortKey::Created => None,
            SortKey::Updated => Some("updated_at".into()),
            SortKey::Status => Some(STATUS_RANK.replace(
                "{status}",
                if orders_only {
                    "order_status"
                } else {
                    "status"
                },
            )),
            SortKey::DeliverBy => Some(DELIVER_BY_KEY.into()),
        }
    }
}

/// The rank a status sorts by: the order work moves in, then the ends;
/// `{status}` is the column (the store's list: the rolled-up
/// `order_status`).
pub const STATUS_RANK: &str = "CASE {status} WHEN 'pending' THEN 1 WHEN 'picking' THEN 2 \
     WHEN 'packed' THEN 3 WHEN 'on_hold' THEN 4 WHEN 'partially_shipped' THEN 5 WHEN 'shipped' THEN 6 \
     WHEN 'rejected' THEN 7 WHEN 'cancelled' THEN 8 ELSE 0 END";

/// The rank [`STATUS_RANK`] gives `s` (`None` if it names no rank for it,
/// which a unit test rules out).
fn status_rank(s: FulfillmentStatus) -> Option<i64> {
    let when = format!("WHEN '{}' THEN ", s.as_str());
    let rest = &STATUS_RANK[STATUS_RANK.find(&when)? + when.len()..];
    rest.split(' ').next()?.parse().ok()
}

/// The deadline a list sorts by: none is later than any.
const DELIVER_BY_KEY: &str = "COALESCE(deliver_by, 9223372036854775807)";

/// A list's order: a key, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    /// Newest first.
    fn default() -> Self {
        Sort {
            key: SortKey::Created,
            descending: true,
        }
    }
}

/// A row's place in a sorted list: its key's value (0 for
/// [`SortKey::Created`], whose key is the id) and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seek {
    pub key: i64,
    pub id: OrderId,
}

/// Which side of a [`Seek`] a page lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    After,
    Before,
}

/// Ids of the orders matching `f`, in its order (newest first unless
/// said). Ids are UUID v7, whose text sorts by creation time, so a cursor
/// walk by id sees every order that existed when it began exactly once,
/// however many are created meanwhile.
pub async fn list_ids(c: &mut AnyConnection, f: &ListFilter) -> Result<Vec<OrderId>> {
    Ok(list_seeks(c, f).await?.into_iter().map(|s| s.id).collect())
}

/// The rows matching `f` with their place in its order ([`Seek`]s), in
/// that order, or for a page [`Direction::Before`] a position, nearest
/// first (the reverse).
///
/// The one statement built at run time: its `WHERE` holds only the filters
/// given. A fixed text with every filter written `($1 IS NULL OR status =
/// $1)` has one plan for all of them, and that plan cannot use an index a
/// given filter needs: on SQLite with 200,000 orders, the newest 50 with a
/// status that 200 orders have took 22 ms instead of 0.02 ms (walking the
/// id index instead of `orders_status`), and a status 3 old orders have,
/// 174 ms instead of 0.004 ms. (Both dialects run the same text.) A page
/// seeks with a row value, `(key, id) < ($k, $id)`, which both use an
/// index on `(key, id)` for.
pub async fn list_seeks(c: &mut AnyConnection, f: &ListFilter) -> Result<Vec<Seek>> {
    let (sql, args) = list_query(f);
    let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s),
            Arg::Int(i) => q.bind(i),
        };
    }
    q.fetch_all(&mut *c)
        .await?
        .into_iter()
        .map(|(id, key)| {
            let id = OrderId::parse(&id).ok_or_else(|| corrupt(&id, "id is not a UUID"))?;
            Ok(Seek { key, id })
        })
        .collect()
}

/// [`list_seeks`]'s statement and its arguments.
pub(super) fn list_query(f: &ListFilter) -> (String, Vec<Arg>) {
    let mut args: Vec<Arg> = Vec::new();
    let mut wh = filters(f, &mut args);
    if let Some(after) = f.after {
        wh.push(format!(
            "id < {}",
            next_arg(Arg::Text(after.to_string()), &mut args)
        ));
    }
    let key = f.sort.key.sql(f.orders_only);
    // Walking away from the position: down the order when descending and
    // going on, or ascending and going back.
    let down = match &f.seek {
        Some((Direction::Before, _)) => !f.sort.descending,
        _ => f.sort.descending,
    };
    if let Some((_, seek)) = &f.seek {
        wh.push(seek_sql(
            key.as_deref(),
            if down { "<" } else { ">" },
            seek,
            &mut args,
        ));
    }
    let dir = if down { "DESC" } else { "ASC" };
    let order = match &key {
        Some(k) => format!("{k} {dir}, id {dir}"),
        None => format!("id {dir}"),
    };
    let limit = next_arg(Arg::Int(i64::from(f.limit)), &mut args);
    let selected = format!("CAST({} AS BIGINT)", key.as_deref().unwrap_or("0"));
    let sql = format!(
        "SELECT id, {selected} FROM orders {} ORDER BY {order} LIMIT {limit}",
        where_clause(&wh)
    );
    (sql, args)
}

/// How many orders match `f`'s filters (its position and limit aside), or
/// with `before`, how many of them come before that position in its order.
pub async fn count(c: &mut AnyConnection, f: &ListFilter, before: Option<&Seek>) -> Result<i64> {
    let (sql, args) = count_query(f, before);
    let mut q = sqlx::query_scalar::<_, i64>(&sql);
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s),
            Arg::Int(i) => q.bind(i),
        };
    }
    Ok(q.fetch_one(&mut *c).await?)
}

/// [`count`]'s statement and its arguments.
pub(super) fn count_query(f: &ListFilter, before: Option<&Seek>) -> (String, Vec<Arg>) {
    let mut args: Vec<Arg> = Vec::new();
    let mut wh = filters(f, &mut args);
    if let Some(seek) = before {
        let key = f.sort.key.sql(f.orders_only);
        let op = if f.sort.descending { ">" } else { "<" };
        wh.push(seek_sql(key.as_deref(), op, seek, &mut args));
    }
    let sql = format!("SELECT COUNT(*) FROM orders {}", where_clause(&wh));
    (sql, args)
}

fn next_arg(a: Arg, args: &mut Vec<Arg>) -> String {
    args.push(a);
    format!("${}", args.len())
}

fn where_clause(wh: &[String]) -> String {
    if wh.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", wh.join(" AND "))
    }
}

/// The rows on one side (`op`) of `seek` in the order of `key`.
fn seek_sql(key: Option<&str>, op: &str, seek: &Seek, args: &mut Vec<Arg>) -> String {
    let id = next_arg(Arg::Text(seek.id.to_string()), args);
    match key {
        Some(k) => {
            let v = next_arg(Arg::Int(seek.key), args);
            format!("({k}, id) {op} ({v}, {id})")
        }
        None => format!("id {op} {id}"),
    }
}

/// `f`'s filters as `WHERE` terms (status, time, search, sync state).
fn filters(f: &ListFilter, args: &mut Vec<Arg>) -> Vec<String> {
    let mut wh: Vec<String> = Vec::new();
    let (status, lines, parts) = if f.orders_only {
        wh.push("id = order_id".into());
        (
            "order_status",
            "order_items",
            "(SELECT p.id FROM orders p WHERE p.order_id = orders.id)",
        )
    } else {
        ("status", "order_lines", "(orders.id)")
    };
    match &f.status {
        // By its rank, which names each status once: the sort's index
        // on (rank, id) then serves the filter too, in id order (a
        // separate index on (status, id) was one more entry to write for
        // every order and every change of its status).
        Some(StatusFilter::Fulfillment(s)) => wh.push(match status_rank(*s) {
            Some(rank) => format!(
                "{} = {}",
                STATUS_RANK.replace("{status}", status),
                next_arg(Arg::Int(rank), args)
            ),
            None => format!(
                "{status} = {}",
                next_arg(Arg::Text(s.as_str().into()), args)
            ),
        }),
        Some(StatusFilter::Open) => wh.push("cancel_requested = 0".into()),
        Some(StatusFilter::CancelRequested) => wh.push("cancel_requested = 1".into()),
        None => {}
    }
    if let Some(t) = f.updated_since {
        wh.push(format!("updated_at >= {}", next_arg(Arg::Int(t), args)));
    }
    if let Some(s) = f.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let exact = next_arg(Arg::Text(s.to_owned()), args);
        // SQL LOWER() folds ASCII only (SQLite; PostgreSQL under the C
        // locale), so the pattern folds ASCII only too: "Élodie" still
        // finds "Élodie Durand".
        let pattern = format!(
            "%{}%",
            s.to_ascii_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let pat = next_arg(Arg::Text(pattern), args);
        wh.push(format!(
            "(number = {exact} OR LOWER(customer_name) LIKE {pat} ESCAPE '\\' OR LOWER(customer_email) LIKE {pat} ESCAPE '\\' \
             OR id IN (SELECT order_id FROM {lines} WHERE sku = {exact}))"
        ));
    }
    if let Some(state) = &f.sync_state {
        let cond = match state.as_str() {
            "pending" => "o.state = 'pending' AND o.attempts = 0",
            "failing" => "o.state = 'pending' AND o.attempts > 0",
            "dead" => "o.state = 'dead'",
            _ => "o.state = 'delivered'",
        };
        // At the store, an order none of whose lines is routed yet waits:
        // it shows as pending (see the engine's view of an order).
        let waiting = if f.orders_only {
            "(orders.warehouse IS NULL AND orders.cancel_requested = 0)"
        } else {
            "false"
        };
        if state == "synced" {
            wh.push(format!(
                "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.order_id IN {parts} AND o.state <> 'delivered') \
                 AND NOT {waiting}"
            ));
        } else if state == "pending" {
            wh.push(format!(
                "(EXISTS (SELECT 1 FROM outbox o WHERE o.order_id IN {parts} AND {cond}) OR {waiting})"
            ));
        } else {
            wh.push(format!(
                "EXISTS (SELECT 1 FROM outbox o WHERE o.order_id IN {parts} AND {cond})"
            ));
        }
    }
    wh
}

pub(super) enum Arg {
    Text(String),
    Int(i64),
}

// -- routing (store only) ------------------------------------------------------

/// The warehouse each of these orders is routed to (orders not yet routed
/// are left out). Store only: a warehouse's database has no such column.
pub async fn warehouses_of(
    c: &mut AnyConnection,
    ids: &[OrderId],
) -> Result<HashMap<OrderId, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: Vec<String> = ids.iter().map(OrderId::to_string).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(WAREHOUSES_OF.on(c))
        .bind(bulk::keys(&keys))
        .fetch_all(&mut *c)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, w)| OrderId::parse(&id).map(|id| (id, w)))
        .collect())
}

const WAREHOUSES_OF: Sql = Sql {
    sqlite: "SELECT id, warehouse FROM orders \
             WHERE warehouse IS NOT NULL AND id IN (SELECT value FROM json_each($1))",
    postgres: "SELECT id, warehouse FROM orders \
               WHERE warehouse IS NOT NULL AND id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
};

/// Routes these orders to `warehouse`.
pub async fn set_warehouse(c: &mut AnyConnection, ids: &[OrderId], warehouse: &str) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = ids.iter().map(OrderId::to_string).collect();
    sqlx::query(SET_WAREHOUSE.on(c))
        .bind(warehouse)
        .bind(bulk::keys(&keys))
        .execute(&mut *c)
        .await?;
    Ok(())
}

const SET_WAREHOUSE: Sql = Sql {
    sqlite: "UPDATE orders SET warehouse = $1 WHERE id IN (SELECT value FROM json_each($2))",
    postgres: "UPDATE orders SET warehouse = $1 \
               WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text($2::jsonb)))",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn squeeze(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// An index serves a sort only if its expression is written as the
    /// query writes it: migration 18 holds each key exactly as [`SortKey`]
    /// makes it, for its role's status column.
    #[test]
    fn the_sort_keys_are_the_indexed_expressions() {
        let files = [
            (
                include_str!("../../migrations/sqlite/0018_lists_store.sql"),
                true,
            ),
            (
                include_str!("../../migrations/postgres/0018_lists_store.sql"),
                true,
            ),
            (
                include_str!("../../migrations/sqlite/0018_lists_warehouse.sql"),
                false,
            ),
            (
                include_str!("../../migrations/postgres/0018_lists_warehouse.sql"),
                false,
            ),
        ];
        for (sql, store) in files {
            let sql = squeeze(sql);
            for key in [SortKey::Updated, SortKey::Status, SortKey::DeliverBy] {
                let k = squeeze(&key.sql(store).unwrap_or_default());
                assert!(
                    sql.contains(&format!("{k}), id)")) || sql.contains(&format!("({k}, id)")),
                    "{key:?} (store: {store}) is not indexed as {k}"
                );
            }
        }
    }

    /// The rank follows the order work moves in, every status once.
    #[test]
    fn the_status_rank_names_every_status() {
        for s in FulfillmentStatus::ALL {
            assert_eq!(
                STATUS_RANK.matches(&format!("'{}'", s.as_str())).count(),
                1,
                "{s}"
            );
        }
    }

    /// A status filter is written as its rank, so each status needs a rank
    /// of its own, and none may be 0 (no status reported yet).
    #[test]
    fn every_status_has_a_rank_of_its_own() {
        let ranks: Vec<i64> = FulfillmentStatus::ALL
            .into_iter()
            .map(|s| status_rank(s).unwrap_or_else(|| panic!("{s} has no rank")))
            .collect();
        let mut distinct = ranks.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ranks.len(), "{ranks:?}");
        assert!(!ranks.contains(&0), "{ranks:?}");
        assert_eq!(status_rank(FulfillmentStatus::Pending), Some(1));
        assert_eq!(status_rank(FulfillmentStatus::Cancelled), Some(8));
    }
}
