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

use super::values::{FieldError, MAX_SHORT_TEXT, MAX_TEXT, required_text};

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

/// A parcel handed to a carrier. Kept as its own record (and table) so split
/// shipments can be added without reshaping orders (docs/DESIGN.md §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub carrier: String,
    pub tracking_number: String,
    pub shipped_at: DateTime<Utc>,
}

/// Every warehouse-owned field of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfillment {
    pub status: FulfillmentStatus,
    /// Set exactly when `status` is `OnHold`.
    pub hold: Option<Hold>,
    pub shipment: Option<Shipment>,
    pub cancel_rejected_reason: Option<String>,
    /// The store changed the content after the warehouse started on it.
    pub content_changed_after_pick: bool,
}

/// What warehouse staff (or the store's cancel request) ask of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Pick,
    Pack,
    Ship {
        carrier: String,
        tracking_number: String,
    },
    Hold {
        reason: String,
    },
    Release,
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

    fn name(&self) -> &'static str {
        match self {
            Action::Pick => "pick",
            Action::Pack => "pack",
            Action::Ship { .. } => "ship",
            Action::Hold { .. } => "hold",
            Action::Release => "release",
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

/// Why the warehouse refused a cancel request of an order already shipped.
pub const CANCEL_REJECTED_SHIPPED: &str = "order was already shipped";

impl Fulfillment {
    /// The state of an order the warehouse has just received.
    pub fn new() -> Self {
        Self {
            status: FulfillmentStatus::Pending,
            hold: None,
            shipment: None,
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

    /// Applies a staff action, or says why it is not allowed now.
    pub fn apply(
        &self,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<Fulfillment, TransitionError> {
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
                S::Packed,
            ) => {
                next.status = S::Shipped;
                next.shipment = Some(Shipment {
                    carrier: carrier.clone(),
                    tracking_number: tracking_number.clone(),
                    shipped_at: now,
                });
            }
            (Action::Hold { reason }, S::Pending | S::Picking | S::Packed) => {
                next.status = S::OnHold;
                next.hold = Some(Hold {
                    reason: reason.clone(),
                    from: self.status,
                });
            }
            (Action::Release, S::OnHold) => {
                next.status = self.hold.as_ref().map_or(S::Pending, |h| h.from);
                next.hold = None;
            }
            _ => return Err(refuse()),
        }
        Ok(next)
    }

    /// Answers the store's cancel request: cancelled unless already shipped,
    /// in which case the order stays shipped and the refusal is recorded.
    /// Idempotent: answering twice changes nothing the second time.
    pub fn answer_cancel_request(&self) -> Fulfillment {
        let mut next = self.clone();
        match self.status {
            FulfillmentStatus::Cancelled => {}
            FulfillmentStatus::Shipped => {
                next.cancel_rejected_reason = Some(CANCEL_REJECTED_SHIPPED.to_owned());
            }
            _ => {
                next.status = FulfillmentStatus::Cancelled;
                next.hold = None;
            }
        }
        next
    }

    /// Names of the fields that differ between two states, for the audit trail.
    pub fn changed_fields(&self, other: &Fulfillment) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.status != other.status {
            out.push("status");
        }
        if self.hold != other.hold {
            out.push("hold_reason");
        }
        if self.shipment != other.shipment {
            out.push("shipment");
        }
        if self.cancel_rejected_reason != other.cancel_rejected_reason {
            out.push("cancel_rejected_reason");
        }
        if self.content_changed_after_pick != other.content_changed_after_pick {
            out.push("content_changed_after_pick");
        }
        out
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
        ];
        let now = Utc::now();
        for status in S::ALL {
            for action in all_actions() {
                let name = action.name();
                let result = at(status).apply(action, now);
                match allowed.iter().find(|(s, a, _)| *s == status && *a == name) {
                    Some((_, _, to)) => {
                        let next = result.unwrap_or_else(|e| panic!("{status} {name}: {e}"));
                        assert_eq!(next.status, *to, "{status} --{name}-->");
                    }
                    None => {
                        let err =
                            result.expect_err(&format!("{status} --{name}--> must be refused"));
                        assert_eq!(err.current, status);
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
                .apply(hold(), now)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                held.hold.as_ref().map(|h| h.reason.as_str()),
                Some("out of stock")
            );
            let back = held
                .apply(Action::Release, now)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back.status, from);
            assert_eq!(back.hold, None);
        }
    }

    #[test]
    fn shipping_records_the_shipment() {
        let now = Utc::now();
        let f = at(S::Packed)
            .apply(ship(), now)
            .unwrap_or_else(|e| panic!("{e}"));
        let s = f.shipment.unwrap_or_else(|| panic!("no shipment"));
        assert_eq!(
            (s.carrier.as_str(), s.tracking_number.as_str(), s.shipped_at),
            ("UPS", "1Z", now)
        );
    }

    #[test]
    fn cancel_request_cancels_anything_but_shipped() {
        for status in S::ALL {
            let answered = at(status).answer_cancel_request();
            match status {
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
            .apply(hold(), Utc::now())
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
