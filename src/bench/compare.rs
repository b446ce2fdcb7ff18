//! `fulfillment bench --compare OTHER_BINARY`: the same scenario(s) run with
//! this binary and with another (the previous release, say), alternately
//! (this, other, this, other, … `--rounds` of each), so that the machine's
//! drift between runs (±15 % here) falls on both alike. Each run is the
//! binary's own `bench`, a child process with the same settings and its
//! `--out` in a subdirectory; its bench.json is read back, and the main
//! figures are put side by side (median and each round) in a table and in
//! `compare.json`.
//!
//! The settings reach each child as the `FULFILLMENT_BENCH_*` variables of
//! its flags, not as flags: an older binary that lacks a newer flag ignores
//! its variable instead of refusing to start. Figures an older bench.json
//! lacks are shown as `–` (null in compare.json).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use super::BenchArgs;
use super::report::thousands;

/// The two binaries, in the order they run within a round.
const WHICH: [&str; 2] = ["this", "other"];

/// What a figure is measured in, for printing it.
#[derive(Clone, Copy)]
enum Unit {
    PerSecond(&'static str),
    Ms,
    Seconds,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::PerSecond(what) => what,
            Unit::Ms => "ms",
            Unit::Seconds => "s",
        }
    }

    fn format(self, x: f64) -> String {
        match self {
            Unit::PerSecond(_) => thousands(x),
            Unit::Ms if x < 1.0 => format!("{x:.3}"),
            Unit::Ms | Unit::Seconds if x < 10.0 => format!("{x:.2}"),
            Unit::Ms | Unit::Seconds => format!("{x:.1}"),
        }
    }
}

/// One main figure, read from a bench.json.
struct Metric {
    key: &'static str,
    label: &'static str,
    unit: Unit,
    higher_is_better: bool,
    read: fn(&Value) -> Option<f64>,
}

fn at(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, p| v.get(p))?.as_f64()
}

/// The services' CPU per order of a scenario, in ms: its `cpu_per_order`
/// when the bench.json has it, else (an older bench) its `cpu` divided by
/// its `count` field, which is the same figure.
fn services_cpu(s: Option<&Value>, count: &str) -> Option<f64> {
    let s = s?;
    if let Some(ms) = at(s, &["cpu_per_order", "services_ms"]) {
        return Some(ms);
    }
    let seconds = at(s, &["cpu", "store_seconds"])? + at(s, &["cpu", "warehouse_seconds"])?;
    let n = at(s, &[count])?;
    (n > 0.0).then(|| seconds * 1000.0 / n)
}

fn database_cpu(s: Option<&Value>) -> Option<f64> {
    at(s?, &["cpu_per_order", "database_ms"])
}

const ORDERS: Unit = Unit::PerSecond("orders/s");
const UPDATES: Unit = Unit::PerSecond("updates/s");

