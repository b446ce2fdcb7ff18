//! Percentiles (nearest rank) and a thinned-out CDF for the plots.

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
    fn tiny_and_empty() {
        assert_eq!(summarize(vec![]).count, 0);
        let one = summarize(vec![2.5]);
        assert_eq!((one.p50_ms, one.p99_ms, one.cdf.len()), (2.5, 2.5, 1));
    }
}
