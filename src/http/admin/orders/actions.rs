//! Buttons on an order's page that change it: the store's cancel request,
//! the warehouse's fulfillment steps.

use super::*;

/// `POST /admin/orders/{id}/cancel` (store only), with an optional reason.
pub async fn cancel(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::RequestCancel)?;
    let id = order_id(&id)?;
    let reason = fields.text("reason");
    match crate::domain::values::optional_text(
        "reason",
        Some(reason),
        crate::domain::values::MAX_TEXT,
    ) {
        Ok(reason) => {
            state
                .engine
                .request_cancel(&user.actor(), id, reason)
                .await?;
            Ok(see_order(&user, id, Notice::CancelRequested))
        }
        Err(e) => {
            let problems = Problems {
                action_errors: HashMap::from([(e.field, e.message)]),
                action_values: HashMap::from([("reason".to_owned(), reason.to_owned())]),
                ..Default::default()
            };
            refuse(
                &state,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                problems,
            )
            .await
        }
    }
}

/// `POST /admin/orders/{id}/fulfillment` (warehouse only): one button of
/// the state machine.
pub async fn fulfillment(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::ChangeFulfillment)?;
    let id = order_id(&id)?;
    let (status, done) = match fields.text("action") {
        "pick" => ("picking", Notice::Picking),
        "pack" => ("packed", Notice::Packed),
        "ship" => ("shipped", Notice::Shipped),
        "hold" => ("on_hold", Notice::OnHold),
        "release" => ("released", Notice::Released),
        _ => return Err(AdminError::BadRequest("Unknown action.".into())),
    };
    let typed = |n: &str| Some(fields.text(n)).filter(|s| !s.is_empty());
    let values: HashMap<String, String> = ["carrier", "tracking_number", "reason"]
        .iter()
        .map(|n| (n.to_string(), fields.text(n).to_owned()))
        .collect();
    let action = match Action::parse(
        status,
        typed("carrier"),
        typed("tracking_number"),
        typed("reason"),
    ) {
        Ok(a) => a,
        Err(errs) => {
            let problems = Problems {
                action_errors: errs.into_iter().map(|e| (e.field, e.message)).collect(),
                action_values: values,
                error: None,
            };
            return refuse(
                &state,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                problems,
            )
            .await;
        }
    };
    match state.engine.transition(&user.actor(), id, action).await {
        Ok(_) => Ok(see_order(&user, id, done)),
        Err(EngineError::Conflict(m)) => {
            let problems = Problems {
                error: Some(format!("Not changed: {m}.")),
                action_values: values,
                ..Default::default()
            };
            refuse(&state, &user, id, StatusCode::CONFLICT, problems).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/orders/{id}/route` (store only): routes the lines that
/// wait again, among the warehouses as they are now, and says how it went.
pub async fn route(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::RouteOrder)?;
    let id = order_id(&id)?;
    let waiting = |v: &OrderView| -> u64 {
        v.unrouted
            .iter()
            .map(|u| u64::from(u.line.quantity.get()))
            .sum()
    };
    let before = waiting(&state.engine.get(id).await?);
    let after = waiting(&state.engine.route_order(&user.actor(), id).await?);
    let notice = match (before, after) {
        (0, _) => Notice::NothingToRoute,
        (_, 0) => Notice::Routed,
        (b, a) if a < b => Notice::RoutedSome,
        _ => Notice::RouteNothing,
    };
    Ok(see_order(&user, id, notice))
}

/// The quantity rows a parcel or rejection form sent: `lines[i].sku` and
/// `lines[i].quantity`, in order (at most what a parcel may hold).
fn quantity_rows(fields: &Fields) -> Vec<(String, String)> {
    (0..crate::domain::fulfillment::MAX_PARCEL_LINES)
        .map_while(|i| {
            let sku = fields.get(&format!("lines[{i}].sku"))?;
            let q = fields.text(&format!("lines[{i}].quantity"));
            Some((sku.trim().to_owned(), q.to_owned()))
        })
        .collect()
}

/// A quantity form (`form` is `parcel` or `reject`) read: the lines
/// chosen (a blank or 0 quantity leaves a line out) as the domain's
/// parsers take them, the typed values keyed as the page shows them, and
/// the quantities that are not whole numbers.
struct Chosen {
    lines: Vec<(String, Option<i64>)>,
    values: HashMap<String, String>,
    errors: HashMap<String, String>,
}

impl Chosen {
    /// The chosen lines as the domain's parsers take them.
    fn requested(&self) -> Vec<(Option<&str>, Option<i64>)> {
        self.lines
            .iter()
            .map(|(s, q)| (Some(s.as_str()), *q))
            .collect()
    }
}

fn chosen(form: &str, fields: &Fields) -> Chosen {
    let mut c = Chosen {
        lines: Vec::new(),
        values: HashMap::new(),
        errors: HashMap::new(),
    };
    for (sku, q) in quantity_rows(fields) {
        let key = format!("{form}.qty.{sku}");
        c.values.insert(key.clone(), q.clone());
        if q.is_empty() || q == "0" {
            continue;
        }
        match q.parse::<i64>() {
            Ok(n) => c.lines.push((sku, Some(n))),
            Err(_) => {
                c.errors.insert(key, "must be a whole number".into());
            }
        }
    }
    c
}

/// Puts the domain's field errors of a quantity form where the page shows
/// them: `lines[j].…` at the row of the j-th line chosen, the rest under
/// `{form}.{field}`.
fn place_errors(
    form: &str,
    errors: Vec<crate::domain::FieldError>,
    lines: &[(String, Option<i64>)],
    into: &mut HashMap<String, String>,
) {
    for e in errors {
        let row = e
            .field
            .strip_prefix("lines[")
            .and_then(|r| r.split_once(']'))
            .and_then(|(j, _)| j.parse::<usize>().ok())
            .and_then(|j| lines.get(j));
        let key = match row {
            Some((sku, _)) => format!("{form}.qty.{sku}"),
            None => format!("{form}.{}", e.field),
        };
        into.entry(key).or_insert(e.message);
    }
}

/// After a 409 for too much of a line: marks each row that asks for more
/// than `most` allows now (the engine said which in its message too).
async fn mark_too_much(
    state: &AppState,
    id: OrderId,
    form: &str,
    lines: &[(String, Option<i64>)],
    errors: &mut HashMap<String, String>,
) -> AdminResult<()> {
    let v = state.engine.get(id).await?;
    let f = v.order.fulfillment.clone().unwrap_or_default();
    let left = f.left(&v.order.content.lines);
    for (sku, q) in lines {
        let Some(line) = v.order.content.lines.iter().find(|l| l.sku.as_str() == sku) else {
            continue;
        };
        let (most, what) = if form == "parcel" {
            (
                left.iter()
                    .find(|x| x.sku == line.sku)
                    .map_or(0, |x| x.quantity),
                "left to ship",
            )
        } else {
            (f.kept_of(line), "held")
        };
        if q.is_some_and(|q| q > i64::from(most)) {
            errors.insert(
                format!("{form}.qty.{sku}"),
                format!("is more than the {most} {what}"),
            );
        }
    }
    Ok(())
}

/// What a parcel or rejection form did: the order's page, or the form
/// again with what went wrong.
async fn quantity_step(
    state: &AppState,
    user: &AdminUser,
    id: OrderId,
    form: &'static str,
    mut c: Chosen,
    parsed: Result<Action, Vec<crate::domain::FieldError>>,
    done: Notice,
) -> AdminResult {
    let mut refused = |errors, error| Problems {
        error,
        action_errors: errors,
        action_values: std::mem::take(&mut c.values),
    };
    let action = match parsed {
        Ok(a) if c.errors.is_empty() => a,
        Ok(_) => {
            let errors = std::mem::take(&mut c.errors);
            let p = refused(errors, None);
            return refuse(state, user, id, StatusCode::UNPROCESSABLE_ENTITY, p).await;
        }
        Err(errs) => {
            let mut errors = std::mem::take(&mut c.errors);
            place_errors(form, errs, &c.lines, &mut errors);
            let p = refused(errors, None);
            return refuse(state, user, id, StatusCode::UNPROCESSABLE_ENTITY, p).await;
        }
    };
    let verb = if form == "parcel" {
        "Not shipped"
    } else {
        "Not rejected"
    };
    match state.engine.transition(&user.actor(), id, action).await {
        Ok(_) => Ok(see_order(user, id, done)),
        Err(EngineError::Conflict(m)) => {
            let mut errors = HashMap::new();
            mark_too_much(state, id, form, &c.lines, &mut errors).await?;
            let p = refused(errors, Some(format!("{verb}: {m}.")));
            refuse(state, user, id, StatusCode::CONFLICT, p).await
        }
        Err(EngineError::Invalid(errs)) => {
            let mut errors = HashMap::new();
            place_errors(form, errs, &c.lines, &mut errors);
            let p = refused(errors, None);
            refuse(state, user, id, StatusCode::UNPROCESSABLE_ENTITY, p).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/orders/{id}/shipments` (warehouse only): ships the chosen
/// quantities in one parcel.
pub async fn ship_parcel(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::ChangeFulfillment)?;
    let id = order_id(&id)?;
    let mut c = chosen("parcel", &fields);
    for f in ["carrier", "tracking_number"] {
        c.values
            .insert(format!("parcel.{f}"), fields.text(f).to_owned());
    }
    let typed = |n: &str| Some(fields.text(n)).filter(|s| !s.is_empty());
    let lines = c.requested();
    let parsed = Action::parcel(typed("carrier"), typed("tracking_number"), &lines);
    quantity_step(&state, &user, id, "parcel", c, parsed, Notice::Parcel).await
}

/// `POST /admin/orders/{id}/reject` (warehouse only): refuses the chosen
/// quantities, with a reason; the store routes them elsewhere.
pub async fn reject(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::ChangeFulfillment)?;
    let id = order_id(&id)?;
    let mut c = chosen("reject", &fields);
    c.values
        .insert("reject.reason".into(), fields.text("reason").to_owned());
    let reason = Some(fields.text("reason")).filter(|s| !s.is_empty());
    let lines = c.requested();
    let parsed = Action::reject(&lines, reason);
    quantity_step(&state, &user, id, "reject", c, parsed, Notice::Rejected).await
}

