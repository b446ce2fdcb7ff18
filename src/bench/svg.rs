//! The plots, drawn with [`crate::plot`]: the latency tails (percentile
//! against milliseconds, both on log scales, so p99.9 reads as easily as
//! p50; p50 and p99 marked, the target drawn in), the throughputs as bars
//! with their target, and each scenario over time (throughput and
//! backlog, second by second). Every image carries a stamp: the commit,
//! the date, the cores and the database.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::load::Propagation;
use super::report::{Results, TARGET_PROPAGATION_P99_MS, Targets, thousands};
use super::stats::Summary;
use super::timeline::Timeline;
use crate::plot::{self, Axis, Bars, Chart, Kind, Layout, Mark, Series};

/// Size of each image (a timeline is two of these, one above the other).
const W: f64 = 720.0;
const H: f64 = 420.0;
const FONT: f64 = 13.0;

/// Writes the plots the results have data for; returns their paths. The
/// split scenario's figures are drawn beside the single warehouse's.
pub fn write_all(r: &Results, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let stamp = r.stamp();
    let mut files = Vec::new();
    let mut write = |name: &str, svg: String| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, svg).with_context(|| format!("cannot write {path:?}"))?;
        files.push(path);
        Ok(())
    };
    if let Some(l) = &r.latency {
        write(
            "latency-tail.svg",
            tail(
                &format!("Create latency, {} clients: the tail", l.clients),
                &[("POST /api/v1/orders", &l.latency)],
                Some((
                    Targets::of(&r.config.backend).create_p99_ms,
                    "target: p99 ≤",
                )),
                &stamp,
            ),
        )?;
    }
    let split = r.split.as_ref();
    // `(label there, label back, figures)`: the single warehouse's, then
    // the split scenario's.
    let props: Vec<(&str, &str, &Propagation)> = [
        ("1 warehouse", "1 warehouse", r.propagation.as_ref()),
        (
            "2 warehouses (an order's last part)",
            "2 warehouses",
            split.map(|s| &s.propagation),
        ),
    ]
    .into_iter()
    .filter_map(|(there, back, p)| Some((there, back, p?)))
    .collect();
    if let Some((_, _, p)) = props.first() {
        let to: Vec<(&str, &Summary)> = props.iter().map(|(l, _, p)| (*l, &p.latency)).collect();
        write(
            "propagation-tail.svg",
            tail(
                &format!(
                    "Propagation at {}/s: 201 at the store → applied at the warehouse",
                    p.target_rate
                ),
                &to,
                Some((TARGET_PROPAGATION_P99_MS, "target: p99 ≤")),
                &stamp,
            ),
        )?;
        let back: Vec<(&str, &Summary)> = props
            .iter()
            .map(|(_, l, p)| (*l, &p.back.latency))
            .collect();
        write(
            "back-tail.svg",
            tail(
                &format!(
                    "Back at {}/s: picking (200 at the warehouse) → applied at the store",
                    p.target_rate
                ),
                &back,
                None,
                &stamp,
            ),
        )?;
    }
    let one = |v: Option<f64>| vec![v];
    let mut series = vec!["1 warehouse"];
    let mut groups: Vec<(String, Vec<Option<f64>>)> = vec![
        (
            "store→warehouse".into(),
            one(r.e2e.as_ref().map(|e| e.rate)),
        ),
        (
            "creates (201)".into(),
            one(r.e2e.as_ref().map(|e| e.create_rate)),
        ),
        (
            "warehouse→store".into(),
            one(r.updates.as_ref().map(|u| u.rate)),
        ),
        (
            "updates (200)".into(),
            one(r.updates.as_ref().map(|u| u.post_rate)),
        ),
    ];
    if let Some(s) = split {
        series.push("2 warehouses, half the orders split");
        for (g, v) in groups.iter_mut().zip([
            s.e2e.rate,
            s.e2e.create_rate,
            s.updates.rate,
            s.updates.post_rate,
        ]) {
            g.1.push(Some(v));
        }
    }
    groups.retain(|g| g.1.iter().any(Option::is_some));
    if !groups.is_empty() {
        write(
            "throughput.svg",
            bar_chart(
                &format!(
                    "Throughput, {} clients, {} (per second)",
                    r.config.clients, r.config.backend
                ),
                &series,
                &groups,
                Some(Targets::of(&r.config.backend).throughput),
                &stamp,
            ),
        )?;
    }
    let timelines: [(&str, String, Option<&Timeline>); 7] = [
        (
            "timeline-e2e.svg",
            r.e2e.as_ref().map_or(String::new(), |e| {
                format!(
                    "e2e: {} orders from {} clients, 1 warehouse",
                    thousands(e.orders as f64),
                    e.clients
                )
            }),
            r.e2e.as_ref().map(|e| &e.timeline),
        ),
        (
            "timeline-updates.svg",
            r.updates.as_ref().map_or(String::new(), |u| {
                format!(
                    "updates: {} parts to picking from {} clients, 1 warehouse",
                    thousands(u.parts as f64),
                    u.clients
                )
            }),
            r.updates.as_ref().map(|u| &u.timeline),
        ),
        (
            "timeline-latency.svg",
            r.latency.as_ref().map_or(String::new(), |l| {
                format!("latency: creates from {} clients, 1 warehouse", l.clients)
            }),
            r.latency.as_ref().map(|l| &l.timeline),
        ),
        (
            "timeline-propagation.svg",
            r.propagation.as_ref().map_or(String::new(), |p| {
                format!(
                    "propagation: {}/s there, then as many picks back, 1 warehouse",
                    p.target_rate
                )
            }),
            r.propagation.as_ref().map(|p| &p.timeline),
        ),
        (
            "timeline-split-e2e.svg",
            split.map_or(String::new(), |s| {
                format!(
                    "split e2e: {} orders from {} clients, 2 warehouses",
                    thousands(s.e2e.orders as f64),
                    s.e2e.clients
                )
            }),
            split.map(|s| &s.e2e.timeline),
        ),
        (
            "timeline-split-updates.svg",
            split.map_or(String::new(), |s| {
                format!(
                    "split updates: {} parts to picking, 2 warehouses",
                    thousands(s.updates.parts as f64)
                )
            }),
            split.map(|s| &s.updates.timeline),
        ),
        (
            "timeline-split-propagation.svg",
            split.map_or(String::new(), |s| {
                format!(
                    "split propagation: {}/s there and back, 2 warehouses",
                    s.propagation.target_rate
                )
            }),
            split.map(|s| &s.propagation.timeline),
        ),
    ];
    for (file, title, t) in timelines {
        if let Some(t) = t {
            write(file, timeline(&title, t, &stamp))?;
        }
    }
    Ok(files)
}

