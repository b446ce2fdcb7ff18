//! Charts drawn as SVG text: axes with ticks that fit (linear, or log with
//! 1-2-5 per decade), line and bar series (bars stacked or side by side),
//! reference marks with labels, a legend, a title, a stamp line and a text
//! for "no data". It knows nothing of this project and does no I/O: the
//! admin sync page inlines its charts in the page, the bench writes them to
//! files, both through this one module.
//!
//! Labels never collide or leave the image: text widths are estimated from
//! the font size (a generous average glyph width), margins grow to fit the
//! y tick labels, long titles and stamps wrap, and tick labels that would
//! overlap are thinned, the more important ones (decades on a log axis)
//! kept first. The image scales (a `viewBox`), so one drawing serves a
//! wide screen and a phone; only presentation attributes are used (no
//! `style`), which a strict Content-Security-Policy allows inline.

use std::fmt::Write as _;

/// Colours that stay apart for people with the common colour blindnesses.
pub const BLUE: &str = "#1f77b4";
pub const ORANGE: &str = "#ff7f0e";
pub const GREEN: &str = "#2ca02c";
pub const RED: &str = "#d62728";
pub const PURPLE: &str = "#9467bd";
pub const GREY: &str = "#666666";
/// The palette, in order, for series that have no colour of their own.
pub const PALETTE: &[&str] = &[BLUE, ORANGE, GREEN, RED, PURPLE];

/// Width of an average glyph, as a share of the font size: a little wider
/// than sans-serif text really is, so estimates err on the roomy side.
const GLYPH: f64 = 0.62;
/// Space kept around the drawing and between labels.
const PAD: f64 = 8.0;

/// How values map to positions along an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    Linear,
    /// Logarithmic (base 10); values at or below 0 sit on the low end.
    Log,
}

/// One axis: its title (with the unit), scale, range and ticks.
#[derive(Debug, Clone)]
pub struct Axis {
    label: String,
    scale: Scale,
    range: Option<(f64, f64)>,
    /// `(value, label, priority)`: 0 kept first when labels crowd.
    ticks: Option<Vec<(f64, String, u8)>>,
    format: fn(f64) -> String,
    /// Automatic ticks only on whole numbers (counts).
    whole: bool,
}

impl Axis {
    pub fn linear(label: &str) -> Axis {
        Axis {
            label: label.to_owned(),
            scale: Scale::Linear,
            range: None,
            ticks: None,
            format: count,
            whole: false,
        }
    }

    pub fn log(label: &str) -> Axis {
        Axis {
            scale: Scale::Log,
            ..Axis::linear(label)
        }
    }

    /// A fixed range (else it fits the data: from 0, or from the decade
    /// below the smallest value on a log axis).
    pub fn range(mut self, lo: f64, hi: f64) -> Axis {
        self.range = Some((lo, hi));
        self
    }

    /// Ticks of the caller's choosing, as `(value, label)` (else chosen
    /// here: nice steps, or 1-2-5 per decade).
    pub fn ticks(mut self, ticks: Vec<(f64, String)>) -> Axis {
        self.ticks = Some(ticks.into_iter().map(|(v, l)| (v, l, 0)).collect());
        self
    }

    /// Ticks of the caller's choosing with a priority each: where labels
    /// crowd, those of priority 0 are kept first, then 1, ...
    pub fn ranked_ticks(mut self, ticks: Vec<(f64, String, u8)>) -> Axis {
        self.ticks = Some(ticks);
        self
    }

    /// Automatic ticks on whole numbers only: a count of 0 or 1 is not
    /// labelled 0.2, 0.4, ...
    pub fn whole(mut self) -> Axis {
        self.whole = true;
        self
    }

    /// How automatic tick labels are written (default [`count`]).
    pub fn format(mut self, f: fn(f64) -> String) -> Axis {
        self.format = f;
        self
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A line through the points, broken where a value is missing; a lone
    /// point shows as a dot.
    Line,
    /// A dashed line.
    Dashed,
    /// A bar per point (see [`Bars`]).
    Bars,
}

/// One series: its name (in the legend), colour, kind and points
/// `(x, y)`, `y` `None` where there is no value.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub colour: Option<&'static str>,
    pub kind: Kind,
    pub points: Vec<(f64, Option<f64>)>,
}

impl Series {
    pub fn new(name: &str, kind: Kind, points: Vec<(f64, Option<f64>)>) -> Series {
        Series {
            name: name.to_owned(),
            colour: None,
            kind,
            points,
        }
    }

    pub fn line(name: &str, points: Vec<(f64, Option<f64>)>) -> Series {
        Series::new(name, Kind::Line, points)
    }

    pub fn bars(name: &str, points: Vec<(f64, Option<f64>)>) -> Series {
        Series::new(name, Kind::Bars, points)
    }

    pub fn colour(mut self, c: &'static str) -> Series {
        self.colour = Some(c);
        self
    }

