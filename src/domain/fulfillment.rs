//! The warehouse-owned fulfillment state machine (docs/DESIGN.md §1.4).
//!
//! ```text
//! pending ──▶ picking ──▶ packed ──▶ shipped (terminal)
//!    │  ▲        │  ▲        │  ▲
//!    ▼  │        ▼  │        ▼  │
//!   on_hold (reason required; release returns to the state it left)
//! any state but shipped ──(store cancel request)──▶ cancelled (terminal)
//! shipped + cancel request ──▶ stays shipped, cancel_rejected_reason set
//! ```
//!
//! Pure: a transition takes the current [`Fulfillment`] and returns the next
//! one or a [`TransitionError`] naming the current status.

use chrono::{DateTime, Utc};

use super::Role;
use super::holds::{HoldType, TypedHold};
use super::order::Line;
use super::values::{FieldError, MAX_SHORT_TEXT, MAX_TEXT, Sku, required_text};

/// Where an order is in the warehouse.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentStatus {
    Pending,
    Picking,
    Packed,
    Shipped,
    OnHold,
    Cancelled,
    /// Some parcels are out, more is left to ship.
    PartiallyShipped,
    /// The warehouse rejected every line of the part (they went back to
    /// the store to be routed elsewhere).
    Rejected,
}

impl FulfillmentStatus {
    pub const ALL: [FulfillmentStatus; 8] = [
        Self::Pending,
        Self::Picking,
        Self::Packed,
        Self::Shipped,
        Self::OnHold,
        Self::Cancelled,
        Self::PartiallyShipped,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Picking => "picking",
            Self::Packed => "packed",
            Self::Shipped => "shipped",
            Self::OnHold => "on_hold",
            Self::Cancelled => "cancelled",
            Self::PartiallyShipped => "partially_shipped",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Shipped | Self::Cancelled | Self::Rejected)
    }
}

impl std::fmt::Display for FulfillmentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order put on hold, with the status it left (where release returns to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub reason: String,
    pub from: FulfillmentStatus,
}

/// A parcel handed to a carrier, with what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub carrier: String,
    pub tracking_number: String,
    pub shipped_at: DateTime<Utc>,
    /// Empty for a parcel recorded before parcels had lines: it held
    /// everything (the order shipped in one parcel).
    pub lines: Vec<ShippedLine>,
}

/// Quantities of one SKU a warehouse refused, and why (they went back to
/// the store, to be routed elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub sku: Sku,
    pub quantity: u32,
    pub reason: String,
}

/// A quantity of one SKU in a parcel (or left to ship).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedLine {
    pub sku: Sku,
    pub quantity: u32,
}

/// Every warehouse-owned field of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfillment {
    pub status: FulfillmentStatus,
    /// Set exactly when `status` is `OnHold`.
    pub hold: Option<Hold>,
    /// The parcels, oldest first.
    pub shipments: Vec<Shipment>,
    /// What the warehouse refused of the order's lines, oldest first.
    pub rejections: Vec<Rejection>,
    /// The holds the warehouse placed, released ones included, oldest
    /// first (the store's are in the content).
    pub holds: Vec<TypedHold>,
    pub cancel_rejected_reason: Option<String>,
    /// The store changed the content after the warehouse started on it.
    pub content_changed_after_pick: bool,
}

/// What warehouse staff (or the store's cancel request) ask of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Pick,
    Pack,
    /// Ships everything left in one parcel.
    Ship {
        carrier: String,
        tracking_number: String,
    },
    /// Ships these quantities in one parcel.
    ShipParcel {
        carrier: String,
        tracking_number: String,
        lines: Vec<ShippedLine>,
    },
    /// `{"status": "on_hold"}`: an `other` hold, from a status that is
    /// not on hold.
    Hold {
        reason: String,
    },
    /// `POST /orders/{id}/holds`: a hold of this type, also while on hold.
    PlaceHold {
        kind: HoldType,
        reason: String,
    },
    /// `{"status": "released"}`: every hold the warehouse placed.
    Release,
    /// One hold the warehouse placed.
    ReleaseHold {
        id: uuid::Uuid,
    },
    /// Refuses these quantities (out of stock, say): they leave the order
    /// and go back to the store.
    Reject {
        lines: Vec<ShippedLine>,
        reason: String,
    },
}

