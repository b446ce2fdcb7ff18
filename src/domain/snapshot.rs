//! What travels between the services: full snapshots of the sender's owned
//! fields, stamped with the sender's version (docs/DESIGN.md §2.1). Never deltas, so
//! duplicates, retries and reordering are harmless: the receiver keeps a
//! snapshot only if its version is newer than the one it holds.
//!
//! Every shape refuses unknown fields: a content snapshot carrying a price
//! is not silently stripped, it is rejected.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Role;
use super::fulfillment::{Fulfillment, FulfillmentStatus, Hold, Rejection, Shipment, ShippedLine};
use super::holds::{HoldSnapshot, parse_snapshot_holds};
use super::order::{
    AddressInput, CancelRequest, CustomerInput, LineInput, OrderContent, OrderId, parse_lines,
};
use super::values::{
    Errors, FieldError, MAX_SHORT_TEXT, MAX_TEXT, Quantity, Sku, optional_text, required_text,
};

/// Largest version a snapshot may carry. No real order is edited a billion
/// times, and the bound keeps the reconciliation digest, which multiplies
/// each version by 2654435761 in SQL (`storage::digests`), inside a 64-bit
/// integer: a larger version, once stored, would make every digest of its
/// range fail on PostgreSQL ("bigint out of range").
pub const MAX_VERSION: i64 = 1_000_000_000;

/// Most parts an order may have (a part per warehouse, and a few more
/// after rejections): a bound on what a snapshot may claim.
pub const MAX_PARTS: i64 = 1000;

/// Store → warehouse: the store-owned content of one order, no money.
/// (The schema's description is its own: the warehouse's document names no
/// money.)
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(
    description = "Store to warehouse: the content of one order, stamped with the store's version."
)]
#[serde(deny_unknown_fields)]
pub struct ContentSnapshot {
    pub id: OrderId,
    pub number: String,
    pub store_version: i64,
    pub customer: CustomerInput,
    pub shipping_address: AddressInput,
    pub lines: Vec<LineInput>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub deliver_by: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    #[serde(default)]
    pub cancel_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The store order this part belongs to, when it is not the order's
    /// first part (whose id is the order's): see [`ContentSnapshot::of_part`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    /// The part's number among the order's parts (1, 2, …); absent: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub part: Option<i64>,
    /// The holds the store placed on this part (released ones included):
    /// the warehouse keeps it on hold while one is active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 120)]
    pub holds: Vec<HoldSnapshot>,
}

impl ContentSnapshot {
    pub fn from_domain(
        id: OrderId,
        number: &str,
        store_version: i64,
        c: &OrderContent,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            number: number.to_owned(),
            store_version,
            customer: CustomerInput::from_domain(&c.customer),
            shipping_address: AddressInput::from_domain(&c.shipping_address),
            lines: c
                .lines
                .iter()
                .map(|l| LineInput {
                    sku: Some(l.sku.to_string()),
                    name: Some(l.name.to_string()),
                    quantity: Some(i64::from(l.quantity.get())),
                })
                .collect(),
            notes: c.notes.clone(),
            deliver_by: c.deliver_by,
            cancel_requested: c.cancel.is_some(),
            cancel_reason: c.cancel.as_ref().and_then(|r| r.reason.clone()),
            created_at,
            order_id: None,
            part: None,
            holds: c.holds.iter().map(HoldSnapshot::from_domain).collect(),
        }
    }

    /// A part the store withdrew (its lines went to other warehouses): its
    /// warehouse is asked to cancel it, whatever the order's content says.
    pub fn withdrawn(mut self, withdrawn: bool) -> Self {
        if withdrawn && !self.cancel_requested {
            self.cancel_requested = true;
            self.cancel_reason = Some(super::parts::WITHDRAWN.to_owned());
        }
        self
    }

    /// Names the order this snapshot is a part of. The first part (whose
    /// id is the order's) carries neither field, so a warehouse sees an
    /// order one warehouse ships whole exactly as before parts existed.
    pub fn of_part(mut self, order_id: OrderId, part: i64) -> Self {
        if order_id != self.id || part != 1 {
            self.order_id = Some(order_id);
            self.part = Some(part);
        }
        self
    }

    /// Validates the snapshot with the same rules as the store's API.
    pub fn parse(&self) -> Result<OrderContent, Vec<FieldError>> {
        let mut errs = Errors::new();
        if !(1..=MAX_VERSION).contains(&self.store_version) {
            errs.push(FieldError::new(
                "store_version",
                format!("must be between 1 and {MAX_VERSION}"),
            ));
        }
        errs.take(required_text("number", &self.number, 32));
        if self.part.is_some_and(|p| !(1..=MAX_PARTS).contains(&p)) {
            errs.push(FieldError::new(
                "part",
                format!("must be between 1 and {MAX_PARTS}"),
            ));
        }
        let customer = self.customer.parse("customer", &mut errs);
        let address = self.shipping_address.parse("shipping_address", &mut errs);
        let lines = parse_lines(&self.lines, &mut errs);
        let notes = errs.take(optional_text("notes", self.notes.as_deref(), MAX_TEXT));
        let reason = errs.take(optional_text(
            "cancel_reason",
            self.cancel_reason.as_deref(),
            MAX_TEXT,
        ));
        let holds = parse_snapshot_holds(&self.holds, Role::Store, &mut errs);
        match (customer, address, lines, notes, reason) {
            (Some(customer), Some(shipping_address), Some(lines), Some(notes), Some(reason))
                if errs.is_empty() =>
            {
                Ok(OrderContent {
                    customer,
                    shipping_address,
                    lines,
                    notes,
                    deliver_by: self.deliver_by,
                    cancel: self.cancel_requested.then_some(CancelRequest { reason }),
                    holds,
                })
            }
            _ => Err(errs.into_vec()),
        }
    }
}

