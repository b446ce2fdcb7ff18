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

    #[test]
    fn grows_then_caps() {
        assert_eq!(ceiling(1), Duration::from_millis(500));
        assert_eq!(ceiling(2), Duration::from_secs(1));
        assert_eq!(ceiling(4), Duration::from_secs(4));
        assert_eq!(ceiling(30), CAP);
        assert_eq!(ceiling(u32::MAX), CAP);
        let mut rng = rand::thread_rng();
        for a in 1..40 {
            assert!(delay(a, &mut rng) <= ceiling(a));
        }
    }
}
