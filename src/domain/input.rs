//! The shapes order requests arrive in (the store's API, the admin form,
//! a content snapshot's lines) and their parsing into the domain types of
//! [`super::order`]. Every leaf is optional so that a missing field is
//! reported together with every other problem instead of stopping serde at
//! the first. Unknown fields are refused: a typo must not be silently
//! ignored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::schema;

use super::order::{Address, Customer, Line, OrderContent, Pricing};
use super::values::{
    CountryCode, Currency, Email, Errors, FieldError, LineName, MAX_LINES, MAX_TEXT, MinorUnits,
    Quantity, Sku, Text, optional_text,
};

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    #[schema(required = true, schema_with = schema::text)]
    #[serde(default)]
    pub name: Option<String>,
    #[schema(required = true, schema_with = schema::email)]
    #[serde(default)]
    pub email: Option<String>,
    #[schema(schema_with = schema::optional_text)]
    #[serde(default)]
    pub company: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    #[schema(required = true, schema_with = schema::text)]
    #[serde(default)]
    pub name: Option<String>,
    #[schema(required = true, schema_with = schema::text)]
    #[serde(default)]
    pub line1: Option<String>,
    #[schema(schema_with = schema::optional_text)]
    #[serde(default)]
    pub line2: Option<String>,
    #[schema(required = true, schema_with = schema::text)]
    #[serde(default)]
    pub city: Option<String>,
    #[schema(schema_with = schema::optional_text)]
    #[serde(default)]
    pub region: Option<String>,
    #[schema(required = true, schema_with = schema::text)]
    #[serde(default)]
    pub postal_code: Option<String>,
    #[schema(required = true, schema_with = schema::country)]
    #[serde(default)]
    pub country: Option<String>,
}

/// An order line as the store's API takes it: with its unit price.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PricedLineInput {
    #[schema(required = true, schema_with = schema::short_text)]
    #[serde(default)]
    pub sku: Option<String>,
    #[schema(required = true, schema_with = schema::short_text)]
    #[serde(default)]
    pub name: Option<String>,
    #[schema(required = true, schema_with = schema::quantity)]
    #[serde(default)]
    pub quantity: Option<i64>,
    #[schema(required = true, schema_with = schema::minor_units)]
    #[serde(default)]
    pub unit_price: Option<i64>,
}

/// An order line as it travels to the warehouse: no price field exists, and
/// one sent anyway is an unknown field, so the item is rejected. (The
/// schema's description is its own: the warehouse's document names no money.)
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(description = "An order line: SKU, name and quantity.")]
#[serde(deny_unknown_fields)]
pub struct LineInput {
    #[schema(required = true, schema_with = schema::short_text)]
    #[serde(default)]
    pub sku: Option<String>,
    #[schema(required = true, schema_with = schema::short_text)]
    #[serde(default)]
    pub name: Option<String>,
    #[schema(required = true, schema_with = schema::quantity)]
    #[serde(default)]
    pub quantity: Option<i64>,
}

/// `POST /api/v1/orders` at the store.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(
    as = CreateOrder,
    example = json!({
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "company": null},
        "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Sq",
                             "line2": null, "city": "London", "region": null,
                             "postal_code": "SW1Y 4JH", "country": "GB"},
        "lines": [{"sku": "WID-1", "name": "Widget", "quantity": 2, "unit_price": 1999}],
        "currency": "GBP",
        "shipping_cost": 500,
        "notes": "leave at the door",
        "deliver_by": "2026-12-01T17:00:00Z"
    })
)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderInput {
    #[schema(required = true, nullable = false)]
    #[serde(default)]
    pub customer: Option<CustomerInput>,
    #[schema(required = true, nullable = false)]
    #[serde(default)]
    pub shipping_address: Option<AddressInput>,
    #[schema(required = true, schema_with = schema::priced_lines)]
    #[serde(default)]
    pub lines: Option<Vec<PricedLineInput>>,
    #[schema(required = true, schema_with = schema::currency)]
    #[serde(default)]
    pub currency: Option<String>,
    #[schema(schema_with = schema::shipping_cost)]
    #[serde(default)]
    pub shipping_cost: Option<i64>,
    #[schema(schema_with = schema::optional_text)]
    #[serde(default)]
    pub notes: Option<String>,
    #[schema(schema_with = schema::optional_time)]
    #[serde(default)]
    pub deliver_by: Option<String>,
}

