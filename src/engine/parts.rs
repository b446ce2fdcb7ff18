//! The store's orders as parts (docs/DESIGN.md §6.3): an order is its
//! first row plus one row per further warehouse share, each syncing on its
//! own. Here: loading an order with its parts, the view that rolls them up,
//! and writing what routing decided.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{EngineError, OrderView, Result};
use crate::domain::delivery::{SyncInfo, SyncState};
use crate::domain::order::{Line, OrderContent};
use crate::domain::parts::{self, Mode, Plan, RoutedPart, Unrouted, part_number};
use crate::domain::warehouse::{Warehouse, WarehouseName};
use crate::domain::{Order, OrderId, Pricing};
use crate::storage::orders::{self, Parts};
use crate::storage::parts::{self as stored, PartRef};
use crate::storage::{self, StorageError, outbox};

/// One part of an order at the store: its row, the warehouse it went to
/// and its delivery there.
#[derive(Debug, Clone)]
pub struct PartView {
    pub order: Order,
    pub warehouse: String,
    /// Its lines went elsewhere (an edit): it was asked to cancel and
    /// counts for nothing in the order.
    pub withdrawn: bool,
    pub sync: SyncInfo,
}

/// An order with everything routing needs: its first row, its parts (in
/// part order; the first row among them once routed) and its items.
pub(super) struct Loaded {
    pub head: Order,
    /// Rows routed to a warehouse, with where.
    pub parts: Vec<(PartRef, Order)>,
    /// The lines as ordered.
    pub items: Vec<Line>,
}

impl Loaded {
    /// The order's content with its lines as ordered.
    pub fn content(&self) -> OrderContent {
        OrderContent {
            lines: self.items.clone(),
            ..self.head.content.clone()
        }
    }

    /// Whether the first row is a placeholder: no line of the order is
    /// routed to its warehouse yet (it has none).
    pub fn head_unrouted(&self) -> bool {
        !self.parts.iter().any(|(p, _)| p.id == self.head.id)
    }

    /// The parts as routing sees them.
    pub fn routed(&self) -> Result<Vec<RoutedPart>> {
        self.parts.iter().map(|(p, o)| routed_part(p, o)).collect()
    }

    /// The lines no part holds.
    pub fn unrouted(&self) -> Result<Vec<Line>> {
        Ok(parts::unrouted(&self.items, &self.routed()?))
    }
}

fn routed_part(p: &PartRef, o: &Order) -> Result<RoutedPart> {
    let name = p.warehouse.as_deref().unwrap_or_default();
    let warehouse = WarehouseName::parse("warehouse", name)
        .map_err(|e| StorageError::Corrupt(format!("order {}: warehouse {name:?}: {e}", p.id)))?;
    Ok(RoutedPart {
        id: p.id,
        warehouse,
        lines: o.content.lines.clone(),
        rejected: o
            .fulfillment
            .as_ref()
            .map(|f| f.rejections.clone())
            .unwrap_or_default(),
        open: o.content.cancel.is_none()
            && o.fulfillment
                .as_ref()
                .is_none_or(|f| f.status == crate::domain::FulfillmentStatus::Pending),
        withdrawn: p.withdrawn,
    })
}