impl Action {
    /// Builds an action from the API's `{"status": ...}` body fields,
    /// collecting every missing or invalid field.
    pub fn parse(
        status: &str,
        carrier: Option<&str>,
        tracking_number: Option<&str>,
        reason: Option<&str>,
    ) -> Result<Action, Vec<FieldError>> {
        let need = |field: &str, v: Option<&str>, max| match v {
            Some(v) => required_text(field, v, max),
            None => Err(FieldError::new(field, "is required")),
        };
        match status {
            "picking" => Ok(Action::Pick),
            "packed" => Ok(Action::Pack),
            "released" => Ok(Action::Release),
            "on_hold" => need("reason", reason, MAX_TEXT)
                .map(|reason| Action::Hold { reason })
                .map_err(|e| vec![e]),
            "shipped" => {
                let c = need("carrier", carrier, MAX_SHORT_TEXT);
                let t = need("tracking_number", tracking_number, MAX_SHORT_TEXT);
                match (c, t) {
                    (Ok(carrier), Ok(tracking_number)) => Ok(Action::Ship {
                        carrier,
                        tracking_number,
                    }),
                    (c, t) => Err([c.err(), t.err()].into_iter().flatten().collect()),
                }
            }
            _ => Err(vec![FieldError::new(
                "status",
                "must be one of picking, packed, shipped, on_hold, released",
            )]),
        }
    }

    /// Builds a parcel from `POST /orders/{id}/shipments`: `lines` are
    /// `(sku, quantity)` as sent; every missing or invalid field is listed.
    pub fn parcel(
        carrier: Option<&str>,
        tracking_number: Option<&str>,
        lines: &[(Option<&str>, Option<i64>)],
    ) -> Result<Action, Vec<FieldError>> {
        let need = |field: &str, v: Option<&str>| match v {
            Some(v) => required_text(field, v, MAX_SHORT_TEXT),
            None => Err(FieldError::new(field, "is required")),
        };
        let mut errors = Vec::new();
        let carrier = need("carrier", carrier).map_err(|e| errors.push(e)).ok();
        let tracking = need("tracking_number", tracking_number)
            .map_err(|e| errors.push(e))
            .ok();
        let parcel = quantities(lines, &mut errors);
        match (carrier, tracking) {
            (Some(carrier), Some(tracking_number)) if errors.is_empty() => Ok(Action::ShipParcel {
                carrier,
                tracking_number,
                lines: parcel,
            }),
            _ => Err(errors),
        }
    }

    /// Builds a rejection from `POST /orders/{id}/reject`: `lines` are
    /// `(sku, quantity)` as sent; every missing or invalid field is listed.
    pub fn reject(
        lines: &[(Option<&str>, Option<i64>)],
        reason: Option<&str>,
    ) -> Result<Action, Vec<FieldError>> {
        let mut errors = Vec::new();
        let reason = match reason {
            Some(r) => required_text("reason", r, MAX_TEXT),
            None => Err(FieldError::new("reason", "is required")),
        }
        .map_err(|e| errors.push(e))
        .ok();
        let lines = quantities(lines, &mut errors);
        match reason {
            Some(reason) if errors.is_empty() => Ok(Action::Reject { lines, reason }),
            _ => Err(errors),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Action::Pick => "pick",
            Action::Pack => "pack",
            Action::Ship { .. } | Action::ShipParcel { .. } => "ship",
            Action::Hold { .. } | Action::PlaceHold { .. } => "hold",
            Action::Release | Action::ReleaseHold { .. } => "release",
            Action::Reject { .. } => "reject lines of",
        }
    }
}