/// `PATCH /api/v1/orders/{id}` at the store: each present field replaces the
/// whole field; `"notes": null` clears the notes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(
    as = PatchOrder,
    min_properties = 1,
    description = "At least one field; each replaces the whole field. `notes: null` clears the notes."
)]
#[serde(deny_unknown_fields)]
pub struct PatchOrderInput {
    #[schema(nullable = false)]
    #[serde(default)]
    pub customer: Option<CustomerInput>,
    #[schema(nullable = false)]
    #[serde(default)]
    pub shipping_address: Option<AddressInput>,
    #[schema(schema_with = schema::priced_lines)]
    #[serde(default)]
    pub lines: Option<Vec<PricedLineInput>>,
    #[schema(schema_with = schema::optional_text)]
    #[serde(default, deserialize_with = "present")]
    pub notes: Option<Option<String>>,
    #[schema(schema_with = schema::minor_units)]
    #[serde(default)]
    pub shipping_cost: Option<i64>,
}

/// Tells "field absent" (`None`) from "field set to null" (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn req<'a>(errs: &mut Errors, field: &str, v: &'a Option<String>) -> Option<&'a str> {
    match v {
        Some(s) => Some(s.as_str()),
        None => {
            errs.push(FieldError::new(field, "is required"));
            None
        }
    }
}

fn req_text(errs: &mut Errors, field: &str, v: &Option<String>) -> Option<Text> {
    let s = req(errs, field, v)?;
    errs.take(Text::parse(field, s))
}

fn opt_text(errs: &mut Errors, field: &str, v: &Option<String>) -> Option<Option<String>> {
    errs.take(optional_text(field, v.as_deref(), MAX_TEXT))
}

impl CustomerInput {
    pub fn parse(&self, prefix: &str, errs: &mut Errors) -> Option<Customer> {
        let f = |n: &str| format!("{prefix}.{n}");
        let name = req_text(errs, &f("name"), &self.name);
        let email = req(errs, &f("email"), &self.email)
            .and_then(|e| errs.take(Email::parse(&f("email"), e)));
        let company = opt_text(errs, &f("company"), &self.company);
        Some(Customer {
            name: name?,
            email: email?,
            company: company?,
        })
    }

    pub fn from_domain(c: &Customer) -> Self {
        Self {
            name: Some(c.name.to_string()),
            email: Some(c.email.as_str().to_owned()),
            company: c.company.clone(),
        }
    }
}

impl AddressInput {
    pub fn parse(&self, prefix: &str, errs: &mut Errors) -> Option<Address> {
        let f = |n: &str| format!("{prefix}.{n}");
        let name = req_text(errs, &f("name"), &self.name);
        let line1 = req_text(errs, &f("line1"), &self.line1);
        let line2 = opt_text(errs, &f("line2"), &self.line2);
        let city = req_text(errs, &f("city"), &self.city);
        let region = opt_text(errs, &f("region"), &self.region);
        let postal_code = req_text(errs, &f("postal_code"), &self.postal_code);
        let country = req(errs, &f("country"), &self.country)
            .and_then(|c| errs.take(CountryCode::parse(&f("country"), c)));
        Some(Address {
            name: name?,
            line1: line1?,
            line2: line2?,
            city: city?,
            region: region?,
            postal_code: postal_code?,
            country: country?,
        })
    }

    pub fn from_domain(a: &Address) -> Self {
        Self {
            name: Some(a.name.to_string()),
            line1: Some(a.line1.to_string()),
            line2: a.line2.clone(),
            city: Some(a.city.to_string()),
            region: a.region.clone(),
            postal_code: Some(a.postal_code.to_string()),
            country: Some(a.country.as_str().to_owned()),
        }
    }
}

fn parse_line(
    errs: &mut Errors,
    prefix: &str,
    sku: &Option<String>,
    name: &Option<String>,
    quantity: Option<i64>,
) -> Option<Line> {
    let f = |n: &str| format!("{prefix}.{n}");
    let sku = req(errs, &f("sku"), sku).and_then(|s| errs.take(Sku::parse(&f("sku"), s)));
    let name = req(errs, &f("name"), name).and_then(|s| errs.take(LineName::parse(&f("name"), s)));
    let quantity = match quantity {
        Some(q) => errs.take(Quantity::parse(&f("quantity"), q)),
        None => {
            errs.push(FieldError::new(f("quantity"), "is required"));
            None
        }
    };
    Some(Line {
        sku: sku?,
        name: name?,
        quantity: quantity?,
    })
}

fn check_line_count(errs: &mut Errors, n: usize) {
    if n == 0 {
        errs.push(FieldError::new("lines", "must have at least one line"));
    } else if n > MAX_LINES {
        errs.push(FieldError::new(
            "lines",
            format!("must have at most {MAX_LINES} lines"),
        ));
    }
}

