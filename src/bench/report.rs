//! What the bench found: the table on stdout (figure, measured, target,
//! ok/MISS; with the split scenario, its figures in a column beside the
//! single warehouse's) and `bench.json` with every raw figure.

use serde::Serialize;

use super::Config;
use super::cluster::WarehouseSpec;
use super::host::{Contention, PgServer};
use super::load::{E2e, Idle, Latency, PerOrder, Propagation, Reconcile, Rss, Updates};

/// The throughput and create-latency targets of the issues (release build,
/// 2 cores), which differ by database: SQLite with synchronous=FULL, or
/// PostgreSQL with fsync on, a round trip away and flushing its own log.
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    pub throughput: f64,
    pub create_p99_ms: f64,
}

impl Targets {
    /// The targets for `backend` (`sqlite` or `postgres`).
    pub fn of(backend: &str) -> Targets {
        match backend {
            "postgres" => Targets {
                throughput: 4_000.0,
                create_p99_ms: 10.0,
            },
            _ => Targets {
                throughput: 8_000.0,
                create_p99_ms: 5.0,
            },
        }
    }
}

/// The other targets, the same for both databases.
pub const TARGET_PROPAGATION_P99_MS: f64 = 50.0;
pub const TARGET_RSS_MIB: f64 = 25.0;
pub const TARGET_RSS_ORDERS: u64 = 100_000;
/// "≈ 0": below this percent of a core.
pub const TARGET_IDLE_PERCENT: f64 = 1.0;
pub const TARGET_RECONCILE_SECONDS: f64 = 5.0;
pub const TARGET_RECONCILE_ORDERS: u64 = 1_000_000;
/// CPU per order of both services (issue 16), e2e and at 500 orders/s.
pub const TARGET_CPU_E2E_MS: f64 = 0.2;
pub const TARGET_CPU_PROPAGATION_MS: f64 = 0.5;

pub struct Results {
    pub config: Config,
    /// The commit measured ([`commit`]).
    pub commit: String,
    pub cores: usize,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// 1-minute load average of the machine when the bench started (Linux);
    /// in bench.json only, since it decays slowly and still counts a bench
    /// that ended a minute ago.
    pub load_before: Option<f64>,
    /// CPU that other processes used during the run: other work on the
    /// machine lowers every figure.
    pub contention: Option<Contention>,
    pub e2e: Option<E2e>,
    pub updates: Option<Updates>,
    pub latency: Option<Latency>,
    pub propagation: Option<Propagation>,
    pub rss: Option<Rss>,
    pub idle: Option<Idle>,
    pub reconcile: Option<Reconcile>,
    pub split: Option<Split>,
    /// The PostgreSQL server's version and durability settings, as
    /// `(name, value)`; empty on SQLite.
    pub database_settings: Vec<(String, String)>,
    /// On PostgreSQL: the local server whose CPU is counted, or why none is.
    pub database_server: Option<Result<PgServer, String>>,
    /// What the services logged at WARN or ERROR level, one line per
    /// service that did (`1 warehouse: the store logged ...`).
    pub logged: Vec<String>,
}

/// The split scenario: e2e, updates and propagation with a store and two
/// warehouses, half the orders split between them.
#[derive(Debug, Clone, Serialize)]
pub struct Split {
    pub warehouses: Vec<WarehouseSpec>,
    pub e2e: E2e,
    pub updates: Updates,
    pub propagation: Propagation,
}

