//! The binary as a user runs it: `demo` runs a store and two warehouses,
//! seeds orders (two split between the warehouses), serves, exits 0 on
//! SIGTERM, keeps its data across restarts and takes over the directory of
//! the older one-warehouse demo; with a port taken it fails at once, in one
//! line naming the port and how to choose another, creating nothing; it
//! seeds whenever its databases hold no orders; bad configuration is one line and a
//! non-zero exit, never a panic; `token create` prints only the token;
//! `outbox replay` selects dead letters by time or by several ids (against
//! services started with the API tests' harness, on SQLite and PostgreSQL);
//! `warehouse add|update|list` never print a secret, name the flag at fault
//! in one line, are refused at the warehouse, and a running store follows
//! them; `outbox status|replay --warehouse` name an unknown warehouse.

mod common;
// The API tests' harness (a store and a warehouse in this process).
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::db::TestDb;
use common::net::free_port;
use common::process::{Cmd, Proc, run, run_with_env};

/// The demo's ports: the store, then the warehouses `eu` and `us`.
#[derive(Clone, Copy)]
struct Ports {
    store: u16,
    eu: u16,
    us: u16,
}

/// Runs the CLI with `args` (and `stdin`), which must succeed: its
/// standard output, trimmed.
fn run_ok(args: &[&str], stdin: Option<&str>) -> String {
    let (ok, out, err) = run(args, stdin);
    assert!(ok, "{args:?}: {err}");
    out.trim().to_owned()
}

impl Ports {
    /// Three free loopback ports.
    fn free() -> Ports {
        Ports {
            store: free_port(),
            eu: free_port(),
            us: free_port(),
        }
    }
}

/// `demo` on `ports`, `us` given by flag or, with `us_by_env`, by its
/// variable (and `eu` by the flag's other name).
fn demo(dir: &Path, ports: Ports, us_by_env: bool) -> Proc {
    let mut cmd = Cmd::bin();
    cmd.args(["demo", "--data-dir"])
        .arg(dir)
        .args(["--store-listen", &format!("127.0.0.1:{}", ports.store)]);
    if us_by_env {
        cmd.args(["--eu-listen", &format!("127.0.0.1:{}", ports.eu)])
            .env("FULFILLMENT_US_LISTEN", format!("127.0.0.1:{}", ports.us));
    } else {
        cmd.args([
            "--warehouse-listen",
            &format!("127.0.0.1:{}", ports.eu),
            "--us-listen",
            &format!("127.0.0.1:{}", ports.us),
        ]);
    }
    cmd.spawn()
}

fn get(url: &str, token: &str) -> Option<Value> {
    let out = Cmd::program("curl")
        .args(["-sf", "-H", &format!("Authorization: Bearer {token}"), url])
        .output(None);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn terminate(mut child: Proc) -> std::process::ExitStatus {
    child
        .terminate(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("demo did not exit after SIGTERM"))
}

fn statuses_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|o| o["status"].as_str().map(str::to_owned))
        .collect()
}

/// What `GET /api/v1/orders?limit=100` at `port` lists, with `token`.
fn orders_at(port: u16, token: &str) -> Option<Vec<Value>> {
    get(
        &format!("http://127.0.0.1:{port}/api/v1/orders?limit=100"),
        token,
    )?["items"]
        .as_array()
        .cloned()
}

fn count(statuses: &[String], status: &str) -> usize {
    statuses.iter().filter(|s| *s == status).count()
}

