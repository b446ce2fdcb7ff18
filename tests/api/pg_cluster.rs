//! A PostgreSQL cluster of a test's own (initdb, pg_ctl), for tests that
//! stop and start the server: stopping the shared one of
//! `scripts/with-postgres` would break every other test running beside.
//!
//! The server binaries come from `/usr/lib/postgresql/*/bin` (or
//! `FULFILLMENT_TEST_PG_BINDIR`). initdb and postgres refuse to run as root,
//! so as root the cluster runs as the `postgres` user (or
//! `fulfillment-pg`, created like `scripts/with-postgres` does). Without the
//! binaries the test skips, except under `CI=true`, where it fails.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::net::free_port;

pub struct PgCluster {
    bindir: PathBuf,
    /// Runs the tools as this user (when we are root).
    user: Option<String>,
    dir: PathBuf,
    port: u16,
    pub url: String,
}

fn bindir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("FULFILLMENT_TEST_PG_BINDIR") {
        return Some(PathBuf::from(d));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl PgCluster {
    /// `None` (skip) only outside CI when PostgreSQL is not installed.
    pub fn start() -> Option<PgCluster> {
        let bindir = bindir();
        if !crate::common::have(bindir.is_some(), || {
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: this test needs its own cluster (apt-get install postgresql; scripts/with-postgres does)".into()
        }) {
            return None;
        }
        let bindir = bindir?;
        let user = is_root().then(|| {
            let exists = |u: &str| {
                Command::new("id")
                    .args(["-u", u])
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if exists("postgres") {
                return "postgres".to_owned();
            }
            if !exists("fulfillment-pg") {
                let _ = Command::new("useradd")
                    .args([
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        "fulfillment-pg",
                    ])
                    .status();
            }
            "fulfillment-pg".to_owned()
        });
        // Under /tmp: the unprivileged user must reach it.
        let dir = tempfile::Builder::new()
            .prefix("fulfillment-own-pg.")
            .tempdir_in("/tmp")
            .expect("temp dir")
            .keep();
        if let Some(u) = &user {
            let ok = Command::new("chown")
                .arg(format!("{u}:"))
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown {} to {u}", dir.display());
        }
        let port = free_port();
        let owner = user.clone().unwrap_or_else(|| {
            String::from_utf8_lossy(&Command::new("id").arg("-un").output().expect("id").stdout)
                .trim()
                .to_owned()
        });
        let cluster = PgCluster {
            url: format!("postgres://{owner}@127.0.0.1:{port}/postgres"),
            bindir,
            user,
            dir,
            port,
        };
        let data = cluster.dir.join("data");
        let out = cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                owner.as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.start_server();
        Some(cluster)
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Output {
        let exe = self.bindir.join(tool);
        let mut cmd = match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()))
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let opts = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log");
        let out = self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-D".as_ref(),
                self.data().as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-o".as_ref(),
                opts.as_ref(),
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server (fast: sessions are ended, as on a real shutdown).
    pub fn stop_server(&self) {
        let out = self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-D".as_ref(),
                self.data().as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
            ],
        );
        std::thread::sleep(Duration::from_millis(50));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
