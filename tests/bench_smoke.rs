//! `fulfillment bench` as a user runs it, with tiny sizes: it completes,
//! exits 0, prints the table, and writes bench.json (with sane numbers) and
//! the plots; the split scenario (two warehouses, half the orders split)
//! with its figures beside the single warehouse's. Performance targets are deliberately never asserted here:
//! this machine, a debug build and a busy CI runner say nothing about them.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use common::pg;
use common::process::{Cmd, run};

const SMALL: &[&str] = &[
    "bench",
    "--scenario",
    "all",
    "--orders",
    "300",
    "--duration",
    "2",
    "--reconcile-orders",
    "2000",
];

/// Only the flags given here count: the kit's child inherits no
/// `FULFILLMENT_*` variable (`FULFILLMENT_BENCH_*` included).
fn bench(args: &[&str], out: &Path, extra: &[&str]) -> Output {
    Cmd::bin()
        .args(args)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output(None)
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{} is not a number in bench.json", path.join(".")))
}

/// Checks the run succeeded and reads its bench.json; returns it and stdout.
fn finished(out: &Output, dir: &Path) -> (Value, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let json: Value = serde_json::from_slice(
        &std::fs::read(dir.join("bench.json")).expect("bench.json is written"),
    )
    .expect("bench.json is JSON");
    (json, stdout)
}

fn check_svg(dir: &Path, svg: &str) -> String {
    let text = std::fs::read_to_string(dir.join(svg)).unwrap_or_else(|_| panic!("{svg}"));
    assert!(
        text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
        "{svg} is an SVG document"
    );
    assert!(!text.contains("NaN"), "{svg} has no NaN coordinates");
    // Every image says what it measured: commit, date, cores, database.
    let stamp = text
        .lines()
        .find(|l| l.contains("class=\"chart-stamp\""))
        .unwrap_or_else(|| panic!("{svg} has no stamp"));
    assert!(
        stamp.contains(">commit ") && stamp.contains(" cores") && stamp.contains(" UTC"),
        "{svg}: {stamp}"
    );
    text
}

/// A timeline plot with a throughput and a backlog drawn from samples.
fn check_timeline(dir: &Path, svg: &str) {
    let text = check_svg(dir, svg);
    assert!(
        text.contains("throughput") && text.contains("backlog"),
        "{svg} has both charts"
    );
    assert!(
        !text.contains("data-points=\"0\""),
        "{svg} has samples in both charts"
    );
}

/// A tail plot, its p50 and p99 marked.
fn check_tail(dir: &Path, svg: &str) -> String {
    let text = check_svg(dir, svg);
    let marks: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("class=\"chart-mark\""))
        .collect();
    assert!(
        ["p50 ", "p99 "]
            .iter()
            .all(|p| marks.iter().any(|m| m.contains(p)))
            && text.contains(">p99<")
            && text.contains(">p50<"),
        "{svg} marks p50 and p99 on a percentile axis: {marks:?}"
    );
    text
}

