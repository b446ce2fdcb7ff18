//! One order's page: lines, fulfillment, sync state, the delivery timeline,
//! the audit trail (both built in [`super::timeline`]), and the actions
//! this side may take on it. Times are to the second: within a minute,
//! the order of events is what a reader is after.

use super::timeline::{self, AuditRow, Deliveries};
use super::*;

type Now = chrono::DateTime<Utc>;

pub struct LineView {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Option<String>,
    pub line_total: Option<String>,
    /// The warehouse only: what became of the line.
    pub outcome: Option<LineOutcome>,
}

/// What became of one line at its warehouse: what it still holds (the
/// quantity sent less what was rejected), shipped, cancelled, rejected,
/// and what is left to ship.
pub struct LineOutcome {
    pub quantity: u32,
    pub shipped: u32,
    pub cancelled: u32,
    pub rejected: u32,
    pub left: u32,
}

impl LineOutcome {
    pub fn of(f: Option<&Fulfillment>, l: &Line) -> LineOutcome {
        match f {
            None => LineOutcome {
                quantity: l.quantity.get(),
                shipped: 0,
                cancelled: 0,
                rejected: 0,
                left: l.quantity.get(),
            },
            Some(f) => {
                let (kept, shipped) = (f.kept_of(l), f.shipped_of(l));
                let cancelled = f.cancelled_of(l);
                LineOutcome {
                    quantity: kept,
                    shipped,
                    cancelled,
                    rejected: f.rejected_of(l),
                    left: kept - shipped - cancelled,
                }
            }
        }
    }
}

/// One parcel: its number among its part's parcels, and what is in it.
pub struct ParcelView {
    pub n: usize,
    pub carrier: String,
    pub tracking_number: String,
    pub shipped_at: String,
    /// `(sku, quantity)`; empty for a parcel from before parcels had
    /// lines, which held everything.
    pub lines: Vec<(String, u32)>,
}

impl ParcelView {
    fn all(f: Option<&Fulfillment>, now: Now) -> Vec<ParcelView> {
        f.map_or(&[][..], |f| &f.shipments[..])
            .iter()
            .enumerate()
            .map(|(i, s)| ParcelView {
                n: i + 1,
                carrier: s.carrier.clone(),
                tracking_number: s.tracking_number.clone(),
                shipped_at: format::clock(s.shipped_at, now),
                lines: s
                    .lines
                    .iter()
                    .map(|l| (l.sku.as_str().to_owned(), l.quantity))
                    .collect(),
            })
            .collect()
    }
}

/// Quantities a warehouse refused, and why.
pub struct RejectionView {
    pub sku: String,
    pub quantity: u32,
    pub reason: String,
}

impl RejectionView {
    fn all(f: Option<&Fulfillment>) -> Vec<RejectionView> {
        f.map_or(&[][..], |f| &f.rejections[..])
            .iter()
            .map(|r| RejectionView {
                sku: r.sku.as_str().to_owned(),
                quantity: r.quantity,
                reason: r.reason.clone(),
            })
            .collect()
    }
}

/// One part of a store order: a warehouse's share, with its own
/// fulfillment and sync.
pub struct PartCard {
    pub id: String,
    pub n: i64,
    pub number: String,
    pub warehouse: String,
    pub withdrawn: bool,
    pub status: Badge,
    pub hold_reason: Option<String>,
    pub cancel_rejected_reason: Option<String>,
    pub lines: Vec<(String, String, LineOutcome)>,
    pub parcels: Vec<ParcelView>,
    pub rejections: Vec<RejectionView>,
    pub sync: Badge,
    pub sync_dead: bool,
    pub last_error: Option<String>,
    pub store_version: i64,
    pub warehouse_version: i64,
}

