//! Orders: the store-owned content and the store-only money. (The input
//! shapes they are parsed from are in [`super::input`].)
//!
//! The split matters: [`OrderContent`] is what both sides hold, [`Pricing`]
//! exists only at the store. Nothing that the warehouse stores or sends can
//! reach a `Pricing`, so money cannot leak there by accident.

use super::role::Versions;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::fulfillment::{Fulfillment, FulfillmentStatus};
use super::values::{CountryCode, Currency, Email, LineName, MinorUnits, Quantity, Sku, Text};

// The request shapes orders are made from; named here too, where callers
// have always found them.
pub use super::input::{
    AddressInput, CreateOrderInput, CustomerInput, LineInput, PatchOrderInput, PricedLineInput,
    parse_deliver_by, parse_lines, parse_priced_lines,
};

/// Machine identity of an order: a UUID, v7 when we create it (time-ordered,
/// so ids sort by creation and index well).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(Uuid);

impl OrderId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(s: &str) -> Option<Self> {
        Uuid::try_parse(s).ok().map(Self)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for OrderId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The human order number, `SO-000123`, from the store's counter.
pub fn order_number(seq: i64) -> String {
    format!("SO-{seq:06}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub name: Text,
    pub email: Email,
    pub company: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: Text,
    pub line1: Text,
    pub line2: Option<String>,
    pub city: Text,
    pub region: Option<String>,
    pub postal_code: Text,
    pub country: CountryCode,
}

/// One order line as both sides see it: no price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: Sku,
    pub name: LineName,
    pub quantity: Quantity,
}

/// The store's request to cancel; the warehouse answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pub reason: Option<String>,
}

/// Every store-owned field of an order except money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderContent {
    pub customer: Customer,
    pub shipping_address: Address,
    pub lines: Vec<Line>,
    pub notes: Option<String>,
    pub deliver_by: Option<DateTime<Utc>>,
    pub cancel: Option<CancelRequest>,
    /// The holds the store placed on this part, released ones included
    /// (docs/DESIGN.md §6.3). Store-owned: they travel with the content.
    pub holds: Vec<super::holds::TypedHold>,
}

/// The store-only money of an order. `unit_prices[i]` is the price of
/// `content.lines[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pricing {
    pub currency: Currency,
    pub shipping_cost: MinorUnits,
    pub unit_prices: Vec<MinorUnits>,
}

impl Pricing {
    pub fn line_total(&self, i: usize, line: &Line) -> MinorUnits {
        self.unit_prices
            .get(i)
            .copied()
            .unwrap_or_default()
            .times(line.quantity)
    }

    pub fn subtotal(&self, lines: &[Line]) -> MinorUnits {
        lines
            .iter()
            .enumerate()
            .fold(MinorUnits::default(), |acc, (i, l)| {
                acc.plus(self.line_total(i, l))
            })
    }

    pub fn total(&self, lines: &[Line]) -> MinorUnits {
        self.subtotal(lines).plus(self.shipping_cost)
    }
}

/// An order as one side holds it: content, both version counters, and the
/// fulfillment once known (`None` at the store until the warehouse reports).
///
/// With several warehouses this is one *part* of a store order (see
/// [`super::parts`]); an order one warehouse ships whole is one part, with
/// the order's own id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    /// The store order this is a part of (`id` itself for the first part).
    pub order_id: OrderId,
    /// Its number among the order's parts, from 1.
    pub part: i64,
    pub number: String,
    pub content: OrderContent,
    pub store_version: i64,
    pub warehouse_version: i64,
    pub fulfillment: Option<Fulfillment>,
    /// The store only: an edit moved this part's lines to other
    /// warehouses. Its warehouse is asked to cancel it (its snapshots say
    /// so); its content stays the order's, and it counts for nothing.
    pub withdrawn: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Order {
    /// Both version counters.
    pub fn versions(&self) -> Versions {
        Versions {
            store: self.store_version,
            warehouse: self.warehouse_version,
        }
    }
}