/// A transition the state machine does not allow from the current status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} an order that is {current}")]
pub struct TransitionError {
    pub action: &'static str,
    pub current: FulfillmentStatus,
}

/// `[{sku, quantity}]` as a request sends them (a parcel, a rejection):
/// 1 to [`MAX_PARCEL_LINES`], each SKU once; errors go to `errors`.
fn quantities(
    lines: &[(Option<&str>, Option<i64>)],
    errors: &mut Vec<FieldError>,
) -> Vec<ShippedLine> {
    if lines.is_empty() || lines.len() > MAX_PARCEL_LINES {
        errors.push(FieldError::new(
            "lines",
            format!("must hold 1 to {MAX_PARCEL_LINES} lines"),
        ));
    }
    let mut out: Vec<ShippedLine> = Vec::with_capacity(lines.len());
    for (i, (sku, quantity)) in lines.iter().enumerate() {
        let sku = match sku {
            Some(s) => Sku::parse(&format!("lines[{i}].sku"), s),
            None => Err(FieldError::new(format!("lines[{i}].sku"), "is required")),
        };
        let quantity = match quantity {
            Some(q) => super::values::Quantity::parse(&format!("lines[{i}].quantity"), *q),
            None => Err(FieldError::new(
                format!("lines[{i}].quantity"),
                "is required",
            )),
        };
        match (sku, quantity) {
            (Ok(sku), Ok(_)) if out.iter().any(|p| p.sku == sku) => {
                errors.push(FieldError::new(
                    format!("lines[{i}].sku"),
                    format!("{} is on an earlier line", sku.as_str()),
                ));
            }
            (Ok(sku), Ok(q)) => out.push(ShippedLine {
                sku,
                quantity: q.get(),
            }),
            (s, q) => errors.extend([s.err(), q.err()].into_iter().flatten()),
        }
    }
    out
}

/// Most lines one parcel may hold.
pub const MAX_PARCEL_LINES: usize = 1000;

/// Why a staff step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepRefused {
    /// Not from this status (409).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A parcel line names a SKU the order does not hold (422).
    #[error("{}", .0.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// More than is left to ship or to refuse, a hold of the other side,
    /// a hold already released (409).
    #[error("{0}")]
    TooMuch(String),
    /// No hold with this id on the order (404).
    #[error("this order has no hold {0}")]
    UnknownHold(uuid::Uuid),
}

/// Why the warehouse refused a cancel request of an order already shipped.
pub const CANCEL_REJECTED_SHIPPED: &str = "order was already shipped";

/// Why a cancel request ended a partly shipped order shipped.
pub const CANCEL_REJECTED_PARTLY_SHIPPED: &str =
    "part of the order had shipped; the rest is cancelled";

impl Fulfillment {
    /// The state of an order the warehouse has just received.
    pub fn new() -> Self {
        Self {
            status: FulfillmentStatus::Pending,
            hold: None,
            shipments: Vec::new(),
            rejections: Vec::new(),
            holds: Vec::new(),
            cancel_rejected_reason: None,
            content_changed_after_pick: false,
        }
    }

    /// True once work on the order has started: picking, packed, shipped,
    /// or on hold from one of those. Content edits arriving then are applied
    /// but flagged.
    pub fn work_started(&self) -> bool {
        match self.status {
            FulfillmentStatus::Picking
            | FulfillmentStatus::Packed
            | FulfillmentStatus::Shipped
            | FulfillmentStatus::PartiallyShipped => true,
            FulfillmentStatus::OnHold => self
                .hold
                .as_ref()
                .is_some_and(|h| h.from != FulfillmentStatus::Pending),
            FulfillmentStatus::Pending
            | FulfillmentStatus::Cancelled
            | FulfillmentStatus::Rejected => false,
        }
    }

