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
            Ok(see_order(id, "cancel_requested"))
        }
        Err(e) => {
            let problems = Problems {
                action_errors: HashMap::from([(e.field, e.message)]),
                action_values: HashMap::from([("reason".to_owned(), reason.to_owned())]),
                ..Default::default()
            };
            order_page(
                &state,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
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
    let status = match fields.text("action") {
        "pick" => "picking",
        "pack" => "packed",
        "ship" => "shipped",
        "hold" => "on_hold",
        "release" => "released",
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
            return order_page(
                &state,
                &user,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                problems,
            )
            .await;
        }
    };
    match state.engine.transition(&user.actor(), id, action).await {
        Ok(_) => Ok(see_order(id, status)),
        Err(EngineError::Conflict(m)) => {
            let problems = Problems {
                error: Some(format!("Not changed: {m}.")),
                action_values: values,
                ..Default::default()
            };
            order_page(&state, &user, id, StatusCode::CONFLICT, None, problems).await
        }
        Err(e) => Err(e.into()),
    }
}