/// `POST /admin/orders/{id}/holds` (both sides): places a typed hold
/// (`type`, `reason`). At the store it holds every part of the order
/// ([`crate::engine::Engine::place_hold`]); at a warehouse, this order.
/// A bad field is shown beside it (422), a hold the order cannot take
/// now (cancel requested, shipped...) above the page (409).
pub async fn place_hold(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    let id = order_id(&id)?;
    let (kind, reason) = (fields.text("type"), fields.text("reason"));
    let values = HashMap::from([
        ("hold.type".to_owned(), kind.to_owned()),
        ("hold.reason".to_owned(), reason.to_owned()),
    ]);
    let refused = |status, error, errors: Vec<crate::domain::FieldError>| {
        let problems = Problems {
            error,
            action_errors: errors
                .into_iter()
                .map(|e| (format!("hold.{}", e.field), e.message))
                .collect(),
            action_values: values.clone(),
        };
        refuse(&state, &user, id, status, problems)
    };
    let (kind, reason) = match parse_hold(Some(kind).filter(|k| !k.is_empty()), Some(reason)) {
        Ok(k) => k,
        Err(errs) => return refused(StatusCode::UNPROCESSABLE_ENTITY, None, errs).await,
    };
    let engine = &state.engine;
    let (placed, notice) = if engine.role().may(Command::HoldOrder) {
        let r = engine.place_hold(&user.actor(), id, kind, reason).await;
        (r.map(|_| ()), Notice::StoreHoldPlaced)
    } else {
        only_if(&state, Command::ChangeFulfillment)?;
        let r = engine
            .transition(&user.actor(), id, Action::PlaceHold { kind, reason })
            .await;
        (r.map(|_| ()), Notice::HoldPlaced)
    };
    match placed {
        Ok(()) => Ok(see_order(&user, id, notice)),
        Err(EngineError::Conflict(m)) => {
            let error = Some(format!("Not held: {m}."));
            refused(StatusCode::CONFLICT, error, Vec::new()).await
        }
        Err(EngineError::Invalid(errs)) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, None, errs).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/orders/{id}/holds/{hold_id}/release` (both sides):
/// releases one hold this side placed. The other side's hold, or one
/// already released, is refused (409) with the reason above the page; a
/// hold the order does not have is 404.
pub async fn release_hold(
    State(state): State<AppState>,
    user: AdminUser,
    Path((id, hold)): Path<(String, String)>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    let id = order_id(&id)?;
    let hold = uuid::Uuid::parse_str(&hold).map_err(|_| AdminError::NotFound)?;
    let engine = &state.engine;
    let (released, notice) = if engine.role().may(Command::HoldOrder) {
        let r = engine.release_hold(&user.actor(), id, hold).await;
        (r.map(|_| ()), Notice::StoreHoldReleased)
    } else {
        only_if(&state, Command::ChangeFulfillment)?;
        let r = engine
            .transition(&user.actor(), id, Action::ReleaseHold { id: hold })
            .await;
        (r.map(|_| ()), Notice::HoldReleased)
    };
    match released {
        Ok(()) => Ok(see_order(&user, id, notice)),
        Err(EngineError::Conflict(m)) => {
            let problems = Problems {
                error: Some(format!("Not released: {m}.")),
                ..Default::default()
            };
            refuse(&state, &user, id, StatusCode::CONFLICT, problems).await
        }
        Err(e) => Err(e.into()),
    }
}
