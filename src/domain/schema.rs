//! OpenAPI schemas of the domain's values, built from the same constants
//! their parsers check (`values::MAX_TEXT`, `Quantity::MAX`, the ISO code
//! lists, ...), so the API document cannot state another limit than the one
//! enforced. The input shapes of [`super::input`] name them field by field
//! (`#[schema(schema_with = ...)]`); `http::openapi` assembles the document.

use utoipa::openapi::schema::{
    Array, ArrayBuilder, KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr, Schema};

use super::order::OrderId;
use super::values::{
    COUNTRIES, CURRENCIES, MAX_LINES, MAX_SHORT_TEXT, MAX_TEXT, MinorUnits, Quantity,
};
use super::warehouse::{MAX_LIST, MAX_NAME, MAX_PREFIX, MAX_PRIORITY, MAX_SECRET};

fn string(max: usize, nullable: bool) -> ObjectBuilder {
    let b = ObjectBuilder::new().max_length(Some(max));
    if nullable {
        b.schema_type(SchemaType::from_iter([Type::String, Type::Null]))
    } else {
        b.schema_type(Type::String).min_length(Some(1))
    }
}

/// Required free text: 1 to `MAX_TEXT` characters (trimmed, no control
/// characters).
pub fn text() -> Object {
    string(MAX_TEXT, false).build()
}

/// Optional free text: null, or at most `MAX_TEXT` characters (blank is
/// stored as null).
pub fn optional_text() -> Object {
    string(MAX_TEXT, true).build()
}

/// A SKU, a line name, a carrier, a tracking number: 1 to `MAX_SHORT_TEXT`
/// characters.
pub fn short_text() -> Object {
    string(MAX_SHORT_TEXT, false).build()
}

pub fn email() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(254))
        .build()
}

/// A quantity: 1 to `Quantity::MAX`.
pub fn quantity() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(Quantity::MAX))
        .build()
}

/// What a line still holds: 0 (all of it rejected) to `Quantity::MAX`.
pub fn held_quantity() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(Quantity::MAX))
        .build()
}

/// An amount of money in minor units, 0 to `MinorUnits::MAX`.
pub fn minor_units() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .maximum(Some(MinorUnits::MAX))
        .description(Some("Minor units."))
        .build()
}

/// `shipping_cost` of a new order: [`minor_units`], 0 when left out.
pub fn shipping_cost() -> Object {
    let mut o = minor_units();
    o.default = Some(0.into());
    o
}

fn codes(list: &str) -> Vec<&str> {
    list.split(' ').collect()
}

/// An ISO 3166-1 alpha-2 country code, from the accepted list.
pub fn country() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes(COUNTRIES)))
        .description(Some(
            "ISO 3166-1 alpha-2; lower case is accepted too and stored upper case.",
        ))
        .build()
}

/// An ISO 4217 currency code, from the accepted list.
pub fn currency() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes(CURRENCIES)))
        .description(Some(
            "ISO 4217; lower case is accepted too and stored upper case.",
        ))
        .build()
}

/// An optional RFC 3339 time.
pub fn optional_time() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .build()
}

/// The lines of an order at the store: 1 to `MAX_LINES` priced lines.
/// (`http::openapi` adds the `PricedLineInput` schema this refers to.)
pub fn priced_lines() -> Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("PricedLineInput"))
        .min_items(Some(1))
        .max_items(Some(MAX_LINES))
        .build()
}

impl utoipa::PartialSchema for OrderId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uuid".into())))
            .description(Some("An order id (a UUID)."))
            .into()
    }
}

impl utoipa::ToSchema for OrderId {}

// -- warehouses (store only) ---------------------------------------------------

/// The JSON Schema pattern of a warehouse name (`WarehouseName::parse`).
pub fn warehouse_name_pattern() -> String {
    format!("^[a-z0-9-]{{1,{MAX_NAME}}}$")
}

fn nullable(t: Type) -> SchemaType {
    SchemaType::from_iter([t, Type::Null])
}

/// A warehouse's name: 1 to `MAX_NAME` of a-z, 0-9 and `-`.
pub fn warehouse_name() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(warehouse_name_pattern()))
        .examples(["eu"])
        .build()
}

/// [`warehouse_name`], or null (in an input: not given).
pub fn optional_warehouse_name() -> Object {
    let mut o = warehouse_name();
    o.schema_type = nullable(Type::String);
    o
}

/// A warehouse's base URL (`warehouse::parse_url`): http or https, a host,
/// at most 500 characters; a trailing `/` is dropped.
pub fn warehouse_url() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^https?://[^\s/?#:][^\s]*$"))
        .max_length(Some(500))
        .examples(["http://127.0.0.1:8001"])
        .build()
}

/// [`warehouse_url`], or null (in an input: not given).
pub fn optional_warehouse_url() -> Object {
    let mut o = warehouse_url();
    o.schema_type = nullable(Type::String);
    o
}

/// The countries a warehouse ships to, in an input (null: not given).
pub fn countries() -> Array {
    ArrayBuilder::new()
        .schema_type(nullable(Type::Array))
        .items(country())
        .max_items(Some(MAX_LIST))
        .description(Some(
            "ISO 3166-1 alpha-2 codes it ships to; empty: everywhere. Duplicates are dropped.",
        ))
        .build()
}

/// The SKU prefixes a warehouse stocks, in an input (null: not given).
pub fn sku_prefixes() -> Array {
    ArrayBuilder::new()
        .schema_type(nullable(Type::Array))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_PREFIX))
                .pattern(Some(r"^\S(.*\S)?$")),
        )
        .max_items(Some(MAX_LIST))
        .description(Some(
            "Prefixes of the SKUs it stocks (no surrounding spaces); empty: every SKU.",
        ))
        .build()
}

/// A warehouse's priority, in an input (null: not given).
pub fn priority() -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::Integer))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(-MAX_PRIORITY))
        .maximum(Some(MAX_PRIORITY))
        .description(Some("Lower is preferred, then the name."))
        .build()
}

/// The secret a warehouse signs with, in an input: write-only, 1 to
/// `MAX_SECRET` bytes (null: not given).
pub fn secret() -> Object {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .min_length(Some(1))
        .max_length(Some(MAX_SECRET))
        .pattern(Some("^[^\\u0000-\\u001F\\u007F-\\u009F]+$"))
        .write_only(true)
        .description(Some(format!(
            "The secret it signs with and its requests are checked with, 1 to {MAX_SECRET} \
             bytes. Write-only: no answer, page or log ever shows it. Not given: the store's \
             own --sync-secret (when adding), unchanged (when changing)."
        )))
        .build()
}
