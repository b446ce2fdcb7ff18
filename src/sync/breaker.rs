//! A circuit breaker around the peer: after repeated failures the relay stops
//! sending (open) for a while, then lets one probe through (half-open); a
//! success closes it again. A dead or overloaded peer is not hammered, and
//! the outbox simply keeps filling meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
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
    /// Half-open and the one probe request is out.
    probing: bool,
    /// The last failed delivery: when (microseconds) and why.
    last_error: Option<(i64, String)>,
}

/// What happened to one request to the peer, as the breaker judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The peer answered and is well (even if it refused some items).
    Up,
    /// No usable answer: a connection error, a timeout, a 5xx, a 429 or a
    /// refusal of the whole request (401/403: wrong secret, clocks apart).
    Failed,
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
                probing: false,
                last_error: None,
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

    /// Could a request go out now? Unlike [`Breaker::allow`] this takes
    /// nothing: the relay asks it before claiming rows it may not send.
    /// `Err(wait)` says how long until one may.
    pub fn ready(&self) -> Result<(), Duration> {
        let g = self.lock();
        match g.state {
            BreakerState::Closed => Ok(()),
            BreakerState::HalfOpen if g.probing => Err(self.open_for),
            BreakerState::HalfOpen => Ok(()),
            BreakerState::Open => {
                let since = g.opened_at.map_or(self.open_for, |t| t.elapsed());
                self.open_for.checked_sub(since).map_or(Ok(()), Err)
            }
        }
    }

    /// May a request go out now? Once the breaker has been open long
    /// enough, exactly one request (the probe) is allowed until its
    /// outcome is reported. `Err(wait)` says how long until one may.
    pub fn allow(&self) -> Result<(), Duration> {
        let mut g = self.lock();
        match g.state {
            BreakerState::Closed => Ok(()),
            BreakerState::HalfOpen if g.probing => Err(self.open_for),
            BreakerState::HalfOpen | BreakerState::Open => {
                if g.state == BreakerState::Open {
                    let since = g.opened_at.map_or(self.open_for, |t| t.elapsed());
                    if since < self.open_for {
                        return Err(self.open_for - since);
                    }
                    g.state = BreakerState::HalfOpen;
                    tracing::info!(
                        breaker = "half_open",
                        "circuit breaker lets one probe through"
                    );
                }
                g.probing = true;
                Ok(())
            }
        }
    }

    /// Reports the outcome of a request that [`Breaker::allow`] let out.
    pub fn report(&self, verdict: Verdict) {
        match verdict {
            Verdict::Up => self.success(),
            Verdict::Failed => self.failure(),
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
        g.probing = false;
    }

    pub fn failure(&self) {
        let mut g = self.lock();
        g.failures = g.failures.saturating_add(1);
        g.probing = false;
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

    /// Remembers a failed delivery (`at` in microseconds), for status pages.
    pub fn note_error(&self, at: i64, detail: &str) {
        self.lock().last_error = Some((at, detail.to_owned()));
    }

    /// The last failed delivery: when (microseconds) and why.
    pub fn last_error(&self) -> Option<(i64, String)> {
        self.lock().last_error.clone()
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

    #[test]
    fn half_open_lets_exactly_one_probe_out() {
        let b = Breaker::new(1, Duration::from_millis(20));
        b.failure();
        assert!(
            b.ready().is_err() && b.allow().is_err(),
            "open: nothing goes"
        );
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.ready().is_ok(), "a probe may go");
        assert_eq!(b.state(), BreakerState::Open, "ready() takes nothing");
        assert!(b.allow().is_ok(), "the probe");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allow().is_err(), "a second request waits for the probe");
        assert!(b.ready().is_err());
        b.report(Verdict::Up);
        assert!(b.allow().is_ok() && b.allow().is_ok(), "closed again");
    }

    #[test]
    fn remembers_the_last_error() {
        let b = Breaker::new(5, Duration::from_secs(5));
        assert_eq!(b.last_error(), None);
        b.note_error(7, "peer answered 503");
        b.note_error(9, "peer answered 401");
        assert_eq!(b.last_error(), Some((9, "peer answered 401".into())));
    }
}