/// Warehouse → store: the warehouse-owned fulfillment of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentSnapshot {
    pub id: OrderId,
    pub warehouse_version: i64,
    pub status: FulfillmentStatus,
    #[serde(default)]
    pub hold_reason: Option<String>,
    #[serde(default)]
    pub held_from: Option<FulfillmentStatus>,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub shipped_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancel_rejected_reason: Option<String>,
    #[serde(default)]
    pub content_changed_after_pick: bool,
    /// Every parcel, oldest first, with its lines. Absent from a warehouse
    /// older than parcels: its one shipment is `carrier`,
    /// `tracking_number` and `shipped_at`, and held everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000)]
    pub shipments: Vec<ShipmentSnapshot>,
    /// What the warehouse refused of the order's lines, oldest first: the
    /// store routes it elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000)]
    pub rejections: Vec<RejectionSnapshot>,
    /// The holds the warehouse placed (released ones included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 120)]
    pub holds: Vec<HoldSnapshot>,
}

/// Quantities of one SKU a warehouse refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectionSnapshot {
    pub sku: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i64,
    pub reason: String,
}

impl RejectionSnapshot {
    pub fn from_domain(r: &Rejection) -> Self {
        Self {
            sku: r.sku.as_str().to_owned(),
            quantity: i64::from(r.quantity),
            reason: r.reason.clone(),
        }
    }

    fn parse(&self, at: &str, errs: &mut Errors) -> Option<Rejection> {
        let sku = errs.take(Sku::parse(&format!("{at}.sku"), &self.sku));
        let q = errs.take(Quantity::parse(&format!("{at}.quantity"), self.quantity));
        let reason = errs.take(required_text(
            &format!("{at}.reason"),
            &self.reason,
            MAX_TEXT,
        ));
        Some(Rejection {
            sku: sku?,
            quantity: q?.get(),
            reason: reason?,
        })
    }
}

/// A parcel in a fulfillment snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentSnapshot {
    pub carrier: String,
    pub tracking_number: String,
    pub shipped_at: DateTime<Utc>,
    #[schema(max_items = 1000)]
    pub lines: Vec<ShippedLineSnapshot>,
}

/// A quantity of one SKU in a parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippedLineSnapshot {
    pub sku: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i64,
}

/// Most parcels a part may have, and lines a parcel may hold.
pub const MAX_PARCELS: usize = 1000;

impl ShipmentSnapshot {
    pub fn from_domain(s: &Shipment) -> Self {
        Self {
            carrier: s.carrier.clone(),
            tracking_number: s.tracking_number.clone(),
            shipped_at: s.shipped_at,
            lines: s
                .lines
                .iter()
                .map(|l| ShippedLineSnapshot {
                    sku: l.sku.as_str().to_owned(),
                    quantity: i64::from(l.quantity),
                })
                .collect(),
        }
    }

