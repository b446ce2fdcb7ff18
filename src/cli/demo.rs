//! `fulfillment demo`: store and warehouse in one process, on SQLite files
//! in one directory, with credentials and (on first start) demo orders that
//! travel the real sync path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::domain::order::{AddressInput, CreateOrderInput, CustomerInput, PricedLineInput};
use crate::domain::{Action, Actor, FulfillmentStatus, OrderId, Role};
use crate::engine::{Created, Engine, credentials};
use crate::service::{Service, ServiceConfig, shutdown_signal};
use crate::storage::{Db, DbOptions};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the two SQLite databases and credentials.json.
    #[arg(
        long,
        env = "FULFILLMENT_DATA_DIR",
        default_value = "./fulfillment-data"
    )]
    pub data_dir: PathBuf,
    /// Address of the store.
    #[arg(
        long,
        env = "FULFILLMENT_STORE_LISTEN",
        default_value = "127.0.0.1:8000"
    )]
    pub store_listen: SocketAddr,
    /// Address of the warehouse.
    #[arg(
        long,
        env = "FULFILLMENT_WAREHOUSE_LISTEN",
        default_value = "127.0.0.1:8001"
    )]
    pub warehouse_listen: SocketAddr,
}

#[derive(Debug, Serialize, Deserialize)]
struct SideCredentials {
    url: String,
    admin_user: String,
    admin_password: String,
    api_token: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Credentials {
    store: SideCredentials,
    warehouse: SideCredentials,
    /// The demo's shared sync secret, kept so a restart signs the same way.
    sync_secret: String,
}

fn db_url(dir: &Path, role: Role) -> String {
    format!("sqlite://{}", dir.join(format!("{role}.db")).display())
}

/// Writes the file readable by its owner only, atomically.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

async fn side_credentials(
    dir: &Path,
    role: Role,
    listen: SocketAddr,
) -> anyhow::Result<SideCredentials> {
    let db = Db::open(&db_url(dir, role), role, &DbOptions::default()).await?;
    let password = credentials::new_password();
    credentials::create_user(&db, "admin", &password)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the {role} admin: {e}"))?;
    let token = credentials::create_token(&db, role, "demo")
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the {role} API token: {e}"))?;
    db.close().await;
    Ok(SideCredentials {
        url: format!("http://{listen}"),
        admin_user: "admin".into(),
        admin_password: password,
        api_token: token,
    })
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let dir = args.data_dir.as_path();
    let cred_path = dir.join("credentials.json");
    let first_start = !cred_path.exists();
    let mut creds: Credentials = if first_start {
        let creds = Credentials {
            store: side_credentials(dir, Role::Store, args.store_listen).await?,
            warehouse: side_credentials(dir, Role::Warehouse, args.warehouse_listen).await?,
            sync_secret: credentials::new_password() + &credentials::new_password(),
        };
        write_private(&cred_path, &serde_json::to_vec_pretty(&creds)?)?;
        creds
    } else {
        let raw = std::fs::read(&cred_path)
            .with_context(|| format!("cannot read {}", cred_path.display()))?;
        serde_json::from_slice(&raw).with_context(|| {
            format!(
                "{} is not a demo credentials file; move it away to start afresh",
                cred_path.display()
            )
        })?
    };

    let store_cfg = ServiceConfig::new(
        Role::Store,
        db_url(dir, Role::Store),
        format!("http://{}", args.warehouse_listen),
        creds.sync_secret.clone(),
    );
    let warehouse_cfg = ServiceConfig::new(
        Role::Warehouse,
        db_url(dir, Role::Warehouse),
        format!("http://{}", args.store_listen),
        creds.sync_secret.clone(),
    );
    let store = Service::bind(store_cfg, args.store_listen).await?;
    let warehouse = match Service::bind(warehouse_cfg, args.warehouse_listen).await {
        Ok(w) => w,
        Err(e) => {
            store.stop().await;
            return Err(e);
        }
    };
    // The addresses may have changed since the credentials were written.
    creds.store.url = store.url();
    creds.warehouse.url = warehouse.url();
    write_private(&cred_path, &serde_json::to_vec_pretty(&creds)?)?;

    if first_start {
        eprintln!("seeding demo orders…");
        if let Err(e) = seed(store.engine(), warehouse.engine()).await {
            eprintln!("warning: demo seeding incomplete: {e}");
        }
    }

    println!();
    println!(
        "  store      {}/admin/   (API {}/api/v1/orders)",
        store.url(),
        store.url()
    );
    println!(
        "  warehouse  {}/admin/   (API {}/api/v1/orders)",
        warehouse.url(),
        warehouse.url()
    );
    println!(
        "  credentials (admin passwords, API tokens): {}",
        cred_path.display()
    );
    println!();
    println!(
        "  try:  TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"store\"][\"api_token\"])' {})",
        cred_path.display()
    );
    println!(
        "        curl -H \"Authorization: Bearer $TOKEN\" {}/api/v1/orders",
        store.url()
    );
    println!(
        "  Ctrl-C stops both services; data stays in {}",
        dir.display()
    );

    stop.await;
    eprintln!("shutting down: finishing in-flight requests and relay batches");
    tokio::join!(store.stop(), warehouse.stop());
    Ok(())
}

/// A demo order: customer, city/country, lines (sku, name, qty, price).
type DemoOrder = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, i64, i64)],
);

