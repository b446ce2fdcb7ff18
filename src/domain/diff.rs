//! What one write changed: each changed field of an order with its value
//! before and after, for the audit trail (`diff` in docs/API.md). Pure: two
//! states are compared field by field, here and nowhere else; the audit
//! trail's list of changed field names is read off the result, so names
//! and values cannot disagree.
//!
//! A value is the field's JSON shape in the API, whole: a customer or an
//! address as an object, lines, parcels and holds as lists. Money enters
//! only through [`Priced`], which only the store can build (it needs a
//! [`Pricing`]); the warehouse's content and fulfillment have no money
//! field, so nothing compared there can carry any.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fulfillment::Fulfillment;
use super::holds::{HoldSnapshot, TypedHold};
use super::input::{AddressInput, CustomerInput, LineInput, PricedLineInput};
use super::order::{Line, OrderContent, Pricing};
use super::snapshot::{RejectionSnapshot, ShipmentSnapshot};

/// One changed field: its value before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    as = FieldChange,
    description = "One changed field with its value before and after; a field holding an object or a list gives it whole."
)]
pub struct Change {
    /// The field's name, as `changes` names it.
    #[schema(value_type = String, example = "status")]
    pub field: Cow<'static, str>,
    /// The value before (null: none).
    #[schema(example = "pending")]
    pub from: Value,
    /// The value after (null: none).
    #[schema(example = "picking")]
    pub to: Value,
}

/// The names of the changed fields, in order (the audit trail's `changes`).
pub fn fields(diff: &[Change]) -> Vec<&str> {
    diff.iter().map(|c| c.field.as_ref()).collect()
}

/// Collects the changes between two states, field by field.
struct Compare<'a, T> {
    before: &'a T,
    after: &'a T,
    out: Vec<Change>,
}

impl<'a, T> Compare<'a, T> {
    fn new(before: &'a T, after: &'a T) -> Self {
        Self {
            before,
            after,
            out: Vec::new(),
        }
    }

    /// Adds `field` when `part` of the two states differs, with `show` of
    /// each as its value.
    fn field<P: PartialEq + ?Sized + 'a>(
        &mut self,
        field: &'static str,
        part: impl Fn(&'a T) -> &'a P,
        show: impl Fn(&'a P) -> Value,
    ) -> &mut Self {
        let (a, b) = (part(self.before), part(self.after));
        if a != b {
            self.out.push(Change {
                field: Cow::Borrowed(field),
                from: show(a),
                to: show(b),
            });
        }
        self
    }

    fn done(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.out)
    }
}

/// A value as JSON (`null` for the impossible: a map with non-text keys).
fn json<S: Serialize>(v: S) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn lines(lines: &[Line]) -> Value {
    json(
        lines
            .iter()
            .map(|l| LineInput {
                sku: Some(l.sku.to_string()),
                name: Some(l.name.to_string()),
                quantity: Some(i64::from(l.quantity.get())),
            })
            .collect::<Vec<_>>(),
    )
}

fn holds(list: &[TypedHold]) -> Value {
    json(
        list.iter()
            .map(HoldSnapshot::from_domain)
            .collect::<Vec<_>>(),
    )
}

impl OrderContent {
    /// Every field that differs in `after`, with both values (no money:
    /// content has none; see [`Priced::diff`] for the store's).
    pub fn diff(&self, after: &OrderContent) -> Vec<Change> {
        content(self, after, self.lines != after.lines, || {
            (lines(&self.lines), lines(&after.lines))
        })
    }
}