impl PartCard {
    fn new(p: &PartView, now: Now) -> PartCard {
        let o = &p.order;
        let f = o.fulfillment.as_ref();
        PartCard {
            id: o.id.to_string(),
            n: o.part,
            number: o.number.clone(),
            warehouse: p.warehouse.clone(),
            withdrawn: p.withdrawn,
            status: Badge::status(f.map(|f| f.status)),
            hold_reason: f.and_then(|f| f.hold.as_ref()).map(|h| h.reason.clone()),
            cancel_rejected_reason: f.and_then(|f| f.cancel_rejected_reason.clone()),
            lines: o
                .content
                .lines
                .iter()
                .map(|l| {
                    (
                        l.sku.as_str().to_owned(),
                        l.name.as_str().to_owned(),
                        LineOutcome::of(f, l),
                    )
                })
                .collect(),
            parcels: ParcelView::all(f, now),
            rejections: RejectionView::all(f),
            sync: Badge::sync(p.sync.state),
            sync_dead: p.sync.state == SyncState::Dead,
            last_error: p.sync.last_error.clone(),
            store_version: o.store_version,
            warehouse_version: o.warehouse_version,
        }
    }
}

/// A line of a store order no warehouse takes now, and why.
pub struct UnroutedView {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub reason: String,
}

/// One row of the warehouse's parcel or rejection form: a line with what
/// may be chosen of it, and what is typed.
pub struct QtyRow {
    pub sku: String,
    pub name: String,
    /// Left to ship (a parcel) or held (a rejection).
    pub most: u32,
    pub value: String,
    pub error: Option<String>,
}

/// The money of an order: only ever built at the store.
pub struct Totals {
    pub subtotal: String,
    pub shipping: String,
    pub total: String,
}

/// Which fulfillment buttons the warehouse shows: exactly the transitions
/// the state machine accepts from the current status.
#[derive(Default)]
pub struct Actions {
    pub pick: bool,
    pub pack: bool,
    pub ship: bool,
    pub hold: bool,
    pub release: bool,
    /// Ship chosen quantities in a parcel (its own form).
    pub parcel: bool,
    /// Reject quantities (its own form).
    pub reject: bool,
    /// Place a typed hold (the "Place a hold" form of the holds).
    pub place_hold: bool,
}

impl Actions {
    /// `store_holds` are the store's holds on the order (in its content):
    /// while only they are active, "Release hold" is not offered (it
    /// releases only this warehouse's holds, and is refused).
    pub fn allowed(f: &Fulfillment, lines: &[Line], store_holds: &[TypedHold]) -> Actions {
        let now = Utc::now();
        let ok = |a: Action| f.apply(a, lines, store_holds, now).is_ok();
        let x = || "x".to_owned();
        let left = f.left(lines);
        let one_held = lines
            .iter()
            .find(|l| f.kept_of(l) > 0)
            .map(|l| ShippedLine {
                sku: l.sku.clone(),
                quantity: 1,
            });
        Actions {
            parcel: !left.is_empty()
                && ok(Action::ShipParcel {
                    carrier: x(),
                    tracking_number: x(),
                    lines: left.clone(),
                }),
            reject: one_held.is_some_and(|l| {
                ok(Action::Reject {
                    lines: vec![l],
                    reason: x(),
                })
            }),
            pick: ok(Action::Pick),
            pack: ok(Action::Pack),
            ship: ok(Action::Ship {
                carrier: x(),
                tracking_number: x(),
            }),
            hold: ok(Action::Hold { reason: x() }),
            release: ok(Action::Release),
            place_hold: ok(Action::PlaceHold {
                kind: HoldType::Other,
                reason: x(),
            }),
        }
    }

    pub fn any(&self) -> bool {
        self.pick || self.pack || self.ship || self.hold || self.release
    }
}