    /// The status the holds ask for: `on_hold` while any hold (the
    /// warehouse's, or the store's in `store_holds`) is active, from a
    /// status that can be held; back to the status it left once none is.
    /// A hold from before typed holds (no record of any) stays until
    /// released.
    pub fn settle_holds(&self, store_holds: &[TypedHold]) -> Fulfillment {
        use FulfillmentStatus as S;
        let mut next = self.clone();
        super::holds::prune(&mut next.holds);
        // The earliest placed active hold gives the reason (as the
        // store's view of the order lists them).
        let active = self
            .holds
            .iter()
            .chain(store_holds)
            .filter(|h| h.is_active())
            .min_by_key(|h| h.placed_at);
        match (active, self.status) {
            (Some(h), S::Pending | S::Picking | S::Packed | S::PartiallyShipped) => {
                next.status = S::OnHold;
                next.hold = Some(Hold {
                    reason: h.reason.clone(),
                    from: self.status,
                });
            }
            (Some(h), S::OnHold) => {
                if let Some(held) = next.hold.as_mut() {
                    held.reason = h.reason.clone();
                }
            }
            (None, S::OnHold) if !self.holds.is_empty() || !store_holds.is_empty() => {
                next.status = self.hold.as_ref().map_or(S::Pending, |h| h.from);
                next.hold = None;
            }
            _ => {}
        }
        next
    }

    /// The latest parcel, if any.
    pub fn latest_shipment(&self) -> Option<&Shipment> {
        self.shipments.last()
    }

    /// How much of `line` the warehouse refused.
    pub fn rejected_of(&self, line: &Line) -> u32 {
        let r: u64 = self
            .rejections
            .iter()
            .filter(|r| r.sku == line.sku)
            .map(|r| u64::from(r.quantity))
            .sum();
        r.min(u64::from(line.quantity.get())) as u32
    }

    /// How much of `line` the order still holds: what the store sent,
    /// less what was refused.
    pub fn kept_of(&self, line: &Line) -> u32 {
        line.quantity.get() - self.rejected_of(line)
    }

    /// How much of `line` has shipped: what the parcels hold of its SKU
    /// (all of it, for a parcel without lines), at most what it holds.
    pub fn shipped_of(&self, line: &Line) -> u32 {
        let q = self.kept_of(line);
        let shipped: u64 = self
            .shipments
            .iter()
            .map(|s| {
                if s.lines.is_empty() {
                    u64::from(q)
                } else {
                    s.lines
                        .iter()
                        .filter(|l| l.sku == line.sku)
                        .map(|l| u64::from(l.quantity))
                        .sum()
                }
            })
            .sum();
        shipped.min(u64::from(q)) as u32
    }

    /// How much of `line` will never ship: the rest of it once the order
    /// is cancelled or shipped (a partly shipped order that was cancelled).
    pub fn cancelled_of(&self, line: &Line) -> u32 {
        match self.status {
            FulfillmentStatus::Shipped | FulfillmentStatus::Cancelled => {
                self.kept_of(line) - self.shipped_of(line)
            }
            _ => 0,
        }
    }

    /// What is left to ship of `lines`.
    pub fn left(&self, lines: &[Line]) -> Vec<ShippedLine> {
        lines
            .iter()
            .map(|l| ShippedLine {
                sku: l.sku.clone(),
                quantity: self.kept_of(l) - self.shipped_of(l),
            })
            .filter(|l| l.quantity > 0)
            .collect()
    }

