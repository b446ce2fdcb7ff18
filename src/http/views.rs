//! The JSON answers of the API, one type each: orders as each side shows
//! them (docs/API.md §4.1, §5.1), pages of them, the audit trail, the
//! delivery timeline, the sync status, the replay result and the store's
//! warehouses. Handlers
//! serialise these types and nothing else (errors are `error::Problem`, the
//! peer answers and the reconciliation job are in `sync::reconcile` and
//! `domain::snapshot`); the OpenAPI document is generated from them.
//!
//! [`WarehouseOrder`] has no money field at all and is built from an
//! [`OrderView`] without reading its pricing, so the warehouse API cannot
//! show a price even by mistake.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::delivery::SyncState;
use crate::domain::holds::{HoldType, TypedHold};
use crate::domain::order::{Address, Customer, Line, Order};
use crate::domain::values::CountryCode;
use crate::domain::warehouse::Warehouse;
use crate::domain::{Fulfillment, FulfillmentStatus, OrderId, Role};
use crate::engine::{OrderView, OutboxStatus, PartView};
use crate::storage::from_micros;
use crate::sync::breaker::BreakerState;

#[derive(Serialize, ToSchema)]
#[schema(as = Customer)]
pub struct CustomerJson<'a> {
    pub name: &'a str,
    #[schema(format = Email)]
    pub email: &'a str,
    #[schema(required = true)]
    pub company: Option<&'a str>,
}

impl<'a> From<&'a Customer> for CustomerJson<'a> {
    fn from(c: &'a Customer) -> Self {
        Self {
            name: c.name.as_str(),
            email: c.email.as_str(),
            company: c.company.as_deref(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = Address)]
pub struct AddressJson<'a> {
    pub name: &'a str,
    pub line1: &'a str,
    #[schema(required = true)]
    pub line2: Option<&'a str>,
    pub city: &'a str,
    #[schema(required = true)]
    pub region: Option<&'a str>,
    pub postal_code: &'a str,
    /// ISO 3166-1 alpha-2, upper case.
    #[schema(example = "GB")]
    pub country: &'a str,
}

impl<'a> From<&'a Address> for AddressJson<'a> {
    fn from(a: &'a Address) -> Self {
        Self {
            name: a.name.as_str(),
            line1: a.line1.as_str(),
            line2: a.line2.as_deref(),
            city: a.city.as_str(),
            region: a.region.as_deref(),
            postal_code: a.postal_code.as_str(),
            country: a.country.as_str(),
        }
    }
}

/// This side's delivery of the order to the other service.
#[derive(Serialize, ToSchema)]
#[schema(as = Sync)]
pub struct SyncJson<'a> {
    pub state: SyncState,
    pub store_version: i64,
    pub warehouse_version: i64,
    #[schema(required = true)]
    pub last_error: Option<&'a str>,
}

impl<'a> From<&'a OrderView> for SyncJson<'a> {
    fn from(v: &'a OrderView) -> Self {
        Self {
            state: v.sync.state,
            store_version: v.order.store_version,
            warehouse_version: v.order.warehouse_version,
            last_error: v.sync.last_error.as_deref(),
        }
    }
}

impl<'a> From<&'a PartView> for SyncJson<'a> {
    fn from(p: &'a PartView) -> Self {
        Self {
            state: p.sync.state,
            store_version: p.order.store_version,
            warehouse_version: p.order.warehouse_version,
            last_error: p.sync.last_error.as_deref(),
        }
    }
}

/// A line of a part: what its warehouse was sent, and what became of it.
#[derive(Serialize, ToSchema)]
#[schema(as = PartLine)]
pub struct PartLineJson<'a> {
    pub sku: &'a str,
    /// What the part still holds (what was sent, less what was rejected).
    #[schema(schema_with = crate::domain::schema::held_quantity)]
    pub quantity: u32,
    pub shipped_quantity: u32,
    pub cancelled_quantity: u32,
    /// What its warehouse refused (it left the part).
    pub rejected_quantity: u32,
}