/// The split scenario's figures for `orders` orders: every other order
/// split in two parts, the rest whole, so 1.5 parts per order.
fn check_split(json: &Value, stdout: &str, orders: f64) {
    let split = &json["split"];
    assert!(split.is_object(), "bench.json has the split scenario");
    let names: Vec<&str> = split["warehouses"]
        .as_array()
        .expect("split.warehouses")
        .iter()
        .map(|w| w["name"].as_str().expect("a warehouse's name"))
        .collect();
    assert_eq!(names, ["eu", "us"]);
    assert_eq!(num(split, &["parts_per_order"]), 1.5);
    assert_eq!(num(split, &["e2e", "orders"]), orders);
    assert_eq!(num(split, &["e2e", "parts"]), orders * 1.5);
    assert_eq!(num(split, &["updates", "parts"]), orders * 1.5);
    for rate in [
        &["e2e", "rate"][..],
        &["e2e", "create_rate"],
        &["updates", "rate"],
        &["updates", "post_rate"],
        &["propagation", "rate"],
        &["propagation", "back", "rate"],
    ] {
        let r = num(split, rate);
        assert!(r.is_finite() && r > 0.0, "split {rate:?} = {r}");
    }
    assert!(num(split, &["e2e", "back_seconds"]) >= num(split, &["e2e", "seconds"]));
    let p = &split["propagation"];
    assert_eq!(
        num(p, &["latency", "count"]),
        num(p, &["orders"]),
        "every order's propagation is measured"
    );
    let parts = num(p, &["parts"]);
    assert!(
        parts > num(p, &["orders"]) && parts < 2.0 * num(p, &["orders"]),
        "some orders split, not all: {parts} parts"
    );
    assert_eq!(
        num(p, &["back", "latency", "count"]),
        num(p, &["back", "parts"]),
        "every pick's way back is measured"
    );
    for lat in [&["latency", "p99_ms"][..], &["back", "latency", "p99_ms"]] {
        let l = num(p, lat);
        assert!(
            (0.0..60_000.0).contains(&l),
            "split propagation {lat:?} = {l}"
        );
    }
    assert!(stdout.contains("2 warehouses"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("parts per order"))
        .unwrap_or_else(|| panic!("table lacks parts per order:\n{stdout}"));
    assert!(row.contains("1.50"), "{row}");
    let figures = json["figures"].as_array().expect("figures");
    let two = figures
        .iter()
        .filter(|f| f["two_warehouses"].is_string())
        .count();
    assert!(two >= 7, "split figures in the table: {figures:?}");
    assert!(
        json["notes"].as_array().expect("notes").iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.contains("2 warehouses: eu stocks A-"))),
        "a note says how the two warehouses are set up"
    );
}

/// Every timed scenario has its CPU per order (update, pick): the store's
/// and the warehouses' positive, the total their sum plus the PostgreSQL
/// server's when `database` (a local server, counted), else none.
fn check_cpu(scenario: &Value, name: &str, database: bool) {
    let c = &scenario["cpu_per_order"];
    assert!(c.is_object(), "{name}.cpu_per_order in bench.json");
    for side in ["store_ms", "warehouse_ms", "services_ms", "total_ms"] {
        let ms = num(c, &[side]);
        assert!(
            ms.is_finite() && ms > 0.0 && ms < 1000.0,
            "{name}.cpu_per_order.{side} = {ms}"
        );
    }
    let services = num(c, &["store_ms"]) + num(c, &["warehouse_ms"]);
    assert!(
        (num(c, &["services_ms"]) - services).abs() < 1e-9,
        "{name}: {c}"
    );
    if database {
        let db = num(c, &["database_ms"]);
        assert!(db > 0.0, "{name}: the PostgreSQL server worked: {c}");
        assert!(
            (num(c, &["total_ms"]) - services - db).abs() < 1e-9,
            "{name}: {c}"
        );
    } else {
        assert!(c["database_ms"].is_null(), "{name}: no server counted: {c}");
        assert!(
            (num(c, &["total_ms"]) - services).abs() < 1e-9,
            "{name}: {c}"
        );
    }
    assert_eq!(
        num(c, &["count"]),
        num(scenario, &[count_field(name)]),
        "{name}: {c}"
    );
}

/// What a scenario's CPU is divided by.
fn count_field(name: &str) -> &'static str {
    match name {
        "latency" => "requests",
        n if n.ends_with("updates") || n.ends_with("back") => "parts",
        _ => "orders",
    }
}

fn check_cpus(json: &Value, database: bool) {
    for (name, v) in [
        ("e2e", &json["e2e"]),
        ("updates", &json["updates"]),
        ("latency", &json["latency"]),
        ("propagation", &json["propagation"]),
        ("propagation back", &json["propagation"]["back"]),
        ("split e2e", &json["split"]["e2e"]),
        ("split updates", &json["split"]["updates"]),
        ("split propagation", &json["split"]["propagation"]),
        (
            "split propagation back",
            &json["split"]["propagation"]["back"],
        ),
    ] {
        check_cpu(v, name, database);
    }
}

