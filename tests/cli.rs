//! The binary as a user runs it: `demo` runs a store and two warehouses,
//! seeds orders (two split between the warehouses), serves, exits 0 on
//! SIGTERM, keeps its data across restarts and takes over the directory of
//! the older one-warehouse demo; bad configuration is one line and a
//! non-zero exit, never a panic; `token create` prints only the token;
//! `outbox replay` selects dead letters by time or by several ids (against
//! services started with the API tests' harness, on SQLite and PostgreSQL).

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
    let ports = Ports {
        store: free_port(),
        eu: free_port(),
        us: free_port(),
    };
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
/// with the CLI as that demo made it: the demo keeps its files and
/// credentials, takes its warehouse as `eu` (the store's `main`, now with
/// eu's routing), adds `us` beside it and seeds the split orders.
#[test]
fn demo_takes_over_a_directory_of_the_one_warehouse_demo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = Ports {
        store: free_port(),
        eu: free_port(),
        us: free_port(),
    };
    let db = |file: &str| format!("sqlite://{}", dir.path().join(file).display());
    let (store_db, wh_db) = (db("store.db"), db("warehouse.db"));
    let cli = |args: &[&str], stdin: Option<&str>| {
        let (ok, out, err) = run(args, stdin);
        assert!(ok, "{args:?}: {err}");
        out.trim().to_owned()
    };
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

    let child = demo(dir.path(), ports, false);
    let store_token = old["store"]["api_token"].as_str().expect("token");
    let eu_token = old["warehouse"]["api_token"].as_str().expect("token");
    let items = wait_for(60, "the split orders at the store", || {
        let items = orders_at(ports.store, store_token)?;
        (items.len() == 2
            && items.iter().all(|o| {
                o["parts"].as_array().is_some_and(|p| p.len() == 2)
                    && o["sync"]["state"] == "synced"
            }))
        .then_some(items)
    });
    for o in &items {
        assert_eq!(o["parts"][0]["warehouse"], "main", "{o}");
        assert_eq!(o["parts"][1]["warehouse"], "us", "{o}");
    }
    let eu = wait_for(30, "eu's parts", || orders_at(ports.eu, eu_token));
    assert_eq!(eu.len(), 2, "the first parts, in warehouse.db");
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
        vec!["token", "create", "--help"],
    ] {
        let (ok, out, _) = run(&cmd, None);
        assert!(ok, "{cmd:?}");
        let flags = out
            .lines()
            .filter(|l| {
                l.trim_start().starts_with("--")
                    && !l.contains("--help")
                    && !l.contains("--version")
            })
            .count();
        let envs = out.matches("[env:").count();
        if cmd[0] == "outbox" {
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
