//! Parts: one warehouse's share of an order, the unit that syncs, is
//! versioned and is fenced (docs/DESIGN.md §6.3); how the store routes an
//! order's lines into parts; and how the parts roll up into the order's
//! fulfillment. Pure: the engine loads an order's parts and the
//! warehouses, asks here, and writes what the plan says.

pub use super::fulfillment::Rejection;
use super::fulfillment::{Fulfillment, FulfillmentStatus};
use super::order::{Line, OrderId};
use super::values::{CountryCode, Quantity, Sku};
use super::warehouse::{Warehouse, WarehouseName, route};

/// The cancel reason a withdrawn part's warehouse receives.
pub const WITHDRAWN: &str = "its lines were routed to other warehouses after an edit";

/// The number a part shows at its warehouse: the order's own for the
/// first part, `SO-000123-2` for the second, and so on.
pub fn part_number(order_number: &str, part: i64) -> String {
    if part <= 1 {
        order_number.to_owned()
    } else {
        format!("{order_number}-{part}")
    }
}

/// A part as routing sees it.
#[derive(Debug, Clone)]
pub struct RoutedPart {
    pub id: OrderId,
    pub warehouse: WarehouseName,
    /// Its lines as the store last sent them.
    pub lines: Vec<Line>,
    /// What its warehouse rejected of them.
    pub rejected: Vec<Rejection>,
    /// New lines for its warehouse may join it: its warehouse has not
    /// started on it (as far as the store knows) and no cancel is asked.
    pub open: bool,
    /// Its lines went elsewhere (an edit); it counts for nothing.
    pub withdrawn: bool,
}

impl RoutedPart {
    /// How much of `sku` this part still holds: sent, less rejected.
    pub fn holds(&self, sku: &Sku) -> u32 {
        if self.withdrawn {
            return 0;
        }
        let sent: u32 = self
            .lines
            .iter()
            .filter(|l| &l.sku == sku)
            .map(|l| l.quantity.get())
            .sum();
        sent.saturating_sub(self.rejected_of(sku))
    }

    fn rejected_of(&self, sku: &Sku) -> u32 {
        self.rejected
            .iter()
            .filter(|r| &r.sku == sku)
            .map(|r| r.quantity)
            .sum()
    }
}

/// What of `items` (the order's lines) no part holds: the quantities still
/// to route, in the order of the items.
pub fn unrouted(items: &[Line], parts: &[RoutedPart]) -> Vec<Line> {
    items
        .iter()
        .filter_map(|item| {
            let held: u32 = parts.iter().map(|p| p.holds(&item.sku)).sum();
            let left = item.quantity.get().saturating_sub(held);
            let quantity = Quantity::parse("quantity", i64::from(left)).ok()?;
            Some(Line {
                quantity,
                ..item.clone()
            })
        })
        .collect()
}

/// A line no warehouse takes now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrouted {
    pub line: Line,
    pub reason: String,
}

/// How to route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Route lines no part holds (a new order, a rejection, `route`):
    /// they join their warehouse's open part, which keeps its lines, or
    /// make a new part.
    Add,
    /// Route every line afresh (an edit of the lines, allowed while no
    /// part has started): every part not withdrawn may take lines, starting
    /// from none, and a part that gets none is withdrawn.
    Afresh,
}

/// What routing decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Existing parts whose lines change, with all their new lines.
    pub set_lines: Vec<(OrderId, Vec<Line>)>,
    /// New parts, first warehouse (by priority, then name) first.
    pub new_parts: Vec<(WarehouseName, Vec<Line>)>,
    /// Parts left without lines ([`Mode::Afresh`] only).
    pub withdrawn: Vec<OrderId>,
    pub unrouted: Vec<Unrouted>,
}

impl Plan {
    /// Whether the plan changes anything.
    pub fn is_empty(&self) -> bool {
        self.set_lines.is_empty() && self.new_parts.is_empty() && self.withdrawn.is_empty()
    }
}

