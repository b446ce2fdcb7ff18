//! How busy the machine was with work other than the bench: every figure
//! here is measured on one machine, so a compiler or test suite running
//! beside it lowers them all. Linux only (`/proc`); elsewhere nothing is
//! reported.

use serde::Serialize;

/// Clock ticks per second in `/proc` (`CLK_TCK`; 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// CPU counters at one moment, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: std::time::Instant,
    /// Busy time of all CPUs together (user, nice, system, irq, softirq).
    busy: f64,
    /// Time the hypervisor gave to other guests.
    steal: f64,
    /// This process and its reaped children (the services, once stopped).
    own: f64,
    /// Processes named `postgres`, when the bench runs on PostgreSQL: the
    /// database server works for the bench.
    postgres: f64,
}

/// What others did while the bench ran.
#[derive(Debug, Clone, Serialize)]
pub struct Contention {
    pub wall_seconds: f64,
    /// CPU seconds used by processes other than the bench, its services
    /// (and the PostgreSQL server).
    pub other_cpu_seconds: f64,
    /// The same as a share of all cores over the run (0..1).
    pub other_share: f64,
    pub steal_seconds: f64,
}

fn ticks(fields: &[&str], idx: &[usize]) -> f64 {
    idx.iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum::<f64>()
        / CLK_TCK
}

/// utime + stime + cutime + cstime of a `/proc/<pid>/stat` text.
fn process_total(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    Some(ticks(&f, &[11, 12, 13, 14]))
}

fn postgres_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| s.contains("(postgres)"))
        .filter_map(|s| process_total(&s))
        .sum()
}

pub fn sample(postgres: bool) -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<&str> = stat.lines().next()?.split_whitespace().skip(1).collect();
    let own = process_total(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(Sample {
        at: std::time::Instant::now(),
        busy: ticks(&cpu, &[0, 1, 2, 5, 6]),
        steal: ticks(&cpu, &[7]),
        own,
        postgres: if postgres { postgres_cpu() } else { 0.0 },
    })
}

pub fn contention(before: Sample, after: Sample, cores: usize) -> Contention {
    let wall = after.at.duration_since(before.at).as_secs_f64();
    let other = ((after.busy - before.busy)
        - (after.own - before.own)
        - (after.postgres - before.postgres))
        .max(0.0);
    Contention {
        wall_seconds: wall,
        other_cpu_seconds: other,
        other_share: if wall > 0.0 && cores > 0 {
            other / (wall * cores as f64)
        } else {
            0.0
        },
        steal_seconds: after.steal - before.steal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_times() {
        let stat = "1 (a b) S 0 1 1 0 -1 0 0 0 0 0 100 50 30 20 20 0 1 0 1 1 1";
        assert_eq!(process_total(stat), Some(2.0));
    }

    #[test]
    fn samples_on_linux() {
        if cfg!(target_os = "linux") {
            let a = sample(false).expect("sample");
            let b = sample(false).expect("sample");
            let c = contention(a, b, 2);
            assert!(c.other_cpu_seconds >= 0.0 && c.other_share >= 0.0);
        }
    }
}
