//! `fulfillment demo`: a store and two warehouses, `eu` and `us`, in one
//! process, on SQLite files in one directory, with credentials and (while
//! its databases hold no orders) demo orders that travel the real sync path,
//! two of them split between the warehouses. It binds its three addresses
//! before it creates anything, so a port in use leaves no half-made
//! directory behind.
//!
//! The store knows each warehouse as a row of its `warehouses` table (its
//! URL, routing settings and a secret of its own), exactly as an operator
//! would add it; each warehouse service signs with that secret and talks to
//! the store only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::domain::order::{AddressInput, CreateOrderInput, CustomerInput, PricedLineInput};
use crate::domain::warehouse::{WarehouseInput, WarehouseName};
use crate::domain::{Action, Actor, FulfillmentStatus, Role};
use crate::engine::{Created, Engine, OrderView, credentials};
use crate::service::{Service, ServiceConfig, listen_on, shutdown_signal};
use crate::storage::orders::ListFilter;
use crate::storage::{Db, DbOptions};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the SQLite databases (store.db, warehouse-eu.db,
    /// warehouse-us.db) and credentials.json.
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
    /// Address of the warehouse `eu` (ships within Europe).
    #[arg(
        long,
        visible_alias = "eu-listen",
        env = "FULFILLMENT_WAREHOUSE_LISTEN",
        default_value = "127.0.0.1:8001"
    )]
    pub warehouse_listen: SocketAddr,
    /// Address of the warehouse `us` (ships anywhere; the only one with the
    /// bulky BIG- goods).
    #[arg(long, env = "FULFILLMENT_US_LISTEN", default_value = "127.0.0.1:8002")]
    pub us_listen: SocketAddr,
}

/// A warehouse of the demo: its name (at the store and in
/// credentials.json) and the routing settings it starts with.
struct DemoWarehouse {
    name: &'static str,
    /// Where it ships; empty: everywhere.
    countries: &'static [&'static str],
    /// The SKUs it stocks, by prefix.
    sku_prefixes: &'static [&'static str],
}

/// Ships within Europe the ranges it stocks.
const EU: DemoWarehouse = DemoWarehouse {
    name: "eu",
    countries: &["GB", "IE", "FR", "DE", "NL", "ES", "IT", "AT"],
    sku_prefixes: &["WID-", "GEAR-", "TAPE-", "BOMB-", "FREQ-", "PATH-"],
};

/// Ships anywhere the ranges it stocks, among them the bulky `BIG-` goods
/// that only it has. Neither warehouse stocks every range, so an order to
/// Europe with a `BIG-` line and a European one is split: one part at each
/// (docs/API.md §4.6).
const US: DemoWarehouse = DemoWarehouse {
    name: "us",
    countries: &[],
    sku_prefixes: &["NANO-", "CALC-", "BIG-"],
};

