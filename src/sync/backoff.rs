//! Retry delays: exponential backoff with full jitter (base 0.5 s, cap
//! 5 min). Full jitter spreads the retries of many rows that failed together
//! (a peer outage) so they do not come back as one thundering herd.

use std::time::Duration;

use rand::Rng;

pub const BASE: Duration = Duration::from_millis(500);
pub const CAP: Duration = Duration::from_secs(300);

/// The ceiling of the delay before retry number `attempt` (1 = first retry).
pub fn ceiling(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    BASE.saturating_mul(1u32 << exp).min(CAP)
}

/// A uniformly random delay in `[0, ceiling(attempt)]`.
pub fn delay(attempt: u32, rng: &mut impl Rng) -> Duration {
    let c = ceiling(attempt).as_micros() as u64;
    Duration::from_micros(rng.gen_range(0..=c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ceiling_doubles_from_the_base_and_caps() {
        assert_eq!(ceiling(0), BASE, "attempt 0 is treated as the first");
        assert_eq!(ceiling(1), BASE);
        let mut capped_at = None;
        for a in 1..64 {
            let (c, next) = (ceiling(a), ceiling(a + 1));
            assert!(c <= CAP && next >= c, "attempt {a}: {c:?} then {next:?}");
            if c < CAP {
                assert_eq!(next, (c * 2).min(CAP), "attempt {a}: doubles up to the cap");
            } else {
                capped_at.get_or_insert(a);
                assert_eq!(next, CAP, "attempt {a}: stays at the cap");
            }
        }
        // 0.5 s · 2^9 = 256 s < 300 s ≤ 0.5 s · 2^10.
        assert_eq!(ceiling(10), Duration::from_secs(256));
        assert_eq!(capped_at, Some(11));
        assert_eq!(ceiling(u32::MAX), CAP);
    }

    /// Full jitter: every delay lies in [0, ceiling], and they are spread
    /// over that range (uniform: mean half the ceiling, about three quarters
    /// above a quarter of it, some near each end). A constant delay (0, the
    /// ceiling, half of it) fails this.
    #[test]
    fn delays_are_spread_over_zero_to_the_ceiling() {
        const N: u32 = 4000;
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for attempt in [1, 2, 3, 5, 8, 11, 40] {
            let c = ceiling(attempt).as_secs_f64();
            let mut sum = 0.0;
            let (mut above_quarter, mut low, mut high) = (0u32, 0u32, 0u32);
            for _ in 0..N {
                let d = delay(attempt, &mut rng);
                assert!(d <= ceiling(attempt), "attempt {attempt}: {d:?}");
                let x = d.as_secs_f64() / c;
                sum += x;
                above_quarter += u32::from(x > 0.25);
                low += u32::from(x < 0.1);
                high += u32::from(x > 0.9);
            }
            let mean = sum / f64::from(N);
            // The mean of N uniform draws has a standard deviation of
            // 1/sqrt(12 N) ≈ 0.0046 of the ceiling: 0.04 is ~9 of those.
            assert!(
                (mean - 0.5).abs() < 0.04,
                "attempt {attempt}: mean delay {mean:.3} of the ceiling, expected about 0.5"
            );
            let share = f64::from(above_quarter) / f64::from(N);
            assert!(
                (0.7..0.8).contains(&share),
                "attempt {attempt}: {share:.3} of the delays above a quarter of the ceiling, expected about 0.75"
            );
            assert!(
                low > N / 20 && high > N / 20,
                "attempt {attempt}: {low} delays below 10 % and {high} above 90 % of the ceiling"
            );
        }
    }
}