/// One hold on the order's page. At the store: each store hold once
/// (every part carries a copy), and each warehouse's holds with their
/// warehouse and part; at the warehouse: the store's holds on this part
/// and its own.
pub struct HoldRow {
    pub id: String,
    /// `payment`, ... (the form's and the API's value).
    pub kind: &'static str,
    pub label: &'static str,
    pub reason: String,
    /// `store` or `warehouse`.
    pub placed_by: &'static str,
    /// Who placed it, as the page says it.
    pub by: String,
    /// The store: the warehouse whose hold it is.
    pub warehouse: Option<String>,
    /// The store, for a split order: which part it holds.
    pub part: Option<String>,
    pub placed_at: String,
    pub released_at: Option<String>,
    pub active: bool,
    /// Active and placed by this side: the page offers "Release".
    pub releasable: bool,
    /// Active and placed by the other side: who releases it.
    pub released_where: Option<String>,
    at: chrono::DateTime<Utc>,
}

impl HoldRow {
    fn new(h: &TypedHold, here: Role, by: String, now: Now) -> HoldRow {
        HoldRow {
            id: h.id.to_string(),
            kind: h.kind.as_str(),
            label: format::hold_label(h.kind),
            reason: h.reason.clone(),
            placed_by: h.placed_by.as_str(),
            by,
            warehouse: None,
            part: None,
            placed_at: format::clock(h.placed_at, now),
            released_at: h.released_at.map(|t| format::clock(t, now)),
            active: h.is_active(),
            releasable: h.is_active() && h.placed_by == here,
            released_where: None,
            at: h.placed_at,
        }
    }

    /// Every hold on the order as `role` sees it: active ones first, then
    /// released ones, each group oldest first.
    pub fn all(v: &OrderView, role: Role, now: Now) -> Vec<HoldRow> {
        let mut rows = Vec::new();
        match role {
            Role::Store => {
                let mut seen = std::collections::HashSet::new();
                let store_holds = std::iter::once(&v.order.content.holds)
                    .chain(v.parts.iter().map(|p| &p.order.content.holds))
                    .flatten();
                for h in store_holds {
                    if seen.insert(h.id) {
                        rows.push(HoldRow::new(h, role, "the store".into(), now));
                    }
                }
                let split = v.parts.len() > 1;
                for p in &v.parts {
                    let Some(f) = p.order.fulfillment.as_ref() else {
                        continue;
                    };
                    for h in &f.holds {
                        let mut r =
                            HoldRow::new(h, role, format!("warehouse {}", p.warehouse), now);
                        r.warehouse = Some(p.warehouse.clone());
                        r.part = (split || p.withdrawn).then(|| {
                            let withdrawn = if p.withdrawn { ", withdrawn" } else { "" };
                            format!("part {} ({}){withdrawn}", p.order.part, p.order.number)
                        });
                        r.released_where = r
                            .active
                            .then(|| format!("released by warehouse {}", p.warehouse));
                        rows.push(r);
                    }
                }
            }
            Role::Warehouse => {
                for h in &v.order.content.holds {
                    let mut r = HoldRow::new(h, role, "the store".into(), now);
                    r.released_where = r
                        .active
                        .then(|| "placed by the store \u{2014} released there".to_owned());
                    rows.push(r);
                }
                for h in v.order.fulfillment.iter().flat_map(|f| &f.holds) {
                    rows.push(HoldRow::new(h, role, "this warehouse".into(), now));
                }
            }
        }
        rows.sort_by_key(|r| (!r.active, r.at));
        rows
    }
}

/// Everything the order page shows.
pub struct Detail {
    pub id: String,
    pub number: String,
    pub customer_name: String,
    pub customer_email: String,
    pub customer_company: Option<String>,
    pub address: Vec<String>,
    pub notes: Option<String>,
    pub deliver_by: Option<String>,
    pub cancel_requested: bool,
    pub cancel_reason: Option<String>,
    pub lines: Vec<LineView>,
    /// The warehouse: each line's shipped, cancelled and rejected
    /// quantities are shown.
    pub outcomes: bool,
    /// The warehouse: this order's parcels and rejections.
    pub parcels: Vec<ParcelView>,
    pub rejections: Vec<RejectionView>,
    /// The warehouse: this is part `part` of a store order split among
    /// warehouses (its number then ends in `-N`).
    pub part: i64,
    /// The store: the order's parts and the lines no warehouse takes.
    pub parts: Vec<PartCard>,
    pub unrouted: Vec<UnroutedView>,
    pub totals: Option<Totals>,
    pub currency: Option<String>,
    pub status: Badge,