/// The figures compared, in the order of the table.
const METRICS: &[Metric] = &[
    Metric {
        key: "e2e_rate",
        label: "end-to-end store→warehouse",
        unit: ORDERS,
        higher_is_better: true,
        read: |v| at(v, &["e2e", "rate"]),
    },
    Metric {
        key: "e2e_cpu_services_ms",
        label: "  CPU per order, store + warehouse",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| services_cpu(v.get("e2e"), "orders"),
    },
    Metric {
        key: "e2e_cpu_database_ms",
        label: "  CPU per order, PostgreSQL server",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| database_cpu(v.get("e2e")),
    },
    Metric {
        key: "updates_rate",
        label: "warehouse→store updates",
        unit: UPDATES,
        higher_is_better: true,
        read: |v| at(v, &["updates", "rate"]),
    },
    Metric {
        key: "updates_cpu_services_ms",
        label: "  CPU per update, store + warehouse",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| services_cpu(v.get("updates"), "parts"),
    },
    Metric {
        key: "updates_cpu_database_ms",
        label: "  CPU per update, PostgreSQL server",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| database_cpu(v.get("updates")),
    },
    Metric {
        key: "create_p50_ms",
        label: "create latency p50",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| at(v, &["latency", "latency", "p50_ms"]),
    },
    Metric {
        key: "create_p99_ms",
        label: "create latency p99",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| at(v, &["latency", "latency", "p99_ms"]),
    },
    Metric {
        key: "latency_cpu_services_ms",
        label: "  CPU per order, store + warehouse",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| services_cpu(v.get("latency"), "requests"),
    },
    Metric {
        key: "propagation_p50_ms",
        label: "propagation p50",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| at(v, &["propagation", "latency", "p50_ms"]),
    },
    Metric {
        key: "propagation_p99_ms",
        label: "propagation p99",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| at(v, &["propagation", "latency", "p99_ms"]),
    },
    Metric {
        key: "propagation_back_p99_ms",
        label: "  back at the store p99",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| at(v, &["propagation", "back", "latency", "p99_ms"]),
    },
    Metric {
        key: "propagation_cpu_services_ms",
        label: "  CPU per order, store + warehouse",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| services_cpu(v.get("propagation"), "orders"),
    },
    Metric {
        key: "propagation_cpu_database_ms",
        label: "  CPU per order, PostgreSQL server",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| database_cpu(v.get("propagation")),
    },
    Metric {
        key: "split_e2e_rate",
        label: "2 warehouses: end-to-end",
        unit: ORDERS,
        higher_is_better: true,
        read: |v| at(v, &["split", "e2e", "rate"]),
    },
    Metric {
        key: "split_e2e_cpu_services_ms",
        label: "  CPU per order, store + warehouses",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| services_cpu(v.get("split").and_then(|s| s.get("e2e")), "orders"),
    },
    Metric {
        key: "split_updates_rate",
        label: "2 warehouses: updates",
        unit: UPDATES,
        higher_is_better: true,
        read: |v| at(v, &["split", "updates", "rate"]),
    },
    Metric {
        key: "split_propagation_p99_ms",
        label: "2 warehouses: propagation p99",
        unit: Unit::Ms,
        higher_is_better: false,
        read: |v| at(v, &["split", "propagation", "latency", "p99_ms"]),
    },
    Metric {
        key: "reconcile_seconds",
        label: "reconcile pass",
        unit: Unit::Seconds,
        higher_is_better: false,
        read: |v| at(v, &["reconcile", "seconds"]),
    },
];

/// The bench's settings as the variables of its flags, for a child.
fn child_env(args: &BenchArgs) -> Vec<(&'static str, String)> {
    let mut env = vec![(
        "FULFILLMENT_BENCH_SCENARIO",
        format!("{:?}", args.scenario).to_lowercase(),
    )];
    let mut opt = |name: &'static str, v: Option<String>| {
        if let Some(v) = v {
            env.push((name, v));
        }
    };
    opt(
        "FULFILLMENT_BENCH_CONCURRENCY",
        args.concurrency.map(|v| v.to_string()),
    );
    opt(
        "FULFILLMENT_BENCH_DURATION",
        args.duration.map(|v| v.to_string()),
    );
    opt(
        "FULFILLMENT_BENCH_ORDERS",
        args.orders.map(|v| v.to_string()),
    );
    opt(
        "FULFILLMENT_BENCH_RSS_ORDERS",
        args.rss_orders.map(|v| v.to_string()),
    );
    opt(
        "FULFILLMENT_BENCH_RECONCILE_ORDERS",
        args.reconcile_orders.map(|v| v.to_string()),
    );
    opt("FULFILLMENT_BENCH_RATE", args.rate.map(|v| v.to_string()));
    opt("FULFILLMENT_BENCH_DATABASE_URL", args.database_url.clone());
    opt("FULFILLMENT_BENCH_SMOKE", args.smoke.then(|| "true".into()));
    env
}

/// A binary that can be run: an existing file, as an absolute path.
fn binary(path: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let p = std::fs::canonicalize(path).map_err(|e| {
        anyhow!(
            "{what} {} cannot be found ({e}); give the path of a fulfillment binary",
            path.display()
        )
    })?;
    if !p.is_file() {
        bail!(
            "{what} {} is not a file; give the path of a fulfillment binary",
            p.display()
        );
    }
    Ok(p)
}

