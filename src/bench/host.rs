//! CPU time from `/proc`, the one place the bench reads it: each service's
//! (per scenario, and idle), the local PostgreSQL server's, and how busy the
//! machine was with work other than the bench (every figure is measured on
//! one machine, so a compiler or test suite running beside it lowers them
//! all). Linux only; elsewhere nothing is reported.

use std::collections::HashMap;
use std::path::Path;

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

/// One line of `/proc/<pid>/stat`, the fields the bench uses.
#[derive(Debug, Clone, PartialEq)]
struct Stat {
    /// The command name (`comm`, at most 15 bytes).
    comm: String,
    ppid: u32,
    /// utime + stime, in seconds.
    own: f64,
    /// cutime + cstime: children it has waited for, in seconds.
    children: f64,
}

fn parse_stat(stat: &str) -> Option<Stat> {
    // The command name (field 2) may hold spaces and parentheses; the
    // fields after its closing parenthesis start with field 3 (state).
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // Counted from field 3: ppid is field 4, utime 14, stime 15, cutime
    // 16, cstime 17.
    Some(Stat {
        comm,
        ppid: f.get(1)?.parse().ok()?,
        own: (f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) as f64 / CLK_TCK,
        children: (f.get(13)?.parse::<i64>().ok()? + f.get(14)?.parse::<i64>().ok()?).max(0) as f64
            / CLK_TCK,
    })
}

fn stat_of(pid: u32) -> Option<Stat> {
    parse_stat(
        &std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?,
    )
}

/// Every process readable now, by pid.
fn processes() -> HashMap<u32, Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat_of(pid)?)))
        .collect()
}

/// User + system CPU time a process used so far, in seconds (not its
/// children's).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat_of(pid).map(|s| s.own)
}

/// A PostgreSQL server on this machine: its postmaster, whose children are
/// the backends (one per connection), the WAL writer, the checkpointer and
/// the other helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgServer {
    pub postmaster: u32,
}

/// Whether a `postgres://` URL points at this machine: loopback, or a Unix
/// socket (no host, or a `host=/dir` parameter).
pub fn is_local(url: &reqwest::Url) -> bool {
    let socket_param = url
        .query_pairs()
        .any(|(k, v)| k == "host" && v.starts_with('/'));
    match url.host_str() {
        None | Some("") => true,
        Some(h) => socket_param || matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "::1"),
    }
}

/// The port a `postgres://` URL connects to.
fn port_of(url: &reqwest::Url) -> u16 {
    url.port()
        .or_else(|| {
            url.query_pairs()
                .find(|(k, _)| k == "port")
                .and_then(|(_, v)| v.parse().ok())
        })
        .unwrap_or(5432)
}

impl PgServer {
    /// The server `url` connects to, when it runs on this machine: the
    /// postmaster (a `postgres` process whose parent is not one) whose
    /// data directory's `postmaster.pid` names the URL's port; `Err` says
    /// why it is not counted.
    pub fn find(url: &reqwest::Url) -> Result<PgServer, String> {
        if !is_local(url) {
            return Err("the server is not on this machine".into());
        }
        let port = port_of(url);
        let procs = processes();
        let postmasters: Vec<u32> = procs
            .iter()
            .filter(|(_, s)| s.comm == "postgres")
            .filter(|(_, s)| procs.get(&s.ppid).is_none_or(|p| p.comm != "postgres"))
            .map(|(pid, _)| *pid)
            .collect();
        // The postmaster runs in its data directory; line 4 of its
        // postmaster.pid is the port it listens on.
        let listens = |pid: &u32| {
            let text = std::fs::read_to_string(
                Path::new("/proc")
                    .join(pid.to_string())
                    .join("cwd/postmaster.pid"),
            )
            .ok()?;
            text.lines().nth(3)?.trim().parse::<u16>().ok()
        };
        let ports: Vec<(u32, Option<u16>)> = postmasters.iter().map(|p| (*p, listens(p))).collect();
        if let Some((pid, _)) = ports.iter().find(|(_, p)| *p == Some(port)) {
            return Ok(PgServer { postmaster: *pid });
        }
        match ports.as_slice() {
            [(pid, None)] => Ok(PgServer { postmaster: *pid }),
            [] => Err(format!(
                "no PostgreSQL server process found in /proc (port {port})"
            )),
            _ => Err(format!(
                "no PostgreSQL server found listening on port {port} in /proc"
            )),
        }
    }

    /// CPU seconds the server used so far: the postmaster's own, its live
    /// children's, and (cutime + cstime) those that exited and it reaped.
    /// The difference of two readings is what the server spent between
    /// them, backends that came and went included. `None` once the
    /// postmaster is gone.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let procs = processes();
        let pm = procs.get(&self.postmaster)?;
        let live: f64 = procs
            .values()
            .filter(|s| s.ppid == self.postmaster)
            .map(|s| s.own)
            .sum();
        Some(pm.own + pm.children + live)
    }
}

/// Every `postgres` process's time with its reaped children's (which are
/// `postgres` too, so counted once).
fn postgres_cpu() -> f64 {
    processes()
        .values()
        .filter(|s| s.comm == "postgres")
        .map(|s| s.own + s.children)
        .sum()
}

pub fn sample(postgres: bool) -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<&str> = stat.lines().next()?.split_whitespace().skip(1).collect();
    let me = stat_of(std::process::id())?;
    Some(Sample {
        at: std::time::Instant::now(),
        busy: ticks(&cpu, &[0, 1, 2, 5, 6]),
        steal: ticks(&cpu, &[7]),
        own: me.own + me.children,
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
        let stat = "1 (a b) S 7 1 1 0 -1 0 0 0 0 0 100 50 30 20 20 0 1 0 1 1 1";
        let s = parse_stat(stat).expect("parsed");
        assert_eq!((s.comm.as_str(), s.ppid), ("a b", 7));
        assert_eq!((s.own, s.children), (1.5, 0.5));
        let odd = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 1000 200";
        assert_eq!(parse_stat(odd).map(|s| s.own), Some(3.0));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn local_servers() {
        let local = |u: &str| is_local(&reqwest::Url::parse(u).expect("url"));
        assert!(local("postgres://postgres@127.0.0.1:5433/postgres"));
        assert!(local("postgres://postgres@localhost/postgres"));
        assert!(local("postgres://postgres@[::1]/postgres"));
        assert!(local("postgres:///postgres?host=/run/postgresql"));
        assert!(local("postgres://x@db.example/postgres?host=/tmp"));
        assert!(!local("postgres://postgres@db.example/postgres"));
        let port = |u: &str| port_of(&reqwest::Url::parse(u).expect("url"));
        assert_eq!(port("postgres://a@127.0.0.1:5433/x"), 5433);
        assert_eq!(port("postgres:///x?host=/tmp&port=6000"), 6000);
        assert_eq!(port("postgres://a@localhost/x"), 5432);
    }

    #[test]
    fn samples_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds(std::process::id()).is_some());
            let a = sample(false).expect("sample");
            let b = sample(false).expect("sample");
            let c = contention(a, b, 2);
            assert!(c.other_cpu_seconds >= 0.0 && c.other_share >= 0.0);
        }
    }
}
