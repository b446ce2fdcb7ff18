//! The store's order form: create an order, edit one the warehouse has not
//! started on.

use super::*;

pub struct InputView {
    pub name: &'static str,
    pub id: String,
    pub label: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub required: bool,
    pub hint: &'static str,
    pub error: Option<String>,
    pub readonly: bool,
    pub wide: bool,
}

pub struct Section {
    pub title: &'static str,
    pub inputs: Vec<InputView>,
}

pub struct LineRowView {
    pub index: usize,
    pub v: LineValues,
    pub err_sku: Option<String>,
    pub err_name: Option<String>,
    pub err_quantity: Option<String>,
    pub err_unit_price: Option<String>,
}

pub struct ErrorLink {
    pub id: String,
    pub text: String,
}

#[derive(Template)]
#[template(path = "order_form.html")]
pub(super) struct FormPage {
    chrome: Chrome,
    heading: String,
    action: String,
    submit: &'static str,
    back: String,
    sections: Vec<Section>,
    lines: Vec<LineRowView>,
    lines_error: Option<String>,
    currency: String,
    error: Option<String>,
    summary: Vec<ErrorLink>,
}

/// `lines[1].sku` → `lines-1-sku`: a valid, readable element id.
pub(super) fn input_id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .replace("--", "-")
        .trim_end_matches('-')
        .to_owned()
}

/// How the form is being used.
pub(super) enum FormMode<'a> {
    New,
    Edit { id: OrderId, number: &'a str },
}

pub(super) fn form_page(
    state: &AppState,
    user: &AdminUser,
    mode: FormMode<'_>,
    values: &OrderValues,
    errors: &HashMap<String, String>,
    error: Option<String>,
) -> FormPage {
    let editing = matches!(mode, FormMode::Edit { .. });
    let titles = [
        ("customer", "Customer"),
        ("address", "Shipping address"),
        ("order", "Order"),
    ];
    let mut summary = Vec::new();
    let sections = titles
        .iter()
        .map(|(key, title)| Section {
            title,
            inputs: FIELDS
                .iter()
                .filter(|f| f.section == *key)
                .map(|f| InputView {
                    name: f.name,
                    id: input_id(f.name),
                    label: f.label,
                    kind: f.kind,
                    value: values.get(f.name).to_owned(),
                    required: f.required && !(editing && f.create_only),
                    hint: if editing && f.create_only {
                        "set when the order was created"
                    } else {
                        f.hint
                    },
                    error: errors.get(f.name).cloned(),
                    readonly: editing && f.create_only,
                    wide: matches!(f.kind, "textarea"),
                })
                .collect(),
        })
        .collect::<Vec<Section>>();
    for s in &sections {
        for i in &s.inputs {
            if let Some(e) = &i.error {
                summary.push(ErrorLink {
                    id: i.id.clone(),
                    text: format!("{} {e}", i.label),
                });
            }
        }
    }
    let mut lines: Vec<LineRowView> = values
        .lines
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let err = |f: &str| errors.get(&format!("lines[{i}].{f}")).cloned();
            LineRowView {
                index: i,
                v: v.clone(),
                err_sku: err("sku"),
                err_name: err("name"),
                err_quantity: err("quantity"),
                err_unit_price: err("unit_price"),
            }
        })
        .collect();
    if lines.is_empty() {
        lines.push(LineRowView {
            index: 0,
            v: LineValues::default(),
            err_sku: None,
            err_name: None,
            err_quantity: None,
            err_unit_price: None,
        });
    }
    for l in &lines {
        for (f, e) in [
            ("sku", &l.err_sku),
            ("name", &l.err_name),
            ("quantity", &l.err_quantity),
            ("unit_price", &l.err_unit_price),
        ] {
            if let Some(e) = e {
                summary.push(ErrorLink {
                    id: format!("lines-{}-{}", l.index, f.replace('_', "-")),
                    text: format!("Line {} {} {e}", l.index + 1, f.replace('_', " ")),
                });
            }
        }
    }
    let lines_error = errors.get("lines").cloned();
    if let Some(e) = &lines_error {
        summary.push(ErrorLink {
            id: "lines".into(),
            text: format!("Lines: {e}"),
        });
    }
    if let Some(e) = errors.get("body") {
        summary.push(ErrorLink {
            id: "lines".into(),
            text: e.clone(),
        });
    }
    let (heading, action, submit, back) = match mode {
        FormMode::New => (
            "New order".to_owned(),
            "/admin/orders".to_owned(),
            "Create order",
            "/admin/orders".to_owned(),
        ),
        FormMode::Edit { id, number } => (
            format!("Edit order {number}"),
            format!("/admin/orders/{id}/edit"),
            "Save changes",
            format!("/admin/orders/{id}"),
        ),
    };
    FormPage {
        chrome: Chrome::new(state.engine.role(), user, heading.clone(), "new"),
        heading,
        action,
        submit,
        back,
        sections,
        lines,
        lines_error,
        // Only an existing order's currency is fixed; a new one's is typed.
        currency: if editing {
            values.get("currency").to_owned()
        } else {
            String::new()
        },
        error,
        summary,
    }
}