impl Split {
    pub fn parts_per_order(&self) -> f64 {
        self.e2e.parts as f64 / self.e2e.orders.max(1) as f64
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub figure: String,
    /// With one warehouse; empty when that scenario did not run.
    pub measured: String,
    /// With two warehouses (the split scenario), when it ran and has this
    /// figure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub two_warehouses: Option<String>,
    /// The target, for one warehouse.
    pub target: String,
    /// Whether the one-warehouse figure meets the target; `None`: shown for
    /// context, no target.
    pub ok: Option<bool>,
}

fn row(figure: String, measured: String, target: &str, ok: Option<bool>) -> Figure {
    Figure {
        figure,
        measured,
        two_warehouses: None,
        target: target.to_owned(),
        ok,
    }
}

/// A row with a figure of each: `one` (one warehouse, with its verdict) and
/// `two` (two warehouses); `None` where that scenario did not run.
fn pair_row(
    figure: String,
    one: Option<(String, Option<bool>)>,
    two: Option<String>,
    target: &str,
) -> Figure {
    let (measured, ok) = one.unwrap_or_default();
    Figure {
        figure,
        measured,
        two_warehouses: two,
        target: target.to_owned(),
        ok,
    }
}

/// `12345.6` → `12,346`.
pub fn thousands(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

/// `0.120 + 0.080 + 0.100 = 0.300 ms`: store + warehouse(s) [+ PostgreSQL]
/// = total, per order (or update); `?` where `/proc` could not be read.
fn cpu_cell(p: &PerOrder) -> String {
    let f = |x: Option<f64>| x.map_or("?".to_owned(), |x| format!("{x:.3}"));
    let mut parts = vec![f(p.store_ms), f(p.warehouse_ms)];
    if p.database_ms.is_some() {
        parts.push(f(p.database_ms));
    }
    format!("{} = {} ms", parts.join(" + "), f(p.total_ms))
}

impl Results {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            commit: commit(),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            started_at: chrono::Utc::now(),
            load_before: load_average(),
            contention: None,
            e2e: None,
            updates: None,
            latency: None,
            propagation: None,
            rss: None,
            idle: None,
            reconcile: None,
            split: None,
            database_settings: Vec::new(),
            database_server: None,
            logged: Vec::new(),
        }
    }

