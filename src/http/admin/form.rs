//! The store's order form: what a person typed, read from the submitted
//! fields, turned into the API's input shapes (so the domain validates it
//! exactly as it validates the API), and shown back with every error next
//! to its field.
//!
//! Input names are the domain's field names (`customer.email`,
//! `lines[1].sku`), so a [`FieldError`] finds its input without a mapping
//! table. Amounts are typed in major units (`19.99`) and converted with the
//! currency's decimals; line rows left completely blank are ignored, which
//! lets the form offer spare rows without JavaScript.

use std::collections::{BTreeMap, HashMap};

use super::format::{amount_input, parse_amount};
use super::session::Fields;
use crate::domain::FieldError;
use crate::domain::order::{
    AddressInput, CreateOrderInput, CustomerInput, PatchOrderInput, PricedLineInput,
};
use crate::engine::OrderView;

/// Line indexes beyond this are ignored (the domain allows 200 lines).
const MAX_ROW_INDEX: usize = 1000;

/// One line row as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineValues {
    pub sku: String,
    pub name: String,
    pub quantity: String,
    pub unit_price: String,
}

impl LineValues {
    fn is_blank(&self) -> bool {
        [&self.sku, &self.name, &self.quantity, &self.unit_price]
            .iter()
            .all(|v| v.trim().is_empty())
    }
}

/// Every field of the order form as typed.
#[derive(Debug, Clone, Default)]
pub struct OrderValues {
    pub fields: HashMap<&'static str, String>,
    pub lines: Vec<LineValues>,
}

/// The form's plain fields: name, label, input type, required, hint, and
/// the section they belong to.
pub struct FieldSpec {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub required: bool,
    pub hint: &'static str,
    pub section: &'static str,
    /// Only settable when the order is created.
    pub create_only: bool,
    pub autocomplete: &'static str,
}

const fn spec(
    section: &'static str,
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    required: bool,
    hint: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        label,
        kind,
        required,
        hint,
        section,
        create_only: false,
        autocomplete: "off",
    }
}

pub const FIELDS: &[FieldSpec] = &[
    spec("customer", "customer.name", "Name", "text", true, ""),
    spec("customer", "customer.email", "Email", "email", true, ""),
    spec("customer", "customer.company", "Company", "text", false, ""),
    spec(
        "address",
        "shipping_address.name",
        "Recipient",
        "text",
        true,
        "",
    ),
    spec(
        "address",
        "shipping_address.line1",
        "Address line 1",
        "text",
        true,
        "",
    ),
    spec(
        "address",
        "shipping_address.line2",
        "Address line 2",
        "text",
        false,
        "",
    ),
    spec("address", "shipping_address.city", "City", "text", true, ""),
    spec(
        "address",
        "shipping_address.region",
        "Region",
        "text",
        false,
        "",
    ),
    spec(
        "address",
        "shipping_address.postal_code",
        "Postal code",
        "text",
        true,
        "",
    ),
    spec(
        "address",
        "shipping_address.country",
        "Country",
        "text",
        true,
        "2-letter code, e.g. GB",
    ),
    FieldSpec {
        create_only: true,
        ..spec(
            "order",
            "currency",
            "Currency",
            "text",
            true,
            "3-letter code, e.g. GBP",
        )
    },
    spec(
        "order",
        "shipping_cost",
        "Shipping cost",
        "text",
        false,
        "in the order's currency, e.g. 4.95",
    ),
    FieldSpec {
        create_only: true,
        ..spec(
            "order",
            "deliver_by",
            "Deliver by (UTC)",
            "datetime-local",
            false,
            "",
        )
    },
    spec("order", "notes", "Notes", "textarea", false, ""),
];

fn row_field(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("lines[")?;
    let (i, field) = rest.split_once("].")?;
    let i: usize = i.parse().ok()?;
    (i <= MAX_ROW_INDEX).then_some((i, field))
}

impl OrderValues {
    /// A new order's form: one empty line, no shipping cost.
    pub fn blank() -> Self {
        let mut v = OrderValues {
            lines: vec![LineValues::default()],
            ..Default::default()
        };
        v.fields.insert("currency", "GBP".into());
        v.fields.insert("shipping_cost", "0.00".into());
        v
    }