    /// Applies a staff action to an order of `lines`, or says why it is
    /// not allowed now.
    pub fn apply(
        &self,
        action: Action,
        lines: &[Line],
        store_holds: &[TypedHold],
        now: DateTime<Utc>,
    ) -> Result<Fulfillment, StepRefused> {
        use FulfillmentStatus as S;
        let refuse = || TransitionError {
            action: action.name(),
            current: self.status,
        };
        let mut next = self.clone();
        match (&action, self.status) {
            (Action::Pick, S::Pending) => next.status = S::Picking,
            (Action::Pack, S::Picking) => next.status = S::Packed,
            (
                Action::Ship {
                    carrier,
                    tracking_number,
                },
                S::Packed | S::PartiallyShipped,
            ) => {
                next.status = S::Shipped;
                next.shipments.push(Shipment {
                    carrier: carrier.clone(),
                    tracking_number: tracking_number.clone(),
                    shipped_at: now,
                    lines: self.left(lines),
                });
            }
            (
                Action::ShipParcel {
                    carrier,
                    tracking_number,
                    lines: parcel,
                },
                S::Picking | S::Packed | S::PartiallyShipped,
            ) => {
                let left = self.left(lines);
                let mut errors = Vec::new();
                for (i, p) in parcel.iter().enumerate() {
                    if !lines.iter().any(|l| l.sku == p.sku) {
                        errors.push(FieldError::new(
                            format!("lines[{i}].sku"),
                            format!("this order holds no {}", p.sku.as_str()),
                        ));
                    }
                }
                if !errors.is_empty() {
                    return Err(StepRefused::Invalid(errors));
                }
                for p in parcel {
                    let asked: u32 = parcel
                        .iter()
                        .filter(|x| x.sku == p.sku)
                        .map(|x| x.quantity)
                        .sum();
                    let there = left
                        .iter()
                        .find(|l| l.sku == p.sku)
                        .map_or(0, |l| l.quantity);
                    if asked > there {
                        return Err(StepRefused::TooMuch(format!(
                            "{asked} of {} asked, {there} left to ship",
                            p.sku.as_str()
                        )));
                    }
                }
                next.shipments.push(Shipment {
                    carrier: carrier.clone(),
                    tracking_number: tracking_number.clone(),
                    shipped_at: now,
                    lines: parcel.clone(),
                });
                next.status = if next.left(lines).is_empty() {
                    S::Shipped
                } else {
                    S::PartiallyShipped
                };
            }
            (
                Action::Hold { reason },
                S::Pending | S::Picking | S::Packed | S::PartiallyShipped,
            ) => {
                next.holds.push(TypedHold::new(
                    HoldType::Other,
                    reason.clone(),
                    Role::Warehouse,
                    now,
                ));
                return Ok(next.settle_holds(store_holds));
            }
            (
                Action::PlaceHold { kind, reason },
                S::Pending | S::Picking | S::Packed | S::PartiallyShipped | S::OnHold,
            ) => {
                if next.holds.iter().filter(|h| h.is_active()).count() >= super::holds::MAX_HOLDS {
                    return Err(StepRefused::TooMuch(format!(
                        "this order has had {} holds, the most it may",
                        next.holds.len()
                    )));
                }
                next.holds
                    .push(TypedHold::new(*kind, reason.clone(), Role::Warehouse, now));
                return Ok(next.settle_holds(store_holds));
            }
            (Action::Release, S::OnHold) => {
                let mine = next.holds.iter().any(TypedHold::is_active);
                if !mine && store_holds.iter().any(TypedHold::is_active) {
                    return Err(StepRefused::TooMuch(
                        "only the store's holds are active; the store releases them".into(),
                    ));
                }
                for h in next.holds.iter_mut().filter(|h| h.is_active()) {
                    h.released_at = Some(now);
                }
                if !mine {
                    // A hold from before typed holds: it had no record.
                    next.status = self.hold.as_ref().map_or(S::Pending, |h| h.from);
                    next.hold = None;
                    return Ok(next);
                }
                return Ok(next.settle_holds(store_holds));
            }
            (Action::ReleaseHold { id }, _) => {
                if store_holds.iter().any(|h| h.id == *id) {
                    return Err(StepRefused::TooMuch(
                        "the store placed this hold; only the store releases it".into(),
                    ));
                }
                let Some(h) = next.holds.iter_mut().find(|h| h.id == *id) else {
                    return Err(StepRefused::UnknownHold(*id));
                };
                if !h.is_active() {
                    return Err(StepRefused::TooMuch(
                        "this hold was already released".into(),
                    ));
                }
                h.released_at = Some(now);
                return Ok(next.settle_holds(store_holds));
            }
            (
                Action::Reject {
                    lines: refused,
                    reason,
                },
                S::Pending | S::OnHold,
            ) if self.status == S::Pending
                || self.hold.as_ref().is_some_and(|h| h.from == S::Pending) =>
            {
                let mut errors = Vec::new();
                for (i, r) in refused.iter().enumerate() {
                    match lines.iter().find(|l| l.sku == r.sku) {
                        None => errors.push(FieldError::new(
                            format!("lines[{i}].sku"),
                            format!("this order holds no {}", r.sku.as_str()),
                        )),
                        Some(l) if r.quantity > self.kept_of(l) => {
                            return Err(StepRefused::TooMuch(format!(
                                "{} of {} refused, {} held",
                                r.quantity,
                                r.sku.as_str(),
                                self.kept_of(l)
                            )));
                        }
                        Some(_) => {}
                    }
                }
                if !errors.is_empty() {
                    return Err(StepRefused::Invalid(errors));
                }
                next.rejections.extend(refused.iter().map(|r| Rejection {
                    sku: r.sku.clone(),
                    quantity: r.quantity,
                    reason: reason.clone(),
                }));
                if lines.iter().all(|l| next.kept_of(l) == 0) {
                    next.status = S::Rejected;
                    next.hold = None;
                }
            }
            _ => return Err(refuse().into()),
        }
        Ok(next)
    }