/// The demo's warehouses; the first is the one older demos ran alone.
const WAREHOUSES: [&DemoWarehouse; 2] = [&EU, &US];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SideCredentials {
    url: String,
    admin_user: String,
    admin_password: String,
    api_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WarehouseCredentials {
    #[serde(flatten)]
    side: SideCredentials,
    /// The secret this warehouse service signs with, and the store knows it
    /// by.
    sync_secret: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Credentials {
    store: SideCredentials,
    /// The first warehouse (`eu`), as older demos wrote it.
    warehouse: SideCredentials,
    /// Every warehouse, by name (absent in a directory of an older demo).
    #[serde(default)]
    warehouses: BTreeMap<String, WarehouseCredentials>,
    /// The store's own sync secret (`serve --sync-secret`): what a warehouse
    /// added without a secret of its own signs with. In a directory of an
    /// older demo, also `eu`'s.
    sync_secret: String,
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A warehouse's database: `warehouse-NAME.db`, but for the first
/// warehouse in a directory of an older demo, its `warehouse.db`.
fn warehouse_db(dir: &Path, w: &DemoWarehouse) -> PathBuf {
    let own = dir.join(format!("warehouse-{}.db", w.name));
    let legacy = dir.join("warehouse.db");
    if w.name == WAREHOUSES[0].name && !own.exists() && legacy.exists() {
        legacy
    } else {
        own
    }
}

/// A new random secret.
fn new_secret() -> String {
    credentials::new_password() + &credentials::new_password()
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

/// Creates the admin user and API token of one service of a new demo
/// directory (`dir`), in its database.
async fn side_credentials(
    db_file: &Path,
    role: Role,
    listen: SocketAddr,
    dir: &Path,
) -> anyhow::Result<SideCredentials> {
    let db = Db::open(&sqlite_url(db_file), role, &DbOptions::default()).await?;
    let password = credentials::new_password();
    // An admin already there: the database outlived its credentials.json,
    // whose passwords are the only copy.
    credentials::create_user(&db, "admin", &password)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create the {role} admin in {}: {e}; {} has no credentials.json \
                 for it: move the directory away to start afresh",
                db_file.display(),
                dir.display()
            )
        })?;
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

/// A running warehouse of the demo, and the name the store knows it by.
struct Running {
    demo: &'static DemoWarehouse,
    /// Its row at the store: its own name, or `main` for the warehouse of a
    /// directory of an older demo (whose orders are routed to `main`).
    row: String,
    service: Service,
}

/// Binds the demo's three addresses, before anything else is made: a port
/// in use then stops the demo with nothing created, and the message names
/// the port and how to choose another.
fn bind_all(args: &DemoArgs) -> anyhow::Result<(TcpListener, Vec<TcpListener>)> {
    let named = [
        ("store", args.store_listen),
        ("warehouse eu", args.warehouse_listen),
        ("warehouse us", args.us_listen),
    ];
    for (i, (a, addr)) in named.iter().enumerate() {
        // Port 0 is "any free port", a different one each time.
        let same = |other: &SocketAddr| other == addr && addr.port() != 0;
        if let Some((b, _)) = named[i + 1..].iter().find(|(_, other)| same(other)) {
            anyhow::bail!(
                "the {a} and the {b} are both given {addr}; give each its own port \
                 (--store-listen, --eu-listen, --us-listen)"
            );
        }
    }
    let bind = |addr: SocketAddr, what: &str, how: &str| {
        listen_on(addr).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {addr} for the {what}: {e}; stop what uses port {}, \
                 or choose another address with {how}",
                addr.port()
            )
        })
    };
    let store = bind(
        args.store_listen,
        "store",
        "--store-listen or FULFILLMENT_STORE_LISTEN",
    )?;
    let mut warehouses = Vec::new();
    for w in WAREHOUSES {
        let listener = if w.name == EU.name {
            bind(
                args.warehouse_listen,
                "warehouse eu",
                "--eu-listen (or --warehouse-listen) or FULFILLMENT_WAREHOUSE_LISTEN",
            )?
        } else {
            bind(
                args.us_listen,
                "warehouse us",
                "--us-listen or FULFILLMENT_US_LISTEN",
            )?
        };
        warehouses.push(listener);
    }
    Ok((store, warehouses))
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let (store_listener, warehouse_listeners) = bind_all(&args)?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let dir = args.data_dir.as_path();
    let listen = |w: &DemoWarehouse| {
        if w.name == EU.name {
            args.warehouse_listen
        } else {
            args.us_listen
        }
    };
    let cred_path = dir.join("credentials.json");
    let store_db = dir.join("store.db");

    // Credentials: made on the first start; a directory of an older demo
    // (one warehouse) keeps its own, its warehouse becomes `eu`.
    let stored: Option<Credentials> = if cred_path.exists() {
        let raw = std::fs::read(&cred_path)
            .with_context(|| format!("cannot read {}", cred_path.display()))?;
        Some(serde_json::from_slice(&raw).with_context(|| {
            format!(
                "{} is not a demo credentials file; move it away to start afresh",
                cred_path.display()
            )
        })?)
    } else {
        None
    };
    let (store_creds, legacy, mut warehouses, sync_secret) = match stored {
        Some(c) => (c.store, Some(c.warehouse), c.warehouses, c.sync_secret),
        None => (
            side_credentials(&store_db, Role::Store, args.store_listen, dir).await?,
            None,
            BTreeMap::new(),
            new_secret(),
        ),
    };
    let mut upgraded = false;
    for w in WAREHOUSES {
        if warehouses.contains_key(w.name) {
            continue;
        }
        let entry = match &legacy {
            Some(old) if w.name == EU.name => {
                upgraded = true;
                WarehouseCredentials {
                    side: old.clone(),
                    sync_secret: sync_secret.clone(),
                }
            }
            _ => WarehouseCredentials {
                side: side_credentials(&warehouse_db(dir, w), Role::Warehouse, listen(w), dir)
                    .await?,
                sync_secret: new_secret(),
            },
        };
        warehouses.insert(w.name.to_owned(), entry);
    }
    let mut creds = Credentials {
        store: store_creds,
        warehouse: warehouses[EU.name].side.clone(),
        warehouses,
        sync_secret,
    };
    write_private(&cred_path, &serde_json::to_vec_pretty(&creds)?)?;

    // The store has no --peer-url: its warehouses are rows, added below.
    let store_cfg = ServiceConfig::new(
        Role::Store,
        sqlite_url(&store_db),
        "",
        creds.sync_secret.clone(),
    );
    let store = Service::start(store_cfg, store_listener).await?;
    let mut running: Vec<Running> = Vec::new();
    for (w, listener) in WAREHOUSES.into_iter().zip(warehouse_listeners) {
        let cfg = ServiceConfig::new(
            Role::Warehouse,
            sqlite_url(&warehouse_db(dir, w)),
            store.url(),
            creds.warehouses[w.name].sync_secret.clone(),
        );
        match Service::start(cfg, listener).await {
            Ok(service) => running.push(Running {
                demo: w,
                row: w.name.to_owned(),
                service,
            }),
            Err(e) => {
                stop_all(store, running).await;
                return Err(e);
            }
        }
    }
    if let Err(e) = know_warehouses(store.engine(), &mut running, &creds, upgraded).await {
        stop_all(store, running).await;
        return Err(e);
    }
    // The addresses may have changed since the credentials were written.
    creds.store.url = store.url();
    for r in &running {
        if let Some(c) = creds.warehouses.get_mut(r.demo.name) {
            c.side.url = r.service.url();
        }
    }
    creds.warehouse = creds.warehouses[EU.name].side.clone();
    write_private(&cred_path, &serde_json::to_vec_pretty(&creds)?)?;

    match to_seed(store.engine(), &running).await {
        Ok(orders) if orders.is_empty() => {}
        Ok(orders) => {
            eprintln!("seeding demo orders…");
            if let Err(e) = seed(store.engine(), &running, &orders).await {
                eprintln!("warning: demo seeding incomplete: {e}");
            }
        }
        Err(e) => eprintln!("warning: demo orders not seeded: {e}"),
    }

    banner(&store, &running, &cred_path, dir).await;

    stop.await;
    eprintln!("shutting down: finishing in-flight requests and relay batches");
    stop_all(store, running).await;
    Ok(())
}