/// Runs `exe bench` with `env`, its bench.json in `out`; its progress goes
/// to our stderr, its table to `out/stdout.txt`. Ctrl-C reaches it with
/// ours (same process group); on SIGTERM it is sent SIGTERM and awaited,
/// so it stops its services and drops its databases.
async fn run_child(
    exe: &Path,
    env: &[(&'static str, String)],
    out: &Path,
    stop: &mut std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> anyhow::Result<Value> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {out:?}"))?;
    let out = &std::fs::canonicalize(out).with_context(|| format!("cannot find {out:?}"))?;
    let table = std::fs::File::create(out.join("stdout.txt"))
        .with_context(|| format!("cannot create {:?}", out.join("stdout.txt")))?;
    let mut cmd = Command::new(exe);
    // Run outside the checkout: a binary built without its commit reads
    // one from `git describe` of its working directory, which here would
    // be this checkout's, whatever the binary was built from.
    cmd.current_dir(out).arg("bench").arg("--out").arg(out);
    // Only what we pass counts: no setting of ours leaks in through the
    // environment, and the child does not compare in turn.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FULFILLMENT_BENCH_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(table)
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = &mut *stop => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    // SAFETY: kill(2) with a pid we own and a valid signal.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
                let deadline = Instant::now() + Duration::from_secs(60);
                while child.try_wait()?.is_none() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let _ = child.kill();
                let _ = child.wait();
                bail!("interrupted; the runs were stopped (their output so far is in {})", out.display());
            }
        }
    };
    if !status.success() {
        let tail = std::fs::read_to_string(out.join("stdout.txt")).unwrap_or_default();
        bail!(
            "{} bench failed ({status}); its messages are above, its output in {}{}",
            exe.display(),
            out.display(),
            if tail.trim().is_empty() {
                ""
            } else {
                " (stdout.txt)"
            }
        );
    }
    let json = out.join("bench.json");
    let text =
        std::fs::read(&json).with_context(|| format!("{} wrote no {json:?}", exe.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{json:?} is not JSON"))
}

fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One row: each binary's figure in each round (`None`: missing).
struct Row<'a> {
    metric: &'a Metric,
    runs: [Vec<Option<f64>>; 2],
}

impl Row<'_> {
    fn median(&self, which: usize) -> Option<f64> {
        median(
            &self.runs[which]
                .iter()
                .flatten()
                .copied()
                .collect::<Vec<_>>(),
        )
    }

    /// This binary's median against the other's, in percent.
    fn change(&self) -> Option<f64> {
        let (this, other) = (self.median(0)?, self.median(1)?);
        (other != 0.0).then(|| (this - other) / other * 100.0)
    }

    /// Whether the two binaries' rounds overlap (min..max of each).
    fn overlap(&self) -> bool {
        let range = |w: usize| {
            let v: Vec<f64> = self.runs[w].iter().flatten().copied().collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        };
        let ((a0, a1), (b0, b1)) = (range(0), range(1));
        a0 <= b1 && b0 <= a1
    }

    fn verdict(&self) -> String {
        let Some(c) = self.change() else {
            return "–".into();
        };
        let better = (c > 0.0) == self.metric.higher_is_better;
        let word = if c.abs() < 0.05 {
            "same"
        } else if self.overlap() {
            // The machine drifts between runs: a change the rounds'
            // spread covers is not one.
            "within the rounds' spread"
        } else if better {
            "better"
        } else {
            "worse"
        };
        format!("{c:+.1} % ({word})")
    }

    fn cell(&self, which: usize) -> String {
        let f = |x: Option<f64>| x.map_or("–".to_owned(), |x| self.metric.unit.format(x));
        let each: Vec<String> = self.runs[which].iter().map(|x| f(*x)).collect();
        format!("{} ({})", f(self.median(which)), each.join(" · "))
    }

    fn to_json(&self) -> Value {
        let side = |w: usize| json!({ "median": self.median(w), "rounds": self.runs[w] });
        json!({
            "key": self.metric.key,
            "figure": self.metric.label.trim(),
            "unit": self.metric.unit.name(),
            "better": if self.metric.higher_is_better { "higher" } else { "lower" },
            "this": side(0),
            "other": side(1),
            "change_percent": self.change(),
        })
    }
}

/// `e2e 4,512 orders/s · create p99 3.10 ms · 0.280 ms CPU per order`: a
/// run's main figures, for the progress lines.
fn summary(v: &Value) -> String {
    let mut parts = Vec::new();
    for m in METRICS.iter().filter(|m| !m.label.starts_with(' ')) {
        if let Some(x) = (m.read)(v) {
            parts.push(format!(
                "{} {} {}",
                m.label,
                m.unit.format(x),
                m.unit.name()
            ));
        }
    }
    if let Some(x) = (METRICS[1].read)(v) {
        parts.push(format!(
            "e2e CPU {} ms per order (services)",
            Unit::Ms.format(x)
        ));
    }
    parts.join(" · ")
}