/// A latency as a label: `3.24 ms`, `48.8 ms`, `1.2 s`.
fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 1000.0 {
        format!("{v:.1} ms")
    } else {
        format!("{:.2} s", v / 1000.0)
    }
}

/// Where percentile `p` sits on the tail axis: 1 / (1 − p/100).
fn tail_x(p: f64) -> f64 {
    100.0 / (100.0 - p).max(1e-9)
}

/// Latency tails: the percentile on a log scale of 1 − q (0, 50, 90, 99,
/// 99.9, ... at equal steps), the milliseconds on a log scale; p50 and
/// p99 of each series marked, the target drawn as a line.
pub fn tail(
    title: &str,
    series: &[(&str, &Summary)],
    target: Option<(f64, &str)>,
    stamp: &str,
) -> String {
    let right = series
        .iter()
        .filter_map(|(_, s)| s.tail.last())
        .map(|t| tail_x(t[0]))
        .fold(100.0f64, f64::max);
    let right = 10f64.powf(right.log10().ceil());
    let ticks: Vec<(f64, String)> = [
        (0.0, "p0"),
        (50.0, "p50"),
        (90.0, "p90"),
        (99.0, "p99"),
        (99.9, "p99.9"),
        (99.99, "p99.99"),
        (99.999, "p99.999"),
        (99.9999, "p99.9999"),
    ]
    .into_iter()
    .map(|(p, l)| (tail_x(p), l.to_owned()))
    .filter(|(x, _)| *x <= right * 1.000_001)
    .collect();
    let mut chart = Chart::new(W, H)
        .font(FONT)
        .title(title)
        .x(Axis::log("percentile (the slowest share on a log scale)")
            .range(1.0, right)
            .ticks(ticks))
        .y(Axis::log("milliseconds (log scale)").format(plot::millis))
        .stamp(stamp)
        .empty("No requests were measured.");
    for (i, (name, s)) in series.iter().enumerate() {
        let colour = plot::PALETTE[i % plot::PALETTE.len()];
        let points = s
            .tail
            .iter()
            // The log axis has no 0: a change applied before its client
            // had the answer (counted as 0 ms) is left out of the line.
            .filter(|t| t[1] > 0.0)
            .map(|t| (tail_x(t[0]), Some(t[1])))
            .collect();
        chart = chart.series(Series::line(name, points).colour(colour));
        if s.count > 0 && s.p50_ms > 0.0 {
            let who = if series.len() > 1 {
                format!("{name}: ")
            } else {
                String::new()
            };
            chart = chart
                .mark(Mark::Point {
                    x: tail_x(50.0),
                    y: s.p50_ms,
                    label: format!("{who}p50 {}", ms(s.p50_ms)),
                    colour,
                })
                .mark(Mark::Point {
                    x: tail_x(99.0),
                    y: s.p99_ms,
                    label: format!("{who}p99 {}", ms(s.p99_ms)),
                    colour,
                });
        }
    }
    if let Some((t, label)) = target {
        chart = chart.mark(Mark::Horizontal {
            y: t,
            label: format!("{label} {}", ms(t)),
            colour: plot::RED,
        });
    }
    chart.svg()
}

