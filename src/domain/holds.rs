//! Typed holds (docs/DESIGN.md §6.3): several at once on a part, each with
//! a type, placed by the store or by the warehouse and released only by
//! the side that placed it. A store hold travels in the part's content
//! (store-owned), a warehouse hold in its fulfillment (warehouse-owned);
//! the warehouse keeps the part `on_hold` while any of either is active.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Role;
use super::values::{FieldError, MAX_TEXT, required_text};

/// Why an order is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldType {
    Address,
    Payment,
    Stock,
    Fraud,
    Other,
}

impl HoldType {
    pub const ALL: [HoldType; 5] = [
        Self::Address,
        Self::Payment,
        Self::Stock,
        Self::Fraud,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::Payment => "payment",
            Self::Stock => "stock",
            Self::Fraud => "fraud",
            Self::Other => "other",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "must be one of address, payment, stock, fraud, other",
                )
            })
    }
}

/// One hold on a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedHold {
    pub id: Uuid,
    pub kind: HoldType,
    pub reason: String,
    pub placed_by: Role,
    pub placed_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
}

impl TypedHold {
    /// A new hold placed now by `by`.
    pub fn new(kind: HoldType, reason: String, by: Role, now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind,
            reason,
            placed_by: by,
            placed_at: now,
            released_at: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.released_at.is_none()
    }
}

/// `{"type", "reason"}` of `POST /orders/{id}/holds`, checked: every
/// missing or invalid field listed.
pub fn parse_hold(
    kind: Option<&str>,
    reason: Option<&str>,
) -> Result<(HoldType, String), Vec<FieldError>> {
    let kind = match kind {
        Some(k) => HoldType::parse("type", k),
        None => Err(FieldError::new("type", "is required")),
    };
    let reason = match reason {
        Some(r) => required_text("reason", r, MAX_TEXT),
        None => Err(FieldError::new("reason", "is required")),
    };
    match (kind, reason) {
        (Ok(k), Ok(r)) => Ok((k, r)),
        (k, r) => Err([k.err(), r.err()].into_iter().flatten().collect()),
    }
}

/// Most active holds a part may carry.
pub const MAX_HOLDS: usize = 100;

/// Released holds kept on a part, the latest: a hot order held and
/// released all day must not grow without end (the audit trail keeps
/// every change).
pub const KEPT_RELEASED: usize = 20;

/// Most holds a snapshot may carry: the active ones and the released kept.
pub const MAX_SENT_HOLDS: usize = MAX_HOLDS + KEPT_RELEASED;

/// Forgets all but the latest [`KEPT_RELEASED`] released holds.
pub fn prune(holds: &mut Vec<TypedHold>) {
    let released = holds.iter().filter(|h| !h.is_active()).count();
    if released <= KEPT_RELEASED {
        return;
    }
    let mut times: Vec<DateTime<Utc>> = holds.iter().filter_map(|h| h.released_at).collect();
    times.sort_unstable();
    let cutoff = times[released - KEPT_RELEASED];
    let mut dropped = released - KEPT_RELEASED;
    holds.retain(|h| match h.released_at {
        Some(at) if at <= cutoff && dropped > 0 => {
            dropped -= 1;
            false
        }
        _ => true,
    });
}

/// A hold as the peers send it: in a content snapshot (the store's) or a
/// fulfillment snapshot (the warehouse's); who placed it follows from
/// which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldSnapshot {
    #[schema(value_type = String)]
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: HoldType,
    pub reason: String,
    pub placed_at: DateTime<Utc>,
    #[serde(default)]
    pub released_at: Option<DateTime<Utc>>,
}

impl HoldSnapshot {
    pub fn from_domain(h: &TypedHold) -> Self {
        Self {
            id: h.id,
            kind: h.kind,
            reason: h.reason.clone(),
            placed_at: h.placed_at,
            released_at: h.released_at,
        }
    }
}

/// The holds of a snapshot, placed by `by`, checked.
pub fn parse_snapshot_holds(
    list: &[HoldSnapshot],
    by: Role,
    errs: &mut super::values::Errors,
) -> Vec<TypedHold> {
    if list.len() > MAX_SENT_HOLDS {
        errs.push(FieldError::new(
            "holds",
            format!("at most {MAX_SENT_HOLDS} holds"),
        ));
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let reason = errs.take(required_text(
                &format!("holds[{i}].reason"),
                &h.reason,
                MAX_TEXT,
            ))?;
            Some(TypedHold {
                id: h.id,
                kind: h.kind,
                reason,
                placed_by: by,
                placed_at: h.placed_at,
                released_at: h.released_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_latest_released_holds_are_kept() {
        let t0 = Utc::now();
        let mut holds: Vec<TypedHold> = (0..30)
            .map(|i| {
                let mut h = TypedHold::new(HoldType::Other, format!("r{i}"), Role::Warehouse, t0);
                h.released_at = Some(t0 + chrono::Duration::seconds(i));
                h
            })
            .collect();
        holds.push(TypedHold::new(
            HoldType::Stock,
            "open".into(),
            Role::Warehouse,
            t0,
        ));
        prune(&mut holds);
        assert_eq!(holds.len(), KEPT_RELEASED + 1);
        assert!(holds.iter().any(|h| h.is_active()), "active holds stay");
        assert_eq!(holds[0].reason, "r10", "the oldest released went first");
    }
}