/// Which demo orders to seed, from what the databases hold rather than
/// whether the directory is new (a first start that failed half-way leaves
/// a directory with credentials and no orders):
/// - no database holds an order: all of them;
/// - the store holds orders but not the split ones (a directory of the older
///   one-warehouse demo, which never had them): the split orders;
/// - otherwise none. Nor when the store holds none but a warehouse does
///   (store.db removed by hand): their numbers would clash.
async fn to_seed(store: &Engine, running: &[Running]) -> anyhow::Result<Vec<&'static DemoOrder>> {
    let one = |search: Option<&str>| ListFilter {
        search: search.map(str::to_owned),
        limit: 1,
        ..Default::default()
    };
    if store.list(&one(None)).await?.is_empty() {
        for r in running {
            if !r.service.engine().list(&one(None)).await?.is_empty() {
                anyhow::bail!(
                    "the store holds no orders but warehouse {} does; remove the data \
                     directory to start afresh",
                    r.demo.name
                );
            }
        }
        return Ok(DEMO_ORDERS.iter().chain(SPLIT_ORDERS).collect());
    }
    // By its customer's e-mail address: no other demo order has it.
    let split = store.list(&one(Some(SPLIT_ORDERS[0].email))).await?;
    Ok(if split.is_empty() {
        SPLIT_ORDERS.iter().collect()
    } else {
        Vec::new()
    })
}

/// Stops every service at once.
async fn stop_all(store: Service, running: Vec<Running>) {
    let mut stopping = tokio::task::JoinSet::new();
    stopping.spawn(store.stop());
    for r in running {
        stopping.spawn(r.service.stop());
    }
    while stopping.join_next().await.is_some() {}
}