const DEMO_ORDERS: &[DemoOrder] = &[
    (
        "Ada Lovelace",
        "ada@example.com",
        "London",
        "GB",
        &[
            ("WID-1", "Widget", 2, 1999),
            ("GEAR-7", "Brass gear", 1, 450),
        ],
    ),
    (
        "Grace Hopper",
        "grace@example.com",
        "Arlington",
        "US",
        &[("NANO-1", "Nanosecond wire", 10, 99)],
    ),
    (
        "Katherine Johnson",
        "katherine@example.com",
        "Hampton",
        "US",
        &[("CALC-2", "Slide rule", 1, 4500)],
    ),
    (
        "Alan Turing",
        "alan@example.com",
        "Manchester",
        "GB",
        &[
            ("TAPE-9", "Paper tape", 3, 250),
            ("BOMB-1", "Rotor drum", 1, 12000),
        ],
    ),
    (
        "Hedy Lamarr",
        "hedy@example.com",
        "Vienna",
        "AT",
        &[("FREQ-5", "Frequency hopper", 1, 7900)],
    ),
    (
        "Edsger Dijkstra",
        "edsger@example.com",
        "Eindhoven",
        "NL",
        &[("PATH-3", "Shortest path map", 2, 1250)],
    ),
];

async fn seed(store: &Engine, warehouse: &Engine) -> anyhow::Result<()> {
    let actor = Actor::System("demo".into());
    let mut ids: Vec<OrderId> = Vec::new();
    for (name, email, city, country, lines) in DEMO_ORDERS {
        let input = CreateOrderInput {
            customer: Some(CustomerInput {
                name: Some((*name).into()),
                email: Some((*email).into()),
                company: None,
            }),
            shipping_address: Some(AddressInput {
                name: Some((*name).into()),
                line1: Some("1 Example Street".into()),
                line2: None,
                city: Some((*city).into()),
                region: None,
                postal_code: Some("12345".into()),
                country: Some((*country).into()),
            }),
            lines: Some(
                lines
                    .iter()
                    .map(|(sku, n, q, p)| PricedLineInput {
                        sku: Some((*sku).into()),
                        name: Some((*n).into()),
                        quantity: Some(*q),
                        unit_price: Some(*p),
                    })
                    .collect(),
            ),
            currency: Some(if *country == "US" { "USD" } else { "EUR" }.into()),
            shipping_cost: Some(500),
            notes: None,
            deliver_by: None,
        };
        let (content, pricing) = input
            .parse()
            .map_err(|e| anyhow::anyhow!("demo order invalid: {e:?}"))?;
        if let Created::New(v) = store
            .create_order(&actor, content, pricing, None, |_| String::new())
            .await?
        {
            ids.push(v.order.id);
        }
    }
    // The orders reach the warehouse through the relay, like any other.
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in &ids {
        while warehouse.get(*id).await.is_err() {
            if Instant::now() > deadline {
                anyhow::bail!("demo orders did not reach the warehouse in time");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let ship = |carrier: &str, tracking: &str| Action::Ship {
        carrier: carrier.into(),
        tracking_number: tracking.into(),
    };
    let plans: Vec<Vec<Action>> = vec![
        vec![
            Action::Pick,
            Action::Pack,
            ship("UPS", "1Z999AA10123456784"),
        ],
        vec![
            Action::Pick,
            Action::Pack,
            ship("DHL", "JD014600006281230418"),
        ],
        vec![Action::Hold {
            reason: "address needs checking".into(),
        }],
        vec![Action::Pick],
        vec![],
        vec![],
    ];
    for (id, plan) in ids.iter().zip(plans) {
        for action in plan {
            warehouse.transition(&actor, *id, action).await?;
        }
    }
    if let Some(id) = ids.get(4) {
        store
            .request_cancel(&actor, *id, Some("customer changed their mind".into()))
            .await?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while warehouse
            .get(*id)
            .await
            .map(|v| v.order.fulfillment.map(|f| f.status))
            .ok()
            .flatten()
            != Some(FulfillmentStatus::Cancelled)
        {
            if Instant::now() > deadline {
                anyhow::bail!("the demo cancellation did not reach the warehouse in time");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