    pub hold_reason: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub shipped_at: Option<String>,
    pub cancel_outcome: Option<String>,
    /// Beside the status: the cancel request while unanswered, or refused.
    pub cancel_badge: Option<format::CancelBadge>,
    pub content_changed_after_pick: bool,
    pub store_version: i64,
    pub warehouse_version: i64,
    pub sync: Badge,
    pub sync_dead: bool,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Detail {
    fn new(v: &OrderView, role: Role, now: Now) -> Detail {
        let at_warehouse = role == Role::Warehouse;
        let o = &v.order;
        let c = &o.content;
        let a = &c.shipping_address;
        let f = o.fulfillment.as_ref();
        let shipment = f.and_then(|f| f.latest_shipment());
        let currency = v.pricing.as_ref().map(|p| p.currency.as_str().to_owned());
        let money = |m: i64| format::money(m, currency.as_deref().unwrap_or(""));
        let mut address = vec![a.name.to_string(), a.line1.to_string()];
        address.extend(a.line2.clone());
        address.push(format!("{} {}", a.postal_code, a.city));
        address.extend(a.region.clone());
        address.push(a.country.as_str().to_owned());
        let outcome = o.cancel_outcome();
        Detail {
            id: o.id.to_string(),
            number: o.number.clone(),
            customer_name: c.customer.name.to_string(),
            customer_email: c.customer.email.as_str().to_owned(),
            customer_company: c.customer.company.clone(),
            address,
            notes: c.notes.clone(),
            deliver_by: c.deliver_by.map(|t| format::clock(t, now)),
            cancel_requested: c.cancel.is_some(),
            cancel_reason: c.cancel.as_ref().and_then(|r| r.reason.clone()),
            lines: c
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| LineView {
                    sku: l.sku.as_str().to_owned(),
                    name: l.name.as_str().to_owned(),
                    quantity: l.quantity.get(),
                    unit_price: v
                        .pricing
                        .as_ref()
                        .map(|p| money(p.unit_prices.get(i).map_or(0, |u| u.get()))),
                    line_total: v.pricing.as_ref().map(|p| money(p.line_total(i, l).get())),
                    outcome: at_warehouse.then(|| LineOutcome::of(f, l)),
                })
                .collect(),
            outcomes: at_warehouse,
            parcels: if at_warehouse {
                ParcelView::all(f, now)
            } else {
                Vec::new()
            },
            rejections: if at_warehouse {
                RejectionView::all(f)
            } else {
                Vec::new()
            },
            part: o.part,
            parts: v.parts.iter().map(|p| PartCard::new(p, now)).collect(),
            unrouted: v
                .unrouted
                .iter()
                .map(|u| UnroutedView {
                    sku: u.line.sku.as_str().to_owned(),
                    name: u.line.name.as_str().to_owned(),
                    quantity: u.line.quantity.get(),
                    reason: u.reason.clone(),
                })
                .collect(),
            totals: v.pricing.as_ref().map(|p| Totals {
                subtotal: money(p.subtotal(&c.lines).get()),
                shipping: money(p.shipping_cost.get()),
                total: money(p.total(&c.lines).get()),
            }),
            currency: currency.clone(),
            status: Badge::status(f.map(|f| f.status)),
            hold_reason: f.and_then(|f| f.hold.as_ref()).map(|h| h.reason.clone()),
            carrier: shipment.map(|s| s.carrier.clone()),
            tracking_number: shipment.map(|s| s.tracking_number.clone()),
            shipped_at: shipment.map(|s| format::clock(s.shipped_at, now)),
            cancel_outcome: format::cancel_sentence(outcome.as_ref()),
            cancel_badge: format::cancel_badge(outcome.as_ref()),
            content_changed_after_pick: f.is_some_and(|f| f.content_changed_after_pick),
            store_version: o.store_version,
            warehouse_version: o.warehouse_version,
            sync: Badge::sync(v.sync.state),
            sync_dead: v.sync.state == SyncState::Dead,
            last_error: v.sync.last_error.clone(),
            created_at: format::clock(o.created_at, now),
            updated_at: format::clock(o.updated_at, now),
        }
    }
}