/// Each SKU may appear on one line only: parcels, rejections and routing
/// name lines by SKU (docs/DESIGN.md §6).
fn check_unique_skus(errs: &mut Errors, lines: &[Line]) {
    for (i, l) in lines.iter().enumerate() {
        if let Some(first) = lines[..i].iter().position(|o| o.sku == l.sku) {
            errs.push(FieldError::new(
                format!("lines[{i}].sku"),
                format!(
                    "SKU {} is already on lines[{first}]; give each SKU one line with the total quantity",
                    l.sku.as_str()
                ),
            ));
        }
    }
}

/// Parses priced lines (the store's API) into lines and their unit prices.
pub fn parse_priced_lines(
    lines: &[PricedLineInput],
    errs: &mut Errors,
) -> Option<(Vec<Line>, Vec<MinorUnits>)> {
    check_line_count(errs, lines.len());
    let mut out = Vec::with_capacity(lines.len());
    let mut prices = Vec::with_capacity(lines.len());
    let mut ok = true;
    for (i, l) in lines.iter().enumerate() {
        let prefix = format!("lines[{i}]");
        let line = parse_line(errs, &prefix, &l.sku, &l.name, l.quantity);
        let price = match l.unit_price {
            Some(p) => errs.take(MinorUnits::parse(&format!("{prefix}.unit_price"), p)),
            None => {
                errs.push(FieldError::new(
                    format!("{prefix}.unit_price"),
                    "is required",
                ));
                None
            }
        };
        match (line, price) {
            (Some(l), Some(p)) => {
                out.push(l);
                prices.push(p);
            }
            _ => ok = false,
        }
    }
    check_unique_skus(errs, &out);
    (ok && errs.is_empty()).then_some((out, prices))
}

/// Parses lines without prices (what the warehouse receives).
pub fn parse_lines(lines: &[LineInput], errs: &mut Errors) -> Option<Vec<Line>> {
    check_line_count(errs, lines.len());
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if let Some(line) = parse_line(errs, &format!("lines[{i}]"), &l.sku, &l.name, l.quantity) {
            out.push(line);
        }
    }
    check_unique_skus(errs, &out);
    (out.len() == lines.len() && errs.is_empty()).then_some(out)
}

pub fn parse_deliver_by(errs: &mut Errors, v: Option<&str>) -> Option<Option<DateTime<Utc>>> {
    match v {
        None => Some(None),
        Some(s) => errs.take(
            DateTime::parse_from_rfc3339(s.trim())
                .map(|d| Some(d.with_timezone(&Utc)))
                .map_err(|_| {
                    FieldError::new(
                        "deliver_by",
                        "must be an RFC 3339 time such as 2026-12-01T17:00:00Z",
                    )
                }),
        ),
    }
}

impl CreateOrderInput {
    /// Parses a whole create request, reporting every invalid field.
    pub fn parse(&self) -> Result<(OrderContent, Pricing), Vec<FieldError>> {
        let mut errs = Errors::new();
        let customer = match &self.customer {
            Some(c) => c.parse("customer", &mut errs),
            None => {
                errs.push(FieldError::new("customer", "is required"));
                None
            }
        };
        let address = match &self.shipping_address {
            Some(a) => a.parse("shipping_address", &mut errs),
            None => {
                errs.push(FieldError::new("shipping_address", "is required"));
                None
            }
        };
        let lines = match &self.lines {
            Some(l) => parse_priced_lines(l, &mut errs),
            None => {
                errs.push(FieldError::new("lines", "must have at least one line"));
                None
            }
        };
        let currency = req(&mut errs, "currency", &self.currency)
            .and_then(|c| errs.take(Currency::parse("currency", c)));
        let shipping_cost = errs.take(MinorUnits::parse(
            "shipping_cost",
            self.shipping_cost.unwrap_or(0),
        ));
        let notes = opt_text(&mut errs, "notes", &self.notes);
        let deliver_by = parse_deliver_by(&mut errs, self.deliver_by.as_deref());
        match (
            customer,
            address,
            lines,
            currency,
            shipping_cost,
            notes,
            deliver_by,
        ) {
            (
                Some(customer),
                Some(shipping_address),
                Some((lines, unit_prices)),
                Some(currency),
                Some(shipping_cost),
                Some(notes),
                Some(deliver_by),
            ) if errs.is_empty() => Ok((
                OrderContent {
                    customer,
                    shipping_address,
                    lines,
                    notes,
                    deliver_by,
                    cancel: None,
                    holds: Vec::new(),
                },
                Pricing {
                    currency,
                    shipping_cost,
                    unit_prices,
                },
            )),
            _ => Err(errs.into_vec()),
        }
    }
}