/// A hold: why, who placed it (and so who releases it), when.
#[derive(Serialize, ToSchema)]
#[schema(as = Hold)]
pub struct HoldJson<'a> {
    #[schema(value_type = String)]
    pub id: uuid::Uuid,
    #[serde(rename = "type")]
    pub kind: HoldType,
    pub reason: &'a str,
    /// `store` or `warehouse`: only that side releases it.
    pub placed_by: Role,
    pub placed_at: DateTime<Utc>,
    /// Null while it holds.
    #[schema(required = true)]
    pub released_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a TypedHold> for HoldJson<'a> {
    fn from(h: &'a TypedHold) -> Self {
        Self {
            id: h.id,
            kind: h.kind,
            reason: &h.reason,
            placed_by: h.placed_by,
            placed_at: h.placed_at,
            released_at: h.released_at,
        }
    }
}

/// Every hold on an order as this side holds it (the store's, in its
/// content, and the warehouse's, in its fulfillment), oldest first.
fn holds_of(o: &Order) -> Vec<HoldJson<'_>> {
    let mut all: Vec<HoldJson> = o
        .content
        .holds
        .iter()
        .chain(o.fulfillment.iter().flat_map(|f| f.holds.iter()))
        .map(HoldJson::from)
        .collect();
    all.sort_by_key(|h| h.placed_at);
    all
}

/// One warehouse's share of an order at the store (docs/API.md §4.6).
#[derive(Serialize, ToSchema)]
#[schema(as = Part)]
pub struct PartJson<'a> {
    /// The first part has the order's id.
    pub id: OrderId,
    pub warehouse: &'a str,
    /// Null until its warehouse has reported it.
    #[schema(required = true)]
    pub status: Option<FulfillmentStatus>,
    /// Its lines went to other warehouses after an edit: it was asked to
    /// cancel and counts for nothing in the order.
    pub withdrawn: bool,
    pub lines: Vec<PartLineJson<'a>>,
    /// Every hold on the part, active or released, whoever placed it.
    pub holds: Vec<HoldJson<'a>>,
    pub shipments: Vec<ShipmentJson<'a>>,
    #[schema(required = true)]
    pub cancel_rejected_reason: Option<&'a str>,
    pub sync: SyncJson<'a>,
}

impl<'a> From<&'a PartView> for PartJson<'a> {
    fn from(p: &'a PartView) -> Self {
        let f = p.order.fulfillment.as_ref();
        let status = f.map(|f| f.status);
        Self {
            id: p.order.id,
            warehouse: &p.warehouse,
            status,
            withdrawn: p.withdrawn,
            lines: p
                .order
                .content
                .lines
                .iter()
                .map(|l| {
                    let (kept, shipped, cancelled, rejected) = line_outcomes(f, l);
                    PartLineJson {
                        sku: l.sku.as_str(),
                        quantity: kept,
                        shipped_quantity: shipped,
                        cancelled_quantity: cancelled,
                        rejected_quantity: rejected,
                    }
                })
                .collect(),
            holds: holds_of(&p.order),
            shipments: shipments(f, &p.order.content.lines, Some(&p.warehouse)),
            cancel_rejected_reason: f.and_then(|f| f.cancel_rejected_reason.as_deref()),
            sync: p.into(),
        }
    }
}

/// A line of the order no warehouse takes now.
#[derive(Serialize, ToSchema)]
#[schema(as = UnroutedLine)]
pub struct UnroutedLineJson<'a> {
    pub sku: &'a str,
    #[schema(schema_with = crate::domain::schema::quantity)]
    pub quantity: u32,
    /// Why, and what to do about it.
    pub reason: &'a str,
}

/// Where the order's lines went.
#[derive(Serialize, ToSchema)]
#[schema(as = Routing)]
pub struct RoutingJson<'a> {
    /// Lines no warehouse takes now: they wait, visible, for
    /// `POST /api/v1/orders/{id}/route`.
    pub unrouted_lines: Vec<UnroutedLineJson<'a>>,
}

/// The fulfillment the store has heard of from the warehouse.
#[derive(Serialize, ToSchema)]
#[schema(as = Fulfillment)]
pub struct FulfillmentJson<'a> {
    /// Null until the warehouse has reported the order.
    #[schema(required = true)]
    pub status: Option<FulfillmentStatus>,
    #[schema(required = true)]
    pub hold_reason: Option<&'a str>,
    #[schema(required = true)]
    pub carrier: Option<&'a str>,
    #[schema(required = true)]
    pub tracking_number: Option<&'a str>,
    #[schema(required = true)]
    pub shipped_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub cancel_rejected_reason: Option<&'a str>,
    pub content_changed_after_pick: bool,
    /// Every parcel of every part, oldest first, each with its warehouse.
    pub shipments: Vec<ShipmentJson<'a>>,
    /// Every active hold on any part (a store hold once), oldest first.
    pub holds: Vec<HoldJson<'a>>,
}