/// Loads order `id` (refused when `id` is another order's later part) and
/// its parts, locked for a read-modify-write on PostgreSQL.
pub(super) async fn load_for_update(c: &mut AnyConnection, id: OrderId) -> Result<Loaded> {
    let mut refs = stored::of_orders(c, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    let ids: Vec<OrderId> = refs.iter().map(|p| p.id).collect();
    let mut rows: HashMap<OrderId, Order> = orders::load_many_for_update(c, &ids, Parts::All)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let head = rows.remove(&id).ok_or(EngineError::NotFound(id))?;
    let items = stored::items(c, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    refs.retain(|p| p.warehouse.is_some());
    let parts = refs
        .into_iter()
        .map(|p| {
            let o = if p.id == id {
                head.clone()
            } else {
                rows.remove(&p.id)
                    .ok_or_else(|| StorageError::Corrupt(format!("part {} vanished", p.id)))?
            };
            Ok::<_, EngineError>((p, o))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Loaded { head, parts, items })
}

/// Why a line is unrouted that a warehouse would take now.
pub(super) fn routable_now(id: OrderId) -> String {
    format!("a warehouse takes it now: route the order again (POST /api/v1/orders/{id}/route)")
}

/// The unrouted lines of an order, each with why, given the warehouses.
pub(super) fn unrouted_with_reasons(
    lines: Vec<Line>,
    id: OrderId,
    country: &crate::domain::values::CountryCode,
    warehouses: &[Warehouse],
    routed: &[RoutedPart],
) -> Vec<Unrouted> {
    if lines.is_empty() {
        return Vec::new();
    }
    let plan = parts::plan(&lines, country, warehouses, routed, Mode::Add);
    lines
        .into_iter()
        .map(|line| {
            let reason = plan
                .unrouted
                .iter()
                .find(|u| u.line.sku == line.sku)
                .map(|u| u.reason.clone())
                .unwrap_or_else(|| routable_now(id));
            Unrouted { line, reason }
        })
        .collect()
}

/// The order as the store shows it: the first row with the items as its
/// lines, the fulfillment rolled up over its live parts, the sync state
/// the worst of its parts'.
pub(super) fn compose(
    head: Order,
    pricing: Option<Pricing>,
    items: Vec<Line>,
    parts: Vec<PartView>,
    unrouted: Vec<Unrouted>,
) -> OrderView {
    let live: Vec<&PartView> = parts.iter().filter(|p| !p.withdrawn).collect();
    let fulfillment = if live.is_empty() {
        None
    } else {
        parts::roll_up(
            &live
                .iter()
                .map(|p| p.order.fulfillment.as_ref())
                .collect::<Vec<_>>(),
        )
    };
    let sync = if parts.is_empty() && !unrouted.is_empty() && head.content.cancel.is_none() {
        // Nothing travels until a warehouse takes a line.
        SyncInfo {
            state: SyncState::Pending,
            last_error: Some(unrouted[0].reason.clone()),
        }
    } else {
        SyncInfo::worst(parts.iter().map(|p| &p.sync))
    };
    let mut order = head;
    order.content.lines = items;
    order.fulfillment = fulfillment;
    OrderView {
        order,
        pricing,
        sync,
        parts,
        unrouted,
    }
}

/// The store's views of these orders (first rows), with their parts.
pub(super) async fn views(
    c: &mut AnyConnection,
    heads: Vec<Order>,
    mut pricing: HashMap<OrderId, Pricing>,
) -> Result<Vec<OrderView>> {
    let ids: Vec<OrderId> = heads.iter().map(|o| o.id).collect();
    let mut refs = stored::of_orders(c, &ids).await?;
    let others: Vec<OrderId> = refs
        .values()
        .flatten()
        .filter(|p| p.id != p.order_id)
        .map(|p| p.id)
        .collect();
    let mut rows: HashMap<OrderId, Order> = orders::load_many(c, &others)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let all: Vec<OrderId> = refs.values().flatten().map(|p| p.id).collect();
    let mut sync = outbox::sync_info(c, &all).await?;
    let mut items = stored::items(c, &ids).await?;
    let mut warehouses: Option<Vec<Warehouse>> = None;
    let mut out = Vec::with_capacity(heads.len());
    for head in heads {
        let id = head.id;
        let mut parts = Vec::new();
        let mut routed = Vec::new();
        for p in refs.remove(&id).unwrap_or_default() {
            let Some(w) = p.warehouse.clone() else {
                continue;
            };
            let order = if p.id == id {
                head.clone()
            } else {
                match rows.remove(&p.id) {
                    Some(o) => o,
                    None => continue,
                }
            };
            routed.push(routed_part(&p, &order)?);
            parts.push(PartView {
                sync: sync.remove(&p.id).unwrap_or(SyncInfo::SYNCED),
                order,
                warehouse: w,
                withdrawn: p.withdrawn,
            });
        }
        // Orders from before items existed have none: their lines are them.
        let items = items
            .remove(&id)
            .unwrap_or_else(|| head.content.lines.clone());
        let left = parts::unrouted(&items, &routed);
        let unrouted = if left.is_empty() {
            Vec::new()
        } else {
            if warehouses.is_none() {
                warehouses = Some(active(c).await?);
            }
            unrouted_with_reasons(
                left,
                id,
                &head.content.shipping_address.country,
                warehouses.as_deref().unwrap_or_default(),
                &routed,
            )
        };
        out.push(compose(head, pricing.remove(&id), items, parts, unrouted));
    }
    Ok(out)
}

/// The store's warehouses (routing skips the inactive ones itself).
pub(super) async fn active(c: &mut AnyConnection) -> Result<Vec<Warehouse>> {
    Ok(storage::warehouses::list(c)
        .await?
        .into_iter()
        .map(|(w, _)| w)
        .collect())
}

/// Routes the lines of order `id` that no part holds (never routed, or
/// rejected by a warehouse) among the warehouses as they are now: they
/// join their warehouse's part that has not started, or make a new part.
/// Parts already routed are not touched; an order whose cancellation was
/// asked is left alone. Returns whether anything was written.
pub(super) async fn route_again(c: &mut AnyConnection, id: OrderId, now: i64) -> Result<bool> {
    let l = load_for_update(c, id).await?;
    let left = l.unrouted()?;
    if left.is_empty() || l.head.content.cancel.is_some() {
        return Ok(false);
    }
    let warehouses = active(c).await?;
    let content = l.content();
    let plan = parts::plan(
        &left,
        &content.shipping_address.country,
        &warehouses,
        &l.routed()?,
        Mode::Add,
    );
    write_plan(c, &l, &content, &plan, now).await
}

/// Writes order `l` as `content` (its fields for every part; its lines,
/// the items) and what routing decided: parts whose lines change, new
/// parts (the first row takes the first one while it is a placeholder),
/// withdrawn parts (asked to cancel). Every part whose content changes
/// gets a new version and goes to its warehouse. Returns whether anything
/// was written.
pub(super) async fn write_plan(
    c: &mut AnyConnection,
    l: &Loaded,
    content: &OrderContent,
    plan: &Plan,
    now: i64,
) -> Result<bool> {
    let mut written = false;
    let mut new_parts = plan.new_parts.iter();
    // Every row that may change: the first row (the order's own record,
    // whatever became of it as a part), then each other part not withdrawn
    // before.
    let mut rows: Vec<(&Order, Option<String>, bool)> = Vec::new();
    match l.parts.iter().find(|(p, _)| p.id == l.head.id) {
        Some((p, _)) => rows.push((&l.head, p.warehouse.clone(), p.withdrawn)),
        None => rows.push((&l.head, None, false)),
    }
    for (p, o) in l
        .parts
        .iter()
        .filter(|(p, _)| !p.withdrawn && p.id != l.head.id)
    {
        rows.push((o, p.warehouse.clone(), false));
    }
    let mut withdrawn = Vec::new();
    for (o, mut warehouse, was_withdrawn) in rows {
        let mut target = OrderContent {
            lines: o.content.lines.clone(),
            ..content.clone()
        };
        // Sent again even with the same content: a new part, or a part
        // withdrawn now (its snapshot then asks its warehouse to cancel).
        let mut resend = false;
        if warehouse.is_none() {
            // The placeholder: it becomes the first new part, if any.
            target.lines = Vec::new();
            if let Some((w, lines)) = new_parts.next() {
                target.lines = lines.clone();
                warehouse = Some(w.to_string());
                orders::set_warehouse(c, &[o.id], w.as_str()).await?;
                resend = true;
            }
        } else if was_withdrawn {
            // Only the order's fields follow; its lines stay as they were.
        } else if let Some((_, lines)) = plan.set_lines.iter().find(|(id, _)| *id == o.id) {
            target.lines = lines.clone();
        } else if plan.withdrawn.contains(&o.id) {
            withdrawn.push(o.id);
            resend = true;
        }
        if target != o.content || resend {
            let v = o.store_version + 1;
            orders::update_content(c, o.id, &target, v, now).await?;
            if let Some(w) = &warehouse {
                outbox::enqueue(c, w, o.id, v, now).await?;
            }
            written = true;
        }
    }
    stored::withdraw(c, &withdrawn).await?;
    let mut next = l.parts.iter().map(|(p, _)| p.part).max().unwrap_or(1) + 1;
    let rest: Vec<_> = new_parts.collect();
    if !rest.is_empty() {
        let at = storage::from_micros(now);
        let mut list = Vec::new();
        for (w, lines) in &rest {
            let order = Order {
                id: OrderId::new(),
                order_id: l.head.id,
                part: next,
                number: part_number(&l.head.number, next),
                content: OrderContent {
                    lines: lines.clone(),
                    ..content.clone()
                },
                store_version: 1,
                warehouse_version: 0,
                fulfillment: None,
                withdrawn: false,
                created_at: at,
                updated_at: at,
            };
            next += 1;
            list.push((w.to_string(), order));
        }
        let orders_only: Vec<Order> = list.iter().map(|(_, o)| o.clone()).collect();
        let inserted = orders::insert_many(c, &orders_only).await?;
        if inserted.len() != orders_only.len() {
            return Err(EngineError::Conflict(format!(
                "a part number of order {} is already taken; try again",
                l.head.number
            )));
        }
        for (w, o) in &list {
            orders::set_warehouse(c, &[o.id], w).await?;
            outbox::enqueue(c, w, o.id, o.store_version, now).await?;
        }
        written = true;
    }
    if written {
        stored::refresh_status(c, &[l.head.id]).await?;
    }
    Ok(written)
}