#[derive(Template)]
#[template(path = "order.html")]
pub(super) struct OrderPage {
    chrome: Chrome,
    o: Detail,
    peer: &'static str,
    error: Option<String>,
    /// Warehouse: the buttons to show.
    actions: Actions,
    /// Errors and typed values of the action forms (carrier, reason...).
    action_errors: HashMap<String, String>,
    action_values: HashMap<String, String>,
    /// Warehouse: the rows of the parcel and rejection forms.
    parcel_rows: Vec<QtyRow>,
    reject_rows: Vec<QtyRow>,
    /// Every hold on the order (see [`HoldRow::all`]).
    holds: Vec<HoldRow>,
    /// The "Place a hold" form, with the types it offers.
    can_hold: bool,
    hold_types: Vec<(&'static str, &'static str)>,
    /// Warehouse: a hold of the store is active (only the store releases
    /// it; "Release hold" releases this warehouse's own).
    store_holds_active: bool,
    /// Store: the "Route again" button (lines wait, no cancel asked).
    can_route: bool,
    /// Store: editing allowed, or why not.
    can_edit: bool,
    edit_refused: Option<String>,
    can_cancel: bool,
    /// One timeline per peer: the warehouse's one, or each part's.
    deliveries: Vec<Deliveries>,
    /// Oldest first; at the store, every part's entries among the order's.
    audit: Vec<AuditRow>,
}

impl OrderPage {
    fn value(&self, name: &str) -> &str {
        self.action_values.get(name).map_or("", |s| s.as_str())
    }
}

/// The rows of a quantity form (`form` is `parcel` or `reject`): the
/// lines of which something may be chosen (`most` of each), each with the
/// value typed (or `default` of it) and its error. Typed values and errors
/// are keyed `{form}.qty.{sku}`, so that they find their line whatever
/// the order of the rows.
fn qty_rows(
    lines: &[Line],
    most: impl Fn(&Line) -> u32,
    default: impl Fn(u32) -> u32,
    form: &str,
    problems: &Problems,
) -> Vec<QtyRow> {
    lines
        .iter()
        .filter(|l| most(l) > 0)
        .map(|l| {
            let key = format!("{form}.qty.{}", l.sku.as_str());
            let most = most(l);
            QtyRow {
                sku: l.sku.as_str().to_owned(),
                name: l.name.as_str().to_owned(),
                most,
                value: problems
                    .action_values
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| default(most).to_string()),
                error: problems.action_errors.get(&key).cloned(),
            }
        })
        .collect()
}

/// What a POST that failed wants shown on the order page.
#[derive(Default)]
pub(super) struct Problems {
    pub(super) error: Option<String>,
    pub(super) action_errors: HashMap<String, String>,
    pub(super) action_values: HashMap<String, String>,
}