impl<'a> From<Option<&'a Fulfillment>> for FulfillmentJson<'a> {
    fn from(f: Option<&'a Fulfillment>) -> Self {
        let latest = f.and_then(|f| f.latest_shipment());
        Self {
            status: f.map(|f| f.status),
            hold_reason: f.and_then(|f| f.hold.as_ref()).map(|h| h.reason.as_str()),
            carrier: latest.map(|s| s.carrier.as_str()),
            tracking_number: latest.map(|s| s.tracking_number.as_str()),
            shipped_at: latest.map(|s| s.shipped_at),
            cancel_rejected_reason: f.and_then(|f| f.cancel_rejected_reason.as_deref()),
            content_changed_after_pick: f.is_some_and(|f| f.content_changed_after_pick),
            shipments: Vec::new(),
            holds: Vec::new(),
        }
    }
}

/// A parcel: what went, with which carrier, when.
#[derive(Serialize, ToSchema)]
#[schema(as = Shipment)]
pub struct ShipmentJson<'a> {
    /// Its number among its part's parcels (1, 2, …).
    pub id: usize,
    /// The store only: the warehouse that shipped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<&'a str>,
    pub carrier: &'a str,
    pub tracking_number: &'a str,
    pub shipped_at: DateTime<Utc>,
    pub lines: Vec<ShippedLineJson<'a>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ShippedLine)]
pub struct ShippedLineJson<'a> {
    pub sku: &'a str,
    #[schema(schema_with = crate::domain::schema::quantity)]
    pub quantity: u32,
}

/// The parcels of an order of `lines` (a parcel from before parcels had
/// lines held all of them).
fn shipments<'a>(
    f: Option<&'a Fulfillment>,
    lines: &'a [Line],
    warehouse: Option<&'a str>,
) -> Vec<ShipmentJson<'a>> {
    f.map_or(&[][..], |f| &f.shipments[..])
        .iter()
        .enumerate()
        .map(|(i, s)| ShipmentJson {
            id: i + 1,
            warehouse,
            carrier: &s.carrier,
            tracking_number: &s.tracking_number,
            shipped_at: s.shipped_at,
            lines: if s.lines.is_empty() {
                lines
                    .iter()
                    .map(|l| ShippedLineJson {
                        sku: l.sku.as_str(),
                        quantity: l.quantity.get(),
                    })
                    .collect()
            } else {
                s.lines
                    .iter()
                    .map(|l| ShippedLineJson {
                        sku: l.sku.as_str(),
                        quantity: l.quantity,
                    })
                    .collect()
            },
        })
        .collect()
}

/// The parcels of an order as this side holds it (a warehouse's part).
pub fn order_shipments(v: &OrderView) -> Vec<ShipmentJson<'_>> {
    shipments(v.order.fulfillment.as_ref(), &v.order.content.lines, None)
}

/// What became of each of `lines`: shipped, cancelled, rejected.
/// What became of `line`: (still held, shipped, cancelled, rejected). A
/// rejection lowers what is held and raises what is rejected.
fn line_outcomes(f: Option<&Fulfillment>, line: &Line) -> (u32, u32, u32, u32) {
    f.map_or((line.quantity.get(), 0, 0, 0), |f| {
        (
            f.kept_of(line),
            f.shipped_of(line),
            f.cancelled_of(line),
            f.rejected_of(line),
        )
    })
}

#[derive(Serialize, ToSchema)]
#[schema(as = StoreLine)]
pub struct StoreLineJson<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    #[schema(schema_with = crate::domain::schema::quantity)]
    pub quantity: u32,
    /// Minor units.
    pub unit_price: i64,
    /// quantity × unit_price, minor units.
    pub line_total: i64,
}

/// The store's own status of an order.
#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum StoreStatus {
    Open,
    CancelRequested,
}

