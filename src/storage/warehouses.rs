//! The store's warehouses (store only). A row holds what routing and sync
//! need; the secret a warehouse signs with is read only by the relay and
//! the signature check, never for an answer.

use sqlx::AnyConnection;

use super::{Result, StorageError};
use crate::domain::values::CountryCode;
use crate::domain::warehouse::{Warehouse, WarehouseName};

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    url: String,
    secret: Option<String>,
    countries: String,
    sku_prefixes: String,
    priority: i64,
    active: i64,
}

impl Row {
    fn into_domain(self) -> Result<(Warehouse, Option<String>)> {
        let bad = |what: &str| StorageError::Corrupt(format!("warehouse {}: {what}", self.name));
        let name = WarehouseName::parse("name", &self.name).map_err(|_| bad("invalid name"))?;
        let countries = self
            .countries
            .split_whitespace()
            .map(|c| CountryCode::parse("countries", c))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| bad("invalid country"))?;
        let sku_prefixes: Vec<String> =
            serde_json::from_str(&self.sku_prefixes).map_err(|_| bad("invalid sku_prefixes"))?;
        Ok((
            Warehouse {
                name,
                url: self.url,
                countries,
                sku_prefixes,
                priority: self.priority,
                active: self.active != 0,
            },
            self.secret,
        ))
    }
}

/// Every warehouse with its secret (`None`: the store's own), by name.
pub async fn list(c: &mut AnyConnection) -> Result<Vec<(Warehouse, Option<String>)>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT name, url, secret, countries, sku_prefixes, priority, active \
         FROM warehouses ORDER BY name",
    )
    .fetch_all(&mut *c)
    .await?;
    rows.into_iter().map(Row::into_domain).collect()
}

/// One warehouse with its secret.
pub async fn get(c: &mut AnyConnection, name: &str) -> Result<Option<(Warehouse, Option<String>)>> {
    if !WarehouseName::is_valid(name) {
        return Ok(None);
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT name, url, secret, countries, sku_prefixes, priority, active \
         FROM warehouses WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *c)
    .await?;
    row.map(Row::into_domain).transpose()
}

fn countries_text(w: &Warehouse) -> String {
    w.countries
        .iter()
        .map(CountryCode::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

fn prefixes_text(w: &Warehouse) -> String {
    serde_json::to_string(&w.sku_prefixes).unwrap_or_else(|_| "[]".into())
}

/// Adds a warehouse; false when the name is taken.
pub async fn insert(
    c: &mut AnyConnection,
    w: &Warehouse,
    secret: Option<&str>,
    now: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO warehouses (name, url, secret, countries, sku_prefixes, priority, active, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(w.name.as_str())
    .bind(w.url.as_str())
    .bind(secret)
    .bind(countries_text(w))
    .bind(prefixes_text(w))
    .bind(w.priority)
    .bind(i64::from(w.active))
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Writes a warehouse's fields and secret; false when it does not exist.
pub async fn update(
    c: &mut AnyConnection,
    w: &Warehouse,
    secret: Option<&str>,
    now: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE warehouses SET url = $2, secret = $3, countries = $4, sku_prefixes = $5, \
         priority = $6, active = $7, updated_at = $8 WHERE name = $1",
    )
    .bind(w.name.as_str())
    .bind(w.url.as_str())
    .bind(secret)
    .bind(countries_text(w))
    .bind(prefixes_text(w))
    .bind(w.priority)
    .bind(i64::from(w.active))
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}