    /// The values of an existing order, for its edit form.
    pub fn from_order(v: &OrderView) -> Self {
        let c = &v.order.content;
        let currency = v
            .pricing
            .as_ref()
            .map(|p| p.currency.as_str().to_owned())
            .unwrap_or_default();
        let mut f: HashMap<&'static str, String> = HashMap::new();
        f.insert("customer.name", c.customer.name.to_string());
        f.insert("customer.email", c.customer.email.as_str().into());
        f.insert(
            "customer.company",
            c.customer.company.clone().unwrap_or_default(),
        );
        let a = &c.shipping_address;
        f.insert("shipping_address.name", a.name.to_string());
        f.insert("shipping_address.line1", a.line1.to_string());
        f.insert(
            "shipping_address.line2",
            a.line2.clone().unwrap_or_default(),
        );
        f.insert("shipping_address.city", a.city.to_string());
        f.insert(
            "shipping_address.region",
            a.region.clone().unwrap_or_default(),
        );
        f.insert("shipping_address.postal_code", a.postal_code.to_string());
        f.insert("shipping_address.country", a.country.as_str().into());
        f.insert("notes", c.notes.clone().unwrap_or_default());
        f.insert(
            "deliver_by",
            c.deliver_by
                .map(|d| d.format("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_default(),
        );
        if let Some(p) = &v.pricing {
            f.insert(
                "shipping_cost",
                amount_input(p.shipping_cost.get(), &currency),
            );
        }
        f.insert("currency", currency.clone());
        let lines = c
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| LineValues {
                sku: l.sku.as_str().into(),
                name: l.name.as_str().into(),
                quantity: l.quantity.get().to_string(),
                unit_price: v
                    .pricing
                    .as_ref()
                    .and_then(|p| p.unit_prices.get(i))
                    .map(|u| amount_input(u.get(), &currency))
                    .unwrap_or_default(),
            })
            .collect();
        OrderValues { fields: f, lines }
    }

    /// What was submitted: every known field, and every line row in index
    /// order (gaps closed).
    pub fn from_fields(fields: &Fields) -> Self {
        let mut out = OrderValues::default();
        let mut rows: BTreeMap<usize, LineValues> = BTreeMap::new();
        for (k, v) in &fields.0 {
            if let Some(spec) = FIELDS.iter().find(|s| s.name == k) {
                out.fields.entry(spec.name).or_insert_with(|| v.clone());
            } else if let Some((i, f)) = row_field(k) {
                let row = rows.entry(i).or_default();
                match f {
                    "sku" => row.sku = v.clone(),
                    "name" => row.name = v.clone(),
                    "quantity" => row.quantity = v.clone(),
                    "unit_price" => row.unit_price = v.clone(),
                    _ => {}
                }
            }
        }
        out.lines = rows.into_values().collect();
        out
    }

    /// Back into submitted fields (what [`OrderValues::from_fields`] reads):
    /// how a failed form is kept for the page that shows it again.
    pub fn to_fields(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = FIELDS
            .iter()
            .filter_map(|f| Some((f.name.to_owned(), self.fields.get(f.name)?.clone())))
            .collect();
        for (i, l) in self.lines.iter().enumerate() {
            for (f, v) in [
                ("sku", &l.sku),
                ("name", &l.name),
                ("quantity", &l.quantity),
                ("unit_price", &l.unit_price),
            ] {
                out.push((format!("lines[{i}].{f}"), v.clone()));
            }
        }
        out
    }

    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", |s| s.as_str())
    }

    /// Drops line rows left completely blank.
    pub fn without_blank_lines(mut self) -> Self {
        self.lines.retain(|l| !l.is_blank());
        self
    }

    fn opt(&self, name: &str) -> Option<String> {
        let v = self.get(name).trim();
        (!v.is_empty()).then(|| v.to_owned())
    }

    fn customer(&self) -> CustomerInput {
        CustomerInput {
            name: self.opt("customer.name"),
            email: self.opt("customer.email"),
            company: self.opt("customer.company"),
        }
    }

    fn address(&self) -> AddressInput {
        AddressInput {
            name: self.opt("shipping_address.name"),
            line1: self.opt("shipping_address.line1"),
            line2: self.opt("shipping_address.line2"),
            city: self.opt("shipping_address.city"),
            region: self.opt("shipping_address.region"),
            postal_code: self.opt("shipping_address.postal_code"),
            country: self.opt("shipping_address.country"),
        }
    }