#[test]
fn demo_seeds_serves_stops_cleanly_and_keeps_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = Ports::free();
    let child = demo(dir.path(), ports, false);
    let creds_path = dir.path().join("credentials.json");
    let creds: Value = wait_for(60, "credentials.json", || {
        std::fs::read(&creds_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds_path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "credentials are private");
    }
    let side = |path: &[&str]| path.iter().fold(&creds, |v, k| &v[*k]);
    for path in [
        &["store"][..],
        &["warehouse"],
        &["warehouses", "eu"],
        &["warehouses", "us"],
    ] {
        for key in ["url", "admin_user", "admin_password", "api_token"] {
            assert!(
                side(path)[key].as_str().is_some_and(|s| !s.is_empty()),
                "{path:?}.{key} missing: {creds}"
            );
        }
    }
    let token = |path: &[&str]| side(path)["api_token"].as_str().expect("token").to_owned();
    let store_token = token(&["store"]);
    let eu_token = token(&["warehouses", "eu"]);
    let us_token = token(&["warehouses", "us"]);
    assert_eq!(token(&["warehouse"]), eu_token, "`warehouse` is eu");
    assert_eq!(
        creds["warehouses"]["us"]["url"],
        format!("http://127.0.0.1:{}", ports.us)
    );

    // Seeded orders travel the real sync path to the warehouse each is
    // routed to and move through fulfillment there. eu: four orders and
    // the first part of each of the two split orders; us: two orders and
    // the second parts.
    let eu_seen = wait_for(60, "seeded orders at eu", || {
        let st = statuses_of(&orders_at(ports.eu, &eu_token)?);
        (st.len() == 6
            && count(&st, "shipped") == 2
            && count(&st, "cancelled") == 1
            && count(&st, "picking") == 1)
            .then_some(st)
    });
    assert_eq!(count(&eu_seen, "pending"), 2, "{eu_seen:?}");
    wait_for(60, "seeded orders at us", || {
        let st = statuses_of(&orders_at(ports.us, &us_token)?);
        (st.len() == 4 && count(&st, "shipped") == 1 && count(&st, "on_hold") == 1).then_some(())
    });
    // Each warehouse's token opens that warehouse only.
    assert!(orders_at(ports.us, &eu_token).is_none(), "eu's token at us");
    assert!(orders_at(ports.eu, &us_token).is_none(), "us's token at eu");
    assert!(
        orders_at(ports.store, &eu_token).is_none(),
        "eu's token at the store"
    );

    let store_orders = wait_for(30, "the store to hear about shipping", || {
        let items = orders_at(ports.store, &store_token)?;
        let st: Vec<String> = items
            .iter()
            .filter_map(|o| o["fulfillment"]["status"].as_str().map(str::to_owned))
            .collect();
        (count(&st, "shipped") == 2 && count(&st, "partially_shipped") == 1).then_some(items)
    });
    assert_eq!(store_orders.len(), 8, "six orders and two split ones");
    // The split orders: two parts each, one at each warehouse, each there
    // with its own id and number and the store order's id.
    let split: Vec<&Value> = store_orders
        .iter()
        .filter(|o| o["parts"].as_array().is_some_and(|p| p.len() == 2))
        .collect();
    assert_eq!(split.len(), 2, "two split orders");
    for order in split {
        let number = order["number"].as_str().expect("number");
        let parts = order["parts"].as_array().expect("parts");
        assert_eq!(
            parts
                .iter()
                .map(|p| p["warehouse"].clone())
                .collect::<Vec<_>>(),
            ["eu", "us"],
            "{order}"
        );
        assert_eq!(
            parts[0]["id"], order["id"],
            "the first part has the order's id"
        );
        assert!(
            order["routing"]["unrouted_lines"]
                .as_array()
                .is_some_and(Vec::is_empty)
        );
        for (i, (part, (port, token))) in parts
            .iter()
            .zip([(ports.eu, &eu_token), (ports.us, &us_token)])
            .enumerate()
        {
            let id = part["id"].as_str().expect("part id");
            let at = wait_for(30, "the part at its warehouse", || {
                get(
                    &format!("http://127.0.0.1:{port}/api/v1/orders/{id}"),
                    token,
                )
            });
            let expected = if i == 0 {
                number.to_owned()
            } else {
                format!("{number}-{}", i + 1)
            };
            assert_eq!(at["number"], expected.as_str(), "{at}");
            assert_eq!(at["order_id"], order["id"], "{at}");
            assert_eq!(at["part"], i as i64 + 1, "{at}");
            assert_eq!(
                at["lines"].as_array().map(Vec::len),
                Some(1),
                "a part holds only its warehouse's line: {at}"
            );
        }
    }
    let status = terminate(child);
    assert!(status.success(), "demo exits 0 on SIGTERM, got {status}");

    // Restart with the same directory (eu's address by the flag's other
    // name, us's from the environment): same credentials, same data, no
    // reseed.
    let child = demo(dir.path(), ports, true);
    let list = wait_for(60, "restarted store", || {
        orders_at(ports.store, &store_token)
    });
    assert_eq!(list.len(), 8, "no second seeding");
    let eu = wait_for(60, "restarted eu", || orders_at(ports.eu, &eu_token));
    let us = wait_for(60, "restarted us", || orders_at(ports.us, &us_token));
    assert_eq!((eu.len(), us.len()), (6, 4));
    let again: Value =
        serde_json::from_slice(&std::fs::read(&creds_path).expect("read")).expect("json");
    assert_eq!(again["store"]["api_token"], creds["store"]["api_token"]);
    assert_eq!(again["warehouses"], creds["warehouses"]);
    assert!(terminate(child).success());
}