    fn parse(&self, at: &str, errs: &mut Errors) -> Option<Shipment> {
        let carrier = errs.take(required_text(
            &format!("{at}.carrier"),
            &self.carrier,
            MAX_SHORT_TEXT,
        ));
        let tracking = errs.take(required_text(
            &format!("{at}.tracking_number"),
            &self.tracking_number,
            MAX_SHORT_TEXT,
        ));
        if self.lines.is_empty() || self.lines.len() > MAX_PARCELS {
            errs.push(FieldError::new(
                format!("{at}.lines"),
                format!("must hold 1 to {MAX_PARCELS} lines"),
            ));
        }
        let mut lines = Vec::with_capacity(self.lines.len());
        for (i, l) in self.lines.iter().enumerate() {
            let sku = errs.take(Sku::parse(&format!("{at}.lines[{i}].sku"), &l.sku));
            let q = errs.take(Quantity::parse(
                &format!("{at}.lines[{i}].quantity"),
                l.quantity,
            ));
            if let (Some(sku), Some(q)) = (sku, q) {
                lines.push(ShippedLine {
                    sku,
                    quantity: q.get(),
                });
            }
        }
        Some(Shipment {
            carrier: carrier?,
            tracking_number: tracking?,
            shipped_at: self.shipped_at,
            lines,
        })
    }
}

impl FulfillmentSnapshot {
    pub fn from_domain(id: OrderId, warehouse_version: i64, f: &Fulfillment) -> Self {
        Self {
            id,
            warehouse_version,
            status: f.status,
            hold_reason: f.hold.as_ref().map(|h| h.reason.clone()),
            held_from: f.hold.as_ref().map(|h| h.from),
            carrier: f.latest_shipment().map(|s| s.carrier.clone()),
            tracking_number: f.latest_shipment().map(|s| s.tracking_number.clone()),
            shipped_at: f.latest_shipment().map(|s| s.shipped_at),
            cancel_rejected_reason: f.cancel_rejected_reason.clone(),
            content_changed_after_pick: f.content_changed_after_pick,
            // A parcel without lines (from before parcels had them) is
            // sent the old way only.
            shipments: if f.shipments.iter().all(|s| !s.lines.is_empty()) {
                f.shipments
                    .iter()
                    .map(ShipmentSnapshot::from_domain)
                    .collect()
            } else {
                Vec::new()
            },
            rejections: f
                .rejections
                .iter()
                .map(RejectionSnapshot::from_domain)
                .collect(),
            holds: f.holds.iter().map(HoldSnapshot::from_domain).collect(),
        }
    }

    /// Checks that the fields agree with each other (a hold has a reason and
    /// the state it left, a shipment has carrier, tracking and time).
    pub fn parse(&self) -> Result<Fulfillment, Vec<FieldError>> {
        let mut errs = Errors::new();
        if !(1..=MAX_VERSION).contains(&self.warehouse_version) {
            errs.push(FieldError::new(
                "warehouse_version",
                format!("must be between 1 and {MAX_VERSION}"),
            ));
        }
        let hold = match (self.status, &self.hold_reason, self.held_from) {
            (FulfillmentStatus::OnHold, Some(reason), Some(from))
                if matches!(
                    from,
                    FulfillmentStatus::Pending
                        | FulfillmentStatus::Picking
                        | FulfillmentStatus::Packed
                        | FulfillmentStatus::PartiallyShipped
                ) =>
            {
                errs.take(required_text("hold_reason", reason, MAX_TEXT))
                    .map(|reason| Hold { reason, from })
            }
            (FulfillmentStatus::OnHold, _, _) => {
                errs.push(FieldError::new(
                    "hold_reason",
                    "an order on hold needs a reason and the state it left",
                ));
                None
            }
            _ => None,
        };
        let shipment = match (&self.carrier, &self.tracking_number, self.shipped_at) {
            (Some(c), Some(t), Some(at)) => {
                let c = errs.take(required_text("carrier", c, MAX_SHORT_TEXT));
                let t = errs.take(required_text("tracking_number", t, MAX_SHORT_TEXT));
                c.zip(t).map(|(carrier, tracking_number)| Shipment {
                    carrier,
                    tracking_number,
                    shipped_at: at,
                    lines: Vec::new(),
                })
            }
            (None, None, None) => None,
            _ => {
                errs.push(FieldError::new(
                    "shipment",
                    "carrier, tracking_number and shipped_at go together",
                ));
                None
            }
        };
        if self.shipments.len() > MAX_PARCELS {
            errs.push(FieldError::new(
                "shipments",
                format!("at most {MAX_PARCELS} parcels"),
            ));
        }
        let parcels: Vec<Shipment> = self
            .shipments
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.parse(&format!("shipments[{i}]"), &mut errs))
            .collect();
        if self.rejections.len() > MAX_PARCELS {
            errs.push(FieldError::new(
                "rejections",
                format!("at most {MAX_PARCELS} rejections"),
            ));
        }
        let holds = parse_snapshot_holds(&self.holds, Role::Warehouse, &mut errs);
        let rejections: Vec<Rejection> = self
            .rejections
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.parse(&format!("rejections[{i}]"), &mut errs))
            .collect();
        if self.status == FulfillmentStatus::Shipped && shipment.is_none() {
            errs.push(FieldError::new(
                "shipment",
                "a shipped order needs carrier, tracking_number and shipped_at",
            ));
        }
        let reason = errs.take(optional_text(
            "cancel_rejected_reason",
            self.cancel_rejected_reason.as_deref(),
            MAX_TEXT,
        ));
        if !errs.is_empty() {
            return Err(errs.into_vec());
        }
        Ok(Fulfillment {
            status: self.status,
            hold,
            // The parcels when sent; else the one shipment of old.
            shipments: if parcels.is_empty() {
                shipment.into_iter().collect()
            } else {
                parcels
            },
            rejections,
            holds,
            cancel_rejected_reason: reason.flatten(),
            content_changed_after_pick: self.content_changed_after_pick,
        })
    }
}