fn check_run(out: &Output, dir: &Path, reconcile_orders: f64) -> Value {
    let (json, stdout) = finished(out, dir);
    for row in [
        "figure",
        "end-to-end store→warehouse",
        "until every first state is back at the store",
        "warehouse→store updates",
        "create latency p50 / p99",
        "propagation p50 / p99",
        "back at the store p50 / p99",
        "RSS store / warehouse",
        "idle CPU",
        "reconcile",
        "CPU per order (store + warehouse",
        "CPU per update (store + warehouse",
        "CPU per pick (store + warehouse",
    ] {
        assert!(stdout.contains(row), "table lacks {row:?}:\n{stdout}");
    }

    for rate in [
        &["e2e", "rate"][..],
        &["e2e", "create_rate"],
        &["updates", "rate"],
        &["updates", "post_rate"],
        &["latency", "rate"],
        &["propagation", "rate"],
    ] {
        let r = num(&json, rate);
        assert!(r.is_finite() && r > 0.0, "{rate:?} = {r}");
    }
    assert_eq!(num(&json, &["e2e", "orders"]), 300.0);
    assert_eq!(num(&json, &["updates", "orders"]), 300.0);
    for lat in ["p50_ms", "p99_ms", "max_ms"] {
        let l = num(&json, &["latency", "latency", lat]);
        assert!(l > 0.0 && l < 60_000.0, "create latency {lat} = {l}");
    }
    assert!(
        num(&json, &["latency", "latency", "p99_ms"])
            >= num(&json, &["latency", "latency", "p50_ms"])
    );
    let p99 = num(&json, &["propagation", "latency", "p99_ms"]);
    assert!(p99 > 0.0 && p99 < 60_000.0, "propagation p99 = {p99}");
    assert_eq!(
        num(&json, &["propagation", "latency", "count"]),
        num(&json, &["propagation", "orders"]),
        "every order's propagation is measured"
    );
    assert_eq!(
        num(&json, &["propagation", "parts"]),
        num(&json, &["propagation", "orders"]),
        "one warehouse: one part per order"
    );
    assert_eq!(
        num(&json, &["propagation", "back", "latency", "count"]),
        num(&json, &["propagation", "back", "parts"]),
        "every pick's way back is measured"
    );
    assert!(num(&json, &["propagation", "back", "rate"]) > 0.0);
    for side in ["store_mib", "warehouse_mib"] {
        let m = num(&json, &["rss", side]);
        assert!(m > 1.0 && m < 4096.0, "rss {side} = {m}");
    }
    assert!(
        num(&json, &["rss", "orders"]) >= 1500.0,
        "topped up to 5 × --orders"
    );
    for side in ["store_cpu_percent", "warehouse_cpu_percent"] {
        let c = num(&json, &["idle", side]);
        assert!((0.0..=200.0).contains(&c), "idle {side} = {c}");
    }
    assert_eq!(num(&json, &["reconcile", "differences"]), 0.0);
    assert_eq!(num(&json, &["reconcile", "orders"]), reconcile_orders);
    assert_eq!(
        num(&json, &["reconcile", "report", "peer_orders"]),
        reconcile_orders
    );
    assert!(num(&json, &["reconcile", "seconds"]) > 0.0);
    let figures = json["figures"].as_array().expect("figures");
    assert!(figures.len() >= 7, "{figures:?}");
    assert!(
        json["logged"].is_array(),
        "what the services logged at WARN or ERROR"
    );
    check_split(&json, &stdout, 300.0);

    // The create-latency target is the database's: 5 ms on SQLite, 10 ms
    // on PostgreSQL.
    let target = if json["backend"] == "postgres" {
        ">target: p99 ≤ 10.0 ms<"
    } else {
        ">target: p99 ≤ 5.00 ms<"
    };
    let latency = check_tail(dir, "latency-tail.svg");
    assert!(latency.contains(target), "the target {target}");
    check_tail(dir, "back-tail.svg");
    // The split scenario's figures are drawn beside the single warehouse's.
    let prop = check_tail(dir, "propagation-tail.svg");
    assert!(
        prop.contains(">1 warehouse<") && prop.contains(">2 warehouses"),
        "both propagation curves"
    );
    for svg in [
        "timeline-e2e.svg",
        "timeline-updates.svg",
        "timeline-latency.svg",
        "timeline-propagation.svg",
        "timeline-split-e2e.svg",
        "timeline-split-updates.svg",
        "timeline-split-propagation.svg",
    ] {
        check_timeline(dir, svg);
    }
    assert!(
        json["commit"].as_str().is_some_and(|c| !c.is_empty()),
        "bench.json says which commit"
    );
    let samples = json["e2e"]["timeline"]["t"].as_array().map_or(0, Vec::len);
    assert!(samples >= 1, "e2e was sampled over time");
    let tput = check_svg(dir, "throughput.svg");
    assert_eq!(
        tput.matches("<rect x=").count(),
        1 + 8 + 2,
        "frame, four bars of each, a legend key of each"
    );
    json
}