    /// Lines as the API takes them, and the errors of values that are not
    /// even numbers (the domain checks the rest).
    fn priced_lines(&self, currency: &str, errs: &mut Vec<FieldError>) -> Vec<PricedLineInput> {
        self.lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let quantity = match l.quantity.trim() {
                    "" => None,
                    q => match q.parse::<i64>() {
                        Ok(n) => Some(n),
                        Err(_) => {
                            errs.push(FieldError::new(
                                format!("lines[{i}].quantity"),
                                "must be a whole number",
                            ));
                            None
                        }
                    },
                };
                let unit_price = match l.unit_price.trim() {
                    "" => None,
                    p => match parse_amount(p, currency) {
                        Ok(n) => Some(n),
                        Err(m) => {
                            errs.push(FieldError::new(format!("lines[{i}].unit_price"), m));
                            None
                        }
                    },
                };
                PricedLineInput {
                    sku: (!l.sku.trim().is_empty()).then(|| l.sku.clone()),
                    name: (!l.name.trim().is_empty()).then(|| l.name.clone()),
                    quantity,
                    unit_price,
                }
            })
            .collect()
    }

    fn shipping_cost(&self, currency: &str, errs: &mut Vec<FieldError>) -> Option<i64> {
        match self.get("shipping_cost").trim() {
            "" => Some(0),
            s => match parse_amount(s, currency) {
                Ok(n) => Some(n),
                Err(m) => {
                    errs.push(FieldError::new("shipping_cost", m));
                    None
                }
            },
        }
    }

    /// `datetime-local` gives `2026-12-01T17:00`; the domain wants RFC 3339.
    fn deliver_by(&self) -> Option<String> {
        let v = self.opt("deliver_by")?;
        let t = v.trim_end_matches('Z');
        Some(match t.len() {
            16 => format!("{t}:00Z"),
            19 => format!("{t}Z"),
            _ => v,
        })
    }

    /// The create request this form describes.
    pub fn create_input(&self) -> (CreateOrderInput, Vec<FieldError>) {
        let mut errs = Vec::new();
        let currency = self.get("currency").trim().to_owned();
        let input = CreateOrderInput {
            customer: Some(self.customer()),
            shipping_address: Some(self.address()),
            lines: Some(self.priced_lines(&currency, &mut errs)),
            currency: (!currency.is_empty()).then_some(currency.clone()),
            shipping_cost: self.shipping_cost(&currency, &mut errs),
            notes: self.opt("notes"),
            deliver_by: self.deliver_by(),
        };
        (input, errs)
    }

    /// The patch this form describes: every editable field, replaced whole
    /// (the engine records only what really changed).
    pub fn patch_input(&self, currency: &str) -> (PatchOrderInput, Vec<FieldError>) {
        let mut errs = Vec::new();
        let input = PatchOrderInput {
            customer: Some(self.customer()),
            shipping_address: Some(self.address()),
            lines: Some(self.priced_lines(currency, &mut errs)),
            notes: Some(self.opt("notes")),
            shipping_cost: Some(self.shipping_cost(currency, &mut errs).unwrap_or(0)),
        };
        (input, errs)
    }
}

/// Joins the form's own errors with the domain's: for a field the form
/// already refused (not a number), its message wins over "is required".
pub fn merge_errors(form: Vec<FieldError>, domain: Vec<FieldError>) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for e in domain {
        out.entry(e.field).or_insert(e.message);
    }
    for e in form {
        out.insert(e.field, e.message);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// A kept form reads back as it was typed, blank rows included.
    #[test]
    fn values_round_trip_through_fields() {
        let f = fields(&[
            ("customer.name", "Ada <L>"),
            ("shipping_cost", "4.95"),
            ("lines[0].sku", "A"),
            ("lines[0].quantity", "x"),
            ("lines[1].sku", ""),
        ]);
        let v = OrderValues::from_fields(&f);
        let back = OrderValues::from_fields(&Fields(v.to_fields()));
        assert_eq!(back.fields, v.fields);
        assert_eq!(back.lines, v.lines);
        assert_eq!(back.lines.len(), 2);
        assert_eq!(back.lines[0].quantity, "x");
    }

    #[test]
    fn reads_rows_in_index_order_and_drops_blank_ones() {
        let f = fields(&[
            ("customer.name", "Ada"),
            ("lines[2].sku", "B"),
            ("lines[0].sku", "A"),
            ("lines[0].quantity", "2"),
            ("lines[1].sku", " "),
            ("lines[99999].sku", "ignored"),
        ]);
        let v = OrderValues::from_fields(&f);
        assert_eq!(v.get("customer.name"), "Ada");
        assert_eq!(v.lines.len(), 3);
        let v = v.without_blank_lines();
        assert_eq!(
            v.lines.iter().map(|l| l.sku.as_str()).collect::<Vec<_>>(),
            ["A", "B"]
        );
    }

    #[test]
    fn numbers_that_are_not_numbers_are_named() {
        let f = fields(&[
            ("currency", "GBP"),
            ("lines[0].sku", "A"),
            ("lines[0].name", "Widget"),
            ("lines[0].quantity", "two"),
            ("lines[0].unit_price", "1.999"),
            ("deliver_by", "2026-12-01T17:00"),
        ]);
        let (input, errs) = OrderValues::from_fields(&f).create_input();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["lines[0].quantity", "lines[0].unit_price"]);
        assert_eq!(input.deliver_by.as_deref(), Some("2026-12-01T17:00:00Z"));
        let domain = input.parse().expect_err("invalid");
        let merged = merge_errors(errs, domain);
        assert_eq!(merged["lines[0].quantity"], "must be a whole number");
        assert!(merged.contains_key("customer.name"));
    }
}
