//! `fulfillment warehouse add|update|list`: the store's warehouses from the
//! command line, through the engine like the API and the admin page. A
//! running store sees a change made here within seconds (its relays look
//! at the warehouses every few seconds). The secret goes in and is never
//! printed.

use anyhow::Context;
use clap::{Args, Subcommand};

use super::DbArgs;
use crate::domain::FieldError;
use crate::domain::role::Command;
use crate::domain::warehouse::{MAX_PRIORITY, Warehouse, WarehouseInput};
use crate::engine::{Engine, EngineError};
use crate::storage::from_micros;
use crate::sync::relays::REFRESH;

#[derive(Debug, Subcommand)]
pub enum WarehouseCommand {
    /// Add a warehouse (store only). A running store starts delivering to
    /// it within seconds.
    Add {
        #[command(flatten)]
        db: DbArgs,
        /// Its name: 1 to 32 of a-z, 0-9 and -.
        #[arg(long, env = "FULFILLMENT_WAREHOUSE_NAME")]
        name: String,
        /// Base URL of the warehouse service, e.g. http://127.0.0.1:8001.
        #[arg(long, env = "FULFILLMENT_WAREHOUSE_URL")]
        url: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Change a warehouse (store only): only the flags given change.
    Update {
        #[command(flatten)]
        db: DbArgs,
        /// The warehouse to change (its name cannot change).
        #[arg(long, env = "FULFILLMENT_WAREHOUSE_NAME")]
        name: String,
        /// Base URL of the warehouse service, e.g. http://127.0.0.1:8001.
        #[arg(long, env = "FULFILLMENT_WAREHOUSE_URL")]
        url: Option<String>,
        #[command(flatten)]
        settings: Settings,
        /// false: no new lines are routed there (its orders keep syncing);
        /// true: routed to again.
        // Read as text and checked here, so that a bad value is one line
        // naming the flag, like every other bad value of these commands.
        #[arg(long, env = "FULFILLMENT_WAREHOUSE_ACTIVE", value_name = "true|false")]
        active: Option<String>,
    },
    /// List the warehouses (store only), with their outbox (never a secret).
    List {
        #[command(flatten)]
        db: DbArgs,
    },
}

/// The routing settings and the secret, as `add` and `update` take them.
#[derive(Debug, Args)]
pub struct Settings {
    /// The secret it signs with and its requests are checked with (default:
    /// the store's --sync-secret). Never printed. Prefer the variable: a
    /// flag shows in process lists.
    #[arg(long, env = "FULFILLMENT_WAREHOUSE_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Countries it ships to, comma-separated ISO codes (GB,DE); empty
    /// (--countries ""): everywhere, the default.
    #[arg(
        long,
        env = "FULFILLMENT_WAREHOUSE_COUNTRIES",
        value_delimiter = ',',
        value_name = "GB,DE"
    )]
    countries: Option<Vec<String>>,
    /// Prefixes of the SKUs it stocks, comma-separated (WID-,BOX-); empty
    /// (--sku-prefixes ""): every SKU, the default.
    #[arg(
        long,
        env = "FULFILLMENT_WAREHOUSE_SKU_PREFIXES",
        value_delimiter = ',',
        value_name = "WID-,BOX-"
    )]
    sku_prefixes: Option<Vec<String>>,
    /// Lower is preferred, then the name (-1000000 to 1000000; default 0).
    // Text, checked in `input` (see `active`).
    #[arg(
        long,
        env = "FULFILLMENT_WAREHOUSE_PRIORITY",
        allow_negative_numbers = true,
        value_name = "N"
    )]
    priority: Option<String>,
}

/// A comma-separated list as given: blank items (`--countries ""`, a
/// trailing comma) are left out, so an empty value clears the list.
fn list(values: Option<Vec<String>>) -> Option<Vec<String>> {
    values.map(|v| {
        v.into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// `--priority N`: a whole number (its range is the domain's rule).
fn priority(value: Option<&str>) -> Result<Option<i64>, FieldError> {
    value
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                FieldError::new(
                    "priority",
                    format!(
                        "must be a whole number between -{MAX_PRIORITY} and {MAX_PRIORITY}, not {v:?}"
                    ),
                )
            })
        })
        .transpose()
}

/// `--active true|false`.
fn active(value: Option<&str>) -> Result<Option<bool>, FieldError> {
    value
        .map(|v| match v.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(FieldError::new(
                "active",
                format!("must be true or false, not {v:?}"),
            )),
        })
        .transpose()
}