/// Why the store refuses to change an order's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditRefused {
    #[error("the order's cancellation was already requested")]
    CancelRequested,
    #[error("the warehouse has already started on this order (fulfillment status is {0})")]
    InFulfillment(FulfillmentStatus),
}

impl Order {
    /// The store may edit content only while, as far as it knows,
    /// fulfillment is `pending` or `on_hold` and no cancel was requested.
    pub fn store_may_edit(&self) -> Result<(), EditRefused> {
        if self.content.cancel.is_some() {
            return Err(EditRefused::CancelRequested);
        }
        match self.fulfillment.as_ref().map(|f| f.status) {
            None | Some(FulfillmentStatus::Pending | FulfillmentStatus::OnHold) => Ok(()),
            Some(other) => Err(EditRefused::InFulfillment(other)),
        }
    }
}

/// What became of a cancel request. The request itself stays on the order
/// for good (the store's API keeps `status: cancel_requested`, as the
/// contract says: that status is the store's own, the request); the
/// outcome is the warehouses' answer, read from the (rolled-up)
/// fulfillment. Every list and page that shows it asks this one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Asked; not every warehouse has answered yet.
    Requested,
    /// Nothing will ship: every part was cancelled (or ended rejected).
    Cancelled,
    /// Refused, with the warehouse's reason: the order (or part of it)
    /// had shipped already.
    Refused(String),
}

impl Order {
    /// The outcome of this order's cancel request; `None` without one.
    pub fn cancel_outcome(&self) -> Option<CancelOutcome> {
        let f = self.fulfillment.as_ref();
        // A refusal is only ever the answer to a request.
        if let Some(reason) = f.and_then(|f| f.cancel_rejected_reason.clone()) {
            return Some(CancelOutcome::Refused(reason));
        }
        self.content.cancel.as_ref()?;
        Some(match f.map(|f| f.status) {
            Some(s) if s.is_terminal() && s != FulfillmentStatus::Shipped => {
                CancelOutcome::Cancelled
            }
            _ => CancelOutcome::Requested,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid order no warehouse has reported on yet.
    fn new_order() -> Order {
        let (content, _) = super::super::input::tests::valid()
            .parse()
            .unwrap_or_else(|e| panic!("{e:?}"));
        let now = Utc::now();
        let id = OrderId::new();
        Order {
            id,
            order_id: id,
            part: 1,
            number: order_number(1),
            content,
            store_version: 1,
            warehouse_version: 0,
            fulfillment: None,
            withdrawn: false,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn cancel_outcomes() {
        let mut order = new_order();
        assert_eq!(order.cancel_outcome(), None);
        order.content.cancel = Some(CancelRequest { reason: None });
        assert_eq!(order.cancel_outcome(), Some(CancelOutcome::Requested));
        let mut f = Fulfillment::new();
        order.fulfillment = Some(f.clone());
        assert_eq!(order.cancel_outcome(), Some(CancelOutcome::Requested));
        f.status = FulfillmentStatus::Cancelled;
        order.fulfillment = Some(f.clone());
        assert_eq!(order.cancel_outcome(), Some(CancelOutcome::Cancelled));
        f.status = FulfillmentStatus::Shipped;
        f.cancel_rejected_reason = Some("order was already shipped".into());
        order.fulfillment = Some(f);
        assert_eq!(
            order.cancel_outcome(),
            Some(CancelOutcome::Refused("order was already shipped".into()))
        );
    }

    #[test]
    fn edit_rule() {
        let mut order = new_order();
        assert!(order.store_may_edit().is_ok());
        let mut f = Fulfillment::new();
        order.fulfillment = Some(f.clone());
        assert!(order.store_may_edit().is_ok());
        f.status = FulfillmentStatus::Picking;
        order.fulfillment = Some(f);
        assert_eq!(
            order.store_may_edit(),
            Err(EditRefused::InFulfillment(FulfillmentStatus::Picking))
        );
        order.fulfillment = None;
        order.content.cancel = Some(CancelRequest { reason: None });
        assert_eq!(order.store_may_edit(), Err(EditRefused::CancelRequested));
    }
}