const NEW_PATH: &str = "/admin/orders/new";

fn edit_path(id: OrderId) -> String {
    format!("/admin/orders/{id}/edit")
}

/// `GET /admin/orders/new` (store only): a blank form, or the one a POST
/// kept (see [`super::super::flash`]).
pub async fn new_form(State(state): State<AppState>, user: AdminUser) -> AdminResult {
    only_if(&state, Command::CreateOrder)?;
    let (status, values, errors, error) = match flash::take(&state, &user, NEW_PATH).await? {
        Some(f) => kept_form(f),
        None => (StatusCode::OK, OrderValues::blank(), HashMap::new(), None),
    };
    let page = form_page(&state, &user, FormMode::New, &values, &errors, error);
    render(status, &page)
}

/// A kept order form: its status, values as typed, errors and message.
fn kept_form(
    f: Flash,
) -> (
    StatusCode,
    OrderValues,
    HashMap<String, String>,
    Option<String>,
) {
    let values = OrderValues::from_fields(&Fields(f.values.clone()));
    (f.status(), values, f.errors, f.error)
}

/// Keeps the order form as typed, with its errors, for the form's page
/// (`page`), and redirects there: the page answers `status`.
async fn keep_form(
    state: &AppState,
    user: &AdminUser,
    page: &str,
    status: StatusCode,
    values: &OrderValues,
    errors: HashMap<String, String>,
    error: Option<String>,
) -> AdminResult {
    let mut f = Flash::new(status);
    f.values = values.to_fields();
    f.errors = errors;
    f.error = error;
    f.keep(state, user, page).await
}

/// The "add line" / "remove line" buttons without JavaScript: the form
/// comes back with one row more or less, nothing is saved.
pub(super) fn row_change(fields: &Fields, values: &mut OrderValues) -> bool {
    if fields.get("add_line").is_some() {
        values.lines.push(LineValues::default());
        return true;
    }
    if let Some(i) = fields.get("remove_line") {
        if let Ok(i) = i.parse::<usize>()
            && i < values.lines.len()
        {
            values.lines.remove(i);
        }
        if values.lines.is_empty() {
            values.lines.push(LineValues::default());
        }
        return true;
    }
    false
}

pub(super) const FIX_BELOW: &str = "The order was not saved: correct the fields marked below.";

/// `POST /admin/orders` (store only): creates the order, or keeps the form
/// as typed with every error next to its field for the form's page.
pub async fn create(State(state): State<AppState>, user: AdminUser, fields: Fields) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::CreateOrder)?;
    let mut values = OrderValues::from_fields(&fields);
    if row_change(&fields, &mut values) {
        let ok = StatusCode::OK;
        return keep_form(&state, &user, NEW_PATH, ok, &values, HashMap::new(), None).await;
    }
    let values = values.without_blank_lines();
    let (input, form_errors) = values.create_input();
    let parsed = input.parse();
    let (content, pricing) = match parsed {
        Ok(ok) if form_errors.is_empty() => ok,
        Ok(_) => {
            return invalid_form(&state, &user, NEW_PATH, &values, form_errors, vec![]).await;
        }
        Err(errs) => {
            return invalid_form(&state, &user, NEW_PATH, &values, form_errors, errs).await;
        }
    };
    let created = state
        .engine
        .create_order(&user.actor(), content, pricing, None, |_| String::new())
        .await?;
    match created {
        Created::New(v) => {
            tracing::info!(order_id = %v.order.id, number = %v.order.number, user = %user.username, "order created in admin");
            Ok(see_order(&user, v.order.id, Notice::Created))
        }
        Created::Replayed(_) => Err(AdminError::Internal),
    }
}

