//! The binary as a user runs it: `demo` seeds, serves, exits 0 on SIGTERM
//! and keeps its data across restarts; bad configuration is one line and a
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

fn demo(dir: &Path, store: u16, warehouse: u16) -> Proc {
    Cmd::bin()
        .args(["demo", "--data-dir"])
        .arg(dir)
        .args([
            "--store-listen",
            &format!("127.0.0.1:{store}"),
            "--warehouse-listen",
            &format!("127.0.0.1:{warehouse}"),
        ])
        .spawn()
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

fn statuses(list: &Value) -> Vec<String> {
    list["items"].as_array().map_or(vec![], |items| {
        items
            .iter()
            .filter_map(|o| o["status"].as_str().map(str::to_owned))
            .collect()
    })
}

#[test]
fn demo_seeds_serves_stops_cleanly_and_keeps_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sp, wp) = (free_port(), free_port());
    let child = demo(dir.path(), sp, wp);
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
    for side in ["store", "warehouse"] {
        for key in ["url", "admin_user", "admin_password", "api_token"] {
            assert!(
                creds[side][key].as_str().is_some_and(|s| !s.is_empty()),
                "{side}.{key} missing: {creds}"
            );
        }
    }
    let store_token = creds["store"]["api_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let wh_token = creds["warehouse"]["api_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let wh_url = format!("http://127.0.0.1:{wp}/api/v1/orders?limit=100");
    // Seeded orders travel the real sync path and move through fulfillment.
    let seen = wait_for(60, "seeded orders at the warehouse", || {
        let list = get(&wh_url, &wh_token)?;
        let st = statuses(&list);
        (st.len() == 6
            && st.iter().filter(|s| *s == "shipped").count() == 2
            && st.contains(&"cancelled".to_owned())
            && st.contains(&"on_hold".to_owned()))
        .then_some(st)
    });
    assert_eq!(seen.len(), 6);
    let store_url = format!("http://127.0.0.1:{sp}/api/v1/orders?limit=100");
    wait_for(30, "the store to hear about shipping", || {
        let list = get(&store_url, &store_token)?;
        let shipped = list["items"]
            .as_array()?
            .iter()
            .filter(|o| o["fulfillment"]["status"] == "shipped")
            .count();
        (shipped == 2).then_some(())
    });
    let status = terminate(child);
    assert!(status.success(), "demo exits 0 on SIGTERM, got {status}");

    // Restart with the same directory: same credentials, same data, no reseed.
    let child = demo(dir.path(), sp, wp);
    let list = wait_for(60, "restarted store", || get(&store_url, &store_token));
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(6),
        "no second seeding"
    );
    let again: Value =
        serde_json::from_slice(&std::fs::read(&creds_path).expect("read")).expect("json");
    assert_eq!(again["store"]["api_token"], creds["store"]["api_token"]);
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