/// Routes `lines` of an order shipping to `country` among `warehouses`,
/// given the order's `parts` (in part order). A warehouse that rejected a
/// SKU for this order is never a candidate for it again.
pub fn plan(
    lines: &[Line],
    country: &CountryCode,
    warehouses: &[Warehouse],
    parts: &[RoutedPart],
    mode: Mode,
) -> Plan {
    let skus: Vec<&Sku> = lines.iter().map(|l| &l.sku).collect();
    let refused = |w: &WarehouseName, i: usize| {
        parts
            .iter()
            .any(|p| &p.warehouse == w && p.rejected_of(skus[i]) > 0)
    };
    let routing = route(&skus, country, warehouses, refused);
    // The part each warehouse's lines join, if any, and what it holds so far.
    let mut targets: Vec<(OrderId, WarehouseName, Vec<Line>)> = Vec::new();
    let mut fresh: Vec<(WarehouseName, Vec<Line>)> = Vec::new();
    let mut plan = Plan::default();
    for (line, to) in lines.iter().zip(routing.lines) {
        let w = match to {
            Ok(w) => w,
            Err(reason) => {
                plan.unrouted.push(Unrouted {
                    reason: rejected_reason(parts, &line.sku).unwrap_or(reason),
                    line: line.clone(),
                });
                continue;
            }
        };
        if let Some((_, _, held)) = targets.iter_mut().find(|(_, tw, _)| *tw == w) {
            join(held, line);
            continue;
        }
        let joinable = parts.iter().find(|p| {
            p.warehouse == w
                && !p.withdrawn
                && match mode {
                    Mode::Add => p.open,
                    Mode::Afresh => true,
                }
        });
        if let Some(p) = joinable {
            let mut held = match mode {
                Mode::Add => p.lines.clone(),
                Mode::Afresh => Vec::new(),
            };
            join(&mut held, line);
            targets.push((p.id, w, held));
        } else if let Some((_, held)) = fresh.iter_mut().find(|(fw, _)| *fw == w) {
            join(held, line);
        } else {
            fresh.push((w, vec![line.clone()]));
        }
    }
    let rank = |w: &WarehouseName| {
        warehouses
            .iter()
            .find(|x| &x.name == w)
            .map(|x| (x.priority, x.name.clone()))
    };
    fresh.sort_by_key(|(w, _)| rank(w));
    plan.new_parts = fresh;
    for p in parts.iter().filter(|p| !p.withdrawn) {
        match targets.iter().find(|(id, _, _)| *id == p.id) {
            Some((_, _, held)) if *held != p.lines => plan.set_lines.push((p.id, held.clone())),
            Some(_) => {}
            None if mode == Mode::Afresh => plan.withdrawn.push(p.id),
            None => {}
        }
    }
    plan
}

/// Adds `line` to `held`: to the line of the same SKU, or as a new line.
fn join(held: &mut Vec<Line>, line: &Line) {
    match held.iter_mut().find(|l| l.sku == line.sku) {
        Some(l) => {
            let sum = i64::from(l.quantity.get()) + i64::from(line.quantity.get());
            // Parts of one order never hold more of a SKU than it has.
            if let Ok(q) = Quantity::parse("quantity", sum) {
                l.quantity = q;
            }
        }
        None => held.push(line.clone()),
    }
}

/// Why a SKU that warehouses rejected for this order is unrouted.
fn rejected_reason(parts: &[RoutedPart], sku: &Sku) -> Option<String> {
    let by: Vec<String> = parts
        .iter()
        .flat_map(|p| {
            p.rejected
                .iter()
                .filter(|r| &r.sku == sku)
                .map(|r| format!("{} ({})", p.warehouse, r.reason))
        })
        .collect();
    (!by.is_empty()).then(|| {
        format!(
            "rejected by {}; no other active warehouse stocks {} and ships there",
            by.join(", "),
            sku.as_str()
        )
    })
}

/// The order's status as the roll-up of its parts' ([`roll_up`]'s rules;
/// `None` for a part not reported yet, and when none is). What the store
/// keeps beside the order for lists to filter on.
pub fn roll_up_status(parts: &[Option<FulfillmentStatus>]) -> Option<FulfillmentStatus> {
    use FulfillmentStatus as S;
    if parts.len() == 1 {
        return parts[0];
    }
    let first = parts.iter().flatten().next()?;
    let statuses: Vec<S> = parts.iter().map(|s| s.unwrap_or(S::Pending)).collect();
    let all = |ok: &dyn Fn(S) -> bool| statuses.iter().all(|s| ok(*s));
    let any = |ok: &dyn Fn(S) -> bool| statuses.iter().any(|s| ok(*s));
    Some(if all(&|s| s == S::Cancelled) {
        S::Cancelled
    } else if all(&|s| matches!(s, S::Shipped | S::Cancelled | S::Rejected))
        && any(&|s| s == S::Shipped)
    {
        S::Shipped
    } else if all(&|s| matches!(s, S::Cancelled | S::Rejected)) {
        S::Rejected
    } else if any(&|s| matches!(s, S::Shipped | S::PartiallyShipped)) {
        S::PartiallyShipped
    } else if any(&|s| s == S::OnHold) {
        S::OnHold
    } else {
        [S::Pending, S::Picking, S::Packed]
            .into_iter()
            .find(|s| statuses.contains(s))
            .unwrap_or(*first)
    })
}