pub(super) async fn order_page(
    state: &AppState,
    user: &AdminUser,
    id: OrderId,
    status: StatusCode,
    problems: Problems,
) -> AdminResult {
    let engine = &state.engine;
    let role = engine.role();
    let v = engine.get(id).await?;
    let now = Utc::now();
    let deliveries = deliveries(state, &v, now).await?;
    let audit = audit(state, &v, now).await?;
    let edit_refused = v.order.store_may_edit().err().map(|e| e.to_string());
    let terminal = v
        .order
        .fulfillment
        .as_ref()
        .is_some_and(|f| f.status.is_terminal());
    let warehouse_steps = role.may(Command::ChangeFulfillment);
    let f = v.order.fulfillment.clone().unwrap_or_default();
    let lines = &v.order.content.lines;
    let actions = if warehouse_steps {
        Actions::allowed(&f, lines, &v.order.content.holds)
    } else {
        Actions::default()
    };
    // The store holds an order while a part of it may still move, or a
    // line waits to be routed (the engine refuses the rest with 409).
    let can_hold = if role.may(Command::HoldOrder) {
        let live = v.parts.iter().any(|p| {
            !p.withdrawn
                && p.order
                    .fulfillment
                    .as_ref()
                    .is_none_or(|f| !f.status.is_terminal())
        });
        v.order.content.cancel.is_none() && (live || !v.unrouted.is_empty())
    } else {
        actions.place_hold
    };
    let parcel_rows = if actions.parcel {
        let left = f.left(lines);
        let left_of = |l: &Line| {
            left.iter()
                .find(|x| x.sku == l.sku)
                .map_or(0, |x| x.quantity)
        };
        qty_rows(lines, left_of, |most| most, "parcel", &problems)
    } else {
        Vec::new()
    };
    let reject_rows = if actions.reject {
        qty_rows(lines, |l| f.kept_of(l), |_| 0, "reject", &problems)
    } else {
        Vec::new()
    };
    let page = OrderPage {
        chrome: Chrome::new(role, user, format!("Order {}", v.order.number), "orders"),
        peer: role.peer().as_str(),
        error: problems.error,
        actions,
        parcel_rows,
        reject_rows,
        holds: HoldRow::all(&v, role, now),
        can_hold,
        hold_types: HoldType::ALL
            .iter()
            .map(|t| (t.as_str(), format::hold_label(*t)))
            .collect(),
        store_holds_active: warehouse_steps
            && v.order.content.holds.iter().any(TypedHold::is_active),
        can_route: role.may(Command::RouteOrder)
            && !v.unrouted.is_empty()
            && v.order.content.cancel.is_none(),
        action_errors: problems.action_errors,
        action_values: problems.action_values,
        can_edit: role.may(Command::EditOrder) && edit_refused.is_none(),
        edit_refused: edit_refused.filter(|_| role.may(Command::EditOrder)),
        can_cancel: role.may(Command::RequestCancel)
            && v.order.content.cancel.is_none()
            && !terminal,
        deliveries,
        audit,
        o: Detail::new(&v, role, now),
    };
    render(status, &page)
}

/// The delivery timelines of the page: at the store one per part (each
/// part is delivered to its own warehouse), labelled when there are
/// several; at the warehouse, the order's to the store.
async fn deliveries(state: &AppState, v: &OrderView, now: Now) -> AdminResult<Vec<Deliveries>> {
    let engine = &state.engine;
    if v.parts.is_empty() {
        let attempts = engine.attempts(v.order.id, TIMELINE_LIMIT).await?;
        return Ok(vec![Deliveries {
            warehouse: None,
            label: None,
            rows: timeline::deliveries(&attempts, now),
        }]);
    }
    let several = v.parts.len() > 1;
    let mut out = Vec::with_capacity(v.parts.len());
    for p in &v.parts {
        let attempts = engine.attempts(p.order.id, TIMELINE_LIMIT).await?;
        out.push(Deliveries {
            warehouse: Some(p.warehouse.clone()),
            label: Some(if several {
                format!(
                    "{} (part {}, {})",
                    p.warehouse, p.order.part, p.order.number
                )
            } else {
                p.warehouse.clone()
            }),
            rows: timeline::deliveries(&attempts, now),
        });
    }
    Ok(out)
}