/// The content fields in the order the trail lists them; whether the
/// lines changed, and how they are shown, is the caller's (with prices at
/// the store).
fn content(
    before: &OrderContent,
    after: &OrderContent,
    lines_changed: bool,
    show_lines: impl FnOnce() -> (Value, Value),
) -> Vec<Change> {
    let mut out = Compare::new(before, after)
        .field(
            "customer",
            |o| &o.customer,
            |v| json(CustomerInput::from_domain(v)),
        )
        .field(
            "shipping_address",
            |o| &o.shipping_address,
            |v| json(AddressInput::from_domain(v)),
        )
        .done();
    if lines_changed {
        let (from, to) = show_lines();
        out.push(Change {
            field: Cow::Borrowed("lines"),
            from,
            to,
        });
    }
    out.extend(
        Compare::new(before, after)
            .field("notes", |o| &o.notes, json)
            .field("deliver_by", |o| &o.deliver_by, json)
            .field(
                "cancel_request",
                |o| &o.cancel,
                |v| match v {
                    Some(r) => serde_json::json!({ "reason": r.reason }),
                    None => Value::Null,
                },
            )
            .field("holds", |o| &o.holds, |v| holds(v))
            .done(),
    );
    out
}

/// An order's content with its money: what the store compares when it
/// edits an order. Lines are shown with their unit prices.
pub struct Priced<'a> {
    pub content: &'a OrderContent,
    pub pricing: &'a Pricing,
}

impl Priced<'_> {
    /// Each line with its unit price.
    fn lines(&self) -> Vec<(&Line, i64)> {
        self.content
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| (l, self.pricing.unit_prices.get(i).map_or(0, |p| p.get())))
            .collect()
    }

    fn show_lines(&self) -> Value {
        json(
            self.lines()
                .into_iter()
                .map(|(l, price)| PricedLineInput {
                    sku: Some(l.sku.to_string()),
                    name: Some(l.name.to_string()),
                    quantity: Some(i64::from(l.quantity.get())),
                    unit_price: Some(price),
                })
                .collect::<Vec<_>>(),
        )
    }

    /// Every field that differs in `after`, with both values: the
    /// content's (lines with their unit prices), then the money's.
    pub fn diff(&self, after: &Priced<'_>) -> Vec<Change> {
        let lines_changed = self.lines() != after.lines();
        let mut out = content(self.content, after.content, lines_changed, || {
            (self.show_lines(), after.show_lines())
        });
        out.extend(
            Compare::new(self.pricing, after.pricing)
                .field("shipping_cost", |p| &p.shipping_cost, |v| json(v.get()))
                .field("currency", |p| &p.currency, |v| json(v.as_str()))
                .done(),
        );
        out
    }
}

impl Fulfillment {
    /// Every field that differs in `after`, with both values.
    pub fn diff(&self, after: &Fulfillment) -> Vec<Change> {
        Compare::new(self, after)
            .field("status", |f| &f.status, json)
            .field(
                "hold_reason",
                |f| &f.hold,
                |h| json(h.as_ref().map(|h| &h.reason)),
            )
            // (The trail's name since orders had one parcel.)
            .field(
                "shipment",
                |f| &f.shipments,
                |list| {
                    json(
                        list.iter()
                            .map(ShipmentSnapshot::from_domain)
                            .collect::<Vec<_>>(),
                    )
                },
            )
            .field(
                "rejections",
                |f| &f.rejections,
                |list| {
                    json(
                        list.iter()
                            .map(RejectionSnapshot::from_domain)
                            .collect::<Vec<_>>(),
                    )
                },
            )
            .field("holds", |f| &f.holds, |v| holds(v))
            .field(
                "cancel_rejected_reason",
                |f| &f.cancel_rejected_reason,
                json,
            )
            .field(
                "content_changed_after_pick",
                |f| &f.content_changed_after_pick,
                json,
            )
            .done()
    }