/// The order's fulfillment as the roll-up of its parts' (withdrawn parts
/// left out; `None` for a part its warehouse has not reported yet):
///
/// - `cancelled` if every part is; `shipped` if every part not cancelled
///   or rejected is; `rejected` if every part is rejected or cancelled;
/// - `partially_shipped` if anything shipped;
/// - else `on_hold` if any part is on hold;
/// - else the least advanced of `pending`, `picking`, `packed`.
///
/// The hold is the first part's on hold, the shipment the latest, the
/// refusal of a cancel the first. `None` until a warehouse reports.
pub fn roll_up(parts: &[Option<&Fulfillment>]) -> Option<Fulfillment> {
    if parts.len() == 1 {
        return parts[0].cloned();
    }
    let reported: Vec<&Fulfillment> = parts.iter().flatten().copied().collect();
    let statuses: Vec<Option<FulfillmentStatus>> =
        parts.iter().map(|f| f.map(|f| f.status)).collect();
    let status = roll_up_status(&statuses)?;
    Some(Fulfillment {
        status,
        holds: reported
            .iter()
            .flat_map(|f| f.holds.iter().cloned())
            .collect(),
        rejections: reported
            .iter()
            .flat_map(|f| f.rejections.iter().cloned())
            .collect(),
        hold: reported.iter().find_map(|f| f.hold.clone()),
        shipments: {
            let mut all: Vec<_> = reported
                .iter()
                .flat_map(|f| f.shipments.iter().cloned())
                .collect();
            all.sort_by_key(|s| s.shipped_at);
            all
        },
        cancel_rejected_reason: reported
            .iter()
            .find_map(|f| f.cancel_rejected_reason.clone()),
        content_changed_after_pick: reported.iter().any(|f| f.content_changed_after_pick),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::values::LineName;
    use crate::domain::warehouse::tests::wh;

    fn line(sku: &str, q: i64) -> Line {
        Line {
            sku: Sku::parse("sku", sku).expect("sku"),
            name: LineName::parse("name", sku).expect("name"),
            quantity: Quantity::parse("quantity", q).expect("quantity"),
        }
    }

    fn name(n: &str) -> WarehouseName {
        WarehouseName::parse("n", n).expect("name")
    }

    fn gb() -> CountryCode {
        CountryCode::parse("c", "GB").expect("country")
    }

    fn part(w: &str, lines: Vec<Line>, open: bool) -> RoutedPart {
        RoutedPart {
            id: OrderId::new(),
            warehouse: name(w),
            lines,
            rejected: Vec::new(),
            open,
            withdrawn: false,
        }
    }

    /// Widgets from one warehouse, boxes from another.
    fn two() -> Vec<Warehouse> {
        vec![wh("eu", &["GB"], &["WID-"], 0), wh("uk", &[], &["BOX-"], 1)]
    }

    #[test]
    fn a_new_order_splits_by_sku_and_keeps_what_nobody_takes() {
        let items = [line("WID-1", 2), line("BOX-1", 1), line("ZZZ-1", 3)];
        let p = plan(&items, &gb(), &two(), &[], Mode::Add);
        assert_eq!(
            p.new_parts,
            vec![
                (name("eu"), vec![line("WID-1", 2)]),
                (name("uk"), vec![line("BOX-1", 1)])
            ]
        );
        assert_eq!(p.unrouted.len(), 1);
        assert_eq!(p.unrouted[0].line, line("ZZZ-1", 3));
        assert!(p.unrouted[0].reason.contains("ZZZ-1"), "{:?}", p.unrouted);
        assert!(p.set_lines.is_empty() && p.withdrawn.is_empty());
    }

    #[test]
    fn new_parts_come_in_warehouse_order_whatever_the_line_order() {
        let items = [line("BOX-1", 1), line("WID-1", 2)];
        let p = plan(&items, &gb(), &two(), &[], Mode::Add);
        let order: Vec<&str> = p.new_parts.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(order, ["eu", "uk"]);
    }

    #[test]
    fn lines_join_their_warehouses_open_part_or_make_a_new_one() {
        let open = part("eu", vec![line("WID-1", 1)], true);
        let p = plan(
            &[line("WID-1", 1), line("WID-2", 4)],
            &gb(),
            &two(),
            std::slice::from_ref(&open),
            Mode::Add,
        );
        assert_eq!(
            p.set_lines,
            vec![(open.id, vec![line("WID-1", 2), line("WID-2", 4)])]
        );
        assert!(p.new_parts.is_empty());
        let started = part("eu", vec![line("WID-1", 1)], false);
        let p = plan(&[line("WID-2", 4)], &gb(), &two(), &[started], Mode::Add);
        assert_eq!(p.new_parts, vec![(name("eu"), vec![line("WID-2", 4)])]);
        assert!(p.set_lines.is_empty());
    }

    #[test]
    fn a_warehouse_that_rejected_a_sku_is_not_asked_again() {
        let mut eu = part("eu", vec![line("WID-1", 2)], false);
        eu.rejected.push(Rejection {
            sku: eu.lines[0].sku.clone(),
            quantity: 1,
            reason: "out of stock".into(),
        });
        let items = [line("WID-1", 2)];
        let left = unrouted(&items, std::slice::from_ref(&eu));
        assert_eq!(left, vec![line("WID-1", 1)]);
        // Only eu stocks widgets: the line stays unrouted, saying why.
        let p = plan(&left, &gb(), &two(), std::slice::from_ref(&eu), Mode::Add);
        assert!(p.is_empty());
        assert!(
            p.unrouted[0]
                .reason
                .contains("rejected by eu (out of stock)"),
            "{:?}",
            p.unrouted
        );
        // With another warehouse that stocks them, it goes there.
        let mut ws = two();
        ws.push(wh("us", &[], &[], 5));
        let p = plan(&left, &gb(), &ws, &[eu], Mode::Add);
        assert_eq!(p.new_parts, vec![(name("us"), vec![line("WID-1", 1)])]);
    }

    #[test]
    fn afresh_reuses_parts_and_withdraws_the_ones_left_empty() {
        let eu = part("eu", vec![line("WID-1", 2)], true);
        let uk = part("uk", vec![line("BOX-1", 1)], false);
        let parts = [eu.clone(), uk.clone()];
        // The boxes are gone and more widgets are wanted.
        let p = plan(&[line("WID-1", 5)], &gb(), &two(), &parts, Mode::Afresh);
        assert_eq!(p.set_lines, vec![(eu.id, vec![line("WID-1", 5)])]);
        assert_eq!(p.withdrawn, vec![uk.id]);
        assert!(p.new_parts.is_empty());
        // Unchanged lines change nothing.
        let same = plan(
            &[line("WID-1", 2), line("BOX-1", 1)],
            &gb(),
            &two(),
            &parts,
            Mode::Afresh,
        );
        assert!(same.is_empty(), "{same:?}");
    }

    #[test]
    fn unrouted_counts_what_parts_hold() {
        let items = [line("WID-1", 3), line("BOX-1", 1)];
        let mut eu = part("eu", vec![line("WID-1", 2)], true);
        assert_eq!(
            unrouted(&items, std::slice::from_ref(&eu)),
            vec![line("WID-1", 1), line("BOX-1", 1)]
        );
        eu.withdrawn = true;
        assert_eq!(unrouted(&items, &[eu]), items.to_vec());
    }

    #[test]
    fn roll_up_follows_the_rules() {
        use FulfillmentStatus as S;
        let at = |s: S| {
            let mut f = Fulfillment::new();
            f.status = s;
            f
        };
        let up = |ss: &[Option<S>]| {
            let fs: Vec<Option<Fulfillment>> = ss.iter().map(|s| s.map(at)).collect();
            let refs: Vec<Option<&Fulfillment>> = fs.iter().map(Option::as_ref).collect();
            roll_up(&refs).map(|f| f.status)
        };
        assert_eq!(up(&[None, None]), None);
        assert_eq!(up(&[Some(S::Picking), None]), Some(S::Pending));
        assert_eq!(up(&[Some(S::Packed), Some(S::Picking)]), Some(S::Picking));
        assert_eq!(up(&[Some(S::Packed), Some(S::OnHold)]), Some(S::OnHold));
        assert_eq!(
            up(&[Some(S::Shipped), Some(S::OnHold)]),
            Some(S::PartiallyShipped)
        );
        assert_eq!(
            up(&[Some(S::Shipped), Some(S::Cancelled)]),
            Some(S::Shipped)
        );
        assert_eq!(up(&[Some(S::Shipped), Some(S::Rejected)]), Some(S::Shipped));
        assert_eq!(
            up(&[Some(S::Cancelled), Some(S::Cancelled)]),
            Some(S::Cancelled)
        );
        assert_eq!(
            up(&[Some(S::Rejected), Some(S::Cancelled)]),
            Some(S::Rejected)
        );
        assert_eq!(up(&[Some(S::Picking)]), Some(S::Picking));
    }

    #[test]
    fn part_numbers() {
        assert_eq!(part_number("SO-000007", 1), "SO-000007");
        assert_eq!(part_number("SO-000007", 3), "SO-000007-3");
    }
}