/// The store's order: content, money, and the fulfillment it has heard of.
#[derive(Serialize, ToSchema)]
pub struct StoreOrder<'a> {
    pub id: OrderId,
    #[schema(example = "SO-000001")]
    pub number: &'a str,
    pub status: StoreStatus,
    pub customer: CustomerJson<'a>,
    pub shipping_address: AddressJson<'a>,
    pub lines: Vec<StoreLineJson<'a>>,
    /// ISO 4217.
    #[schema(example = "GBP")]
    pub currency: &'a str,
    /// Minor units.
    pub shipping_cost: i64,
    /// Sum of line_total, minor units.
    pub subtotal: i64,
    /// subtotal + shipping_cost, minor units.
    pub total: i64,
    #[schema(required = true)]
    pub notes: Option<&'a str>,
    #[schema(required = true)]
    pub deliver_by: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub cancel_reason: Option<&'a str>,
    /// Rolled up over the parts.
    pub fulfillment: FulfillmentJson<'a>,
    /// The worst of the parts'.
    pub sync: SyncJson<'a>,
    /// One per warehouse share of the order (one, for an order a warehouse
    /// ships whole: it has the order's id).
    pub parts: Vec<PartJson<'a>>,
    pub routing: RoutingJson<'a>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> StoreOrder<'a> {
    /// `None` when the order has no pricing (cannot happen at the store).
    pub fn new(v: &'a OrderView) -> Option<Self> {
        let p = v.pricing.as_ref()?;
        let o = &v.order;
        let c = &o.content;
        Some(Self {
            id: o.id,
            number: &o.number,
            status: if c.cancel.is_some() {
                StoreStatus::CancelRequested
            } else {
                StoreStatus::Open
            },
            customer: (&c.customer).into(),
            shipping_address: (&c.shipping_address).into(),
            lines: c
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| StoreLineJson {
                    sku: l.sku.as_str(),
                    name: l.name.as_str(),
                    quantity: l.quantity.get(),
                    unit_price: p.unit_prices.get(i).map_or(0, |u| u.get()),
                    line_total: p.line_total(i, l).get(),
                })
                .collect(),
            currency: p.currency.as_str(),
            shipping_cost: p.shipping_cost.get(),
            subtotal: p.subtotal(&c.lines).get(),
            total: p.total(&c.lines).get(),
            notes: c.notes.as_deref(),
            deliver_by: c.deliver_by,
            cancel_reason: c.cancel.as_ref().and_then(|r| r.reason.as_deref()),
            fulfillment: {
                let mut f: FulfillmentJson<'a> = o.fulfillment.as_ref().into();
                f.shipments = v
                    .parts
                    .iter()
                    .flat_map(|p| {
                        shipments(
                            p.order.fulfillment.as_ref(),
                            &p.order.content.lines,
                            Some(&p.warehouse),
                        )
                    })
                    .collect();
                f.shipments.sort_by_key(|s| s.shipped_at);
                // A hold holds only a part that has not ended.
                let held = |p: &&PartView| {
                    !p.withdrawn
                        && p.order
                            .fulfillment
                            .as_ref()
                            .is_none_or(|f| !f.status.is_terminal())
                };
                for p in v.parts.iter().filter(held) {
                    for h in holds_of(&p.order) {
                        if h.released_at.is_none() && !f.holds.iter().any(|x| x.id == h.id) {
                            f.holds.push(h);
                        }
                    }
                }
                f.holds.sort_by_key(|h| h.placed_at);
                // The first active hold's reason, as the store knows the
                // holds now (a part's own report may lag a release); a
                // hold from before typed holds has no record but that.
                let typed = v.parts.iter().any(|p| {
                    !p.order.content.holds.is_empty()
                        || p.order
                            .fulfillment
                            .as_ref()
                            .is_some_and(|f| !f.holds.is_empty())
                });
                if let Some(first) = f.holds.first() {
                    f.hold_reason = Some(first.reason);
                } else if typed {
                    f.hold_reason = None;
                }
                f
            },
            sync: v.into(),
            parts: v.parts.iter().map(PartJson::from).collect(),
            routing: RoutingJson {
                unrouted_lines: v
                    .unrouted
                    .iter()
                    .map(|u| UnroutedLineJson {
                        sku: u.line.sku.as_str(),
                        quantity: u.line.quantity.get(),
                        reason: &u.reason,
                    })
                    .collect(),
            },
            created_at: o.created_at,
            updated_at: o.updated_at,
        })
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = WarehouseLine)]
pub struct WarehouseLineJson<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    /// What the order still holds: 0 once all of it was rejected.
    #[schema(schema_with = crate::domain::schema::held_quantity)]
    pub quantity: u32,
    /// In parcels so far.
    pub shipped_quantity: u32,
    /// Never to ship: the rest of a cancelled (or partly shipped, then
    /// cancelled) order.
    pub cancelled_quantity: u32,
    /// Refused by this warehouse (it went back to the store).
    pub rejected_quantity: u32,
}