/// Makes the store know each running warehouse at its current address:
/// added with its routing settings and secret the first time, its URL
/// brought up to date afterwards (routing settings changed since are kept).
/// In a directory of an older demo, the store's `main` is `eu`.
async fn know_warehouses(
    store: &Engine,
    running: &mut [Running],
    creds: &Credentials,
    upgraded: bool,
) -> anyhow::Result<()> {
    let known: Vec<String> = store
        .warehouses()
        .await?
        .into_iter()
        .map(|w| w.name.to_string())
        .collect();
    let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    for r in running {
        let w = r.demo;
        let url = r.service.url();
        let routing = WarehouseInput {
            countries: Some(list(w.countries)),
            sku_prefixes: Some(list(w.sku_prefixes)),
            ..Default::default()
        };
        if known.iter().any(|k| k == w.name) {
            let input = WarehouseInput {
                url: Some(url),
                ..Default::default()
            };
            store.update_warehouse(w.name, &input).await?;
        } else if w.name == EU.name && known.iter().any(|k| k == WarehouseName::MAIN) {
            r.row = WarehouseName::MAIN.to_owned();
            let input = WarehouseInput {
                url: Some(url),
                ..if upgraded {
                    routing
                } else {
                    Default::default()
                }
            };
            store.update_warehouse(WarehouseName::MAIN, &input).await?;
        } else {
            let input = WarehouseInput {
                name: Some(w.name.to_owned()),
                url: Some(url),
                secret: Some(creds.warehouses[w.name].sync_secret.clone()),
                ..routing
            };
            store.add_warehouse(&input).await?;
        }
    }
    Ok(())
}