/// The body of `POST /api/v1/sync/changes`. Items stay raw JSON here so that
/// one item the receiver cannot parse is rejected on its own while the rest
/// of the batch still applies.
///
/// `C` is the list of items: owned when received, a borrowed slice when
/// sent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncBatch<C = Vec<Box<serde_json::value::RawValue>>> {
    pub changes: C,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    /// The snapshot was newer and is now held by the receiver.
    Applied,
    /// The receiver already held this version or a newer one.
    Stale,
    /// The snapshot is invalid; retrying it cannot help.
    Rejected,
}

impl ItemOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Stale => "stale",
            Self::Rejected => "rejected",
        }
    }
}

/// The receiver's answer for one item of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemResult {
    /// The order id, when the item had a readable one.
    #[schema(required = true)]
    pub id: Option<OrderId>,
    pub outcome: ItemOutcome,
    #[schema(required = true)]
    #[serde(default)]
    pub reason: Option<String>,
    /// In the warehouse's answer to a content item: its fulfillment of the
    /// order as it stands after the item. The store applies it like any
    /// fulfillment snapshot (version-fenced), so a new order's first
    /// fulfillment state needs no delivery of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment: Option<Box<FulfillmentSnapshot>>,
}

/// The body answered by `POST /api/v1/sync/changes`: one result per item,
/// in the order of the request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SyncBatchResult {
    pub results: Vec<ItemResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fulfillment_snapshot_round_trip() {
        let mut f = Fulfillment::new();
        f.status = FulfillmentStatus::OnHold;
        f.hold = Some(Hold {
            reason: "stock".into(),
            from: FulfillmentStatus::Packed,
        });
        let snap = FulfillmentSnapshot::from_domain(OrderId::new(), 3, &f);
        assert_eq!(snap.parse(), Ok(f));
    }

    #[test]
    fn inconsistent_fulfillment_is_refused() {
        let mut snap = FulfillmentSnapshot::from_domain(OrderId::new(), 1, &Fulfillment::new());
        snap.status = FulfillmentStatus::Shipped;
        assert!(snap.parse().is_err());
        snap.status = FulfillmentStatus::OnHold;
        assert!(snap.parse().is_err());
    }

    #[test]
    fn money_in_a_content_snapshot_is_refused() {
        let body = serde_json::json!({
            "id": OrderId::new(), "number": "SO-000001", "store_version": 1,
            "customer": {"name": "A", "email": "a@b.co"},
            "shipping_address": {"name": "A", "line1": "1", "city": "C", "postal_code": "1", "country": "GB"},
            "lines": [{"sku": "S", "name": "N", "quantity": 1}],
            "cancel_requested": false, "created_at": "2026-01-01T00:00:00Z",
            "currency": "GBP"
        });
        assert!(serde_json::from_value::<ContentSnapshot>(body).is_err());
    }
}