/// A directory left by the demo of one warehouse (`warehouse.db`, the
/// store's warehouse `main`, credentials without `warehouses`), made here
/// with the CLI as that demo made it, and an order made while it ran: the
/// demo keeps its files, credentials and order, takes its warehouse as
/// `eu` (the store's `main`, now with eu's routing), adds `us` beside it
/// and seeds the split orders only.
#[test]
fn demo_takes_over_a_directory_of_the_one_warehouse_demo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = Ports::free();
    let db = |file: &str| format!("sqlite://{}", dir.path().join(file).display());
    let (store_db, wh_db) = (db("store.db"), db("warehouse.db"));
    let cli = run_ok;
    let mut old = serde_json::Map::new();
    for (side, role, url, port) in [
        ("store", "store", &store_db, ports.store),
        ("warehouse", "warehouse", &wh_db, ports.eu),
    ] {
        cli(
            &[
                "user",
                "create",
                "--role",
                role,
                "--database-url",
                url,
                "--username",
                "admin",
                "--password-stdin",
            ],
            Some("an old demo password\n"),
        );
        let token = cli(
            &[
                "token",
                "create",
                "--role",
                role,
                "--database-url",
                url,
                "--name",
                "demo",
            ],
            None,
        );
        old.insert(
            side.into(),
            serde_json::json!({
                "url": format!("http://127.0.0.1:{port}"),
                "admin_user": "admin",
                "admin_password": "an old demo password",
                "api_token": token,
            }),
        );
    }
    cli(
        &[
            "warehouse",
            "add",
            "--role",
            "store",
            "--database-url",
            &store_db,
            "--name",
            "main",
            "--url",
            &format!("http://127.0.0.1:{}", ports.eu),
        ],
        None,
    );
    old.insert("sync_secret".into(), "the old demo's shared secret".into());
    let old = Value::Object(old);
    let creds_path = dir.path().join("credentials.json");
    std::fs::write(&creds_path, serde_json::to_vec_pretty(&old).expect("json")).expect("write");
    let store_token = old["store"]["api_token"].as_str().expect("token");
    let eu_token = old["warehouse"]["api_token"].as_str().expect("token");

    // The old demo's one order, made while it ran: the demo seeds from what
    // the databases hold, so a directory with orders but none at `us` gets
    // the split orders only.
    let serve = |role: &str, url: &str, port: u16, peer: u16| {
        Cmd::bin()
            .args(["serve", "--role", role, "--database-url", url])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--peer-url", &format!("http://127.0.0.1:{peer}")])
            .env("FULFILLMENT_SYNC_SECRET", "the old demo's shared secret")
            .spawn()
    };
    let mut old_store = serve("store", &store_db, ports.store, ports.eu);
    let mut old_wh = serve("warehouse", &wh_db, ports.eu, ports.store);
    old_store.wait_ready(ports.store, Duration::from_secs(60));
    old_wh.wait_ready(ports.eu, Duration::from_secs(60));
    let order = serde_json::json!({
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "shipping_address": {"name": "Ada Lovelace", "line1": "1 Example Street",
                             "city": "London", "postal_code": "12345", "country": "GB"},
        "lines": [{"sku": "WID-1", "name": "Widget", "quantity": 1, "unit_price": 1999}],
        "currency": "GBP",
        "shipping_cost": 0
    });
    let out = Cmd::program("curl")
        .args(["-sf", "-X", "POST", "-H", "Content-Type: application/json"])
        .args(["-H", &format!("Authorization: Bearer {store_token}")])
        .args(["--data", &order.to_string()])
        .arg(format!("http://127.0.0.1:{}/api/v1/orders", ports.store))
        .output(None);
    assert!(out.status.success(), "the old demo's order: {out:?}");
    wait_for(30, "the old demo's order at its warehouse", || {
        orders_at(ports.eu, eu_token).filter(|o| o.len() == 1)
    });
    terminate(old_store);
    terminate(old_wh);

    let child = demo(dir.path(), ports, false);
    let items = wait_for(60, "the split orders at the store", || {
        let items = orders_at(ports.store, store_token)?;
        (items.len() == 3
            && items[..2].iter().all(|o| {
                o["parts"].as_array().is_some_and(|p| p.len() == 2)
                    && o["sync"]["state"] == "synced"
            }))
        .then_some(items)
    });
    for o in &items[..2] {
        assert_eq!(o["parts"][0]["warehouse"], "main", "{o}");
        assert_eq!(o["parts"][1]["warehouse"], "us", "{o}");
    }
    assert_eq!(items[2]["customer"]["name"], "Ada Lovelace", "{items:?}");
    let eu = wait_for(30, "eu's parts", || {
        orders_at(ports.eu, eu_token).filter(|o| o.len() == 3)
    });
    assert_eq!(
        eu.len(),
        3,
        "the old order and the first parts, in warehouse.db"
    );
    assert!(!dir.path().join("warehouse-eu.db").exists());
    let creds: Value =
        serde_json::from_slice(&std::fs::read(&creds_path).expect("read")).expect("json");
    assert_eq!(creds["store"], old["store"]);
    assert_eq!(creds["warehouse"], old["warehouse"]);
    assert_eq!(creds["warehouses"]["eu"]["api_token"], eu_token);
    assert_eq!(creds["warehouses"]["eu"]["sync_secret"], old["sync_secret"]);
    let us_token = creds["warehouses"]["us"]["api_token"]
        .as_str()
        .expect("us token");
    assert_eq!(
        orders_at(ports.us, us_token).map(|v| v.len()),
        Some(2),
        "the second parts"
    );
    let warehouses = get(
        &format!("http://127.0.0.1:{}/api/v1/warehouses", ports.store),
        store_token,
    )
    .expect("warehouses");
    let names: Vec<&str> = warehouses["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(names, ["main", "us"], "{warehouses}");
    assert_eq!(warehouses["items"][0]["countries"][0], "GB", "{warehouses}");
    assert!(terminate(child).success());
}