/// The warehouse's order: no money field exists in this type. (Its schema
/// says it in other words: the warehouse's document names no money.)
#[derive(Serialize, ToSchema)]
#[schema(description = "The warehouse's order: its content and its fulfillment.")]
pub struct WarehouseOrder<'a> {
    pub id: OrderId,
    /// The store order this is a part of: its own id for the first part.
    pub order_id: OrderId,
    /// Which part of the store order (1, 2, …): one warehouse's share.
    pub part: i64,
    #[schema(example = "SO-000001")]
    pub number: &'a str,
    pub customer: CustomerJson<'a>,
    pub shipping_address: AddressJson<'a>,
    #[schema(required = true)]
    pub notes: Option<&'a str>,
    #[schema(required = true)]
    pub deliver_by: Option<DateTime<Utc>>,
    pub lines: Vec<WarehouseLineJson<'a>>,
    pub status: FulfillmentStatus,
    #[schema(required = true)]
    pub hold_reason: Option<&'a str>,
    #[schema(required = true)]
    pub carrier: Option<&'a str>,
    #[schema(required = true)]
    pub tracking_number: Option<&'a str>,
    #[schema(required = true)]
    pub shipped_at: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    #[schema(required = true)]
    pub cancel_reason: Option<&'a str>,
    #[schema(required = true)]
    pub cancel_rejected_reason: Option<&'a str>,
    /// The store changed the content after work had started.
    pub content_changed_after_pick: bool,
    /// Its parcels, oldest first (`carrier`, `tracking_number` and
    /// `shipped_at` are the latest's).
    pub shipments: Vec<ShipmentJson<'a>>,
    /// Every hold on it, active or released, the store's and this
    /// warehouse's (`hold_reason` is the first active one's).
    pub holds: Vec<HoldJson<'a>>,
    pub sync: SyncJson<'a>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> WarehouseOrder<'a> {
    pub fn new(v: &'a OrderView) -> Self {
        let o = &v.order;
        let c = &o.content;
        let f: FulfillmentJson<'a> = o.fulfillment.as_ref().into();
        Self {
            id: o.id,
            order_id: o.order_id,
            part: o.part,
            number: &o.number,
            customer: (&c.customer).into(),
            shipping_address: (&c.shipping_address).into(),
            notes: c.notes.as_deref(),
            deliver_by: c.deliver_by,
            lines: c
                .lines
                .iter()
                .map(|l| {
                    let (kept, shipped, cancelled, rejected) =
                        line_outcomes(o.fulfillment.as_ref(), l);
                    WarehouseLineJson {
                        sku: l.sku.as_str(),
                        name: l.name.as_str(),
                        quantity: kept,
                        shipped_quantity: shipped,
                        cancelled_quantity: cancelled,
                        rejected_quantity: rejected,
                    }
                })
                .collect(),
            shipments: shipments(o.fulfillment.as_ref(), &c.lines, None),
            holds: holds_of(o),
            status: f.status.unwrap_or(FulfillmentStatus::Pending),
            hold_reason: f.hold_reason,
            carrier: f.carrier,
            tracking_number: f.tracking_number,
            shipped_at: f.shipped_at,
            cancel_requested: c.cancel.is_some(),
            cancel_reason: c.cancel.as_ref().and_then(|r| r.reason.as_deref()),
            cancel_rejected_reason: f.cancel_rejected_reason,
            content_changed_after_pick: f.content_changed_after_pick,
            sync: v.into(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// An order the way one role shows it, serialised straight into the
/// response body. (Each side's document names its own variant: the handlers
/// of `http::orders` are documented per side.)
#[derive(Serialize)]
#[serde(untagged)]
pub enum OrderJson<'a> {
    Store(StoreOrder<'a>),
    Warehouse(WarehouseOrder<'a>),
    /// A store order without its prices (cannot happen once written):
    /// `null`.
    Missing,
}

/// The order the way `role` shows it.
pub fn order_json(role: Role, v: &OrderView) -> OrderJson<'_> {
    match role {
        Role::Store => StoreOrder::new(v).map_or(OrderJson::Missing, OrderJson::Store),
        Role::Warehouse => OrderJson::Warehouse(WarehouseOrder::new(v)),
    }
}

/// A page of orders, newest first.
#[derive(Serialize, ToSchema)]
pub struct OrderPage<O> {
    pub items: Vec<O>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Who made a change (`Actor::kind`).
#[derive(Serialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person signed in to the admin UI.
    Admin,
    /// An API client, by its token's name.
    Token,
    /// The other service, through sync.
    Sync,
    /// The service itself.
    System,
}

#[derive(Serialize, ToSchema)]
pub struct ActorJson<'a> {
    #[schema(value_type = ActorKind)]
    pub kind: &'a str,
    pub name: &'a str,
}

/// One change to an order.
#[derive(Serialize, ToSchema)]
pub struct AuditEntry<'a> {
    pub at: DateTime<Utc>,
    pub actor: ActorJson<'a>,
    /// Names of the fields changed (or an event: `created`, `routing`).
    #[schema(example = json!(["status"]))]
    pub changes: Vec<&'a str>,
    /// Each changed field with its value before and after, in the order of
    /// `changes`; empty for an event and for entries recorded before
    /// values were kept.
    pub diff: Vec<crate::domain::diff::Change>,
    /// At the store, for an entry about a split order's part other than
    /// its first: which part, at which warehouse (what that warehouse
    /// reported). Absent for the order's own entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<AuditPart<'a>>,
}

/// The part of a split order an audit entry is about.
#[derive(Serialize, ToSchema)]
pub struct AuditPart<'a> {
    /// The part's number within its order (the first is 1).
    #[schema(example = 2)]
    pub part: i64,
    #[schema(example = "us")]
    pub warehouse: &'a str,
}

/// The audit trail of an order.
#[derive(Serialize, ToSchema)]
pub struct AuditList<'a> {
    /// Oldest first.
    pub items: Vec<AuditEntry<'a>>,
}