    fn values(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points
            .iter()
            .filter_map(|(x, y)| Some((*x, (*y)?)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }
}

/// How bar series share an x value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// On top of each other, in the order of the series.
    Stacked,
    /// Side by side, in the order of the series.
    Grouped,
}

/// Bars: the width of the slot each x value gets (in x units), and how
/// the series share it. Values may be written above the bars.
#[derive(Debug, Clone, Copy)]
pub struct Bars {
    pub slot: f64,
    pub layout: Layout,
    pub values: Option<fn(f64) -> String>,
}

/// A reference drawn over the data, with its label.
#[derive(Debug, Clone)]
pub enum Mark {
    /// A dashed horizontal line at `y` (a target, say).
    Horizontal {
        y: f64,
        label: String,
        colour: &'static str,
    },
    /// A dashed vertical line at `x`.
    Vertical {
        x: f64,
        label: String,
        colour: &'static str,
    },
    /// A point with its label beside it (a percentile, say).
    Point {
        x: f64,
        y: f64,
        label: String,
        colour: &'static str,
    },
}

/// A chart: build it, then draw it with [`Chart::svg`].
#[derive(Debug, Clone)]
pub struct Chart {
    width: f64,
    height: f64,
    font: f64,
    title: Option<String>,
    x: Axis,
    y: Axis,
    series: Vec<Series>,
    bars: Bars,
    marks: Vec<Mark>,
    stamp: Option<String>,
    empty: String,
    id: Option<String>,
}

/// A text's box, in image coordinates: `(left, top, right, bottom)`.
type TextBox = (f64, f64, f64, f64);

/// A drawing, with where its labels went and points along its lines
/// (which the tests check).
struct Drawn {
    svg: String,
    #[cfg_attr(not(test), allow(dead_code))]
    labels: Vec<TextBox>,
    #[cfg_attr(not(test), allow(dead_code))]
    lines: Vec<(f64, f64)>,
}

/// Estimated width of `s` at font size `font`.
pub fn text_width(s: &str, font: f64) -> f64 {
    s.chars().count() as f64 * font * GLYPH
}

/// `s` broken into lines at spaces so that each fits `width` at `font`
/// (a word longer than the width gets a line of its own).
pub fn wrap(s: &str, width: f64, font: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if !line.is_empty() && text_width(&candidate, font) > width {
            lines.push(std::mem::replace(&mut line, word.to_owned()));
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn overlaps(a: TextBox, b: TextBox, gap: f64) -> bool {
    a.0 < b.2 + gap && b.0 < a.2 + gap && a.1 < b.3 + gap && b.1 < a.3 + gap
}

/// Which labels to keep: each candidate is its box and its priority (0
/// first); one is kept when it overlaps none kept before it, candidates
/// taken by priority, then in the order given. Returns the kept indices,
/// in the order given.
pub fn thin(boxes: &[(TextBox, u8)], gap: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by_key(|i| boxes[*i].1);
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept.iter().all(|k| !overlaps(boxes[*k].0, boxes[i].0, gap)) {
            kept.push(i);
        }
    }
    kept.sort_unstable();
    kept
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.max(1e-12).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * p)
}

/// Ticks of a log axis over `lo..=hi` (powers of ten): 1, 2 and 5 of each
/// decade, with a priority (0 for the decades, 1 for the rest).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, u8)> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mut out = Vec::new();
    for d in a..=b {
        for (m, prio) in [(1.0, 0), (2.0, 1), (5.0, 1)] {
            let v = m * 10f64.powi(d);
            if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                out.push((v, prio));
            }
        }
    }
    out
}