/// `demo` into `data` with one of its three addresses taken by another
/// process: it exits at once, non-zero, with one line naming the port and
/// the flag and variable that choose another, and creates nothing (a
/// half-made directory used to keep the next start from seeding); so does
/// one port given twice. With free ports, the same command seeds the demo
/// orders.
#[test]
fn demo_with_a_port_in_use_fails_at_once_creates_nothing_then_seeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let ports = || Ports::free();
    type Take = fn(&mut Ports, u16);
    let cases: [(&str, Take, &[&str]); 3] = [
        (
            "store",
            |p, port| p.store = port,
            &["--store-listen", "FULFILLMENT_STORE_LISTEN"],
        ),
        (
            "warehouse eu",
            |p, port| p.eu = port,
            &["--eu-listen", "FULFILLMENT_WAREHOUSE_LISTEN"],
        ),
        (
            "warehouse us",
            |p, port| p.us = port,
            &["--us-listen", "FULFILLMENT_US_LISTEN"],
        ),
    ];
    for (what, take, names) in cases {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let mut p = ports();
        take(&mut p, port);
        let log = dir.path().join("failed.log");
        let _ = std::fs::remove_file(&log);
        let mut cmd = Cmd::bin();
        cmd.args(["demo", "--data-dir"])
            .arg(&data)
            .args(["--store-listen", &format!("127.0.0.1:{}", p.store)])
            .args(["--eu-listen", &format!("127.0.0.1:{}", p.eu)])
            .args(["--us-listen", &format!("127.0.0.1:{}", p.us)])
            .log_to(&log);
        let started = Instant::now();
        let mut child = cmd.spawn();
        let status = wait_for(30, "demo to give up on the taken port", || child.exited());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: it fails at once, took {:?}",
            started.elapsed()
        );
        let err = child.log_text();
        let port_text = format!("port {port}");
        let mut expected = vec![what, port_text.as_str()];
        expected.extend_from_slice(names);
        one_error_line(what, &(status.success(), String::new(), err), &expected);
        assert!(
            !data.exists(),
            "{what}: nothing is created when a port is taken"
        );
        drop(taken);
    }

    // The same address twice is the demo's own mistake, said as such.
    let mut p = ports();
    p.us = p.eu;
    let (ok, out, err) = run(
        &[
            "demo",
            "--data-dir",
            &data.display().to_string(),
            "--store-listen",
            &format!("127.0.0.1:{}", p.store),
            "--eu-listen",
            &format!("127.0.0.1:{}", p.eu),
            "--us-listen",
            &format!("127.0.0.1:{}", p.us),
        ],
        None,
    );
    one_error_line(
        "one port twice",
        &(ok, out, err),
        &["warehouse eu", "warehouse us", "its own port"],
    );
    assert!(!data.exists(), "nothing is created for one port twice");

    let p = ports();
    let child = demo(&data, p, false);
    let creds: Value = wait_for(60, "credentials.json", || {
        std::fs::read(data.join("credentials.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    });
    let token = creds["store"]["api_token"].as_str().expect("store token");
    wait_for(60, "the seeded orders at the store", || {
        orders_at(p.store, token).filter(|o| o.len() == 8)
    });
    assert!(terminate(child).success());
}

/// A directory a failed first start left behind (credentials.json and
/// databases with users and tokens, but no order), made here with the CLI:
/// the demo seeds it, because it seeds when the databases hold no orders,
/// not when the directory is new; and keeps its credentials.
#[test]
fn demo_seeds_a_half_made_directory_without_orders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = Ports::free();
    let db = |file: &str| format!("sqlite://{}", dir.path().join(file).display());
    let cli = run_ok;
    let side = |role: &str, file: &str, port: u16| {
        let url = db(file);
        cli(
            &[
                "user",
                "create",
                "--role",
                role,
                "--database-url",
                &url,
                "--username",
                "admin",
                "--password-stdin",
            ],
            Some("a half-made demo password\n"),
        );
        let token = cli(
            &[
                "token",
                "create",
                "--role",
                role,
                "--database-url",
                &url,
                "--name",
                "demo",
            ],
            None,
        );
        serde_json::json!({
            "url": format!("http://127.0.0.1:{port}"),
            "admin_user": "admin",
            "admin_password": "a half-made demo password",
            "api_token": token,
        })
    };
    let store = side("store", "store.db", ports.store);
    let mut warehouses = serde_json::Map::new();
    for (name, port) in [("eu", ports.eu), ("us", ports.us)] {
        let mut w = side("warehouse", &format!("warehouse-{name}.db"), port);
        w["sync_secret"] = format!("the {name} secret of a half-made demo").into();
        warehouses.insert(name.into(), w);
    }
    let mut eu = warehouses["eu"].clone();
    if let Some(o) = eu.as_object_mut() {
        o.remove("sync_secret");
    }
    let creds = serde_json::json!({
        "store": store,
        "warehouse": eu,
        "warehouses": warehouses,
        "sync_secret": "the store secret of a half-made demo",
    });
    let creds_path = dir.path().join("credentials.json");
    std::fs::write(
        &creds_path,
        serde_json::to_vec_pretty(&creds).expect("json"),
    )
    .expect("write");

    let child = demo(dir.path(), ports, false);
    let token = |v: &Value| v["api_token"].as_str().expect("token").to_owned();
    let store_token = token(&creds["store"]);
    wait_for(60, "the seeded orders at the store", || {
        orders_at(ports.store, &store_token).filter(|o| o.len() == 8)
    });
    let eu = wait_for(60, "eu's parts", || {
        orders_at(ports.eu, &token(&creds["warehouses"]["eu"])).filter(|o| o.len() == 6)
    });
    let us = wait_for(60, "us's parts", || {
        orders_at(ports.us, &token(&creds["warehouses"]["us"])).filter(|o| o.len() == 4)
    });
    assert_eq!((eu.len(), us.len()), (6, 4));
    let after: Value =
        serde_json::from_slice(&std::fs::read(&creds_path).expect("read")).expect("json");
    assert_eq!(after["store"], creds["store"], "its credentials are kept");
    assert_eq!(after["warehouses"], creds["warehouses"]);
    assert!(terminate(child).success());
}

#[test]
fn bad_configuration_is_one_line_and_non_zero() {
    let sqlite = TestDb::sqlite();
    let db = sqlite.url.clone();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "serve",
                "--role",
                "store",
                "--database-url",
                &db,
                "--peer-url",
                "http://127.0.0.1:1",
                "--sync-secret",
                "",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "sync secret",
        ),
        (
            vec![
                "serve",
                "--role",
                "store",
                "--database-url",
                &db,
                "--peer-url",
                "not a url",
                "--sync-secret",
                "s",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "peer-url",
        ),
        (
            vec![
                "serve",
                "--role",
                "store",
                "--database-url",
                "mysql://x",
                "--peer-url",
                "http://127.0.0.1:1",
                "--sync-secret",
                "s",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "database URL",
        ),
        (
            vec![
                "serve",
                "--role",
                "store",
                "--database-url",
                "postgres://nobody@127.0.0.1:1/none",
                "--peer-url",
                "http://127.0.0.1:1",
                "--sync-secret",
                "s",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "cannot open the database",
        ),
        (
            vec![
                "migrate",
                "--role",
                "store",
                "--database-url",
                "sqlite:///nonexistent-dir/x/y.db",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "cannot open the database",
        ),
    ];
    for (args, expect) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = run(&a, None);
        assert!(!ok, "{a:?} must fail");
        assert!(!err.contains("panicked"), "{a:?} panicked: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(expect),
            "{a:?}: expected one line about {expect:?}, got {err:?}"
        );
    }
}

#[test]
fn user_token_migrate_and_role_guard() {
    let sqlite = TestDb::sqlite();
    let db = sqlite.url.clone();
    let (ok, out, err) = run(
        &["migrate", "--role", "warehouse", "--database-url", &db],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("up to date"));
    let (ok, _, err) = run(
        &[
            "user",
            "create",
            "--role",
            "warehouse",
            "--database-url",
            &db,
            "--username",
            "ops",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &[
            "user",
            "create",
            "--role",
            "warehouse",
            "--database-url",
            &db,
            "--username",
            "ops",
            "--password-stdin",
        ],
        Some("another password\n"),
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run(
        &[
            "user",
            "create",
            "--role",
            "warehouse",
            "--database-url",
            &db,
            "--username",
            "short",
            "--password-stdin",
        ],
        Some("abc\n"),
    );
    assert!(!ok && err.contains("password"), "{err}");
    let (ok, out, err) = run(
        &[
            "token",
            "create",
            "--role",
            "warehouse",
            "--database-url",
            &db,
            "--name",
            "ci",
        ],
        None,
    );
    assert!(ok, "{err}");
    let token = out.trim();
    assert_eq!(out.lines().count(), 1, "only the token on stdout: {out:?}");
    assert!(token.starts_with("fwt_") && token.len() > 40, "{token}");
    // The database remembers its role.
    let (ok, _, err) = run(&["migrate", "--role", "store", "--database-url", &db], None);
    assert!(!ok && err.contains("belongs to the warehouse"), "{err}");
    let (ok, out, _) = run(
        &[
            "outbox",
            "status",
            "--role",
            "warehouse",
            "--database-url",
            &db,
        ],
        None,
    );
    assert!(ok && out.contains("pending:"), "{out}");
    let (ok, out, _) = run(
        &[
            "outbox",
            "replay",
            "--role",
            "warehouse",
            "--database-url",
            &db,
            "--all",
            "--dry-run",
        ],
        None,
    );
    assert!(
        ok && out.contains("0 dead letter(s) would be replayed"),
        "{out}"
    );
    let (ok, _, err) = run(
        &[
            "outbox",
            "replay",
            "--role",
            "warehouse",
            "--database-url",
            &db,
        ],
        None,
    );
    assert!(!ok && err.contains("--all"), "{err}");
}

#[test]
fn help_documents_every_flag_with_its_environment_variable() {
    for cmd in [
        vec!["serve", "--help"],
        vec!["demo", "--help"],
        vec!["outbox", "replay", "--help"],
        vec!["outbox", "status", "--help"],
        vec!["token", "create", "--help"],
        vec!["warehouse", "add", "--help"],
        vec!["warehouse", "update", "--help"],
        vec!["warehouse", "list", "--help"],
    ] {
        let (ok, out, _) = run(&cmd, None);
        assert!(ok, "{cmd:?}");
        // A flag's own line (a description wrapped onto a line that starts
        // with a flag's name is indented further).
        let flags = out
            .lines()
            .filter(|l| {
                let indent = l.len() - l.trim_start().len();
                indent <= 6
                    && l.trim_start().starts_with("--")
                    && !l.contains("--help")
                    && !l.contains("--version")
            })
            .count();
        let envs = out.matches("[env:").count();
        if cmd[..2] == ["outbox", "replay"] {
            let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                words.contains("(--id A --id B)") && words.contains("comma-separated list"),
                "replay --help says --id takes several ids:\n{out}"
            );
        }
        assert!(
            flags > 0 && envs >= flags,
            "{cmd:?}: {flags} flags but {envs} env vars:\n{out}"
        );
    }
}

both_backends!(outbox_replay_selects_by_time_and_by_several_ids);

/// `fulfillment outbox replay` against a running store's database: `--since`
/// replays only the dead letters queued at or after that time, `--id` takes
/// several ids (repeated, comma-separated, or in `FULFILLMENT_REPLAY_ID`),
/// `--dry-run` only counts, and a bad id in a list replays nothing.
async fn outbox_replay_selects_by_time_and_by_several_ids(b: helpers::Backend) {
    use helpers::*;
    let Some(mut pair) = Pair::start_with(b, short_horizon).await else {
        return;
    };
    pair.warehouse.stop().await;
    let early =
        create_dead_letters(&pair.store, &["Early 0", "Early 1", "Early 2", "Early 3"]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let late = create_dead_letters(&pair.store, &["Late 0", "Late 1"]).await;
    let all: Vec<String> = early.iter().chain(&late).cloned().collect();
    assert_eq!(outbox_ids(&pair.store, "dead").await, sorted(&all));

    let url = pair.store.db.url.clone();
    // The binary runs beside the services, off the runtime's threads.
    let replay = |args: &[&str], env: &[(&str, &str)]| {
        let mut full: Vec<String> = [
            "outbox",
            "replay",
            "--role",
            "store",
            "--database-url",
            &url,
        ]
        .map(String::from)
        .to_vec();
        full.extend(args.iter().map(|a| a.to_string()));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = full.iter().map(String::as_str).collect();
                let e: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                run_with_env(&a, None, &e)
            })
            .await
            .expect("the CLI ran")
        }
    };
    let (ok, out, err) = replay(&["--since", &since, "--dry-run"], &[]).await;
    assert!(
        ok && out.contains("2 dead letter(s) would be replayed"),
        "{out}{err}"
    );
    assert_eq!(
        outbox_ids(&pair.store, "dead").await,
        sorted(&all),
        "a dry run changes nothing"
    );

    // A list with one bad id is refused as a whole.
    let bad = format!("{},not-an-id", early[0]);
    let (ok, _, err) = replay(&["--id", &bad], &[]).await;
    assert!(
        !ok && err.trim().lines().count() == 1 && err.contains("\"not-an-id\" is not an order id"),
        "{err}"
    );
    let (ok, _, err) = replay(&["--since", "yesterday"], &[]).await;
    assert!(!ok && err.contains("RFC 3339"), "{err}");
    assert_eq!(outbox_ids(&pair.store, "dead").await, sorted(&all));

    pair.warehouse.restart().await;
    let (ok, out, err) = replay(&["--since", &since], &[]).await;
    assert!(
        ok && out.contains("2 dead letter(s) replayed"),
        "{out}{err}"
    );
    for id in &late {
        wait_for_order(&pair.warehouse, id, "a later dead letter arrives", |_| true).await;
    }
    assert_eq!(
        outbox_ids(&pair.store, "dead").await,
        sorted(&early),
        "the earlier ones stay dead"
    );

    // Several ids: the flag repeated...
    let (ok, out, err) = replay(&["--id", &early[0], "--id", &early[1]], &[]).await;
    assert!(
        ok && out.contains("2 dead letter(s) replayed"),
        "{out}{err}"
    );
    // ...a comma-separated list (a dry run)...
    let list = format!("{},{}", early[2], early[3]);
    let (ok, out, err) = replay(&["--id", &list, "--dry-run"], &[]).await;
    assert!(
        ok && out.contains("2 dead letter(s) would be replayed"),
        "{out}{err}"
    );
    // ...and the same list in the environment.
    let (ok, out, err) = replay(&[], &[("FULFILLMENT_REPLAY_ID", &list)]).await;
    assert!(
        ok && out.contains("2 dead letter(s) replayed"),
        "{out}{err}"
    );
    for id in &all {
        wait_for_order(&pair.store, id, "every order is delivered", |o| {
            o["sync"]["state"] == "synced"
        })
        .await;
    }
    assert!(outbox_ids(&pair.store, "dead").await.is_empty());
    assert_eq!(outbox_ids(&pair.store, "delivered").await, sorted(&all));
    let (ok, out, err) = replay(&["--all", "--dry-run"], &[]).await;
    assert!(
        ok && out.contains("0 dead letter(s) would be replayed"),
        "{out}{err}"
    );
    pair.stop().await;
}

both_backends!(
    warehouse_commands_add_update_list_and_name_the_flag_at_fault,
    a_running_store_follows_the_warehouse_commands,
);

const FLAG_SECRET: &str = "flag-secret-never-printed";
const ENV_SECRET: &str = "env-secret-never-printed";

/// Runs `fulfillment ARGS` (blocking, off the runtime's threads) with `env`.
async fn cli(args: Vec<String>, env: Vec<(String, String)>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_with_env(&a, None, &e)
    })
    .await
    .expect("the CLI ran")
}