/// A form with bad fields: kept with every error for its page (422).
pub(super) async fn invalid_form(
    state: &AppState,
    user: &AdminUser,
    page: &str,
    values: &OrderValues,
    form_errors: Vec<crate::domain::FieldError>,
    domain_errors: Vec<crate::domain::FieldError>,
) -> AdminResult {
    let errors = merge_errors(form_errors, domain_errors);
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let error = Some(FIX_BELOW.to_owned());
    keep_form(state, user, page, status, values, errors, error).await
}

/// `GET /admin/orders/{id}/edit` (store only, while editing is allowed):
/// the order's values, or the form a POST kept (shown even if editing
/// closed meanwhile: it says why it was not saved).
pub async fn edit_form(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
) -> AdminResult {
    only_if(&state, Command::EditOrder)?;
    let id = order_id(&id)?;
    let v = state.engine.get(id).await?;
    let kept = flash::take(&state, &user, &edit_path(id)).await?;
    if kept.is_none()
        && let Err(e) = v.order.store_may_edit()
    {
        let problems = Problems {
            error: Some(format!("Order {} cannot be edited: {e}.", v.order.number)),
            ..Default::default()
        };
        return order_page(&state, &user, id, StatusCode::CONFLICT, problems).await;
    }
    let mode = FormMode::Edit {
        id,
        number: &v.order.number,
    };
    let (status, values, errors, error) = match kept {
        Some(f) => {
            let (status, mut values, errors, error) = kept_form(f);
            // The fields fixed at creation are shown, not submitted.
            let fixed = OrderValues::from_order(&v);
            for f in FIELDS.iter().filter(|f| f.create_only) {
                values.fields.insert(f.name, fixed.get(f.name).to_owned());
            }
            (status, values, errors, error)
        }
        None => (
            StatusCode::OK,
            OrderValues::from_order(&v),
            HashMap::new(),
            None,
        ),
    };
    let page = form_page(&state, &user, mode, &values, &errors, error);
    render(status, &page)
}

/// `POST /admin/orders/{id}/edit` (store only).
pub async fn edit(
    State(state): State<AppState>,
    user: AdminUser,
    Path(id): Path<String>,
    fields: Fields,
) -> AdminResult {
    user.check_csrf(&fields)?;
    only_if(&state, Command::EditOrder)?;
    let id = order_id(&id)?;
    let current = state.engine.get(id).await?;
    // The fields fixed at creation are shown, not submitted.
    let fixed = OrderValues::from_order(&current);
    let mut values = OrderValues::from_fields(&fields);
    for f in FIELDS.iter().filter(|f| f.create_only) {
        values.fields.insert(f.name, fixed.get(f.name).to_owned());
    }
    let page = edit_path(id);
    if row_change(&fields, &mut values) {
        let ok = StatusCode::OK;
        return keep_form(&state, &user, &page, ok, &values, HashMap::new(), None).await;
    }
    let values = values.without_blank_lines();
    let (patch, form_errors) = values.patch_input(fixed.get("currency"));
    if !form_errors.is_empty() {
        return invalid_form(&state, &user, &page, &values, form_errors, vec![]).await;
    }
    match state.engine.patch_order(&user.actor(), id, &patch).await {
        Ok(_) => Ok(see_order(&user, id, Notice::Saved)),
        Err(EngineError::Invalid(errs)) => {
            invalid_form(&state, &user, &page, &values, form_errors, errs).await
        }
        Err(EngineError::Conflict(m)) => {
            // The warehouse started meanwhile: keep what was typed, say why.
            let error = Some(format!("Not saved: {m}."));
            let status = StatusCode::CONFLICT;
            keep_form(&state, &user, &page, status, &values, HashMap::new(), error).await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_field_names() {
        assert_eq!(input_id("lines[1].sku"), "lines-1-sku");
        assert_eq!(input_id("lines[0].unit_price"), "lines-0-unit-price");
        assert_eq!(input_id("customer.email"), "customer-email");
    }
}