/// A count for people: `7`, `1,250`, `2.5`, `0.25`.
pub fn count(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract().abs() < 1e-9 {
        let n = v.round() as i64;
        let s = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Milliseconds as a short duration: `0.5 ms`, `20 ms`, `1.5 s`, `2 min`.
pub fn millis(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{} ms", count(ms))
    } else if ms < 60_000.0 {
        format!("{} s", count(ms / 1000.0))
    } else if ms < 3_600_000.0 {
        format!("{} min", count(ms / 60_000.0))
    } else {
        format!("{} h", count(ms / 3_600_000.0))
    }
}

/// Ranked ticks for a log axis of seconds on round durations: 1 ms, 10
/// ms, 100 ms, 1 s, 10 s, 1 min, 10 min, 1 h and 1 d first, then 2 and 5
/// ms, ..., 30 s, 5 min, 30 min, 6 h where there is room; never powers of
/// ten of seconds (`16.7 min`). Those off the axis's range are not drawn.
pub fn duration_ticks() -> Vec<(f64, String, u8)> {
    let major = [0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 600.0, 3600.0, 86_400.0];
    let minor = [
        0.002, 0.005, 0.02, 0.05, 0.2, 0.5, 2.0, 5.0, 30.0, 300.0, 1800.0, 21_600.0,
    ];
    let mut out: Vec<(f64, String, u8)> = major
        .into_iter()
        .map(|s| (s, 0))
        .chain(minor.into_iter().map(|s| (s, 1)))
        .map(|(s, p)| (s, seconds(s), p))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Seconds as a short duration (as [`millis`]).
pub fn seconds(s: f64) -> String {
    millis(s * 1000.0)
}

/// `&`, `<`, `>` and `"` escaped for SVG text and attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where a value goes along an axis: `lo..hi` onto `from..to` pixels.
#[derive(Debug, Clone, Copy)]
struct Map {
    scale: Scale,
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Map {
    fn at(&self, v: f64) -> f64 {
        let f = match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => {
                (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
            }
        };
        let f = if f.is_finite() { f } else { 0.0 };
        self.from + f * (self.to - self.from)
    }
}

/// The range an axis covers: its own, or the data's (`values`), made
/// safe (a positive log range; never empty).
fn resolve(axis: &Axis, values: &[f64], zero: bool) -> (f64, f64) {
    if let Some((lo, hi)) = axis.range
        && lo.is_finite()
        && hi.is_finite()
        && hi > lo
        && (axis.scale == Scale::Linear || lo > 0.0)
    {
        return (lo, hi);
    }
    match axis.scale {
        Scale::Linear => {
            let (mut lo, mut hi) = values
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
            if lo > hi {
                (lo, hi) = (0.0, 1.0);
            }
            if zero {
                lo = lo.min(0.0);
                hi = hi.max(0.0);
                // Room above the tallest value (and a target drawn there).
                hi += (hi - lo) * 0.05;
            }
            if hi - lo < 1e-12 {
                hi = lo + 1.0;
            }
            (lo, hi)
        }
        Scale::Log => {
            let positive = values.iter().copied().filter(|v| *v > 0.0);
            let (lo, hi) = positive.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
            if lo > hi {
                return (1.0, 10.0);
            }
            let lo = 10f64.powf(lo.log10().floor());
            let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
            (lo, hi)
        }
    }
}

/// Automatic ticks of a linear range for `room` pixels, at most one per
/// `per` pixels and at least `min_step` apart; the range's top is raised
/// to the last tick when `round_up`. Returns the ticks and the (maybe
/// raised) top.
fn linear_ticks(
    lo: f64,
    hi: f64,
    room: f64,
    per: f64,
    min_step: f64,
    round_up: bool,
) -> (Vec<f64>, f64) {
    let n = (room / per).floor().clamp(1.0, 8.0);
    let step = nice_step((hi - lo) / n).max(min_step);
    let top = if round_up {
        (hi / step - 1e-9).ceil() * step
    } else {
        hi
    };
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= top + step * 1e-9 {
        // -0 and float dust print as 0.
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    (out, top)
}

impl Chart {
    /// An empty chart of `width` × `height` (the drawing's own units;
    /// it scales to whatever space it is given).
    pub fn new(width: f64, height: f64) -> Chart {
        Chart {
            width,
            height,
            font: 12.0,
            title: None,
            x: Axis::linear(""),
            y: Axis::linear(""),
            series: Vec::new(),
            bars: Bars {
                slot: 1.0,
                layout: Layout::Stacked,
                values: None,
            },
            marks: Vec::new(),
            stamp: None,
            empty: "No data.".to_owned(),
            id: None,
        }
    }

    pub fn font(mut self, size: f64) -> Chart {
        self.font = size;
        self
    }

    pub fn title(mut self, t: &str) -> Chart {
        self.title = Some(t.to_owned());
        self
    }

    pub fn x(mut self, a: Axis) -> Chart {
        self.x = a;
        self
    }

    pub fn y(mut self, a: Axis) -> Chart {
        self.y = a;
        self
    }

    pub fn series(mut self, s: Series) -> Chart {
        self.series.push(s);
        self
    }

    pub fn bars(mut self, b: Bars) -> Chart {
        self.bars = b;
        self
    }

    pub fn mark(mut self, m: Mark) -> Chart {
        self.marks.push(m);
        self
    }

    /// A small line at the bottom: where the figures come from.
    pub fn stamp(mut self, s: &str) -> Chart {
        self.stamp = Some(s.to_owned());
        self
    }

    /// What the chart says when no series has a value.
    pub fn empty(mut self, s: &str) -> Chart {
        self.empty = s.to_owned();
        self
    }

    /// An `id` for the `<svg>` element.
    pub fn id(mut self, id: &str) -> Chart {
        self.id = Some(id.to_owned());
        self
    }

    /// How many values the series hold.
    pub fn points(&self) -> usize {
        self.series.iter().map(|s| s.values().count()).sum()
    }

    /// The bars' tops (stacked bars are summed) and every other y value:
    /// what the y range must hold.
    fn y_values(&self) -> Vec<f64> {
        let mut out = Vec::new();
        let mut stacks: Vec<(f64, f64)> = Vec::new();
        for s in &self.series {
            for (x, y) in s.values() {
                if s.kind == Kind::Bars && self.bars.layout == Layout::Stacked {
                    match stacks.iter_mut().find(|(sx, _)| *sx == x) {
                        Some((_, top)) => *top += y,
                        None => stacks.push((x, y)),
                    }
                } else {
                    out.push(y);
                }
            }
        }
        out.extend(stacks.into_iter().map(|(_, t)| t));
        for m in &self.marks {
            match m {
                Mark::Horizontal { y, .. } | Mark::Point { y, .. } => out.push(*y),
                Mark::Vertical { .. } => {}
            }
        }
        out
    }

    fn x_values(&self) -> Vec<f64> {
        let half = if self.series.iter().any(|s| s.kind == Kind::Bars) {
            self.bars.slot / 2.0
        } else {
            0.0
        };
        let mut out = Vec::new();
        for s in &self.series {
            for (x, _) in s.values() {
                out.extend([x - half, x + half]);
            }
        }
        for m in &self.marks {
            match m {
                Mark::Vertical { x, .. } | Mark::Point { x, .. } => out.push(*x),
                Mark::Horizontal { .. } => {}
            }
        }
        out
    }

    /// The drawing as an `<svg>` element.
    pub fn svg(&self) -> String {
        self.draw().svg
    }

    /// The drawing, and the box of every label placed (for the tests).
    fn draw(&self) -> Drawn {
        let (w, h, f) = (self.width, self.height, self.font);
        let line = f * 1.35;
        let small = (f * 0.85).round();
        let mut placed: Vec<TextBox> = Vec::new();
        let mut svg = String::new();
        let has_data = self.points() > 0;
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
             font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif\" font-size=\"{f}\" \
             role=\"img\" data-points=\"{}\"",
            self.points()
        );
        if let Some(id) = &self.id {
            let _ = write!(svg, " id=\"{}\"", esc(id));
        }
        let title_lines = self
            .title
            .as_deref()
            .map(|t| wrap(t, w - 2.0 * PAD, f + 1.0))
            .unwrap_or_default();
        let _ = writeln!(svg, " aria-label=\"{}\">", esc(&title_lines.join(" ")));
        if let Some(t) = &self.title {
            let _ = writeln!(svg, "<title>{}</title>", esc(t));
        }
        let _ = writeln!(svg, "<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>");

        // Top: the title, then the legend (in rows that fit the width).
        let mut top = PAD;
        for t in &title_lines {
            top += line;
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"{}\" font-weight=\"600\" fill=\"#222\">{}</text>",
                w / 2.0,
                top - f * 0.3,
                f + 1.0,
                esc(t)
            );
            let tw = text_width(t, f + 1.0);
            placed.push((w / 2.0 - tw / 2.0, top - line, w / 2.0 + tw / 2.0, top));
        }
        let named: Vec<&Series> = self.series.iter().filter(|s| !s.name.is_empty()).collect();
        // A legend whenever a series has a name, also a lone one: charts
        // side by side then have their plots at the same height.
        if !named.is_empty() {
            let mut x = PAD;
            top += line * 0.2;
            let mut row_top = top;
            top += line;
            for (i, s) in self.series.iter().enumerate() {
                if s.name.is_empty() {
                    continue;
                }
                let item = 14.0 + text_width(&s.name, small) + 14.0;
                if x > PAD && x + item > w - PAD {
                    x = PAD;
                    row_top = top;
                    top += line;
                }
                let colour = s.colour.unwrap_or(PALETTE[i % PALETTE.len()]);
                let mid = row_top + line / 2.0;
                match s.kind {
                    Kind::Bars => {
                        let _ = write!(
                            svg,
                            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{colour}\"/>",
                            mid - 5.0
                        );
                    }
                    Kind::Line | Kind::Dashed => {
                        let dash = if s.kind == Kind::Dashed {
                            " stroke-dasharray=\"4,3\""
                        } else {
                            ""
                        };
                        let _ = write!(
                            svg,
                            "<line x1=\"{x:.1}\" y1=\"{mid:.1}\" x2=\"{:.1}\" y2=\"{mid:.1}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>",
                            x + 10.0
                        );
                    }
                }
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{small}\" fill=\"#333\">{}</text>",
                    x + 14.0,
                    mid + small * 0.35,
                    esc(&s.name)
                );
                placed.push((
                    x,
                    row_top,
                    x + 14.0 + text_width(&s.name, small),
                    row_top + line,
                ));
                x += item;
            }
        }
        top += line * 0.6;

        // Bottom: the x tick labels, the x axis title, the stamp.
        let stamp_lines = self
            .stamp
            .as_deref()
            .map(|s| wrap(s, w - 2.0 * PAD, small))
            .unwrap_or_default();
        let mut bottom = h - PAD - stamp_lines.len() as f64 * small * 1.3;
        let stamp_top = bottom;
        if !self.x.label.is_empty() {
            bottom -= line;
        }
        let x_label_top = bottom;
        bottom -= line + 4.0;
        let plot_bottom = bottom;

        // The y axis first: its labels set the left margin.
        let ys = self.y_values();
        let (y_lo, mut y_hi) = resolve(&self.y, &ys, true);
        let plot_h = (plot_bottom - top).max(10.0);
        let y_ticks: Vec<(f64, String, u8)> = match (&self.y.ticks, self.y.scale) {
            (Some(t), _) => t.clone(),
            (None, Scale::Log) => log_ticks(y_lo, y_hi)
                .into_iter()
                .map(|(v, p)| (v, (self.y.format)(v), p))
                .collect(),
            (None, Scale::Linear) => {
                let min_step = if self.y.whole { 1.0 } else { 0.0 };
                let (ticks, top_tick) = linear_ticks(
                    y_lo,
                    y_hi,
                    plot_h,
                    f * 2.4,
                    min_step,
                    self.y.range.is_none(),
                );
                y_hi = top_tick;
                ticks
                    .into_iter()
                    .map(|v| (v, (self.y.format)(v), 0))
                    .collect()
            }
        };
        // Ticks the caller gave may reach past the range: only those on it.
        let on = |lo: f64, hi: f64, v: f64| {
            let slack = (hi - lo).abs() * 1e-9;
            v >= lo - slack && v <= hi + slack
        };
        let y_ticks: Vec<(f64, String, u8)> = y_ticks
            .into_iter()
            .filter(|(v, _, _)| on(y_lo, y_hi, *v))
            .collect();
        let y_map = Map {
            scale: self.y.scale,
            lo: y_lo,
            hi: y_hi,
            from: plot_bottom,
            to: top,
        };
        let y_label_room = if self.y.label.is_empty() {
            0.0
        } else {
            line + 4.0
        };
        let tick_room = y_ticks
            .iter()
            .map(|(_, l, _)| text_width(l, small))
            .fold(0.0, f64::max);
        let left = PAD + y_label_room + tick_room + 6.0;
        let right = w - PAD - 4.0;
        let plot_w = (right - left).max(10.0);

        let xs = self.x_values();
        let (x_lo, x_hi) = resolve(&self.x, &xs, false);
        let x_map = Map {
            scale: self.x.scale,
            lo: x_lo,
            hi: x_hi,
            from: left,
            to: right,
        };
        let x_ticks: Vec<(f64, String, u8)> = match (&self.x.ticks, self.x.scale) {
            (Some(t), _) => t.clone(),
            (None, Scale::Log) => log_ticks(x_lo, x_hi)
                .into_iter()
                .map(|(v, p)| (v, (self.x.format)(v), p))
                .collect(),
            (None, Scale::Linear) => {
                // As many as the widest label allows.
                let widest = [x_lo, x_hi, (x_lo + x_hi) / 2.0]
                    .iter()
                    .map(|v| text_width(&(self.x.format)(*v), small))
                    .fold(0.0, f64::max);
                let min_step = if self.x.whole { 1.0 } else { 0.0 };
                linear_ticks(x_lo, x_hi, plot_w, widest + 3.0 * PAD, min_step, false)
                    .0
                    .into_iter()
                    .map(|v| (v, (self.x.format)(v), 0))
                    .collect()
            }
        };

        let x_ticks: Vec<(f64, String, u8)> = x_ticks
            .into_iter()
            .filter(|(v, _, _)| on(x_lo, x_hi, *v))
            .collect();

        // Grid and tick labels, thinned so that none collide.
        let y_boxes: Vec<(TextBox, u8)> = y_ticks
            .iter()
            .map(|(v, l, p)| {
                let y = y_map.at(*v);
                let tw = text_width(l, small);
                (
                    (
                        left - 6.0 - tw,
                        y - small / 2.0,
                        left - 6.0,
                        y + small / 2.0,
                    ),
                    *p,
                )
            })
            .collect();
        for i in thin(&y_boxes, 2.0) {
            let (v, l, _) = &y_ticks[i];
            let y = y_map.at(*v);
            let _ = writeln!(
                svg,
                "<line x1=\"{left:.1}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\" stroke=\"#e3e6eb\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"{small}\" fill=\"#555\">{}</text>",
                left - 6.0,
                y + small * 0.35,
                esc(l)
            );
            placed.push(y_boxes[i].0);
        }
        let label_y = plot_bottom + 4.0 + small;
        let x_boxes: Vec<(TextBox, u8)> = x_ticks
            .iter()
            .map(|(v, l, p)| {
                let tw = text_width(l, small);
                let cx = x_map.at(*v).clamp(PAD + tw / 2.0, w - PAD - tw / 2.0);
                (
                    (cx - tw / 2.0, label_y - small, cx + tw / 2.0, label_y + 2.0),
                    *p,
                )
            })
            .collect();
        for i in thin(&x_boxes, 6.0) {
            let (v, l, _) = &x_ticks[i];
            let x = x_map.at(*v);
            let b = x_boxes[i].0;
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{plot_bottom:.1}\" stroke=\"#eef0f3\"/>\
                 <text x=\"{:.1}\" y=\"{label_y:.1}\" text-anchor=\"middle\" font-size=\"{small}\" fill=\"#555\">{}</text>",
                (b.0 + b.2) / 2.0,
                esc(l)
            );
            placed.push(b);
        }
        let _ = writeln!(
            svg,
            "<rect x=\"{left:.1}\" y=\"{top:.1}\" width=\"{plot_w:.1}\" height=\"{plot_h:.1}\" fill=\"none\" stroke=\"#98a2b3\"/>"
        );

        // Axis titles.
        if !self.x.label.is_empty() {
            // Under the plot, moved or shortened to stay in the image.
            let label = fit(&self.x.label, w - 2.0 * PAD, small);
            let tw = text_width(&label, small);
            let cx = (left + plot_w / 2.0).clamp(PAD + tw / 2.0, w - PAD - tw / 2.0);
            let _ = writeln!(
                svg,
                "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"{small}\" fill=\"#333\">{}</text>",
                x_label_top + line * 0.75,
                esc(&label)
            );
            placed.push((
                cx - tw / 2.0,
                x_label_top,
                cx + tw / 2.0,
                x_label_top + line,
            ));
        }
        if !self.y.label.is_empty() {
            let cy = top + plot_h / 2.0;
            let cx = PAD + line * 0.7;
            // Shortened rather than clipped when taller than the plot.
            let label = fit(&self.y.label, plot_h, small);
            let _ = writeln!(
                svg,
                "<text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" font-size=\"{small}\" fill=\"#333\" \
                 transform=\"rotate(-90 {cx:.1} {cy:.1})\">{}</text>",
                esc(&label)
            );
        }

        // The data, clipped to the plot.
        // What mark labels keep off besides other labels: bars, markers,
        // and points along the lines.
        let mut avoid: Vec<TextBox> = Vec::new();
        let mut obstacles = Vec::new();
        if has_data {
            obstacles = self.draw_series(&mut svg, &x_map, &y_map, &mut avoid);
        } else {
            let lines = wrap(&self.empty, plot_w - 2.0 * PAD, f);
            let first = top + plot_h / 2.0 - (lines.len() as f64 - 1.0) * line / 2.0;
            for (i, l) in lines.iter().enumerate() {
                let _ = writeln!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#667085\" class=\"chart-empty\">{}</text>",
                    left + plot_w / 2.0,
                    first + i as f64 * line + f * 0.35,
                    esc(l)
                );
            }
        }
        self.draw_marks(
            &mut svg,
            &x_map,
            &y_map,
            &mut placed,
            &mut avoid,
            &obstacles,
        );

        for (i, s) in stamp_lines.iter().enumerate() {
            let y = stamp_top + (i as f64 + 1.0) * small * 1.3 - small * 0.3;
            let _ = writeln!(
                svg,
                "<text x=\"{PAD}\" y=\"{y:.1}\" font-size=\"{small}\" fill=\"#888\" class=\"chart-stamp\">{}</text>",
                esc(s)
            );
            placed.push((PAD, y - small, PAD + text_width(s, small), y + small * 0.3));
        }
        svg.push_str("</svg>\n");
        Drawn {
            svg,
            labels: placed,
            lines: obstacles,
        }
    }

    /// Draws the series; returns points along every line drawn, a few
    /// pixels apart, for labels to keep off (and the bars, into `avoid`).
    fn draw_series(
        &self,
        svg: &mut String,
        x: &Map,
        y: &Map,
        avoid: &mut Vec<TextBox>,
    ) -> Vec<(f64, f64)> {
        let mut obstacles: Vec<(f64, f64)> = Vec::new();
        let bar_series: Vec<usize> = (0..self.series.len())
            .filter(|i| self.series[*i].kind == Kind::Bars)
            .collect();
        let slot_px = (x.at(x.lo + self.bars.slot) - x.at(x.lo)).abs();
        let mut stacks: Vec<(f64, f64)> = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            let colour = s.colour.unwrap_or(PALETTE[i % PALETTE.len()]);
            let _ = write!(svg, "<g data-series=\"{}\">", esc(&s.name));
            match s.kind {
                Kind::Bars => {
                    let k = bar_series.iter().position(|b| *b == i).unwrap_or(0);
                    let n = bar_series.len().max(1) as f64;
                    for (vx, vy) in s.values() {
                        let (bw, bx) = match self.bars.layout {
                            Layout::Stacked => (slot_px * 0.8, x.at(vx) - slot_px * 0.4),
                            Layout::Grouped => {
                                let bw = slot_px * 0.8 / n;
                                (bw, x.at(vx) - slot_px * 0.4 + bw * k as f64)
                            }
                        };
                        let base = match self.bars.layout {
                            Layout::Stacked => match stacks.iter_mut().find(|(sx, _)| *sx == vx) {
                                Some((_, b)) => {
                                    let base = *b;
                                    *b += vy;
                                    base
                                }
                                None => {
                                    stacks.push((vx, vy));
                                    0.0
                                }
                            },
                            Layout::Grouped => 0.0,
                        };
                        let (y0, y1) = (y.at(base), y.at(base + vy));
                        avoid.push((bx, y1.min(y0), bx + bw.max(0.5), y1.max(y0)));
                        let _ = write!(
                            svg,
                            "<rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{}</title></rect>",
                            y1.min(y0),
                            bw.max(0.5),
                            (y0 - y1).abs(),
                            esc(&format!("{}: {}", s.name, count(vy)))
                        );
                        if let Some(fmt) = self.bars.values {
                            let _ = write!(
                                svg,
                                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"{:.0}\" fill=\"#333\">{}</text>",
                                bx + bw / 2.0,
                                (y1 - 4.0).max(y.to + self.font),
                                (self.font * 0.85).round(),
                                esc(&fmt(vy))
                            );
                        }
                    }
                }
                Kind::Line | Kind::Dashed => {
                    let dash = if s.kind == Kind::Dashed {
                        " stroke-dasharray=\"5,4\""
                    } else {
                        ""
                    };
                    // Runs of consecutive values, broken at a missing one.
                    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
                    for (px, py) in &s.points {
                        match py {
                            Some(v) if v.is_finite() && px.is_finite() => {
                                if let Some(r) = runs.last_mut() {
                                    r.push((x.at(*px), y.at(*v)));
                                }
                            }
                            _ => runs.push(Vec::new()),
                        }
                    }
                    for run in runs.iter().filter(|r| !r.is_empty()) {
                        obstacles.push(run[0]);
                        for w in run.windows(2) {
                            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
                            let n = ((x1 - x0).hypot(y1 - y0) / 3.0).ceil().max(1.0) as usize;
                            for k in 1..=n {
                                let f = k as f64 / n as f64;
                                obstacles.push((x0 + f * (x1 - x0), y0 + f * (y1 - y0)));
                            }
                        }
                        if run.len() == 1 {
                            let _ = write!(
                                svg,
                                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"/>",
                                run[0].0, run[0].1
                            );
                            continue;
                        }
                        let pts: Vec<String> =
                            run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
                        let _ = write!(
                            svg,
                            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-linejoin=\"round\"{dash}/>",
                            pts.join(" ")
                        );
                    }
                }
            }
            svg.push_str("</g>\n");
        }
        obstacles
    }

    /// Marks and their labels. Each label tries places around its anchor
    /// (for a point: below right, above left, above right, below left)
    /// and takes the first inside the plot that covers no other label, no
    /// bar and no part of a line (`obstacles`: points along the drawn
    /// lines); failing that, the one covering the fewest line points.
    fn draw_marks(
        &self,
        svg: &mut String,
        x: &Map,
        y: &Map,
        placed: &mut Vec<TextBox>,
        avoid: &mut Vec<TextBox>,
        obstacles: &[(f64, f64)],
    ) {
        let small = (self.font * 0.85).round();
        let (left, right, top, bottom) = (x.from, x.to, y.to, y.from);
        let label = |svg: &mut String,
                     placed: &mut Vec<TextBox>,
                     avoid: &[TextBox],
                     candidates: &[(f64, f64)],
                     text: &str,
                     colour: &str| {
            let tw = text_width(text, small);
            // `(x, baseline)` → its box, moved inside the plot.
            let boxed = |(lx, ly): (f64, f64)| {
                let lx = lx.clamp(left + 2.0, (right - tw - 2.0).max(left + 2.0));
                let ly = ly.clamp(top + small + 2.0, bottom - 4.0);
                (lx, ly - small, lx + tw, ly + 3.0)
            };
            let covered = |b: TextBox| {
                obstacles
                    .iter()
                    .filter(|(px, py)| {
                        *px >= b.0 - 2.0 && *px <= b.2 + 2.0 && *py >= b.1 - 2.0 && *py <= b.3 + 2.0
                    })
                    .count()
            };
            let free = |b: TextBox| placed.iter().chain(avoid).all(|p| !overlaps(*p, b, 1.0));
            // The candidates, then each moved down and up a line at a time.
            let step = small + 3.0;
            let mut tries: Vec<TextBox> = candidates.iter().map(|c| boxed(*c)).collect();
            for k in 1..=10 {
                for (cx, cy) in candidates {
                    for dir in [1.0, -1.0] {
                        tries.push(boxed((*cx, cy + dir * step * f64::from(k))));
                    }
                }
            }
            let chosen = tries
                .iter()
                .copied()
                .find(|b| free(*b) && covered(*b) == 0)
                .or_else(|| {
                    tries
                        .iter()
                        .copied()
                        .filter(|b| free(*b))
                        .min_by_key(|b| covered(*b))
                })
                .unwrap_or(tries[0]);
            placed.push(chosen);
            // A white halo keeps the label readable where it must cross a line.
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{small}\" fill=\"{colour}\" stroke=\"white\" \
                 stroke-width=\"3\" paint-order=\"stroke\" class=\"chart-mark\">{}</text>",
                chosen.0,
                chosen.3 - 3.0,
                esc(text)
            );
        };
        for m in &self.marks {
            match m {
                Mark::Horizontal {
                    y: v,
                    label: l,
                    colour,
                } => {
                    let py = y.at(*v);
                    let _ = writeln!(
                        svg,
                        "<line x1=\"{left:.1}\" y1=\"{py:.1}\" x2=\"{right:.1}\" y2=\"{py:.1}\" stroke=\"{colour}\" stroke-dasharray=\"6,4\"/>"
                    );
                    let tw = text_width(l, small);
                    let (above, below) = (py - 4.0, py + small + 3.0);
                    let far = right - tw - 4.0;
                    label(
                        svg,
                        placed,
                        avoid,
                        &[
                            (left + 4.0, above),
                            (left + 4.0, below),
                            (far, above),
                            (far, below),
                        ],
                        l,
                        colour,
                    );
                }
                Mark::Vertical {
                    x: v,
                    label: l,
                    colour,
                } => {
                    let px = x.at(*v);
                    let _ = writeln!(
                        svg,
                        "<line x1=\"{px:.1}\" y1=\"{top:.1}\" x2=\"{px:.1}\" y2=\"{bottom:.1}\" stroke=\"{colour}\" stroke-dasharray=\"6,4\"/>"
                    );
                    let tw = text_width(l, small);
                    let first = top + small + 4.0;
                    label(
                        svg,
                        placed,
                        avoid,
                        &[(px + 4.0, first), (px - 4.0 - tw, first)],
                        l,
                        colour,
                    );
                }
                Mark::Point {
                    x: vx,
                    y: vy,
                    label: l,
                    colour,
                } => {
                    let (px, py) = (x.at(*vx), y.at(*vy));
                    let _ = writeln!(
                        svg,
                        "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\" fill=\"white\" stroke=\"{colour}\" stroke-width=\"2\"/>"
                    );
                    // The point itself is no place for its label either.
                    avoid.push((px - 5.0, py - 5.0, px + 5.0, py + 5.0));
                    let tw = text_width(l, small);
                    label(
                        svg,
                        placed,
                        avoid,
                        &[
                            (px + 7.0, py + small + 5.0),
                            (px - 7.0 - tw, py - 7.0),
                            (px + 7.0, py - 7.0),
                            (px - 7.0 - tw, py + small + 5.0),
                        ],
                        l,
                        colour,
                    );
                }
            }
        }
    }
}