impl PatchOrderInput {
    /// Applies the patch to the current content and pricing, returning the
    /// new ones, or every invalid field.
    pub fn apply(
        &self,
        content: &OrderContent,
        pricing: &Pricing,
    ) -> Result<(OrderContent, Pricing), Vec<FieldError>> {
        let mut errs = Errors::new();
        let mut c = content.clone();
        let mut p = pricing.clone();
        if self.customer.is_none()
            && self.shipping_address.is_none()
            && self.lines.is_none()
            && self.notes.is_none()
            && self.shipping_cost.is_none()
        {
            errs.push(FieldError::new(
                "body",
                "must change at least one of customer, shipping_address, lines, notes, shipping_cost",
            ));
        }
        if let Some(v) = self
            .customer
            .as_ref()
            .and_then(|i| i.parse("customer", &mut errs))
        {
            c.customer = v;
        }
        if let Some(v) = self
            .shipping_address
            .as_ref()
            .and_then(|i| i.parse("shipping_address", &mut errs))
        {
            c.shipping_address = v;
        }
        if let Some((lines, prices)) = self
            .lines
            .as_ref()
            .and_then(|l| parse_priced_lines(l, &mut errs))
        {
            c.lines = lines;
            p.unit_prices = prices;
        }
        if let Some(notes) = &self.notes
            && let Some(v) = opt_text(&mut errs, "notes", notes)
        {
            c.notes = v;
        }
        if let Some(cost) = self.shipping_cost
            && let Some(v) = errs.take(MinorUnits::parse("shipping_cost", cost))
        {
            p.shipping_cost = v;
        }
        if errs.is_empty() {
            Ok((c, p))
        } else {
            Err(errs.into_vec())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn valid() -> CreateOrderInput {
        serde_json::from_value(serde_json::json!({
            "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "company": null},
            "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Sq", "line2": null,
                                 "city": "London", "region": null, "postal_code": "SW1Y 4JH", "country": "GB"},
            "lines": [{"sku": "WID-1", "name": "Widget", "quantity": 2, "unit_price": 1999}],
            "currency": "GBP", "shipping_cost": 500, "notes": "leave at the door",
            "deliver_by": "2026-12-01T17:00:00Z"
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_the_api_example_and_totals_it() {
        let (content, pricing) = valid().parse().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(content.lines.len(), 1);
        assert_eq!(pricing.subtotal(&content.lines).get(), 3998);
        assert_eq!(pricing.total(&content.lines).get(), 4498);
        assert_eq!(content.shipping_address.country.as_str(), "GB");
    }

    #[test]
    fn reports_every_bad_field_at_once() {
        let mut input = valid();
        input.customer = Some(CustomerInput {
            name: Some(" ".into()),
            email: Some("nope".into()),
            company: None,
        });
        input.lines = Some(vec![PricedLineInput {
            sku: Some("".into()),
            name: None,
            quantity: Some(0),
            unit_price: Some(-1),
        }]);
        input.currency = Some("XXX".into());
        let errs = input.parse().expect_err("must fail");
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "customer.name",
            "customer.email",
            "lines[0].sku",
            "lines[0].name",
            "lines[0].quantity",
            "lines[0].unit_price",
            "currency",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn needs_a_line() {
        let mut input = valid();
        input.lines = Some(vec![]);
        let errs = input.parse().expect_err("must fail");
        assert_eq!(errs[0].field, "lines");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<LineInput, _> = serde_json::from_value(
            serde_json::json!({"sku": "A", "name": "B", "quantity": 1, "unit_price": 5}),
        );
        assert!(
            r.is_err(),
            "a priced line must not parse as a warehouse line"
        );
    }

    #[test]
    fn patch_replaces_fields_and_can_clear_notes() {
        let (content, pricing) = valid().parse().unwrap_or_else(|e| panic!("{e:?}"));
        let patch: PatchOrderInput =
            serde_json::from_value(serde_json::json!({"notes": null, "shipping_cost": 0}))
                .unwrap_or_else(|e| panic!("{e}"));
        let (c, p) = patch
            .apply(&content, &pricing)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.notes, None);
        assert_eq!(p.shipping_cost.get(), 0);
        let empty = PatchOrderInput::default();
        assert!(empty.apply(&content, &pricing).is_err());
    }
}