/// The audit trail of the page ([`crate::engine::Engine::audit`]): the
/// order's own, and at the store, what each warehouse reported about a
/// part other than the first, labelled with the part, in time order.
async fn audit(state: &AppState, v: &OrderView, now: Now) -> AdminResult<Vec<AuditRow>> {
    let currency = v.pricing.as_ref().map(|p| p.currency.as_str().to_owned());
    let currency = currency.as_deref();
    let trail = state.engine.audit(v.order.id).await?;
    Ok(trail
        .into_iter()
        .map(|t| {
            let label = t
                .part
                .map(|p| format!("part {} at {}", p.part, p.warehouse));
            timeline::audit_row(t.entry, label.as_deref(), currency, now)
        })
        .collect())
}

/// `GET /admin/orders/{id}`, with a failed action's form if one was kept
/// for it (see [`super::super::flash`]).
pub async fn show(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
) -> AdminResult {
    let id = order_id(&id)?;
    let kept = flash::take(&state, &user, &order_path(id)).await?;
    let (status, problems) = match kept {
        Some(f) => (f.status(), Problems::from(f)),
        None => (StatusCode::OK, Problems::default()),
    };
    order_page(&state, &user, id, status, problems).await
}

pub(super) fn order_path(id: OrderId) -> String {
    format!("/admin/orders/{id}")
}

/// To the order's page, which says `notice` once.
pub(super) fn see_order(user: &AdminUser, id: OrderId, notice: Notice) -> Response {
    flash::see(user, &order_path(id), notice)
}

/// An action on the order's page that failed: back to the page (303), which
/// shows `problems` once, answering `status`.
pub(super) async fn refuse(
    state: &AppState,
    user: &AdminUser,
    id: OrderId,
    status: StatusCode,
    problems: Problems,
) -> AdminResult {
    let mut f = Flash::new(status);
    f.error = problems.error;
    f.errors = problems.action_errors;
    f.values = problems.action_values.into_iter().collect();
    f.keep(state, user, &order_path(id)).await
}

impl From<Flash> for Problems {
    fn from(f: Flash) -> Problems {
        Problems {
            action_values: f.value_map(),
            error: f.error,
            action_errors: f.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_follow_the_state_machine() {
        let mut f = Fulfillment::new();
        let a = Actions::allowed(&f, &[], &[]);
        assert!(a.pick && a.hold && a.place_hold && !a.pack && !a.ship && !a.release);
        f.status = FulfillmentStatus::Packed;
        let a = Actions::allowed(&f, &[], &[]);
        assert!(a.ship && a.hold && !a.pick && !a.pack && !a.release);
        f.status = FulfillmentStatus::Shipped;
        let a = Actions::allowed(&f, &[], &[]);
        assert!(!a.any() && !a.place_hold);
    }

    /// While only the store's holds are active, "Release hold" (which
    /// releases this warehouse's holds) is not offered; with one of its
    /// own, it is. A typed hold may be placed either way.
    #[test]
    fn release_is_offered_only_for_the_warehouses_own_holds() {
        let now = Utc::now();
        let store = vec![TypedHold::new(
            HoldType::Payment,
            "card declined".into(),
            Role::Store,
            now,
        )];
        let held = Fulfillment::new().settle_holds(&store);
        assert_eq!(held.status, FulfillmentStatus::OnHold);
        let a = Actions::allowed(&held, &[], &store);
        assert!(!a.release && !a.pick && !a.hold && a.place_hold);
        let own = held
            .apply(
                Action::PlaceHold {
                    kind: HoldType::Stock,
                    reason: "recount".into(),
                },
                &[],
                &store,
                now,
            )
            .expect("a warehouse hold");
        let a = Actions::allowed(&own, &[], &store);
        assert!(a.release && a.place_hold && !a.pick);
    }
}