/// `fulfillment warehouse SUB --role ROLE --database-url URL REST…`.
async fn warehouse(
    sub: &str,
    role: &str,
    url: &str,
    rest: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut args: Vec<String> = ["warehouse", sub, "--role", role, "--database-url", url]
        .map(String::from)
        .to_vec();
    args.extend(rest.iter().map(|a| a.to_string()));
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    cli(args, env).await
}

/// `fulfillment outbox SUB --role ROLE --database-url URL REST…`.
async fn outbox(sub: &str, role: &str, url: &str, rest: &[&str]) -> (bool, String, String) {
    let mut args: Vec<String> = ["outbox", sub, "--role", role, "--database-url", url]
        .map(String::from)
        .to_vec();
    args.extend(rest.iter().map(|a| a.to_string()));
    cli(args, vec![]).await
}

/// `warehouse list`'s rows (its header left out), each split into its
/// columns; never a secret in what it printed.
async fn listed(url: &str) -> Vec<Vec<String>> {
    let (ok, out, err) = warehouse("list", "store", url, &[], &[]).await;
    assert!(ok, "{err}");
    for secret in [FLAG_SECRET, ENV_SECRET] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "list shows a secret:\n{out}{err}"
        );
    }
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    if header.starts_with("no warehouses yet") {
        return vec![];
    }
    assert!(header.starts_with("NAME"), "{out}");
    lines
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// A failed command: exactly one line on stderr, `error: …` with each of
/// `names` in it, and no secret.
fn one_error_line(what: &str, (ok, out, err): &(bool, String, String), names: &[&str]) {
    assert!(!ok, "{what} must fail: {out}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: one line, got {err:?}");
    assert!(lines[0].starts_with("error: "), "{what}: {err:?}");
    for n in names {
        assert!(lines[0].contains(n), "{what}: expected {n:?} in {err:?}");
    }
    for secret in [FLAG_SECRET, ENV_SECRET] {
        assert!(
            !err.contains(secret) && !out.contains(secret),
            "{what} shows a secret"
        );
    }
}