    fn setting(&self, name: &str) -> Option<&str> {
        self.database_settings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The database and how durable its commits are.
    pub fn backend(&self) -> String {
        match self.config.backend.as_str() {
            "sqlite" => "SQLite (synchronous=FULL, WAL)".into(),
            "postgres" if !self.database_settings.is_empty() => {
                let settings: Vec<String> = self
                    .database_settings
                    .iter()
                    .filter(|(n, _)| n != "server_version")
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                format!(
                    "PostgreSQL {} ({})",
                    self.setting("server_version").unwrap_or("?"),
                    settings.join(", ")
                )
            }
            other => other.into(),
        }
    }

    /// Whether the PostgreSQL server's CPU is in the CPU rows.
    fn counts_database(&self) -> bool {
        matches!(self.database_server, Some(Ok(_)))
    }

    /// `  CPU per order (store + warehouse + PostgreSQL)`.
    fn cpu_label(&self, per: &str) -> String {
        format!(
            "  CPU per {per} (store + warehouse{})",
            if self.counts_database() {
                " + PostgreSQL"
            } else {
                ""
            }
        )
    }

    pub fn figures(&self) -> Vec<Figure> {
        let mut rows = Vec::new();
        let target = Targets::of(&self.config.backend);
        let tput = format!("≥ {}", thousands(target.throughput));
        let split = self.split.as_ref();
        if let Some(sp) = split {
            let one = self.e2e.as_ref().map(|e| {
                (
                    format!("{:.2}", e.parts as f64 / e.orders.max(1) as f64),
                    None,
                )
            });
            rows.push(pair_row(
                "parts per order".into(),
                one,
                Some(format!("{:.2}", sp.parts_per_order())),
                "",
            ));
        }
        let two_e2e = split.map(|s| &s.e2e);
        if let Some(clients) = self.e2e.as_ref().or(two_e2e).map(|e| e.clients) {
            rows.push(pair_row(
                format!("end-to-end store→warehouse, {clients} clients"),
                self.e2e.as_ref().map(|e| {
                    (
                        format!("{} orders/s", thousands(e.rate)),
                        Some(e.rate >= target.throughput),
                    )
                }),
                two_e2e.map(|e| format!("{} orders/s", thousands(e.rate))),
                &tput,
            ));
            rows.push(pair_row(
                "  creates answered (201) alone".into(),
                self.e2e
                    .as_ref()
                    .map(|e| (format!("{} orders/s", thousands(e.create_rate)), None)),
                two_e2e.map(|e| format!("{} orders/s", thousands(e.create_rate))),
                "",
            ));
            let back = |e: &E2e| {
                format!(
                    "{} orders/s",
                    thousands(e.orders as f64 / e.back_seconds.max(1e-6))
                )
            };
            rows.push(pair_row(
                "  until every first state is back at the store".into(),
                self.e2e.as_ref().map(|e| (back(e), None)),
                two_e2e.map(back),
                "",
            ));
            rows.push(pair_row(
                self.cpu_label("order"),
                self.e2e.as_ref().map(|e| {
                    let p = &e.cpu_per_order;
                    (cpu_cell(p), p.services_ms.map(|s| s <= TARGET_CPU_E2E_MS))
                }),
                two_e2e.map(|e| cpu_cell(&e.cpu_per_order)),
                "≤ 0.2 ms (services)",
            ));
        }
        let two_updates = split.map(|s| &s.updates);
        if let Some(clients) = self.updates.as_ref().or(two_updates).map(|u| u.clients) {
            rows.push(pair_row(
                format!("warehouse→store updates, {clients} clients"),
                self.updates.as_ref().map(|u| {
                    (
                        format!("{} updates/s", thousands(u.rate)),
                        Some(u.rate >= target.throughput),
                    )
                }),
                two_updates.map(|u| format!("{} updates/s", thousands(u.rate))),
                &tput,
            ));
            rows.push(pair_row(
                "  updates answered (200) alone".into(),
                self.updates
                    .as_ref()
                    .map(|u| (format!("{} updates/s", thousands(u.post_rate)), None)),
                two_updates.map(|u| format!("{} updates/s", thousands(u.post_rate))),
                "",
            ));
            rows.push(pair_row(
                self.cpu_label("update"),
                self.updates
                    .as_ref()
                    .map(|u| (cpu_cell(&u.cpu_per_order), None)),
                two_updates.map(|u| cpu_cell(&u.cpu_per_order)),
                "",
            ));
        }
        if let Some(l) = &self.latency {
            rows.push(row(
                format!("create latency p50 / p99, {} clients", l.clients),
                format!("{} / {} ms", ms(l.latency.p50_ms), ms(l.latency.p99_ms)),
                &format!("p99 ≤ {} ms", target.create_p99_ms),
                Some(l.latency.p99_ms <= target.create_p99_ms),
            ));
            rows.push(row(
                self.cpu_label("order"),
                cpu_cell(&l.cpu_per_order),
                "",
                None,
            ));
        }
        let two_prop = split.map(|s| &s.propagation);
        if let Some(rate) = self
            .propagation
            .as_ref()
            .or(two_prop)
            .map(|p| p.target_rate)
        {
            let p50_p99 =
                |s: &super::stats::Summary| format!("{} / {} ms", ms(s.p50_ms), ms(s.p99_ms));
            rows.push(pair_row(
                format!("propagation p50 / p99 at {}/s", thousands(f64::from(rate))),
                self.propagation.as_ref().map(|p| {
                    (
                        p50_p99(&p.latency),
                        Some(p.latency.p99_ms <= TARGET_PROPAGATION_P99_MS),
                    )
                }),
                two_prop.map(|p| p50_p99(&p.latency)),
                "p99 ≤ 50 ms",
            ));
            rows.push(pair_row(
                "  back at the store p50 / p99 (picking)".into(),
                self.propagation
                    .as_ref()
                    .map(|p| (p50_p99(&p.back.latency), None)),
                two_prop.map(|p| p50_p99(&p.back.latency)),
                "",
            ));
            rows.push(pair_row(
                self.cpu_label("order"),
                self.propagation.as_ref().map(|p| {
                    let c = &p.cpu_per_order;
                    (
                        cpu_cell(c),
                        c.services_ms.map(|s| s <= TARGET_CPU_PROPAGATION_MS),
                    )
                }),
                two_prop.map(|p| cpu_cell(&p.cpu_per_order)),
                "≤ 0.5 ms (services)",
            ));
            rows.push(pair_row(
                self.cpu_label("pick"),
                self.propagation
                    .as_ref()
                    .map(|p| (cpu_cell(&p.back.cpu_per_order), None)),
                two_prop.map(|p| cpu_cell(&p.back.cpu_per_order)),
                "",
            ));
        }
        if let Some(r) = &self.rss {
            rows.push(row(
                format!(
                    "RSS store / warehouse, {} orders",
                    thousands(r.orders as f64)
                ),
                format!("{:.1} / {:.1} MiB", r.store_mib, r.warehouse_mib),
                "≤ 25 MiB",
                Some(r.store_mib <= TARGET_RSS_MIB && r.warehouse_mib <= TARGET_RSS_MIB),
            ));
        }
        if let Some(i) = &self.idle {
            rows.push(row(
                format!("idle CPU store / warehouse, {:.0} s", i.seconds),
                format!(
                    "{:.2} / {:.2} %",
                    i.store_cpu_percent, i.warehouse_cpu_percent
                ),
                "≈ 0 (< 1 %)",
                Some(
                    i.store_cpu_percent < TARGET_IDLE_PERCENT
                        && i.warehouse_cpu_percent < TARGET_IDLE_PERCENT,
                ),
            ));
        }
        if let Some(r) = &self.reconcile {
            rows.push(row(
                format!("reconcile {} unchanged orders", thousands(r.orders as f64)),
                format!("{:.2} s, {} differences", r.seconds, r.differences),
                "≤ 5 s",
                Some(r.seconds <= TARGET_RECONCILE_SECONDS && r.differences == 0),
            ));
        }
        rows
    }

    /// Caveats that change how a figure compares with its target.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.config.smoke {
            notes.push("--smoke sizes: a check that the bench runs, not a measurement".into());
        }
        if let Some(r) = &self.rss
            && r.orders < TARGET_RSS_ORDERS
        {
            notes.push(format!(
                "RSS was read after {} orders, fewer than the target's {}",
                thousands(r.orders as f64),
                thousands(TARGET_RSS_ORDERS as f64)
            ));
        }
        if let Some(r) = &self.reconcile
            && r.orders < TARGET_RECONCILE_ORDERS
        {
            notes.push(format!(
                "reconcile ran over {} orders, fewer than the target's {}",
                thousands(r.orders as f64),
                thousands(TARGET_RECONCILE_ORDERS as f64)
            ));
        }
        if let Some(sp) = &self.split {
            notes.push(format!(
                "2 warehouses: {}, each with its own database and sync secret; every other order has a line for each \
                 (split in two parts), the rest one line, for each warehouse in turn; the targets are for one warehouse",
                sp.warehouses
                    .iter()
                    .map(|w| format!(
                        "{} stocks {} SKUs and ships {}",
                        w.name,
                        w.sku_prefixes.join(" "),
                        if w.countries.is_empty() {
                            "everywhere".to_owned()
                        } else {
                            format!("to {}", w.countries.join(" "))
                        }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let props = [
            ("", self.propagation.as_ref()),
            (
                " (2 warehouses)",
                self.split.as_ref().map(|s| &s.propagation),
            ),
        ];
        for (which, p) in props {
            let Some(p) = p else { continue };
            if p.before_201 > 0 {
                notes.push(format!(
                    "propagation{which}: {} order(s) reached their warehouse(s) before their client had the 201 (counted as 0 ms)",
                    p.before_201
                ));
            }
            if p.back.before_200 > 0 {
                notes.push(format!(
                    "propagation{which}: {} pick(s) reached the store before their client had the 200 (counted as 0 ms)",
                    p.back.before_200
                ));
            }
        }
        let off: Vec<String> = self
            .database_settings
            .iter()
            .filter(|(n, v)| n != "server_version" && v == "off")
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if !off.is_empty() {
            notes.push(format!(
                "PostgreSQL runs with {}: its commits are not durable, so the figures are better than a durable server's",
                off.join(", ")
            ));
        }
        if let Some(note) = self.database_cpu_note() {
            notes.push(note);
        }
        notes.extend(self.logged.iter().cloned());
        if let Some(c) = self.contention.as_ref().filter(|c| c.other_share >= 0.05) {
            notes.push(format!(
                "other processes used {:.0} CPU-seconds during the run ({:.0} % of the machine): \
                 the figures are lower than on a quiet machine",
                c.other_cpu_seconds,
                c.other_share * 100.0
            ));
        }
        if self.cores > 0 && self.cores != 2 {
            notes.push(format!(
                "the targets are for 2 cores; this machine has {}",
                self.cores
            ));
        }
        notes
    }

    /// What the CPU rows count (once any ran).
    fn database_cpu_note(&self) -> Option<String> {
        let any = self.e2e.is_some()
            || self.updates.is_some()
            || self.latency.is_some()
            || self.propagation.is_some()
            || self.split.is_some();
        if !any {
            return None;
        }
        let services = "CPU per order (or update, or pick): user + system time of the store and every warehouse \
                        from /proc over each scenario's timed window, divided by its orders";
        Some(match &self.database_server {
            None => services.to_owned(),
            Some(Ok(s)) => format!(
                "{services}; + PostgreSQL: the local server's postmaster (pid {}) and all its children, \
                 those that exited during the window included (the postmaster's cutime/cstime), the bench's \
                 own probe connections too",
                s.postmaster
            ),
            Some(Err(why)) => {
                format!("{services}; the PostgreSQL server's CPU is not counted: {why}")
            }
        })
    }

    pub fn print_table(&self) {
        let rows = self.figures();
        println!(
            "fulfillment bench {} (commit {}): {}, {} cores, load generator on the same machine",
            env!("CARGO_PKG_VERSION"),
            self.commit,
            self.backend(),
            self.cores
        );
        println!();
        let two = rows.iter().any(|r| r.two_warehouses.is_some());
        let dash = |s: &str| {
            if s.is_empty() {
                "–".to_owned()
            } else {
                s.to_owned()
            }
        };
        let mut table: Vec<Vec<String>> = vec![if two {
            vec![
                "figure".into(),
                "1 warehouse".into(),
                "2 warehouses".into(),
                "target".into(),
                "result".into(),
            ]
        } else {
            vec![
                "figure".into(),
                "measured".into(),
                "target".into(),
                "result".into(),
            ]
        }];
        for r in &rows {
            let verdict = match r.ok {
                Some(true) => "ok",
                Some(false) => "MISS",
                None => "",
            };
            let mut cells = vec![r.figure.clone()];
            if two {
                cells.push(dash(&r.measured));
                cells.push(dash(r.two_warehouses.as_deref().unwrap_or("")));
            } else {
                cells.push(r.measured.clone());
            }
            cells.extend([r.target.clone(), verdict.to_owned()]);
            table.push(cells);
        }
        print_table(&table);
        for n in self.notes() {
            println!("note: {n}");
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tool": "fulfillment bench",
            "version": env!("CARGO_PKG_VERSION"),
            "commit": self.commit,
            "started_at": self.started_at,
            "backend": self.config.backend,
            "database": self.backend(),
            "database_cpu": match &self.database_server {
                None => serde_json::Value::Null,
                Some(Ok(s)) => serde_json::json!({ "counted": true, "postmaster_pid": s.postmaster }),
                Some(Err(why)) => serde_json::json!({ "counted": false, "why": why }),
            },
            "database_settings": self
                .database_settings
                .iter()
                .map(|(n, v)| (n.clone(), serde_json::Value::from(v.as_str())))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
            "cores": self.cores,
            "load_average_before": self.load_before,
            "contention": self.contention,
            "os": std::env::consts::OS,
            "config": self.config,
            "figures": self.figures(),
            "notes": self.notes(),
            "logged": self.logged,
            "e2e": self.e2e,
            "updates": self.updates,
            "latency": self.latency,
            "propagation": self.propagation,
            "rss": self.rss,
            "idle": self.idle,
            "reconcile": self.reconcile,
            "split": self.split.as_ref().map(|s| serde_json::json!({
                "warehouses": s.warehouses,
                "parts_per_order": s.parts_per_order(),
                "e2e": s.e2e,
                "updates": s.updates,
                "propagation": s.propagation,
            })),
        })
    }

    /// The line every plot carries: what was measured, when, on what.
    pub fn stamp(&self) -> String {
        format!(
            "commit {} · {} · {} cores · {}{}",
            self.commit,
            self.started_at.format("%Y-%m-%d %H:%M UTC"),
            self.cores,
            self.backend(),
            if self.config.smoke {
                " · smoke sizes"
            } else {
                ""
            }
        )
    }
}

/// The commit the bench runs: `FULFILLMENT_COMMIT` when the binary was
/// built (a release pipeline sets it), else what `git describe` says of
/// the current directory (`-dirty` with uncommitted changes), else
/// `unknown` (not run from a checkout, or no git).
pub fn commit() -> String {
    if let Some(c) = option_env!("FULFILLMENT_COMMIT").filter(|c| !c.is_empty()) {
        return c.to_owned();
    }
    std::process::Command::new("git")
        .args([
            "describe",
            "--always",
            "--dirty",
            "--abbrev=12",
            "--exclude=*",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The 1-minute load average (Linux `/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Prints `table` as aligned text columns: its first row as the heading,
/// a rule under it, then the other rows.
pub(super) fn print_table(table: &[Vec<String>]) {
    let Some(head) = table.first() else {
        return;
    };
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (c, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if c + 1 < cells.len() {
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_owned()
    };
    println!("{}", line(head));
    println!(
        "{}",
        "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1))
    );
    for cells in &table[1..] {
        println!("{}", line(cells));
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