/// Runs the comparison and writes `compare.json` in `args.out`.
pub async fn run(args: &BenchArgs, other: &Path) -> anyhow::Result<()> {
    let this = std::env::current_exe()
        .context("cannot find this program's binary")
        .and_then(|p| binary(&p, "this binary"))?;
    let other = binary(other, "--compare")?;
    let rounds = args.rounds as usize;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output directory {:?}", args.out))?;
    let env = child_env(args);
    let exes = [this, other];
    let mut stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        Box::pin(crate::service::shutdown_signal());
    let started_at = chrono::Utc::now();
    let mut jsons: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    let mut runs = Vec::new();
    for round in 1..=rounds {
        for (w, exe) in exes.iter().enumerate() {
            let out = args.out.join(format!("round-{round}-{}", WHICH[w]));
            eprintln!(
                "compare: round {round}/{rounds}, {} binary {}, into {}",
                WHICH[w],
                exe.display(),
                out.display()
            );
            let t = Instant::now();
            let mut v = run_child(exe, &env, &out, &mut stop).await?;
            if w == 0
                && let Some(fields) = v.as_object_mut()
            {
                // This binary is the one running: its commit is known here.
                fields.insert("commit".into(), Value::String(super::report::commit()));
            }
            eprintln!(
                "compare: round {round}/{rounds}, {} binary: {}",
                WHICH[w],
                summary(&v)
            );
            runs.push(json!({
                "round": round,
                "binary": WHICH[w],
                "path": exe,
                "out": out,
                "seconds": t.elapsed().as_secs_f64(),
                "commit": v.get("commit"),
            }));
            jsons[w].push(v);
        }
    }

    let rows: Vec<Row> = METRICS
        .iter()
        .map(|m| Row {
            metric: m,
            runs: [0, 1].map(|w| jsons[w].iter().map(|v| (m.read)(v)).collect()),
        })
        .filter(|r| r.runs.iter().flatten().any(Option::is_some))
        .collect();
    let describe = |w: usize| {
        let first = &jsons[w][0];
        json!({
            "path": exes[w],
            "version": first.get("version"),
            "commit": first.get("commit"),
            "database": first.get("database"),
        })
    };
    print_table(&rows, &exes, &jsons, rounds);
    let report = json!({
        "tool": "fulfillment bench --compare",
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": started_at,
        "scenario": format!("{:?}", args.scenario).to_lowercase(),
        "rounds": rounds,
        "order": "this, other in each round",
        "binaries": { "this": describe(0), "other": describe(1) },
        "runs": runs,
        "figures": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    let path = args.out.join("compare.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {path:?}"))?;
    println!();
    println!("wrote {}", path.display());
    Ok(())
}

fn print_table(rows: &[Row], exes: &[PathBuf; 2], jsons: &[Vec<Value>; 2], rounds: usize) {
    let commit = |w: usize| {
        jsons[w][0]
            .get("commit")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    println!(
        "fulfillment bench --compare: {rounds} round(s), alternately; medians, each round in parentheses"
    );
    for w in 0..2 {
        println!(
            "  {}: {} (commit {})",
            WHICH[w],
            exes[w].display(),
            commit(w)
        );
    }
    if let Some(db) = jsons[0][0].get("database").and_then(Value::as_str) {
        println!("  database: {db}");
    }
    println!();
    let mut table = vec![vec![
        "figure".to_owned(),
        "unit".to_owned(),
        "this".to_owned(),
        "other".to_owned(),
        "this vs other".to_owned(),
    ]];
    for r in rows {
        table.push(vec![
            r.metric.label.to_owned(),
            r.metric.unit.name().to_owned(),
            r.cell(0),
            r.cell(1),
            r.verdict(),
        ]);
    }
    super::report::print_table(&table);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
    }

    #[test]
    fn older_bench_json_has_cpu_from_its_raw_seconds() {
        let old = json!({ "e2e": { "orders": 1000, "cpu": { "store_seconds": 0.2, "warehouse_seconds": 0.1 } } });
        let cpu = (METRICS[1].read)(&old).expect("computed");
        assert!((cpu - 0.3).abs() < 1e-9, "{cpu}");
        assert_eq!((METRICS[2].read)(&old), None, "no server figure: –");
        let rows = Row {
            metric: &METRICS[0],
            runs: [vec![Some(110.0)], vec![Some(100.0)]],
        };
        assert_eq!(rows.verdict(), "+10.0 % (better)");
        let noisy = Row {
            metric: &METRICS[0],
            runs: [vec![Some(110.0), Some(95.0)], vec![Some(100.0), Some(90.0)]],
        };
        assert_eq!(noisy.verdict(), "+7.9 % (within the rounds' spread)");
        let missing = Row {
            metric: &METRICS[2],
            runs: [vec![Some(1.0)], vec![None]],
        };
        assert_eq!(missing.verdict(), "–");
        assert_eq!(missing.cell(1), "– (–)");
    }
}
