//! Percentiles (nearest rank), a thinned-out CDF, and the tail: the
//! percentiles 0, 50, 90, 99, 99.9, ... and those between, evenly spaced
//! on a log scale of 1 − q, up to the slowest value, for the tail plots.

use serde::Serialize;

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub count: usize,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// `[latency ms, fraction at or below]`, at most [`CDF_POINTS`] + 1 points.
    pub cdf: Vec<[f64; 2]>,
    /// `[percentile, latency ms]`: [`TAIL_STEPS`] points per decade of
    /// 1 − q (0, 10.9, 20.6, ..., 90, ..., 99, ...) and p50, as far as the
    /// values reach, then the slowest at `100 × (1 − 1/count)`.
    pub tail: Vec<[f64; 2]>,
}

/// Points per decade of the tail.
pub const TAIL_STEPS: u32 = 20;

/// The tail of sorted values: see [`Summary::tail`].
fn tail(sorted: &[f64]) -> Vec<[f64; 2]> {
    let n = sorted.len();
    let mut out = Vec::new();
    if n == 0 {
        return out;
    }
    // x = 1 / (1 − q): 1, 10^(1/20), ..., while below n; and 2 (p50).
    let mut xs: Vec<f64> = (0..)
        .map(|k| 10f64.powf(f64::from(k) / f64::from(TAIL_STEPS)))
        .take_while(|x| *x < n as f64)
        .collect();
    if n > 2 {
        xs.push(2.0);
        xs.sort_by(f64::total_cmp);
    }
    for x in xs {
        // Rounded, so that p99 here is the summary's p99 to the bit.
        let q = ((1.0 - 1.0 / x) * 1e9).round() / 1e9;
        out.push([100.0 * q, percentile(sorted, q)]);
    }
    out.push([100.0 * (1.0 - 1.0 / n as f64), sorted[n - 1]]);
    out
}

pub const CDF_POINTS: usize = 200;

/// Nearest-rank percentile of sorted values (`q` in 0..=1).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(mut ms: Vec<f64>) -> Summary {
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    if n == 0 {
        return Summary::default();
    }
    let cdf = (0..=CDF_POINTS)
        .map(|k| (k * (n - 1) + CDF_POINTS / 2) / CDF_POINTS)
        .fold(Vec::<usize>::new(), |mut acc, i| {
            if acc.last() != Some(&i) {
                acc.push(i);
            }
            acc
        })
        .into_iter()
        .map(|i| [ms[i], (i + 1) as f64 / n as f64])
        .collect();
    Summary {
        count: n,
        min_ms: ms[0],
        mean_ms: ms.iter().sum::<f64>() / n as f64,
        p50_ms: percentile(&ms, 0.50),
        p90_ms: percentile(&ms, 0.90),
        p99_ms: percentile(&ms, 0.99),
        p999_ms: percentile(&ms, 0.999),
        max_ms: ms[n - 1],
        cdf,
        tail: tail(&ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let s = summarize((1..=100).rev().map(f64::from).collect());
        assert_eq!(s.count, 100);
        assert_eq!(
            (s.min_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms),
            (1.0, 50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(s.mean_ms, 50.5);
        assert_eq!(s.cdf.first(), Some(&[1.0, 0.01]));
        assert_eq!(s.cdf.last(), Some(&[100.0, 1.0]));
        assert!(
            s.cdf
                .windows(2)
                .all(|w| w[0][0] <= w[1][0] && w[0][1] < w[1][1])
        );
    }

    #[test]
    fn the_tail_reaches_the_slowest() {
        let s = summarize((1..=1000).map(f64::from).collect());
        let at = |p: f64| {
            s.tail
                .iter()
                .find(|t| (t[0] - p).abs() < 1e-6)
                .map(|t| t[1])
        };
        assert_eq!(at(0.0), Some(1.0));
        assert_eq!(at(50.0), Some(500.0));
        assert_eq!(at(90.0), Some(900.0));
        assert_eq!(at(99.0), Some(990.0));
        // 3 decades × 20 points and p50, then the slowest at 99.9.
        assert_eq!(s.tail.len(), 62);
        assert_eq!(s.tail.last(), Some(&[99.9, 1000.0]));
        assert!(
            s.tail
                .windows(2)
                .all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1])
        );
    }

    #[test]
    fn tiny_and_empty() {
        assert_eq!(summarize(vec![]).count, 0);
        let one = summarize(vec![2.5]);
        assert_eq!((one.p50_ms, one.p99_ms, one.cdf.len()), (2.5, 2.5, 1));
        assert_eq!(one.tail, [[0.0, 2.5]]);
    }
}