fn row(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|c| c.to_string()).collect()
}

/// `warehouse add|update|list` on a store's database: what is added and
/// changed is what is listed, the secret (a flag or its variable) is kept
/// but never printed, each bad value is one line naming its flag and
/// changes nothing, `--role warehouse` is refused before any database is
/// opened, and `outbox status|replay --warehouse` know the warehouses.
async fn warehouse_commands_add_update_list_and_name_the_flag_at_fault(b: helpers::Backend) {
    let Some(db) = helpers::TestDb::new(b).await else {
        return;
    };
    let url = db.url.clone();
    assert_eq!(listed(&url).await, Vec::<Vec<String>>::new());

    let r = warehouse(
        "add",
        "store",
        &url,
        &[
            "--name",
            "eu",
            "--url",
            "http://127.0.0.1:8001/",
            "--countries",
            "gb,DE",
            "--sku-prefixes",
            "WID-,BOX-",
            "--priority",
            "-2",
            "--secret",
            FLAG_SECRET,
        ],
        &[],
    )
    .await;
    assert!(r.0, "{}", r.2);
    assert!(
        r.1.contains("added warehouse eu (http://127.0.0.1:8001)"),
        "{}",
        r.1
    );
    let r = warehouse(
        "add",
        "store",
        &url,
        &[
            "--name",
            "us",
            "--url",
            "http://127.0.0.1:8002",
            "--countries",
            "US",
        ],
        &[("FULFILLMENT_WAREHOUSE_SECRET", ENV_SECRET)],
    )
    .await;
    assert!(r.0, "{}", r.2);
    for secret in [FLAG_SECRET, ENV_SECRET] {
        assert!(!r.1.contains(secret) && !r.2.contains(secret));
    }
    // Both secrets were taken (the variable too), and are kept to sign with.
    assert_eq!(
        helpers::sql_at(&url, "SELECT secret FROM warehouses ORDER BY name").await,
        [FLAG_SECRET, ENV_SECRET]
    );
    let eu = |active: &str, priority: &str| {
        row(&[
            "eu",
            active,
            priority,
            "GB,DE",
            "WID-,BOX-",
            "0",
            "0",
            "never",
            "http://127.0.0.1:8001",
        ])
    };
    let us = row(&[
        "us",
        "yes",
        "0",
        "US",
        "(all)",
        "0",
        "0",
        "never",
        "http://127.0.0.1:8002",
    ]);
    assert_eq!(listed(&url).await, [eu("yes", "-2"), us.clone()]);

    // `--active false` changes that alone; `--priority` that alone.
    let r = warehouse(
        "update",
        "store",
        &url,
        &["--name", "eu", "--active", "false"],
        &[],
    )
    .await;
    assert!(r.0 && r.1.contains("inactive"), "{}{}", r.1, r.2);
    assert_eq!(listed(&url).await, [eu("no", "-2"), us.clone()]);
    let r = warehouse(
        "update",
        "store",
        &url,
        &["--name", "eu", "--priority", "3"],
        &[],
    )
    .await;
    assert!(r.0, "{}", r.2);
    let after = [eu("no", "3"), us.clone()];
    assert_eq!(listed(&url).await, after);
    assert_eq!(
        helpers::sql_at(&url, "SELECT secret FROM warehouses ORDER BY name").await,
        [FLAG_SECRET, ENV_SECRET],
        "a change without --secret keeps it"
    );

    // Each bad value: one line naming the flag, nothing changed.
    let add = |rest: &[&str]| {
        let mut a = vec!["--name", "ok", "--url", "http://127.0.0.1:8003"];
        a.extend_from_slice(rest);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "add",
            row(&["--name", "Bad_Name", "--url", "http://127.0.0.1:8003"]),
            vec!["--name"],
        ),
        (
            "add",
            row(&[
                "--name",
                "ok",
                "--url",
                "not a url",
                "--secret",
                FLAG_SECRET,
            ]),
            vec!["--url"],
        ),
        (
            "add",
            add(&["--countries", "GB,XX"]),
            vec!["--countries (item 2)"],
        ),
        ("add", add(&["--priority", "2000000"]), vec!["--priority"]),
        ("add", add(&["--priority", "high"]), vec!["--priority"]),
        ("add", add(&["--secret", ""]), vec!["--secret"]),
        (
            "add",
            row(&["--name", "BAD", "--url", "nope", "--countries", "ZZ"]),
            vec!["--name", "--url", "--countries (item 1)"],
        ),
        (
            "add",
            row(&["--name", "eu", "--url", "http://127.0.0.1:8003"]),
            vec!["exists already", "warehouse update"],
        ),
        (
            "update",
            row(&["--name", "eu", "--active", "maybe"]),
            vec!["--active"],
        ),
        (
            "update",
            row(&["--name", "eu", "--url", "ftp://127.0.0.1"]),
            vec!["--url"],
        ),
        (
            "update",
            row(&["--name", "eu", "--priority", "1.5", "--active", "no"]),
            vec!["--priority", "--active"],
        ),
        (
            "update",
            row(&["--name", "nope", "--priority", "1"]),
            vec!["no warehouse is named \"nope\""],
        ),
    ];
    for (sub, args, names) in &cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = warehouse(sub, "store", &url, &a, &[]).await;
        one_error_line(&format!("warehouse {sub} {a:?}"), &r, names);
        assert_eq!(listed(&url).await, after, "{sub} {a:?} changed something");
    }

    // The warehouse has no warehouses: refused before a database is
    // opened (none is made), with what to do instead.
    let dir = tempfile::tempdir().expect("temp dir");
    let wh_db = common::db::sqlite_url(dir.path(), "w.db");
    for (sub, rest) in [
        (
            "add",
            &["--name", "eu", "--url", "http://127.0.0.1:8001"][..],
        ),
        ("update", &["--name", "eu", "--active", "false"][..]),
        ("list", &[][..]),
    ] {
        for db_url in [&wh_db, &url] {
            let r = warehouse(sub, "warehouse", db_url, rest, &[]).await;
            one_error_line(
                &format!("warehouse {sub} --role warehouse"),
                &r,
                &["at the store", "--role store"],
            );
        }
    }
    assert!(!dir.path().join("w.db").exists(), "no database was made");
    assert_eq!(listed(&url).await, after);

    // `--warehouse` of the outbox commands: a known one, or one line
    // naming the unknown one.
    let r = outbox("status", "store", &url, &["--warehouse", "nope"]).await;
    one_error_line(
        "outbox status --warehouse nope",
        &r,
        &["--warehouse", "\"nope\""],
    );
    let r = outbox("replay", "store", &url, &["--all", "--warehouse", "nope"]).await;
    one_error_line(
        "outbox replay --warehouse nope",
        &r,
        &["--warehouse", "\"nope\""],
    );
    let (ok, out, err) = outbox("status", "store", &url, &["--warehouse", "eu"]).await;
    assert!(
        ok && out.contains("warehouse eu") && out.contains("pending:"),
        "{out}{err}"
    );
    let (ok, out, err) = outbox("status", "store", &url, &[]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("by warehouse:")
            && out.contains("eu: pending 0, dead 0")
            && out.contains("us: pending 0, dead 0"),
        "{out}"
    );
    let (ok, out, err) = outbox(
        "replay",
        "store",
        &url,
        &["--all", "--dry-run", "--warehouse", "us"],
    )
    .await;
    assert!(
        ok && out.contains("0 dead letter(s) would be replayed"),
        "{out}{err}"
    );
    // At the warehouse there is no warehouse to name.
    let (ok, _, err) = outbox("status", "warehouse", &wh_db, &[]).await;
    assert!(ok, "{err}");
    let r = outbox("status", "warehouse", &wh_db, &["--warehouse", "eu"]).await;
    one_error_line(
        "outbox status --warehouse at the warehouse",
        &r,
        &["--warehouse"],
    );
    drop(db);
}

