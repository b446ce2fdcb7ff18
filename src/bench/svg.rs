//! The plots, as hand-written SVG: latency CDFs (log-scale milliseconds) and
//! a bar chart of throughputs, each with its target drawn in.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::load::Propagation;
use super::report::{
    Results, TARGET_CREATE_P99_MS, TARGET_PROPAGATION_P99_MS, TARGET_THROUGHPUT, thousands,
};

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: &[&str] = &["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];

/// Writes the plots the results have data for; returns their paths. The
/// split scenario's figures are drawn beside the single warehouse's.
pub fn write_all(r: &Results, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut write = |name: &str, svg: String| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, svg).with_context(|| format!("cannot write {path:?}"))?;
        files.push(path);
        Ok(())
    };
    if let Some(l) = &r.latency {
        write(
            "latency-cdf.svg",
            cdf(
                &format!("Create latency, {} clients (CDF)", l.clients),
                &[("POST /api/v1/orders", &l.latency.cdf)],
                Some((TARGET_CREATE_P99_MS, "target p99")),
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
        let to: Vec<(&str, &[[f64; 2]])> = props
            .iter()
            .map(|(label, _, p)| (*label, p.latency.cdf.as_slice()))
            .collect();
        write(
            "propagation-cdf.svg",
            cdf(
                &format!(
                    "Propagation, 201 at the store → applied at the warehouse, {}/s (CDF)",
                    p.target_rate
                ),
                &to,
                Some((TARGET_PROPAGATION_P99_MS, "target p99")),
            ),
        )?;
        let back: Vec<(&str, &[[f64; 2]])> = props
            .iter()
            .map(|(_, label, p)| (*label, p.back.latency.cdf.as_slice()))
            .collect();
        write(
            "back-cdf.svg",
            cdf(
                &format!(
                    "Back, picking (200 at the warehouse) → applied at the store, {}/s (CDF)",
                    p.target_rate
                ),
                &back,
                None,
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
                Some(TARGET_THROUGHPUT),
            ),
        )?;
    }
    Ok(files)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn open(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        W / 2.0,
        esc(title)
    )
}

fn frame(svg: &mut String) {
    let _ = writeln!(
        svg,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>",
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
}

/// Cumulative distributions on a log-scale x axis (milliseconds).
pub fn cdf(title: &str, series: &[(&str, &[[f64; 2]])], target: Option<(f64, &str)>) -> String {
    // Zero (or clamped) values sit on the left edge of the log axis.
    let xs = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p[0]))
        .filter(|x| *x > 0.0);
    let (mut lo, mut hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if let Some((t, _)) = target {
        hi = hi.max(t);
    }
    if lo > hi {
        (lo, hi) = (0.1, 10.0);
    }
    let lo_dec = lo.max(0.01).log10().floor();
    let hi_dec = hi.max(1e-9).log10().ceil().max(lo_dec + 1.0);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |ms: f64| LEFT + (ms.max(10f64.powf(lo_dec)).log10() - lo_dec) / (hi_dec - lo_dec) * pw;
    let y = |f: f64| TOP + (1.0 - f) * ph;

    let mut svg = open(title);
    // Grid and ticks: 1, 2, 5 per decade; 0..100 % every 10 %.
    let mut d = lo_dec;
    while d <= hi_dec {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powf(d);
            if v < 10f64.powf(lo_dec) - 1e-12 || v > 10f64.powf(hi_dec) + 1e-9 {
                continue;
            }
            let _ = writeln!(
                svg,
                "<line x1=\"{0:.1}\" y1=\"{TOP}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#ddd\"/>\
                 <text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>",
                x(v),
                TOP + ph,
                TOP + ph + 16.0,
                trim(v)
            );
        }
        d += 1.0;
    }
    for i in 0..=10 {
        let f = f64::from(i) / 10.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}%</text>",
            y(f),
            LEFT + pw,
            LEFT - 6.0,
            y(f) + 4.0,
            i * 10
        );
    }
    frame(&mut svg);
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">milliseconds (log scale)</text>\
         <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">requests at or below</text>",
        LEFT + pw / 2.0,
        H - 18.0,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    if let Some((t, label)) = target {
        let _ = writeln!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"{TOP}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#d62728\" stroke-dasharray=\"5,4\"/>\
             <line x1=\"{LEFT}\" y1=\"{2:.1}\" x2=\"{3}\" y2=\"{2:.1}\" stroke=\"#d62728\" stroke-dasharray=\"2,3\"/>\
             <text x=\"{4:.1}\" y=\"{5}\" fill=\"#d62728\">{6} {7} ms</text>",
            x(t),
            TOP + ph,
            y(0.99),
            LEFT + pw,
            x(t) + 4.0,
            TOP + 14.0,
            esc(label),
            trim(t)
        );
    }
    for (i, (label, pts)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut path = String::new();
        for p in pts.iter() {
            let _ = write!(path, "{:.1},{:.1} ", x(p[0]), y(p[1]));
        }
        let _ = writeln!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{colour}\">{}</text>",
            path.trim_end(),
            LEFT + pw - 8.0,
            TOP + ph - 10.0 - 16.0 * i as f64,
            esc(label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Groups of vertical bars, one bar per series in each group (a missing
/// value leaves its place empty), with their values, a legend when there
/// is more than one series, and a dashed target line.
pub fn bar_chart(
    title: &str,
    series: &[&str],
    groups: &[(String, Vec<Option<f64>>)],
    target: Option<f64>,
) -> String {
    let max = groups
        .iter()
        .flat_map(|g| g.1.iter().flatten().copied())
        .chain(target)
        .fold(1.0f64, f64::max)
        * 1.1;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let y = |v: f64| TOP + (1.0 - v / max) * ph;
    let mut svg = open(title);
    let step = nice_step(max / 5.0);
    let mut v = 0.0;
    while v <= max {
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>",
            y(v),
            LEFT + pw,
            LEFT - 6.0,
            y(v) + 4.0,
            thousands(v)
        );
        v += step;
    }
    frame(&mut svg);
    let slot = pw / groups.len().max(1) as f64;
    let bar = slot * 0.6 / series.len().max(1) as f64;
    for (i, (label, values)) in groups.iter().enumerate() {
        let gx = LEFT + slot * i as f64 + slot * 0.2;
        for (k, value) in values.iter().enumerate() {
            let Some(value) = value else { continue };
            let bx = gx + bar * k as f64;
            let _ = writeln!(
                svg,
                "<rect x=\"{bx:.1}\" y=\"{0:.1}\" width=\"{1:.1}\" height=\"{2:.1}\" fill=\"{3}\"/>\
                 <text x=\"{4:.1}\" y=\"{5:.1}\" text-anchor=\"middle\">{6}</text>",
                y(*value),
                bar,
                TOP + ph - y(*value),
                COLOURS[k % COLOURS.len()],
                bx + bar / 2.0,
                y(*value) - 5.0,
                thousands(*value),
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>",
            gx + slot * 0.3,
            TOP + ph + 18.0,
            esc(label)
        );
    }
    if series.len() > 1 {
        for (k, name) in series.iter().enumerate() {
            let ly = H - 14.0;
            let lx = LEFT + 10.0 + 260.0 * k as f64;
            let _ = writeln!(
                svg,
                "<rect x=\"{lx:.1}\" y=\"{0:.1}\" width=\"12\" height=\"12\" fill=\"{1}\"/>\
                 <text x=\"{2:.1}\" y=\"{3:.1}\">{4}</text>",
                ly - 10.0,
                COLOURS[k % COLOURS.len()],
                lx + 16.0,
                ly,
                esc(name)
            );
        }
    }
    if let Some(t) = target {
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#d62728\" stroke-dasharray=\"5,4\"/>\
             <text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\" fill=\"#d62728\">target {4}</text>",
            y(t),
            LEFT + pw,
            LEFT + pw - 4.0,
            y(t) - 5.0,
            thousands(t)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.max(1e-9).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// `0.5`, `2`, `1000`: a tick label without trailing zeros.
fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_svg() {
        let pts = [[0.5, 0.1], [1.0, 0.5], [3.0, 0.99], [8.0, 1.0]];
        let s = cdf("t <x>", &[("a&b", &pts)], Some((5.0, "target")));
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("t &lt;x&gt;") && s.contains("a&amp;b"));
        assert!(s.contains("<polyline"));
        let b = bar_chart(
            "b",
            &["one"],
            &[
                ("x".into(), vec![Some(100.0)]),
                ("y".into(), vec![Some(9000.0)]),
            ],
            Some(8000.0),
        );
        assert_eq!(b.matches("<rect x=").count(), 3, "frame and two bars");
        let g = bar_chart(
            "g",
            &["one", "two"],
            &[
                ("x".into(), vec![None, Some(100.0)]),
                ("y".into(), vec![Some(9000.0), Some(7000.0)]),
            ],
            None,
        );
        assert_eq!(
            g.matches("<rect x=").count(),
            6,
            "frame, three bars, two legend keys"
        );
        assert!(g.contains(">two</text>") && !g.contains("NaN"));
        assert!(!b.contains("NaN") && !s.contains("NaN"));
        let zeros = cdf("z", &[("a", &[[0.0, 0.01], [2.0, 0.5], [30.0, 1.0]])], None);
        assert!(zeros.contains(">1</text>") && !zeros.contains(">0.01</text>"));
        let empty = cdf("e", &[("none", &[])], None);
        assert!(!empty.contains("NaN"));
    }

    #[test]
    fn steps_and_labels() {
        assert_eq!(nice_step(1800.0), 2000.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(trim(0.5), "0.5");
        assert_eq!(trim(100.0), "100");
    }
}