    /// Answers the store's cancel request: cancelled unless already shipped,
    /// in which case the order stays shipped and the refusal is recorded.
    /// Idempotent: answering twice changes nothing the second time.
    pub fn answer_cancel_request(&self) -> Fulfillment {
        let mut next = self.clone();
        match self.status {
            FulfillmentStatus::Cancelled | FulfillmentStatus::Rejected => {}
            FulfillmentStatus::Shipped => {
                if next.cancel_rejected_reason.is_none() {
                    next.cancel_rejected_reason = Some(CANCEL_REJECTED_SHIPPED.to_owned());
                }
            }
            // Partly shipped (or held after that): what left stays out,
            // the rest is cancelled.
            _ if !self.shipments.is_empty() => {
                next.status = FulfillmentStatus::Shipped;
                next.hold = None;
                next.cancel_rejected_reason = Some(CANCEL_REJECTED_PARTLY_SHIPPED.to_owned());
            }
            _ => {
                next.status = FulfillmentStatus::Cancelled;
                next.hold = None;
            }
        }
        next
    }
}

impl Default for Fulfillment {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FulfillmentStatus as S;

    fn at(status: S) -> Fulfillment {
        let mut f = Fulfillment::new();
        f.status = status;
        if status == S::OnHold {
            f.hold = Some(Hold {
                reason: "stock".into(),
                from: S::Picking,
            });
        }
        f
    }

    fn lines() -> Vec<Line> {
        [("WID-1", 2), ("BOX-1", 1)]
            .into_iter()
            .map(|(sku, q)| Line {
                sku: Sku::parse("sku", sku).expect("sku"),
                name: crate::domain::values::LineName::parse("name", sku).expect("name"),
                quantity: crate::domain::values::Quantity::parse("quantity", q).expect("q"),
            })
            .collect()
    }

    fn parcel(of: &[(&str, u32)]) -> Action {
        Action::ShipParcel {
            carrier: "DHL".into(),
            tracking_number: "JD1".into(),
            lines: of
                .iter()
                .map(|(sku, q)| ShippedLine {
                    sku: Sku::parse("sku", sku).expect("sku"),
                    quantity: *q,
                })
                .collect(),
        }
    }

    fn ship() -> Action {
        Action::Ship {
            carrier: "UPS".into(),
            tracking_number: "1Z".into(),
        }
    }

    fn hold() -> Action {
        Action::Hold {
            reason: "out of stock".into(),
        }
    }

    fn all_actions() -> Vec<Action> {
        vec![Action::Pick, Action::Pack, ship(), hold(), Action::Release]
    }

