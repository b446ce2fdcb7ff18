//! What the bench found: the table on stdout (figure, measured, target,
//! ok/MISS) and `bench.json` with every raw figure.

use serde::Serialize;

use super::Config;
use super::host::Contention;
use super::load::{E2e, Idle, Latency, Propagation, Reconcile, Rss, Updates};

/// The targets of the issue (release build, 2 cores, SQLite, synchronous=FULL).
pub const TARGET_THROUGHPUT: f64 = 8_000.0;
pub const TARGET_CREATE_P99_MS: f64 = 5.0;
pub const TARGET_PROPAGATION_P99_MS: f64 = 50.0;
pub const TARGET_RSS_MIB: f64 = 25.0;
pub const TARGET_RSS_ORDERS: u64 = 100_000;
/// "≈ 0": below this percent of a core.
pub const TARGET_IDLE_PERCENT: f64 = 1.0;
pub const TARGET_RECONCILE_SECONDS: f64 = 5.0;
pub const TARGET_RECONCILE_ORDERS: u64 = 1_000_000;

pub struct Results {
    pub config: Config,
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
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub figure: String,
    pub measured: String,
    pub target: String,
    /// `None`: shown for context, no target.
    pub ok: Option<bool>,
}

fn row(figure: String, measured: String, target: &str, ok: Option<bool>) -> Figure {
    Figure {
        figure,
        measured,
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

impl Results {
    pub fn new(config: Config) -> Self {
        Self {
            config,
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
        }
    }

    pub fn backend(&self) -> String {
        match self.config.backend.as_str() {
            "sqlite" => "SQLite (synchronous=FULL, WAL)".into(),
            other => other.into(),
        }
    }

    pub fn figures(&self) -> Vec<Figure> {
        let mut rows = Vec::new();
        let tput = format!("≥ {}", thousands(TARGET_THROUGHPUT));
        if let Some(e) = &self.e2e {
            rows.push(row(
                format!("end-to-end store→warehouse, {} clients", e.clients),
                format!("{} orders/s", thousands(e.rate)),
                &tput,
                Some(e.rate >= TARGET_THROUGHPUT),
            ));
            rows.push(row(
                "  creates answered (201) alone".into(),
                format!("{} orders/s", thousands(e.create_rate)),
                "",
                None,
            ));
        }
        if let Some(u) = &self.updates {
            rows.push(row(
                format!("warehouse→store updates, {} clients", u.clients),
                format!("{} updates/s", thousands(u.rate)),
                &tput,
                Some(u.rate >= TARGET_THROUGHPUT),
            ));
            rows.push(row(
                "  updates answered (200) alone".into(),
                format!("{} updates/s", thousands(u.post_rate)),
                "",
                None,
            ));
        }
        if let Some(l) = &self.latency {
            rows.push(row(
                format!("create latency p50 / p99, {} clients", l.clients),
                format!("{} / {} ms", ms(l.latency.p50_ms), ms(l.latency.p99_ms)),
                "p99 ≤ 5 ms",
                Some(l.latency.p99_ms <= TARGET_CREATE_P99_MS),
            ));
        }
        if let Some(p) = &self.propagation {
            rows.push(row(
                format!(
                    "propagation p50 / p99 at {}/s",
                    thousands(f64::from(p.target_rate))
                ),
                format!("{} / {} ms", ms(p.latency.p50_ms), ms(p.latency.p99_ms)),
                "p99 ≤ 50 ms",
                Some(p.latency.p99_ms <= TARGET_PROPAGATION_P99_MS),
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
        if let Some(p) = &self.propagation
            && p.before_201 > 0
        {
            notes.push(format!(
                    "propagation: {} order(s) reached the warehouse before their client had the 201 (counted as 0 ms)",
                    p.before_201
                ));
        }
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

    pub fn print_table(&self) {
        let rows = self.figures();
        println!(
            "fulfillment bench {}: {}, {} cores, load generator on the same machine",
            env!("CARGO_PKG_VERSION"),
            self.backend(),
            self.cores
        );
        println!();
        let w0 = rows
            .iter()
            .map(|r| r.figure.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let w1 = rows
            .iter()
            .map(|r| r.measured.chars().count())
            .max()
            .unwrap_or(0)
            .max(8);
        let w2 = rows
            .iter()
            .map(|r| r.target.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w - s.chars().count()));
        println!(
            "{}  {}  {}  result",
            pad("figure", w0),
            pad("measured", w1),
            pad("target", w2)
        );
        println!("{}", "-".repeat(w0 + w1 + w2 + 12));
        for r in &rows {
            let verdict = match r.ok {
                Some(true) => "ok",
                Some(false) => "MISS",
                None => "",
            };
            println!(
                "{}  {}  {}  {verdict}",
                pad(&r.figure, w0),
                pad(&r.measured, w1),
                pad(&r.target, w2)
            );
        }
        for n in self.notes() {
            println!("note: {n}");
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tool": "fulfillment bench",
            "version": env!("CARGO_PKG_VERSION"),
            "started_at": self.started_at,
            "backend": self.config.backend,
            "cores": self.cores,
            "load_average_before": self.load_before,
            "contention": self.contention,
            "os": std::env::consts::OS,
            "config": self.config,
            "figures": self.figures(),
            "notes": self.notes(),
            "e2e": self.e2e,
            "updates": self.updates,
            "latency": self.latency,
            "propagation": self.propagation,
            "rss": self.rss,
            "idle": self.idle,
            "reconcile": self.reconcile,
        })
    }
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
