//! The sync page's charts, drawn on the server as inline SVG (through
//! [`crate::plot`]; no script, nothing fetched): the last hour per minute
//! and the last day per 15 minutes, each as deliveries and failures, the
//! backlog, and the propagation delay (from a change being queued to the
//! peer taking it), from the per-minute sync history.
//!
//! A slot without a recorded minute had no relay running for it: its bars
//! are absent and the lines break there, rather than drawing a zero that
//! was never measured.

use chrono::Timelike;

use crate::engine::{HistoryMinute, MINUTE};
use crate::plot::{self, Axis, Bars, Chart, Kind, Layout, Series};
use crate::storage::from_micros;

/// Size of each chart's drawing: about the width it gets in a three-column
/// row at 1280 px, so text is drawn near its own size; narrower screens
/// scale it down, to about 85 % on a phone.
const W: f64 = 400.0;
const H: f64 = 250.0;
/// Text size in the drawing: about 11 px on a phone, where a chart gets
/// some 340 px of width.
const FONT: f64 = 13.0;

/// One period the page charts.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// For element ids: `hour`, `day`.
    pub key: &'static str,
    /// For headings: `Last hour, per minute`.
    pub heading: &'static str,
    /// `the last hour`, in sentences.
    phrase: &'static str,
    /// One bar or point per slot.
    slot: i64,
    slots: i64,
    /// A time label every this long.
    tick_every: i64,
}

pub const HOUR: Window = Window {
    key: "hour",
    heading: "Last hour, per minute",
    phrase: "the last hour",
    slot: MINUTE,
    slots: 60,
    tick_every: 10 * MINUTE,
};

pub const DAY: Window = Window {
    key: "day",
    heading: "Last 24 hours, per 15 minutes",
    phrase: "the last 24 hours",
    slot: 15 * MINUTE,
    slots: 96,
    tick_every: 360 * MINUTE,
};

impl Window {
    /// The start of the first slot, so that the last one holds `now`.
    pub fn start(&self, now: i64) -> i64 {
        now.div_euclid(self.slot) * self.slot - (self.slots - 1) * self.slot
    }
}

/// One chart, ready for the page.
pub struct ChartView {
    /// The `<svg>` element's id: `chart-hour-deliveries`.
    pub id: String,
    pub svg: String,
}

/// The history summed into the window's slots: `None` where no minute of
/// a slot was recorded.
fn slots(w: &Window, history: &[HistoryMinute], now: i64) -> Vec<Option<HistoryMinute>> {
    let start = w.start(now);
    let mut out: Vec<Option<HistoryMinute>> = vec![None; w.slots as usize];
    for m in history {
        let i = (m.minute_at - start).div_euclid(w.slot);
        let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        let s = slot.get_or_insert_with(HistoryMinute::default);
        s.delivered += m.delivered;
        s.failed += m.failed;
        s.backlog = s.backlog.max(m.backlog);
        s.delay_count += m.delay_count;
        s.delay_sum = s.delay_sum.saturating_add(m.delay_sum);
        s.delay_max = s.delay_max.max(m.delay_max);
    }
    out
}

/// The time axis: minutes from the window's start, labelled with the
/// clock (UTC) on round times.
fn time_axis(w: &Window, now: i64) -> Axis {
    let start = w.start(now);
    let end = start + w.slots * w.slot;
    let mut ticks = Vec::new();
    let mut t = (start + w.tick_every - 1).div_euclid(w.tick_every) * w.tick_every;
    while t <= end {
        let at = from_micros(t);
        ticks.push((
            ((t - start) / MINUTE) as f64,
            format!("{:02}:{:02}", at.hour(), at.minute()),
        ));
        t += w.tick_every;
    }
    Axis::linear("time (UTC)")
        .range(0.0, (end - start) as f64 / MINUTE as f64)
        .ticks(ticks)
}