/// Groups of vertical bars, one bar per series in each group (a missing
/// value leaves its place empty), with their values, a legend and a
/// dashed target line.
pub fn bar_chart(
    title: &str,
    series: &[&str],
    groups: &[(String, Vec<Option<f64>>)],
    target: Option<f64>,
    stamp: &str,
) -> String {
    let ticks = groups
        .iter()
        .enumerate()
        .map(|(i, (label, _))| (i as f64, label.clone()))
        .collect();
    let mut chart = Chart::new(W, H)
        .font(FONT)
        .title(title)
        .x(Axis::linear("")
            .range(-0.5, groups.len() as f64 - 0.5)
            .ticks(ticks))
        .y(Axis::linear("per second"))
        .bars(Bars {
            slot: 1.0,
            layout: Layout::Grouped,
            values: Some(thousands),
        })
        .stamp(stamp);
    for (k, name) in series.iter().enumerate() {
        let points = groups
            .iter()
            .enumerate()
            .map(|(i, (_, values))| (i as f64, values.get(k).copied().flatten()))
            .collect();
        chart =
            chart.series(Series::bars(name, points).colour(plot::PALETTE[k % plot::PALETTE.len()]));
    }
    if let Some(t) = target {
        chart = chart.mark(Mark::Horizontal {
            y: t,
            label: format!("target {}/s", thousands(t)),
            colour: plot::RED,
        });
    }
    chart.svg()
}