    /// [`Fulfillment::diff`] from a state that may not be known yet (the
    /// store before the warehouse first reports): its status was none.
    pub fn diff_from(before: Option<&Fulfillment>, after: &Fulfillment) -> Vec<Change> {
        match before {
            Some(b) => b.diff(after),
            None => {
                let mut out = Fulfillment::new().diff(after);
                match out.iter_mut().find(|c| c.field == "status") {
                    Some(s) => s.from = Value::Null,
                    None => out.insert(
                        0,
                        Change {
                            field: Cow::Borrowed("status"),
                            from: Value::Null,
                            to: json(after.status),
                        },
                    ),
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FulfillmentStatus as S;
    use crate::domain::fulfillment::Action;
    use crate::domain::values::MinorUnits;
    use serde_json::json;

    fn content() -> (OrderContent, Pricing) {
        crate::domain::input::tests::valid()
            .parse()
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn content_diff_gives_old_and_new_values_whole() {
        let (before, _) = content();
        let mut after = before.clone();
        after.notes = Some("ring twice".into());
        after.shipping_address.city =
            crate::domain::values::Text::parse("city", "Leeds").expect("city");
        let d = before.diff(&after);
        assert_eq!(fields(&d), ["shipping_address", "notes"]);
        assert_eq!(d[0].from["city"], "London");
        assert_eq!(d[0].to["city"], "Leeds");
        assert_eq!(d[0].to["postal_code"], "SW1Y 4JH", "the whole address");
        assert_eq!(d[1].from, json!("leave at the door"));
        assert_eq!(d[1].to, json!("ring twice"));
        assert!(before.diff(&before).is_empty());
    }

    #[test]
    fn content_diff_never_holds_money() {
        let (before, _) = content();
        let mut after = before.clone();
        after.lines[0].quantity = crate::domain::values::Quantity::parse("q", 5).expect("q");
        let d = before.diff(&after);
        assert_eq!(fields(&d), ["lines"]);
        assert_eq!(
            d[0].to,
            json!([{"sku": "WID-1", "name": "Widget", "quantity": 5}])
        );
        assert!(!serde_json::to_string(&d).expect("json").contains("price"));
    }

    #[test]
    fn priced_diff_shows_unit_prices_and_shipping() {
        let (c, p) = content();
        let mut p2 = p.clone();
        p2.unit_prices[0] = MinorUnits::parse("p", 2500).expect("price");
        p2.shipping_cost = MinorUnits::parse("s", 0).expect("shipping");
        let before = Priced {
            content: &c,
            pricing: &p,
        };
        let after = Priced {
            content: &c,
            pricing: &p2,
        };
        let d = before.diff(&after);
        assert_eq!(fields(&d), ["lines", "shipping_cost"]);
        assert_eq!(d[0].from[0]["unit_price"], 1999);
        assert_eq!(d[0].to[0]["unit_price"], 2500);
        assert_eq!((d[1].from.clone(), d[1].to.clone()), (json!(500), json!(0)));
        assert!(before.diff(&before).is_empty());
    }

    #[test]
    fn fulfillment_diff_gives_status_and_parcels() {
        let (c, _) = content();
        let now = chrono::Utc::now();
        let pending = Fulfillment::new();
        let picking = pending
            .apply(Action::Pick, &c.lines, &[], now)
            .expect("pick");
        let d = pending.diff(&picking);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].field.as_ref(), &d[0].from, &d[0].to),
            ("status", &json!("pending"), &json!("picking"))
        );
        let packed = picking
            .apply(Action::Pack, &c.lines, &[], now)
            .expect("pack");
        let shipped = packed
            .apply(
                Action::Ship {
                    carrier: "UPS".into(),
                    tracking_number: "1Z".into(),
                },
                &c.lines,
                &[],
                now,
            )
            .expect("ship");
        let d = packed.diff(&shipped);
        assert_eq!(fields(&d), ["status", "shipment"]);
        assert_eq!(d[1].from, json!([]));
        assert_eq!(d[1].to[0]["carrier"], "UPS");
        assert_eq!(d[1].to[0]["lines"][0]["quantity"], 2);
    }

    #[test]
    fn a_first_fulfillment_comes_from_no_status() {
        let f = Fulfillment::new();
        let d = Fulfillment::diff_from(None, &f);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].from, Value::Null);
        assert_eq!(d[0].to, json!("pending"));
        let mut held = f.clone();
        held.status = S::Cancelled;
        let d = Fulfillment::diff_from(None, &held);
        assert_eq!(fields(&d), ["status"]);
        assert_eq!(
            (d[0].from.clone(), d[0].to.clone()),
            (Value::Null, json!("cancelled"))
        );
    }
}