/// The three charts of `w`: deliveries and failures, backlog, delay.
pub fn charts(w: &Window, history: &[HistoryMinute], now: i64) -> Vec<ChartView> {
    let data = slots(w, history, now);
    let slot_minutes = (w.slot / MINUTE) as f64;
    let at = |i: usize| i as f64 * slot_minutes + slot_minutes / 2.0;
    let series = |f: &dyn Fn(&HistoryMinute) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        data.iter()
            .enumerate()
            .map(|(i, m)| (at(i), m.as_ref().and_then(f)))
            .collect()
    };
    let chart = |what: &str| {
        Chart::new(W, H)
            .font(FONT)
            .id(&format!("chart-{}-{what}", w.key))
            .x(time_axis(w, now))
    };
    let bars = Bars {
        slot: slot_minutes,
        layout: Layout::Stacked,
        values: None,
    };
    // Zero-height bars are left out: nothing to see, and a slot with
    // only failures stays red.
    let positive = |v: i64| (v > 0).then_some(v as f64);
    let deliveries = chart("deliveries")
        .title("Deliveries and failures")
        .y(Axis::linear("count").whole())
        .series(Series::bars("Delivered", series(&|m| positive(m.delivered))).colour(plot::GREEN))
        .series(Series::bars("Failed tries", series(&|m| positive(m.failed))).colour(plot::RED))
        .bars(bars)
        .empty(&format!("Nothing was delivered or tried in {}.", w.phrase));
    let backlog = chart("backlog")
        .title("Backlog (most waiting)")
        .y(Axis::linear("changes waiting").whole())
        .series(Series::line("Waiting", series(&|m| Some(m.backlog as f64))).colour(plot::BLUE))
        .empty(&format!(
            "No samples in {}: the relay was not running.",
            w.phrase
        ));
    let seconds = |us: i64| us as f64 / 1e6;
    let delay = chart("delay")
        .title("Propagation delay")
        .y(Axis::log("queued → delivered").ranked_ticks(plot::duration_ticks()))
        .series(
            Series::line(
                "Mean",
                series(&|m| {
                    (m.delay_count > 0).then(|| seconds(m.delay_sum) / m.delay_count as f64)
                }),
            )
            .colour(plot::BLUE),
        )
        .series(
            Series::new(
                "Longest",
                Kind::Dashed,
                series(&|m| (m.delay_count > 0).then(|| seconds(m.delay_max))),
            )
            .colour(plot::ORANGE),
        )
        .empty(&format!(
            "Nothing was delivered in {}, so there is no delay to show.",
            w.phrase
        ));
    [
        ("deliveries", deliveries),
        ("backlog", backlog),
        ("delay", delay),
    ]
    .into_iter()
    .map(|(what, c)| ChartView {
        id: format!("chart-{}-{what}", w.key),
        svg: c.svg(),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(at: i64, delivered: i64, failed: i64, backlog: i64) -> HistoryMinute {
        HistoryMinute {
            minute_at: at,
            delivered,
            failed,
            backlog,
            delay_count: delivered,
            delay_sum: delivered * 2_000_000,
            delay_max: 5_000_000,
        }
    }

    #[test]
    fn minutes_fall_in_their_slots() {
        let now = 1_000 * 15 * MINUTE + 7 * MINUTE + 5;
        let start = DAY.start(now);
        assert_eq!(start % (15 * MINUTE), 0);
        assert_eq!((now - start) / (15 * MINUTE), 95, "now is in the last slot");
        let h = [
            minute(start, 1, 0, 3),
            minute(start + MINUTE, 2, 1, 7),
            minute(start - MINUTE, 100, 0, 0),
            minute(now, 4, 0, 1),
        ];
        let s = slots(&DAY, &h, now);
        assert_eq!(s.len(), 96);
        let first = s[0].expect("the first slot");
        assert_eq!((first.delivered, first.failed, first.backlog), (3, 1, 7));
        assert_eq!(s[95].map(|m| m.delivered), Some(4));
        assert!(s[1..95].iter().all(Option::is_none));
    }

    #[test]
    fn charts_have_their_points_or_say_there_are_none() {
        let now = 500 * MINUTE + 30_000_000;
        let start = HOUR.start(now);
        let h = [
            minute(start + 10 * MINUTE, 5, 2, 4),
            minute(start + 11 * MINUTE, 0, 3, 6),
        ];
        let c = charts(&HOUR, &h, now);
        let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "chart-hour-deliveries",
                "chart-hour-backlog",
                "chart-hour-delay"
            ]
        );
        // Delivered 5, failed 2 and 3: three bars; two backlog samples; one
        // minute with deliveries: a mean and a longest delay.
        assert!(c[0].svg.contains("data-points=\"3\""), "{}", c[0].svg);
        assert!(c[1].svg.contains("data-points=\"2\""));
        assert!(c[2].svg.contains("data-points=\"2\""));
        // 07:21 to 08:21: a label every ten minutes on the clock.
        assert!(c[0].svg.contains(">07:30</text>") && c[0].svg.contains(">08:20</text>"));
        assert!(!c[0].svg.contains(">07:20</text>"));
        let empty = charts(&HOUR, &[], now);
        for c in &empty {
            assert!(c.svg.contains("class=\"chart-empty\""), "{}", c.svg);
            assert!(c.svg.contains("data-points=\"0\""));
        }
        assert!(empty[0].svg.contains("Nothing was delivered or tried"));
    }
}