/// `s`, shortened with an ellipsis to fit `width` at `font`.
fn fit(s: &str, width: f64, font: f64) -> String {
    if text_width(s, font) <= width {
        return s.to_owned();
    }
    let keep = ((width / (font * GLYPH)) as usize).saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    out.push('…');
    out
}

/// Charts one above the other in one image (the width of the widest).
pub fn column(charts: &[Chart]) -> String {
    let w = charts.iter().map(|c| c.width).fold(0.0, f64::max);
    let h: f64 = charts.iter().map(|c| c.height).sum();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n"
    );
    let mut y = 0.0;
    for c in charts {
        let inner = c.svg();
        // Nested: placed by its own x and y.
        let _ = write!(
            svg,
            "{}",
            inner.replacen("<svg ", &format!("<svg x=\"0\" y=\"{y}\" "), 1)
        );
        y += c.height;
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_overlap(boxes: &[TextBox], w: f64, h: f64) {
        for (i, a) in boxes.iter().enumerate() {
            assert!(
                a.0 >= -0.01 && a.1 >= -0.01 && a.2 <= w + 0.01 && a.3 <= h + 0.01,
                "label box {a:?} leaves the {w}×{h} image"
            );
            for b in &boxes[i + 1..] {
                assert!(!overlaps(*a, *b, -0.01), "labels overlap: {a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn log_ticks_are_1_2_5_per_decade_decades_first() {
        let t = log_ticks(0.1, 1000.0);
        let values: Vec<f64> = t.iter().map(|(v, _)| *v).collect();
        assert_eq!(
            values,
            [
                0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0
            ]
        );
        let decades: Vec<f64> = t.iter().filter(|(_, p)| *p == 0).map(|(v, _)| *v).collect();
        assert_eq!(decades, [0.1, 1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(log_ticks(1.0, 10.0).len(), 4);
    }

    #[test]
    fn thinning_keeps_decades_and_drops_what_collides() {
        // Three labels 20 wide, 10 apart: the middle one (less important)
        // goes, the outer ones stay.
        let b = |x: f64, p: u8| ((x, 0.0, x + 20.0, 10.0), p);
        assert_eq!(thin(&[b(0.0, 0), b(10.0, 1), b(30.0, 0)], 2.0), [0, 2]);
        // Equal priority: the first wins.
        assert_eq!(thin(&[b(0.0, 0), b(10.0, 0), b(25.0, 0)], 2.0), [0, 2]);
        assert_eq!(thin(&[b(0.0, 1), b(10.0, 0)], 2.0), [1]);
    }

    #[test]
    fn steps_counts_and_durations() {
        assert_eq!(nice_step(1800.0), 2000.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(count(1250.0), "1,250");
        assert_eq!(count(7.0), "7");
        assert_eq!(count(0.25), "0.25");
        assert_eq!(count(-3000.0), "-3,000");
        assert_eq!(millis(0.5), "0.5 ms");
        assert_eq!(millis(1500.0), "1.5 s");
        assert_eq!(millis(120_000.0), "2 min");
        assert_eq!(seconds(0.02), "20 ms");
        let major: Vec<String> = duration_ticks()
            .into_iter()
            .filter(|t| t.2 == 0)
            .map(|t| t.1)
            .collect();
        assert_eq!(
            major,
            [
                "1 ms", "10 ms", "100 ms", "1 s", "10 s", "1 min", "10 min", "1 h", "24 h"
            ]
        );
        assert_eq!(
            linear_ticks(0.0, 9.0, 100.0, 25.0, 0.0, true),
            (vec![0.0, 5.0, 10.0], 10.0)
        );
        // Whole numbers: 0 and 1 only, however much room there is.
        assert_eq!(
            linear_ticks(0.0, 1.0, 200.0, 25.0, 1.0, true),
            (vec![0.0, 1.0], 1.0)
        );
    }

    #[test]
    fn text_wraps_to_the_width() {
        let lines = wrap(
            "commit 1234567 · 2026-01-02 · 2 cores · PostgreSQL 16",
            120.0,
            10.0,
        );
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| text_width(l, 10.0) <= 120.0));
        assert_eq!(
            lines.join(" "),
            "commit 1234567 · 2026-01-02 · 2 cores · PostgreSQL 16"
        );
    }

    /// A chart with many crowded labels, drawn small: no label overlaps
    /// another or leaves the image.
    #[test]
    fn labels_never_collide_or_clip() {
        for (w, h) in [(640.0, 400.0), (300.0, 200.0)] {
            let pts: Vec<(f64, Option<f64>)> = (1..200)
                .map(|i| (f64::from(i), Some(f64::from(i).powf(2.5))))
                .collect();
            let chart = Chart::new(w, h)
                .title("A long title that has to wrap on a small image, with units")
                .x(Axis::linear("seconds since the start of the scenario"))
                .y(Axis::log("milliseconds (log)").format(millis))
                .series(Series::line("first series", pts.clone()))
                .series(Series::new("second, dashed", Kind::Dashed, pts))
                .mark(Mark::Horizontal {
                    y: 5000.0,
                    label: "target p99 5 s".into(),
                    colour: RED,
                })
                .mark(Mark::Point {
                    x: 100.0,
                    y: 100_000.0,
                    label: "p50 100 s".into(),
                    colour: BLUE,
                })
                .mark(Mark::Point {
                    x: 101.0,
                    y: 101_000.0,
                    label: "p99 101 s".into(),
                    colour: BLUE,
                })
                .stamp("commit 0123456789ab · 2026-01-02 14:53 UTC · 2 cores · PostgreSQL 16.2 (fsync=on, synchronous_commit=on)");
            let Drawn {
                svg, labels: boxes, ..
            } = chart.draw();
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
            assert!(boxes.len() > 8, "{boxes:?}");
            no_overlap(&boxes, w, h);
        }
    }

    /// A label beside a point on a rising line sits where the line is not.
    #[test]
    fn mark_labels_keep_off_the_lines() {
        let pts: Vec<(f64, Option<f64>)> = (0..=100)
            .map(|i| (f64::from(i), Some(f64::from(i))))
            .collect();
        let d = Chart::new(400.0, 300.0)
            .series(Series::line("rising", pts.clone()))
            .series(Series::line(
                "flat",
                pts.iter().map(|(x, _)| (*x, Some(52.0))).collect(),
            ))
            .mark(Mark::Point {
                x: 50.0,
                y: 50.0,
                label: "p50 50 ms".into(),
                colour: BLUE,
            })
            .mark(Mark::Horizontal {
                y: 20.0,
                label: "target 20".into(),
                colour: RED,
            })
            .draw();
        // The marks' labels are the last two placed.
        let marks = &d.labels[d.labels.len() - 2..];
        for b in marks {
            let crossed = d
                .lines
                .iter()
                .filter(|(x, y)| *x >= b.0 && *x <= b.2 && *y >= b.1 && *y <= b.3)
                .count();
            assert_eq!(crossed, 0, "a label at {b:?} covers the line");
        }
        assert!(!overlaps(marks[0], marks[1], 0.0));
    }

    #[test]
    fn bars_stack_or_group() {
        let a = vec![(1.0, Some(3.0)), (2.0, Some(1.0))];
        let b = vec![(1.0, Some(2.0)), (2.0, None)];
        let stacked = Chart::new(400.0, 200.0)
            .series(Series::bars("a", a.clone()))
            .series(Series::bars("b", b.clone()))
            .bars(Bars {
                slot: 1.0,
                layout: Layout::Stacked,
                values: None,
            })
            .svg();
        assert_eq!(
            stacked.matches("<rect x=").count(),
            1 + 3 + 2,
            "frame, bars, keys"
        );
        assert!(stacked.contains("data-points=\"3\""));
        // Stacked, the y axis reaches the sum (5: ticks to 6), not the
        // tallest bar (3).
        assert!(stacked.contains(">6</text>"), "{stacked}");
        let grouped = Chart::new(400.0, 200.0)
            .series(Series::bars("a", a))
            .series(Series::bars("b", b))
            .bars(Bars {
                slot: 1.0,
                layout: Layout::Grouped,
                values: Some(|v| format!("{v} a day")),
            })
            .svg();
        assert!(grouped.contains(">3 a day</text>") && grouped.contains(">2 a day</text>"));
        assert!(!grouped.contains(">6</text>"), "{grouped}");
    }

    #[test]
    fn an_empty_chart_says_so() {
        let svg = Chart::new(400.0, 200.0)
            .y(Axis::log("ms"))
            .series(Series::line("none", vec![(1.0, None)]))
            .empty("Nothing was delivered in the last hour.")
            .svg();
        assert!(svg.contains("Nothing was delivered in the last hour."));
        assert!(svg.contains("data-points=\"0\"") && !svg.contains("NaN"));
        assert!(!svg.contains("<polyline"));
    }

    #[test]
    fn lines_break_where_values_are_missing() {
        let svg = Chart::new(400.0, 200.0)
            .series(Series::line(
                "gappy",
                vec![
                    (0.0, Some(1.0)),
                    (1.0, Some(2.0)),
                    (2.0, None),
                    (3.0, Some(2.0)),
                    (4.0, None),
                    (5.0, Some(1.0)),
                    (6.0, Some(3.0)),
                ],
            ))
            .svg();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 1, "a lone value is a dot");
    }

    #[test]
    fn charts_stack_in_a_column() {
        let c = Chart::new(300.0, 100.0).series(Series::line("a", vec![(0.0, Some(1.0))]));
        let s = column(&[c.clone(), c]);
        assert!(s.contains("viewBox=\"0 0 300 200\""));
        assert!(s.contains("<svg x=\"0\" y=\"100\""));
    }
}