#[test]
fn bench_runs_every_scenario_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = bench(SMALL, dir.path(), &[]);
    let json = check_run(&out, dir.path(), 2000.0);
    assert_eq!(json["backend"], "sqlite");
    check_cpus(&json, false);
    assert!(json["database_cpu"].is_null());
}

#[test]
fn bench_runs_the_split_scenario_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = bench(
        &[
            "bench",
            "--scenario",
            "split",
            "--orders",
            "100",
            "--duration",
            "1",
            "--rate",
            "100",
        ],
        dir.path(),
        &[],
    );
    let (json, stdout) = finished(&out, dir.path());
    check_split(&json, &stdout, 100.0);
    for single in ["e2e", "updates", "latency", "propagation", "rss", "idle"] {
        assert!(json[single].is_null(), "{single} did not run");
    }
    // No single-warehouse figure: its column shows a dash.
    let row = stdout
        .lines()
        .find(|l| l.starts_with("end-to-end store→warehouse"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.contains('–') && row.contains("orders/s"), "{row}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for phase in [
        "split start",
        "split e2e",
        "split updates",
        "split propagation",
    ] {
        assert!(
            stderr.contains(phase),
            "progress shows {phase:?}:\n{stderr}"
        );
    }
    for svg in ["propagation-tail.svg", "back-tail.svg"] {
        check_tail(dir.path(), svg);
    }
    check_svg(dir.path(), "throughput.svg");
    check_timeline(dir.path(), "timeline-split-e2e.svg");
    assert!(
        !dir.path().join("timeline-e2e.svg").exists(),
        "no plot of a scenario that did not run"
    );
}

#[test]
fn bench_runs_on_postgres_and_drops_its_databases() {
    let Some(admin) = pg::admin_url("the PostgreSQL bench smoke test") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let out = bench(SMALL, dir.path(), &["--database-url", &admin]);
    let json = check_run(&out, dir.path(), 2000.0);
    assert_eq!(json["backend"], "postgres");
    // The kit's server runs on this machine: its CPU is counted.
    assert_eq!(
        json["database_cpu"]["counted"], true,
        "{}",
        json["database_cpu"]
    );
    check_cpus(&json, true);
    let (_, stdout) = finished(&out, dir.path());
    assert!(
        stdout.contains("CPU per order (store + warehouse + PostgreSQL)"),
        "{stdout}"
    );
    // The server's durability settings are in the report.
    let settings = &json["database_settings"];
    for name in ["server_version", "fsync", "synchronous_commit"] {
        assert!(settings[name].is_string(), "{name} in {settings}");
    }
    let database = json["database"].as_str().expect("database");
    assert!(
        database.starts_with("PostgreSQL ") && database.contains("fsync="),
        "{database}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let left: Vec<String> = rt.block_on(async {
        use sqlx::Connection;
        fulfillment::storage::install_drivers();
        let mut c = sqlx::AnyConnection::connect(&admin).await.expect("admin");
        sqlx::query_scalar(
            "SELECT datname::TEXT FROM pg_database WHERE datname LIKE 'bench\\_store\\_%' OR datname LIKE 'bench\\_warehouse\\_%'",
        )
        .fetch_all(&mut c)
        .await
        .expect("list databases")
    });
    assert!(left.is_empty(), "databases left behind: {left:?}");
}