impl Settings {
    /// The input of `add` or `update`, or every flag whose value is not
    /// even of the right kind (a priority that is no number, say).
    fn input(
        self,
        name: String,
        url: Option<String>,
        active_flag: Option<&str>,
    ) -> Result<WarehouseInput, Vec<FieldError>> {
        let (priority, active) = (priority(self.priority.as_deref()), active(active_flag));
        let errors: Vec<FieldError> = [priority.as_ref().err(), active.as_ref().err()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(WarehouseInput {
            name: Some(name),
            url,
            countries: list(self.countries),
            sku_prefixes: list(self.sku_prefixes),
            priority: priority.ok().flatten(),
            active: active.ok().flatten(),
            secret: self.secret,
        })
    }
}

pub async fn run(command: WarehouseCommand) -> anyhow::Result<()> {
    let db = match &command {
        WarehouseCommand::Add { db, .. }
        | WarehouseCommand::Update { db, .. }
        | WarehouseCommand::List { db } => db.clone(),
    };
    // Refused before a database is opened (or created): the role rules.
    db.role.check(Command::ManageWarehouses).map_err(|e| {
        anyhow::anyhow!("{e}: run it with --role store and the store's --database-url")
    })?;
    // Values that are not even of the right kind: refused before a
    // database is opened, in one line like the others.
    let what = match command {
        WarehouseCommand::Add {
            name,
            url,
            settings,
            ..
        } => What::Add(settings.input(name, Some(url), None).map_err(invalid)?),
        WarehouseCommand::Update {
            name,
            url,
            settings,
            active,
            ..
        } => What::Update(
            settings
                .input(name, url, active.as_deref())
                .map_err(invalid)?,
        ),
        WarehouseCommand::List { .. } => What::List,
    };
    let engine = Engine::new(db.open().await?, db.role);
    let soon = REFRESH.as_secs();
    match what {
        What::Add(input) => {
            let name = input.name.clone().unwrap_or_default();
            let w = engine
                .add_warehouse(&input)
                .await
                .map_err(|e| match e {
                    EngineError::Conflict(_) => anyhow::anyhow!(
                        "a warehouse named {name} exists already; change it with `fulfillment warehouse update --name {name}`"
                    ),
                    other => explain(other),
                })?;
            println!(
                "added warehouse {} ({}); a running store starts delivering to it within {soon} s",
                w.name, w.url
            );
        }
        What::Update(input) => {
            let name = input.name.clone().unwrap_or_default();
            let w = engine
                .update_warehouse(&name, &input)
                .await
                .map_err(explain)?;
            println!(
                "changed warehouse {} ({}, {}); a running store follows within {soon} s",
                w.name,
                w.url,
                if w.active { "active" } else { "inactive" }
            );
        }
        What::List => print_list(&engine).await?,
    }
    Ok(())
}

/// What a warehouse command does, its flags read.
enum What {
    Add(WarehouseInput),
    Update(WarehouseInput),
    List,
}

fn invalid(errors: Vec<FieldError>) -> anyhow::Error {
    explain(EngineError::Invalid(errors))
}

/// The flag a field of [`WarehouseInput`] comes from, for error lines:
/// `countries[1]` → `--countries (item 2)`.
fn flag(field: &str) -> String {
    let (base, index) = match field.split_once('[') {
        Some((b, rest)) => (b, rest.trim_end_matches(']').parse::<usize>().ok()),
        None => (field, None),
    };
    let flag = format!("--{}", base.replace('_', "-"));
    match index {
        Some(i) => format!("{flag} (item {})", i + 1),
        None => flag,
    }
}

/// One line for an engine error, naming the flags at fault.
fn explain(e: EngineError) -> anyhow::Error {
    match e {
        EngineError::Invalid(errors) => anyhow::anyhow!(
            "{}",
            errors
                .iter()
                .map(|FieldError { field, message }| format!("{} {message}", flag(field)))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        EngineError::UnknownWarehouse(name) => anyhow::anyhow!(
            "no warehouse is named {name:?}; `fulfillment warehouse list` shows them, `warehouse add` adds one"
        ),
        other => super::explain(other),
    }
}

/// Prints the warehouses as a table, with each one's outbox.
async fn print_list(engine: &Engine) -> anyhow::Result<()> {
    let warehouses = engine.warehouses().await.map_err(explain)?;
    if warehouses.is_empty() {
        println!(
            "no warehouses yet; add one with: fulfillment warehouse add --role store --database-url … --name NAME --url URL"
        );
        return Ok(());
    }
    let mut outbox = engine
        .outbox_status_by_peer()
        .await
        .context("cannot read the outbox")?;
    let all = |v: Vec<String>| {
        if v.is_empty() {
            "(all)".to_owned()
        } else {
            v.join(",")
        }
    };
    let mut rows = vec![
        [
            "NAME",
            "ACTIVE",
            "PRIORITY",
            "COUNTRIES",
            "SKU PREFIXES",
            "PENDING",
            "DEAD",
            "LAST DELIVERY",
            "URL",
        ]
        .map(str::to_owned),
    ];
    for Warehouse {
        name,
        url,
        countries,
        sku_prefixes,
        priority,
        active,
    } in warehouses
    {
        let o = outbox.remove(name.as_str()).unwrap_or_default();
        rows.push([
            name.to_string(),
            if active { "yes" } else { "no" }.to_owned(),
            priority.to_string(),
            all(countries.iter().map(|c| c.as_str().to_owned()).collect()),
            all(sku_prefixes),
            o.pending.to_string(),
            o.dead.to_string(),
            o.last_delivered_at
                .map_or("never".to_owned(), |t| from_micros(t).to_rfc3339()),
            url,
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_flags() {
        assert_eq!(flag("name"), "--name");
        assert_eq!(flag("sku_prefixes[0]"), "--sku-prefixes (item 1)");
        assert_eq!(flag("countries[3]"), "--countries (item 4)");
    }

    #[test]
    fn priority_and_active_are_checked_here() {
        assert_eq!(priority(Some("-3")), Ok(Some(-3)));
        assert_eq!(priority(None), Ok(None));
        assert_eq!(
            priority(Some("abc")).map_err(|e| e.field),
            Err("priority".to_owned())
        );
        assert_eq!(active(Some("false")), Ok(Some(false)));
        assert_eq!(
            active(Some("maybe")).map_err(|e| e.field),
            Err("active".to_owned())
        );
    }

    #[test]
    fn an_empty_list_clears_it() {
        assert_eq!(list(Some(vec![String::new()])), Some(vec![]));
        assert_eq!(
            list(Some(vec!["GB".into(), " de ".into(), String::new()])),
            Some(vec!["GB".into(), "de".into()])
        );
        assert_eq!(list(None), None);
    }
}