/// What one delivery attempt came to.
#[derive(Serialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The other side applied the snapshot.
    Applied,
    /// The other side already held it or a newer one.
    Stale,
    /// The other side refused it; it will not be retried.
    Rejected,
    /// The attempt failed (network, timeout, an error answer); retried.
    Error,
}

/// One delivery attempt of an order to the other service.
#[derive(Serialize, ToSchema)]
pub struct Attempt<'a> {
    pub at: DateTime<Utc>,
    #[schema(value_type = AttemptOutcome)]
    pub outcome: &'a str,
    #[schema(required = true)]
    pub detail: Option<&'a str>,
    #[schema(required = true)]
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// An order's delivery to the other service, with its last attempts.
#[derive(Serialize, ToSchema)]
pub struct SyncTimeline<'a> {
    pub state: SyncState,
    pub store_version: i64,
    pub warehouse_version: i64,
    #[schema(required = true)]
    pub last_error: Option<&'a str>,
    /// Newest first, at most 100.
    pub attempts: Vec<Attempt<'a>>,
}

/// The last failed delivery while anything waits to be sent.
#[derive(Serialize, ToSchema)]
pub struct DeliveryError {
    pub at: DateTime<Utc>,
    pub detail: String,
}

/// The last reconciliation pass, as recorded.
#[derive(Serialize, ToSchema)]
pub struct LastReconciliation {
    pub finished_at: DateTime<Utc>,
    /// Orders in this database.
    pub compared: i64,
    pub differences: i64,
    pub repaired: i64,
    /// Why the pass failed; null when it finished.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// How delivery to one peer (a warehouse, at the store), or to every peer
/// summed, is going: its outbox, its circuit breaker and its last error.
#[derive(Serialize, ToSchema)]
pub struct DeliveryStatus {
    /// Changes waiting to be delivered.
    pub pending: i64,
    /// Dead letters: changes given up on until replayed.
    pub dead: i64,
    /// Age of the oldest pending change.
    #[schema(required = true)]
    pub oldest_pending_seconds: Option<f64>,
    pub breaker: BreakerState,
    #[schema(required = true)]
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Why deliveries fail, while anything waits to be sent.
    #[schema(required = true)]
    pub last_error: Option<DeliveryError>,
}

impl DeliveryStatus {
    /// From the outbox's status, the breaker's state and its last failure
    /// (when, in microseconds, and why: shown only while something still
    /// waits to go), as of `now` (microseconds).
    pub fn new(
        outbox: &OutboxStatus,
        breaker: BreakerState,
        last_error: Option<(i64, String)>,
        now: i64,
    ) -> Self {
        Self {
            pending: outbox.pending,
            dead: outbox.dead,
            oldest_pending_seconds: outbox
                .oldest_pending_at
                .map(|t| ((now - t).max(0) as f64) / 1e6),
            breaker,
            last_delivered_at: outbox.last_delivered_at.map(from_micros),
            last_error: last_error
                .filter(|_| outbox.pending > 0)
                .map(|(at, detail)| DeliveryError {
                    at: from_micros(at),
                    detail,
                }),
        }
    }
}

/// The outbox towards the other service (at the store: every warehouse,
/// summed, with the worst breaker), the last reconciliation, and at the
/// store each warehouse's own.
#[derive(Serialize, ToSchema)]
pub struct SyncStatus {
    /// The last reconciliation pass; null before the first.
    #[schema(required = true)]
    pub last_reconciliation: Option<LastReconciliation>,
    #[serde(flatten)]
    pub delivery: DeliveryStatus,
    /// The store only: each warehouse's delivery, by name. A warehouse,
    /// whose one peer is the store, answers without this field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouses: Option<Vec<WarehouseDelivery>>,
}

/// One warehouse's delivery.
#[derive(Serialize, ToSchema)]
pub struct WarehouseDelivery {
    #[schema(schema_with = crate::domain::schema::warehouse_name)]
    pub name: String,
    #[serde(flatten)]
    pub delivery: DeliveryStatus,
}

/// A warehouse as the store routes to it and syncs with it (never its
/// secret), with how delivery to it is going.
#[derive(Serialize, ToSchema)]
#[schema(as = Warehouse)]
pub struct WarehouseJson<'a> {
    #[schema(schema_with = crate::domain::schema::warehouse_name)]
    pub name: &'a str,
    /// Base URL of the warehouse service.
    pub url: &'a str,
    /// ISO 3166-1 alpha-2 codes it ships to; empty: everywhere.
    pub countries: Vec<&'a str>,
    /// Prefixes of the SKUs it stocks; empty: every SKU.
    pub sku_prefixes: &'a [String],
    /// Lower is preferred, then the name.
    pub priority: i64,
    /// Inactive: no new lines are routed there; its orders keep syncing.
    pub active: bool,
    pub sync: DeliveryStatus,
}

