//! JSON shapes of orders as each side shows them (docs/API.md §4.1, §5.1).
//!
//! [`WarehouseOrder`] has no money field at all and is built from an
//! [`OrderView`] without reading its pricing, so the warehouse API cannot
//! show a price even by mistake.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::delivery::SyncState;
use crate::domain::order::{Address, Customer};
use crate::domain::{Fulfillment, FulfillmentStatus, OrderId, Role};
use crate::engine::OrderView;

#[derive(Serialize)]
pub struct CustomerJson<'a> {
    pub name: &'a str,
    pub email: &'a str,
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

#[derive(Serialize)]
pub struct AddressJson<'a> {
    pub name: &'a str,
    pub line1: &'a str,
    pub line2: Option<&'a str>,
    pub city: &'a str,
    pub region: Option<&'a str>,
    pub postal_code: &'a str,
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

#[derive(Serialize)]
pub struct SyncJson<'a> {
    pub state: SyncState,
    pub store_version: i64,
    pub warehouse_version: i64,
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

#[derive(Serialize)]
pub struct FulfillmentJson<'a> {
    pub status: Option<FulfillmentStatus>,
    pub hold_reason: Option<&'a str>,
    pub carrier: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub cancel_rejected_reason: Option<&'a str>,
    pub content_changed_after_pick: bool,
}

impl<'a> From<Option<&'a Fulfillment>> for FulfillmentJson<'a> {
    fn from(f: Option<&'a Fulfillment>) -> Self {
        Self {
            status: f.map(|f| f.status),
            hold_reason: f.and_then(|f| f.hold.as_ref()).map(|h| h.reason.as_str()),
            carrier: f
                .and_then(|f| f.shipment.as_ref())
                .map(|s| s.carrier.as_str()),
            tracking_number: f
                .and_then(|f| f.shipment.as_ref())
                .map(|s| s.tracking_number.as_str()),
            shipped_at: f.and_then(|f| f.shipment.as_ref()).map(|s| s.shipped_at),
            cancel_rejected_reason: f.and_then(|f| f.cancel_rejected_reason.as_deref()),
            content_changed_after_pick: f.is_some_and(|f| f.content_changed_after_pick),
        }
    }
}

#[derive(Serialize)]
pub struct StoreLineJson<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    pub quantity: u32,
    pub unit_price: i64,
    pub line_total: i64,
}

/// The store's order: content, money, and the fulfillment it has heard of.
#[derive(Serialize)]
pub struct StoreOrder<'a> {
    pub id: OrderId,
    pub number: &'a str,
    pub status: &'static str,
    pub customer: CustomerJson<'a>,
    pub shipping_address: AddressJson<'a>,
    pub lines: Vec<StoreLineJson<'a>>,
    pub currency: &'a str,
    pub shipping_cost: i64,
    pub subtotal: i64,
    pub total: i64,
    pub notes: Option<&'a str>,
    pub deliver_by: Option<DateTime<Utc>>,
    pub cancel_reason: Option<&'a str>,
    pub fulfillment: FulfillmentJson<'a>,
    pub sync: SyncJson<'a>,
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
                "cancel_requested"
            } else {
                "open"
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
            fulfillment: o.fulfillment.as_ref().into(),
            sync: v.into(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        })
    }
}

#[derive(Serialize)]
pub struct WarehouseLineJson<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    pub quantity: u32,
}

/// The warehouse's order: no money field exists in this type.
#[derive(Serialize)]
pub struct WarehouseOrder<'a> {
    pub id: OrderId,
    pub number: &'a str,
    pub customer: CustomerJson<'a>,
    pub shipping_address: AddressJson<'a>,
    pub notes: Option<&'a str>,
    pub deliver_by: Option<DateTime<Utc>>,
    pub lines: Vec<WarehouseLineJson<'a>>,
    pub status: FulfillmentStatus,
    pub hold_reason: Option<&'a str>,
    pub carrier: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    pub cancel_reason: Option<&'a str>,
    pub cancel_rejected_reason: Option<&'a str>,
    pub content_changed_after_pick: bool,
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
            number: &o.number,
            customer: (&c.customer).into(),
            shipping_address: (&c.shipping_address).into(),
            notes: c.notes.as_deref(),
            deliver_by: c.deliver_by,
            lines: c
                .lines
                .iter()
                .map(|l| WarehouseLineJson {
                    sku: l.sku.as_str(),
                    name: l.name.as_str(),
                    quantity: l.quantity.get(),
                })
                .collect(),
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
/// response body.
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