/// A scenario second by second: throughput (client writes accepted, and
/// snapshots applied from the peer) above the backlog.
pub fn timeline(title: &str, t: &Timeline, stamp: &str) -> String {
    let at = |v: &[f64]| -> Vec<(f64, Option<f64>)> {
        t.t.iter().zip(v).map(|(x, y)| (*x, Some(*y))).collect()
    };
    let last = t.t.last().copied().unwrap_or(1.0).max(1.0);
    let x = || {
        Axis::linear("seconds since the scenario started")
            .range(0.0, last)
            .format(|s| format!("{} s", plot::count(s)))
    };
    let throughput = Chart::new(W, H * 0.7)
        .font(FONT)
        .title(&format!("{title}: throughput"))
        .x(x())
        .y(Axis::linear("per second"))
        .series(Series::line("client writes accepted", at(&t.accepted_per_s)).colour(plot::BLUE))
        .series(
            Series::new(
                "snapshots applied (both sides)",
                Kind::Dashed,
                at(&t.applied_per_s),
            )
            .colour(plot::GREEN),
        )
        .empty("The scenario ended before the first sample.");
    let backlog: Vec<f64> = t.backlog.iter().map(|b| *b as f64).collect();
    let waiting = Chart::new(W, H * 0.6)
        .font(FONT)
        .title(&format!("{title}: backlog"))
        .x(x())
        .y(Axis::linear("changes waiting").whole())
        .series(Series::line("in the outboxes", at(&backlog)).colour(plot::ORANGE))
        .stamp(stamp)
        .empty("The scenario ended before the first sample.");
    plot::column(&[throughput, waiting])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::summarize;

    #[test]
    fn plots_are_svg() {
        let s = summarize((1..=2000).map(|i| f64::from(i) / 100.0).collect());
        let t = tail(
            "t <x>",
            &[("a&b", &s)],
            Some((5.0, "target: p99 ≤")),
            "stamp",
        );
        assert!(t.starts_with("<svg") && t.trim_end().ends_with("</svg>"));
        assert!(t.contains("t &lt;x&gt;") && t.contains("a&amp;b"));
        assert!(t.contains("<polyline"));
        assert!(
            t.contains(">p50 10.0 ms<") && t.contains(">p99 19.8 ms<"),
            "{t}"
        );
        assert!(t.contains(">target: p99 ≤ 5.00 ms<"));
        assert!(t.contains(">p99.9<") && t.contains(">stamp<"));
        let b = bar_chart(
            "b",
            &["one"],
            &[
                ("x".into(), vec![Some(100.0)]),
                ("y".into(), vec![Some(9000.0)]),
            ],
            Some(8000.0),
            "stamp",
        );
        assert_eq!(b.matches("<rect x=").count(), 4, "frame, two bars, a key");
        assert!(b.contains(">9,000<") && b.contains(">target 8,000/s<"));
        let g = bar_chart(
            "g",
            &["one", "two"],
            &[
                ("x".into(), vec![None, Some(100.0)]),
                ("y".into(), vec![Some(9000.0), Some(7000.0)]),
            ],
            None,
            "stamp",
        );
        assert_eq!(
            g.matches("<rect x=").count(),
            6,
            "frame, three bars, two legend keys"
        );
        assert!(g.contains(">two</text>") && !g.contains("NaN"));
        assert!(!b.contains("NaN") && !t.contains("NaN"));
        let zeros = summarize(vec![0.0, 2.0, 30.0]);
        assert!(!tail("z", &[("a", &zeros)], None, "s").contains("NaN"));
        let empty = tail("e", &[("none", &Summary::default())], None, "s");
        assert!(!empty.contains("NaN") && empty.contains("No requests were measured."));
    }

    #[test]
    fn timelines_are_two_charts_with_a_stamp() {
        let t = Timeline {
            t: vec![1.0, 2.0, 3.0],
            accepted_per_s: vec![100.0, 120.0, 0.0],
            applied_per_s: vec![90.0, 110.0, 40.0],
            backlog: vec![10, 30, 0],
        };
        let svg = timeline("e2e", &t, "commit abc · 2 cores");
        assert_eq!(svg.matches("<svg").count(), 3, "one image of two charts");
        assert!(svg.contains(">commit abc · 2 cores<"));
        assert!(svg.contains("data-points=\"6\"") && svg.contains("data-points=\"3\""));
        assert!(!svg.contains("NaN"));
    }
}