impl<'a> WarehouseJson<'a> {
    pub fn new(w: &'a Warehouse, sync: DeliveryStatus) -> Self {
        Self {
            name: w.name.as_str(),
            url: &w.url,
            countries: w.countries.iter().map(CountryCode::as_str).collect(),
            sku_prefixes: &w.sku_prefixes,
            priority: w.priority,
            active: w.active,
            sync,
        }
    }
}

/// The store's warehouses, by name.
#[derive(Serialize, ToSchema)]
pub struct WarehouseList<'a> {
    pub items: Vec<WarehouseJson<'a>>,
}

/// How many dead letters were (or, with `dry_run`, would be) replayed.
#[derive(Serialize, ToSchema)]
pub struct ReplayResult {
    pub replayed: u64,
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Actor;
    use crate::domain::snapshot::ItemOutcome;

    fn names<T: Serialize>(values: &[T]) -> Vec<String> {
        values
            .iter()
            .filter_map(|v| serde_json::to_value(v).ok())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// The audit and timeline answers pass stored strings through; the
    /// enums that document them name every string that can be stored.
    #[test]
    fn documented_kinds_and_outcomes_name_every_stored_string() {
        use ActorKind as K;
        let kinds = names(&[K::Admin, K::Token, K::Sync, K::System]);
        for a in [
            Actor::Admin("a".into()),
            Actor::Token("t".into()),
            Actor::Sync("s".into()),
            Actor::System("y".into()),
        ] {
            assert!(kinds.iter().any(|k| k == a.kind()), "{}", a.kind());
        }
        use AttemptOutcome as O;
        let outcomes = names(&[O::Applied, O::Stale, O::Rejected, O::Error]);
        // What the relay records: the peer's verdict, or "error".
        for o in [
            ItemOutcome::Applied,
            ItemOutcome::Stale,
            ItemOutcome::Rejected,
        ] {
            assert!(outcomes.iter().any(|s| s == o.as_str()), "{}", o.as_str());
        }
        assert!(outcomes.iter().any(|s| s == "error"));
    }
}
