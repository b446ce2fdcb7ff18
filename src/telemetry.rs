//! Logging, set up in one place. Structured (`tracing`), text or JSON.
//! Log lines carry ids, numbers and statuses, never bodies: no secret, token,
//! password or (at the warehouse) money can reach a log.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default levels.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    // Colours only on a terminal: log files and CI logs get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// How often a [`Throttle`] writes its summary lines by default.
pub const THROTTLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Keeps a warning that can repeat many times a second (a flood of badly
/// signed requests, accept failures with no file descriptor left, a
/// database outage) from flooding the log.
///
/// [`Throttle::note`] counts every occurrence of a kind in a Prometheus
/// counter and tells the caller to log the first one at once. The ones that
/// follow within the interval are only counted; at the end of each interval
/// in which some were held back, one line says how many (and the next
/// interval throttles again). After a quiet interval, the next occurrence is
/// logged at once again. So a flood costs at most two lines per interval
/// and kind, and a lone event still shows up at once.
#[derive(Debug)]
pub struct Throttle {
    every: std::time::Duration,
    windows: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Window>>>,
}

#[derive(Debug)]
struct Window {
    /// Occurrences not logged since the last line.
    held: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(THROTTLE_INTERVAL)
    }
}

impl Throttle {
    pub fn new(every: std::time::Duration) -> Self {
        Self {
            every,
            windows: Default::default(),
        }
    }

    /// Counts one occurrence of `kind` in `counter`. Answers `true` when the
    /// caller should log it now (the first of an interval); otherwise it is
    /// held back, and one line at the end of the interval, with `what` as
    /// its message, says how many of `kind` were.
    ///
    /// Outside a tokio runtime nothing can write that line later, so every
    /// occurrence is to be logged.
    pub fn note(&self, kind: &str, counter: &metrics::Counter, what: &'static str) -> bool {
        counter.increment(1);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return true;
        };
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = windows.get_mut(kind) {
            w.held += 1;
            return false;
        }
        windows.insert(kind.to_owned(), Window { held: 0 });
        drop(windows);
        let (windows, every, kind) = (self.windows.clone(), self.every, kind.to_owned());
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let mut all = windows.lock().unwrap_or_else(|e| e.into_inner());
                let held = all.get(&kind).map_or(0, |w| w.held);
                if held == 0 {
                    all.remove(&kind);
                    return;
                }
                if let Some(w) = all.get_mut(&kind) {
                    w.held = 0;
                }
                drop(all);
                tracing::warn!(
                    kind = %kind,
                    not_logged = held,
                    interval_s = every.as_secs_f64(),
                    "{what}: {held} more like this in the last {:.0} s, not logged one by one",
                    every.as_secs_f64()
                );
            }
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn throttle_logs_the_first_then_summarises_then_starts_again() {
        let t = Throttle::new(Duration::from_millis(200));
        let c = metrics::Counter::noop();
        assert!(t.note("a", &c, "test"), "the first is logged");
        assert!(!t.note("a", &c, "test"), "repeats are held back");
        assert!(t.note("b", &c, "test"), "another kind is logged");
        for _ in 0..5 {
            assert!(!t.note("a", &c, "test"));
        }
        // End of the interval: the summary takes the count; still throttled.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!t.note("a", &c, "test"));
        // An interval with nothing but that one, then a quiet one: the
        // next occurrence is logged at once again.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(t.note("a", &c, "test"));
    }
}