#[test]
fn bad_configuration_is_one_line_and_a_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = bench(
        &[
            "bench",
            "--scenario",
            "e2e",
            "--database-url",
            "mysql://x@localhost/db",
        ],
        dir.path(),
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("postgres://"), "{stderr}");

    let out = bench(
        &[
            "bench",
            "--scenario",
            "e2e",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/postgres",
        ],
        dir.path(),
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
}

#[test]
fn help_documents_every_flag_with_its_environment_variable() {
    let (ok, help, _) = run(&["bench", "--help"], None);
    assert!(ok);
    let flags = help
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("--") && !l.contains("--help") && !l.contains("--version")
        })
        .count();
    assert!(flags >= 13, "{help}");
    assert!(
        help.contains("--compare <OTHER_BINARY>") && help.contains("--rounds"),
        "{help}"
    );
    assert!(help.matches("[env:").count() >= flags, "{help}");
}

/// `--compare` with this same binary as OTHER: two rounds, alternately,
/// each run's own bench.json in its subdirectory, and compare.json with
/// both binaries' figures for every round.
#[test]
fn compare_runs_both_binaries_alternately() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A copy, so the two binaries have different paths, as with a previous
    // release.
    let other = dir.path().join("fulfillment-other");
    std::fs::copy(common::process::BIN, &other).expect("copy the binary");
    let out = bench(
        &[
            "bench",
            "--scenario",
            "e2e",
            "--orders",
            "200",
            "--rounds",
            "2",
        ],
        dir.path(),
        &["--compare", other.to_str().expect("a UTF-8 path")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "compare failed:\n{stdout}\n{stderr}");
    // Progress says which round and which binary, in the alternating order.
    let order: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("compare: round ") && l.contains(", into "))
        .collect();
    assert_eq!(order.len(), 4, "{stderr}");
    for (line, want) in order.iter().zip([
        "round 1/2, this binary",
        "round 1/2, other binary",
        "round 2/2, this binary",
        "round 2/2, other binary",
    ]) {
        assert!(line.contains(want), "{line} (wanted {want})");
    }
    for sub in [
        "round-1-this",
        "round-1-other",
        "round-2-this",
        "round-2-other",
    ] {
        let json: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(sub).join("bench.json")).expect("a run's bench.json"),
        )
        .expect("JSON");
        assert_eq!(
            num(&json, &["e2e", "orders"]),
            200.0,
            "{sub} ran with the settings given"
        );
    }
    assert!(
        stdout.contains("this vs other") && stdout.contains("end-to-end store→warehouse"),
        "{stdout}"
    );
    let cmp: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("compare.json")).expect("compare.json is written"),
    )
    .expect("compare.json is JSON");
    assert_eq!(num(&cmp, &["rounds"]), 2.0);
    assert_eq!(
        cmp["binaries"]["other"]["path"],
        other.canonicalize().expect("path").to_str().expect("utf-8")
    );
    assert_eq!(cmp["runs"].as_array().map(Vec::len), Some(4));
    let figures = cmp["figures"].as_array().expect("figures");
    for key in ["e2e_rate", "e2e_cpu_services_ms"] {
        let f = figures
            .iter()
            .find(|f| f["key"] == key)
            .unwrap_or_else(|| panic!("{key} in {figures:?}"));
        for side in ["this", "other"] {
            let rounds = f[side]["rounds"].as_array().expect("rounds");
            assert_eq!(rounds.len(), 2, "{key} {side}: {f}");
            assert!(
                rounds.iter().all(|r| r.as_f64().is_some_and(|x| x > 0.0)),
                "{key} {side}: every round measured: {f}"
            );
            let median = num(&f[side], &["median"]);
            let (a, b) = (
                rounds[0].as_f64().unwrap_or(0.0),
                rounds[1].as_f64().unwrap_or(0.0),
            );
            assert!((median - (a + b) / 2.0).abs() < 1e-9, "{key} {side}: {f}");
        }
        assert!(f["change_percent"].is_f64(), "{f}");
    }
    // SQLite: no PostgreSQL server figure, so no such row.
    assert!(
        figures.iter().all(|f| f["key"] != "e2e_cpu_database_ms"),
        "{figures:?}"
    );
}