/// A store running while `warehouse add` and `update` change its
/// database: it delivers to the added warehouse (signing with the secret
/// given in the variable) within seconds, and routes nothing more to it
/// once inactive.
async fn a_running_store_follows_the_warehouse_commands(b: helpers::Backend) {
    use helpers::*;
    use serde_json::json;
    let Some(store) = Side::start_alone(fulfillment::domain::Role::Store, b, "", |_| {}).await
    else {
        return;
    };
    let Some(nl) = Side::start_alone(fulfillment::domain::Role::Warehouse, b, &store.url, |cfg| {
        cfg.sync_secrets = vec![ENV_SECRET.to_owned()];
    })
    .await
    else {
        return;
    };
    let r = warehouse(
        "add",
        "store",
        &store.db.url,
        &["--name", "nl", "--url", &nl.url, "--countries", "NL"],
        &[("FULFILLMENT_WAREHOUSE_SECRET", ENV_SECRET)],
    )
    .await;
    assert!(r.0, "{}", r.2);
    let to_nl = |name: &str| {
        let mut body = order_body(name);
        body["shipping_address"]["country"] = json!("NL");
        body
    };
    let (s, o) = store.post("/api/v1/orders", &to_nl("Amsterdam")).await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{o}");
    let id = id_of(&o);
    // The store looks at its warehouses every 5 s.
    eventually(
        15,
        "the order at the warehouse added by the CLI",
        || async {
            (nl.get(&format!("/api/v1/orders/{id}")).await.0 == reqwest::StatusCode::OK)
                .then_some(())
        },
    )
    .await;
    wait_for_order(&store, &id, "nl's answer, signed with its secret", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;

    let r = warehouse(
        "update",
        "store",
        &store.db.url,
        &["--name", "nl", "--active", "false"],
        &[],
    )
    .await;
    assert!(r.0, "{}", r.2);
    let (s, o) = store.post("/api/v1/orders", &to_nl("Utrecht")).await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{o}");
    let later = id_of(&o);
    assert_eq!(
        store
            .sql(&format!(
                "SELECT COUNT(*) FROM outbox WHERE order_id = '{later}'"
            ))
            .await,
        ["0"],
        "routed nowhere, queued for nobody"
    );
    let (_, st) = store.get("/api/v1/sync/status").await;
    assert_eq!(st["warehouses"][0]["name"], "nl", "{st}");
    assert!(!st.to_string().contains(ENV_SECRET));
}