/// What the banner prints: the three services, where the logins are, how
/// orders are routed, and a split order.
async fn banner(store: &Service, running: &[Running], cred_path: &Path, dir: &Path) {
    let cred = cred_path.display();
    println!();
    let line = |label: &str, url: &str| {
        println!("  {label:<13} {url}/admin/   (API {url}/api/v1/orders)");
    };
    line("store", &store.url());
    for r in running {
        line(&format!("warehouse {}", r.demo.name), &r.service.url());
    }
    println!("  admin logins: user \"admin\" on each; the passwords and API tokens are in");
    println!("                {cred} (store.*, warehouses.eu.*, warehouses.us.*)");
    if let Ok(rows) = store.engine().warehouses().await {
        println!(
            "  routing (a line goes to a warehouse that ships to the country and stocks the SKU):"
        );
        for r in running {
            let Some(w) = rows.iter().find(|w| w.name.to_string() == r.row) else {
                continue;
            };
            let countries = if w.countries.is_empty() {
                "anywhere".to_owned()
            } else {
                w.countries
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let skus = if w.sku_prefixes.is_empty() {
                "every SKU".to_owned()
            } else {
                w.sku_prefixes.join(" ")
            };
            let alias = if r.row == r.demo.name {
                String::new()
            } else {
                format!(" (the store's {})", r.row)
            };
            println!(
                "    {}{alias}: ships to {countries}; stocks {skus}",
                r.demo.name
            );
        }
    }
    let split = split_order(store.engine(), running).await;
    if let Some((number, parts)) = &split {
        println!("  a split order: {number}, in parts {parts}");
    }
    println!();
    println!(
        "  try:  TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"store\"][\"api_token\"])' {cred})"
    );
    // The split order, with its `parts`; else every order.
    let query = split.map_or(String::new(), |(number, _)| format!("?q={number}"));
    println!(
        "        curl -H \"Authorization: Bearer $TOKEN\" '{}/api/v1/orders{query}'",
        store.url()
    );
    println!(
        "  Ctrl-C stops the three services; data stays in {}",
        dir.display()
    );
}

/// The oldest order split between warehouses: its number, and its parts'
/// numbers with their warehouses.
async fn split_order(store: &Engine, running: &[Running]) -> Option<(String, String)> {
    let filter = ListFilter {
        limit: 200,
        ..Default::default()
    };
    let orders = store.list(&filter).await.ok()?;
    let split = orders
        .iter()
        .rev()
        .find(|o| o.parts.iter().filter(|p| !p.withdrawn).count() > 1)?;
    let parts: Vec<String> = split
        .parts
        .iter()
        .filter(|p| !p.withdrawn)
        .map(|p| {
            let at = running
                .iter()
                .find(|r| r.row == p.warehouse)
                .map_or(p.warehouse.as_str(), |r| r.demo.name);
            format!("{} at {at}", p.order.number)
        })
        .collect();
    Some((split.order.number.clone(), parts.join(", ")))
}

/// A step staff take at a warehouse.
enum Step {
    Pick,
    Pack,
    Ship(&'static str, &'static str),
    Hold(&'static str),
}

impl Step {
    fn action(&self) -> Action {
        match self {
            Step::Pick => Action::Pick,
            Step::Pack => Action::Pack,
            Step::Ship(carrier, tracking) => Action::Ship {
                carrier: (*carrier).into(),
                tracking_number: (*tracking).into(),
            },
            Step::Hold(reason) => Action::Hold {
                reason: (*reason).into(),
            },
        }
    }
}

/// A demo order: customer, where it goes, its lines, and what happens to
/// it afterwards.
struct DemoOrder {
    name: &'static str,
    email: &'static str,
    city: &'static str,
    country: &'static str,
    /// sku, name, quantity, unit price.
    lines: &'static [(&'static str, &'static str, i64, i64)],
    /// What each warehouse (by demo name) does with its part.
    plan: &'static [(&'static str, &'static [Step])],
    /// The customer changes their mind: the store requests cancellation.
    cancel: bool,
}

const SHIP_UPS: &[Step] = &[
    Step::Pick,
    Step::Pack,
    Step::Ship("UPS", "1Z999AA10123456784"),
];
const SHIP_DHL: &[Step] = &[
    Step::Pick,
    Step::Pack,
    Step::Ship("DHL", "JD014600006281230418"),
];

/// Orders each warehouse takes whole.
const DEMO_ORDERS: &[DemoOrder] = &[
    DemoOrder {
        name: "Ada Lovelace",
        email: "ada@example.com",
        city: "London",
        country: "GB",
        lines: &[
            ("WID-1", "Widget", 2, 1999),
            ("GEAR-7", "Brass gear", 1, 450),
        ],
        plan: &[("eu", SHIP_UPS)],
        cancel: false,
    },
    DemoOrder {
        name: "Grace Hopper",
        email: "grace@example.com",
        city: "Arlington",
        country: "US",
        lines: &[("NANO-1", "Nanosecond wire", 10, 99)],
        plan: &[("us", SHIP_DHL)],
        cancel: false,
    },
    DemoOrder {
        name: "Katherine Johnson",
        email: "katherine@example.com",
        city: "Hampton",
        country: "US",
        lines: &[("CALC-2", "Slide rule", 1, 4500)],
        plan: &[("us", &[Step::Hold("address needs checking")])],
        cancel: false,
    },
    DemoOrder {
        name: "Alan Turing",
        email: "alan@example.com",
        city: "Manchester",
        country: "GB",
        lines: &[
            ("TAPE-9", "Paper tape", 3, 250),
            ("BOMB-1", "Rotor drum", 1, 12000),
        ],
        plan: &[("eu", &[Step::Pick])],
        cancel: false,
    },
    DemoOrder {
        name: "Hedy Lamarr",
        email: "hedy@example.com",
        city: "Vienna",
        country: "AT",
        lines: &[("FREQ-5", "Frequency hopper", 1, 7900)],
        plan: &[],
        cancel: true,
    },
    DemoOrder {
        name: "Edsger Dijkstra",
        email: "edsger@example.com",
        city: "Eindhoven",
        country: "NL",
        lines: &[("PATH-3", "Shortest path map", 2, 1250)],
        plan: &[],
        cancel: false,
    },
];

/// Orders no one warehouse takes whole (a European line and a `BIG-` one),
/// split into a part at `eu` and a part at `us`.
const SPLIT_ORDERS: &[DemoOrder] = &[
    DemoOrder {
        name: "Marie Curie",
        email: "marie@example.com",
        city: "Paris",
        country: "FR",
        lines: &[
            ("WID-2", "Small widget", 3, 999),
            ("BIG-GRILL", "Barbecue grill", 1, 24900),
        ],
        // One part shipped, the other not yet: partially shipped.
        plan: &[(
            "eu",
            &[Step::Pick, Step::Pack, Step::Ship("DPD", "15501234567890")],
        )],
        cancel: false,
    },
    DemoOrder {
        name: "Sophie Wilson",
        email: "sophie@example.com",
        city: "Cambridge",
        country: "GB",
        lines: &[
            ("GEAR-7", "Brass gear", 4, 450),
            ("BIG-OVEN", "Pizza oven", 1, 39900),
        ],
        plan: &[],
        cancel: false,
    },
];

/// How long seeding waits for the relays.
const SEED_WAIT: Duration = Duration::from_secs(15);

async fn create(store: &Engine, actor: &Actor, o: &DemoOrder) -> anyhow::Result<OrderView> {
    let input = CreateOrderInput {
        customer: Some(CustomerInput {
            name: Some(o.name.into()),
            email: Some(o.email.into()),
            company: None,
        }),
        shipping_address: Some(AddressInput {
            name: Some(o.name.into()),
            line1: Some("1 Example Street".into()),
            line2: None,
            city: Some(o.city.into()),
            region: None,
            postal_code: Some("12345".into()),
            country: Some(o.country.into()),
        }),
        lines: Some(
            o.lines
                .iter()
                .map(|(sku, n, q, p)| PricedLineInput {
                    sku: Some((*sku).into()),
                    name: Some((*n).into()),
                    quantity: Some(*q),
                    unit_price: Some(*p),
                })
                .collect(),
        ),
        currency: Some(if o.country == "US" { "USD" } else { "EUR" }.into()),
        shipping_cost: Some(500),
        notes: None,
        deliver_by: None,
    };
    let (content, pricing) = input
        .parse()
        .map_err(|e| anyhow::anyhow!("demo order invalid: {e:?}"))?;
    let Created::New(v) = store
        .create_order(actor, content, pricing, None, |_| String::new())
        .await?
    else {
        anyhow::bail!("a demo order without an idempotency key was replayed");
    };
    // Read back: the parts routing made.
    Ok(store.get(v.order.id).await?)
}

/// Waits until `done` holds, or fails with `what` after the deadline.
async fn wait_until<F, Fut>(deadline: Instant, what: &str, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while !done().await {
        if Instant::now() > deadline {
            anyhow::bail!("{what} in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn seed(store: &Engine, running: &[Running], orders: &[&DemoOrder]) -> anyhow::Result<()> {
    let actor = Actor::System("demo".into());
    let mut created = Vec::new();
    for o in orders {
        created.push((*o, create(store, &actor, o).await?));
    }
    let at = |row: &str| {
        running.iter().find(|r| r.row == row).ok_or_else(|| {
            anyhow::anyhow!("a demo order was routed to {row}, not a demo warehouse")
        })
    };
    // Each part reaches its warehouse through the relay, like any other.
    let deadline = Instant::now() + SEED_WAIT;
    for (_, view) in &created {
        if !view.unrouted.is_empty() {
            anyhow::bail!(
                "demo order {} has lines no warehouse takes",
                view.order.number
            );
        }
        for part in &view.parts {
            let engine = at(&part.warehouse)?.service.engine();
            let id = part.order.id;
            wait_until(
                deadline,
                "demo orders did not reach the warehouses",
                || async move { engine.get(id).await.is_ok() },
            )
            .await?;
        }
    }
    for (o, view) in &created {
        for part in &view.parts {
            let r = at(&part.warehouse)?;
            let steps = o
                .plan
                .iter()
                .filter(|(name, _)| *name == r.demo.name)
                .flat_map(|(_, steps)| steps.iter());
            for step in steps {
                r.service
                    .engine()
                    .transition(&actor, part.order.id, step.action())
                    .await?;
            }
        }
    }
    for (_, view) in created.iter().filter(|(o, _)| o.cancel) {
        store
            .request_cancel(
                &actor,
                view.order.id,
                Some("customer changed their mind".into()),
            )
            .await?;
        for part in &view.parts {
            let engine = at(&part.warehouse)?.service.engine();
            let id = part.order.id;
            wait_until(
                deadline + SEED_WAIT,
                "the demo cancellation did not reach the warehouse",
                || async move {
                    engine
                        .get(id)
                        .await
                        .ok()
                        .and_then(|v| v.order.fulfillment.map(|f| f.status))
                        == Some(FulfillmentStatus::Cancelled)
                },
            )
            .await?;
        }
    }
    Ok(())
}
