//! Progress on stderr: on a terminal, one line redrawn in place (a bar, the
//! phase and its counter); otherwise one line when a phase starts and one
//! when it ends, which reads well in a CI log.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Shared {
    done: AtomicU64,
    total: AtomicU64,
    /// `(phase label, what is being counted)`.
    text: Mutex<(String, String)>,
    started: Mutex<Instant>,
    stop: AtomicBool,
}

pub struct Progress {
    tty: bool,
    steps: usize,
    step: usize,
    shared: Arc<Shared>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn new(steps: usize) -> Self {
        let tty = std::io::stderr().is_terminal();
        let shared = Arc::new(Shared {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            text: Mutex::new((String::new(), String::new())),
            started: Mutex::new(Instant::now()),
            stop: AtomicBool::new(false),
        });
        let ticker = tty.then(|| {
            let shared = shared.clone();
            tokio::spawn(async move {
                while !shared.stop.load(Ordering::Relaxed) {
                    draw(&shared);
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            })
        });
        Self {
            tty,
            steps,
            step: 0,
            shared,
            ticker,
        }
    }

    /// Starts the next phase.
    pub fn phase(&mut self, name: &str, what: &str) {
        self.step += 1;
        let label = format!("[{}/{}] {name}", self.step, self.steps.max(self.step));
        if !self.tty {
            eprintln!("{label}: {what}");
        }
        *lock(&self.shared.started) = Instant::now();
        *lock(&self.shared.text) = (label, String::new());
        self.shared.done.store(0, Ordering::Relaxed);
        self.shared.total.store(0, Ordering::Relaxed);
    }

    /// What is counted now, how far it is, and out of how many (0: unknown).
    pub fn set(&self, what: &str, done: u64, total: u64) {
        lock(&self.shared.text).1 = what.to_owned();
        self.shared.total.store(total, Ordering::Relaxed);
        self.shared.done.store(done, Ordering::Relaxed);
    }

    pub fn advance(&self, done: u64) {
        self.shared.done.store(done, Ordering::Relaxed);
    }

    /// A line that stays (on a terminal, the redrawn line comes back
    /// under it): something the reader should know happened.
    pub fn note(&self, text: &str) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("      {text}");
    }

    /// Ends the phase with a one-line summary (printed when not on a terminal).
    pub fn done(&self, summary: &str) {
        if !self.tty {
            let secs = lock(&self.shared.started).elapsed().as_secs_f64();
            eprintln!("      {summary} ({secs:.1} s)");
        }
    }

    /// Stops redrawing and clears the line.
    pub fn finish(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            t.abort();
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn draw(s: &Shared) {
    let (label, what) = lock(&s.text).clone();
    if label.is_empty() {
        return;
    }
    let secs = lock(&s.started).elapsed().as_secs_f64();
    let line = render(
        &label,
        &what,
        s.done.load(Ordering::Relaxed),
        s.total.load(Ordering::Relaxed),
        secs,
    );
    eprint!("\r\x1b[2K{line}");
    let _ = std::io::stderr().flush();
}

/// The progress line, at most about 80 columns.
fn render(label: &str, what: &str, done: u64, total: u64, secs: f64) -> String {
    const WIDTH: u64 = 24;
    let counter = if total > 0 {
        let d = done.min(total);
        let filled = (d * WIDTH / total) as usize;
        format!(
            "[{}{}] {:>3}%  {what} {d}/{total}",
            "#".repeat(filled),
            ".".repeat(WIDTH as usize - filled),
            d * 100 / total
        )
    } else if done > 0 {
        format!("{what} {done}")
    } else {
        what.to_owned()
    };
    let mut line = format!("{label:<16} {counter}  {secs:.1} s");
    if line.chars().count() > 100 {
        line = line.chars().take(100).collect();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn lines() {
        let l = render("[2/7] e2e", "created", 50, 100, 1.25);
        assert!(
            l.contains("[############............]  50%  created 50/100"),
            "{l}"
        );
        assert!(l.ends_with("1.2 s") || l.ends_with("1.3 s"), "{l}");
        assert!(render("[1/1] idle", "", 0, 0, 0.0).starts_with("[1/1] idle"));
    }
}