    /// The complete table: every (status, action) pair, allowed or refused.
    #[test]
    fn every_transition_allowed_or_refused() {
        let allowed: &[(S, &str, S)] = &[
            (S::Pending, "pick", S::Picking),
            (S::Picking, "pack", S::Packed),
            (S::Packed, "ship", S::Shipped),
            (S::Pending, "hold", S::OnHold),
            (S::Picking, "hold", S::OnHold),
            (S::Packed, "hold", S::OnHold),
            (S::OnHold, "release", S::Picking),
            (S::PartiallyShipped, "ship", S::Shipped),
            (S::PartiallyShipped, "hold", S::OnHold),
        ];
        let now = Utc::now();
        for status in S::ALL {
            for action in all_actions() {
                let name = action.name();
                let result = at(status).apply(action, &lines(), &[], now);
                match allowed.iter().find(|(s, a, _)| *s == status && *a == name) {
                    Some((_, _, to)) => {
                        let next = result.unwrap_or_else(|e| panic!("{status} {name}: {e}"));
                        assert_eq!(next.status, *to, "{status} --{name}-->");
                    }
                    None => {
                        let err =
                            result.expect_err(&format!("{status} --{name}--> must be refused"));
                        assert!(
                            matches!(&err, StepRefused::Transition(e) if e.current == status),
                            "{err:?}"
                        );
                        assert!(err.to_string().contains(status.as_str()));
                    }
                }
            }
        }
    }

