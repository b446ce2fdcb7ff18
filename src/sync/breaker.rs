//! A circuit breaker around the peer: after repeated failures the relay stops
//! sending (open) for a while, then lets one probe through (half-open); a
//! success closes it again. A dead or overloaded peer is not hammered, and
//! the outbox simply keeps filling meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// 0 closed, 1 half-open, 2 open: the metric's value.
    pub fn as_gauge(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    opened_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Breaker {
    inner: Mutex<Inner>,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                opened_at: None,
            }),
            threshold: threshold.max(1),
            open_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave it inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// May a request go out now? `Err(wait)` says how long until a probe may.
    pub fn allow(&self) -> Result<(), Duration> {
        let mut g = self.lock();
        match g.state {
            BreakerState::Closed | BreakerState::HalfOpen => Ok(()),
            BreakerState::Open => {
                let since = g.opened_at.map_or(self.open_for, |t| t.elapsed());
                if since >= self.open_for {
                    g.state = BreakerState::HalfOpen;
                    tracing::info!(
                        breaker = "half_open",
                        "circuit breaker lets a probe through"
                    );
                    Ok(())
                } else {
                    Err(self.open_for - since)
                }
            }
        }
    }

    pub fn success(&self) {
        let mut g = self.lock();
        if g.state != BreakerState::Closed {
            tracing::info!(
                breaker = "closed",
                "circuit breaker closed: peer answers again"
            );
        }
        g.state = BreakerState::Closed;
        g.failures = 0;
        g.opened_at = None;
    }

    pub fn failure(&self) {
        let mut g = self.lock();
        g.failures = g.failures.saturating_add(1);
        let trip = g.state == BreakerState::HalfOpen || g.failures >= self.threshold;
        if trip {
            if g.state != BreakerState::Open {
                tracing::warn!(
                    breaker = "open",
                    failures = g.failures,
                    wait_secs = self.open_for.as_secs_f64(),
                    "circuit breaker opened: pausing deliveries to the peer"
                );
            }
            g.state = BreakerState::Open;
            g.opened_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_probes_and_closes() {
        let b = Breaker::new(3, Duration::from_millis(30));
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure();
        b.failure();
        assert!(b.allow().is_ok());
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.allow().is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow().is_ok());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.failure();
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a failed probe opens again at once"
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow().is_ok());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