    #[test]
    fn release_returns_to_the_state_it_left() {
        let now = Utc::now();
        for from in [S::Pending, S::Picking, S::Packed] {
            let held = at(from)
                .apply(hold(), &lines(), &[], now)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                held.hold.as_ref().map(|h| h.reason.as_str()),
                Some("out of stock")
            );
            let back = held
                .apply(Action::Release, &lines(), &[], now)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back.status, from);
            assert_eq!(back.hold, None);
        }
    }

    #[test]
    fn shipping_records_the_shipment() {
        let now = Utc::now();
        let f = at(S::Packed)
            .apply(ship(), &lines(), &[], now)
            .unwrap_or_else(|e| panic!("{e}"));
        let s = f.latest_shipment().unwrap_or_else(|| panic!("no shipment"));
        assert_eq!(
            (s.carrier.as_str(), s.tracking_number.as_str(), s.shipped_at),
            ("UPS", "1Z", now)
        );
        assert_eq!(s.lines.len(), 2, "everything left is in the parcel");
        assert!(f.left(&lines()).is_empty());
    }

    #[test]
    fn parcels_ship_what_is_left_and_no_more() {
        let now = Utc::now();
        let l = lines();
        let first = at(S::Picking)
            .apply(parcel(&[("WID-1", 1)]), &l, &[], now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.status, S::PartiallyShipped);
        assert_eq!(first.shipped_of(&l[0]), 1);
        assert_eq!(first.shipped_of(&l[1]), 0);
        // More than is left: refused, and says how much is left.
        let err = first
            .apply(parcel(&[("WID-1", 2)]), &l, &[], now)
            .expect_err("over what is left");
        assert!(
            matches!(&err, StepRefused::TooMuch(m) if m.contains("1 left")),
            "{err}"
        );
        // A SKU the order does not hold: names the line.
        let err = first
            .apply(parcel(&[("WID-1", 1), ("ZZZ-9", 1)]), &l, &[], now)
            .expect_err("not in the order");
        assert!(
            matches!(&err, StepRefused::Invalid(e) if e[0].field == "lines[1].sku"),
            "{err:?}"
        );
        let done = first
            .apply(parcel(&[("WID-1", 1), ("BOX-1", 1)]), &l, &[], now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(done.status, S::Shipped);
        assert_eq!(done.shipments.len(), 2);
        assert_eq!(done.cancelled_of(&l[0]), 0);
        // Not before picking, not after shipping.
        assert!(
            at(S::Pending)
                .apply(parcel(&[("WID-1", 1)]), &l, &[], now)
                .is_err()
        );
        assert!(done.apply(parcel(&[("WID-1", 1)]), &l, &[], now).is_err());
    }

    #[test]
    fn rejections_leave_the_order_and_empty_it_ends_rejected() {
        let l = lines();
        let now = Utc::now();
        let refuse = |sku: &str, quantity: u32| Action::Reject {
            lines: vec![ShippedLine {
                sku: Sku::parse("sku", sku).expect("sku"),
                quantity,
            }],
            reason: "out of stock".into(),
        };
        let one = at(S::Pending)
            .apply(refuse("WID-1", 1), &l, &[], now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((one.kept_of(&l[0]), one.rejected_of(&l[0])), (1, 1));
        assert_eq!(one.status, S::Pending);
        assert!(matches!(
            one.apply(refuse("WID-1", 2), &l, &[], now),
            Err(StepRefused::TooMuch(_))
        ));
        let held = one
            .apply(hold(), &l, &[], now)
            .unwrap_or_else(|e| panic!("{e}"));
        let all = held
            .apply(refuse("WID-1", 1), &l, &[], now)
            .and_then(|f| f.apply(refuse("BOX-1", 1), &l, &[], now))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(all.status, S::Rejected);
        assert_eq!(all.hold, None);
        assert!(all.left(&l).is_empty());
        // Not once work started.
        assert!(
            at(S::Picking)
                .apply(refuse("WID-1", 1), &l, &[], now)
                .is_err()
        );
    }

    #[test]
    fn a_cancel_of_a_partly_shipped_order_cancels_the_rest() {
        let l = lines();
        let partly = at(S::Packed)
            .apply(parcel(&[("WID-1", 2)]), &l, &[], Utc::now())
            .unwrap_or_else(|e| panic!("{e}"));
        let answered = partly.answer_cancel_request();
        assert_eq!(answered.status, S::Shipped);
        assert_eq!(
            answered.cancel_rejected_reason.as_deref(),
            Some(CANCEL_REJECTED_PARTLY_SHIPPED)
        );
        assert_eq!(answered.shipped_of(&l[0]), 2);
        assert_eq!(answered.cancelled_of(&l[1]), 1);
        assert_eq!(answered.answer_cancel_request(), answered, "idempotent");
    }

    #[test]
    fn cancel_request_cancels_anything_but_shipped() {
        for status in S::ALL {
            let answered = at(status).answer_cancel_request();
            match status {
                S::Rejected => assert_eq!(answered.status, S::Rejected),
                S::Shipped => {
                    assert_eq!(answered.status, S::Shipped);
                    assert_eq!(
                        answered.cancel_rejected_reason.as_deref(),
                        Some(CANCEL_REJECTED_SHIPPED)
                    );
                }
                _ => {
                    assert_eq!(answered.status, S::Cancelled);
                    assert_eq!(answered.hold, None);
                    assert_eq!(answered.cancel_rejected_reason, None);
                }
            }
            assert_eq!(
                answered.answer_cancel_request(),
                answered,
                "idempotent from {status}"
            );
        }
    }

    #[test]
    fn work_started() {
        assert!(!at(S::Pending).work_started());
        assert!(at(S::Picking).work_started());
        assert!(at(S::Packed).work_started());
        assert!(at(S::Shipped).work_started());
        assert!(at(S::OnHold).work_started(), "held from picking");
        let held_from_pending = at(S::Pending)
            .apply(hold(), &lines(), &[], Utc::now())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!held_from_pending.work_started());
    }

    #[test]
    fn action_parse_lists_every_missing_field() {
        let errs = Action::parse("shipped", None, Some(" "), None).expect_err("must fail");
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["carrier", "tracking_number"]);
        assert!(Action::parse("on_hold", None, None, None).is_err());
        assert!(Action::parse("cancelled", None, None, None).is_err());
        assert_eq!(Action::parse("picking", None, None, None), Ok(Action::Pick));
    }
}
