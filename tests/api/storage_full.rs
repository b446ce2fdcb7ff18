//! A full disk (SQLite on a tiny tmpfs): writes answer 507 and say so,
//! readiness reports it, and once space is freed readiness comes back by
//! itself; nothing acknowledged is lost or corrupted.
//!
//! Needs root (to mount the tmpfs), as CI runs; elsewhere it skips, but
//! under `CI=true` it fails when it cannot set up the full disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fulfillment::domain::Role;
use fulfillment::engine::credentials;
use fulfillment::service::{Service, ServiceConfig};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{AnyConnection, Connection, Row};
use tokio::net::TcpListener;

use crate::helpers::*;

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root, so no tmpfs can be mounted".into());
        }
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("disk");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(Tmpfs {
            dir,
            _parent: parent,
        })
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Writes to `path` until the file system refuses for lack of space.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0xa5u8; 16 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = f.sync_all();
    written
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("sent");
        let status = res.status();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_answers_507_and_readiness_recovers_by_itself() {
    let disk = match Tmpfs::mount("6m") {
        Ok(d) => d,
        Err(why) => {
            crate::common::have(false, || why);
            return;
        }
    };
    let log = CapturedLogs::install("warn");
    let db_path = disk.path().join("store.db");
    let url = format!("sqlite://{}", db_path.display());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let cfg = ServiceConfig::new(Role::Store, &url, "http://127.0.0.1:9", SECRET);
    let service = Service::start(cfg.clone(), listener)
        .await
        .expect("service starts");
    let token = credentials::create_token(service.engine().db(), Role::Store, "full")
        .await
        .expect("token");
    let c = Client {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        token,
    };
    let mut acknowledged: Vec<String> = Vec::new();
    let create = |name: String| {
        let body = order_body(&name);
        let c = &c;
        async move {
            c.send(reqwest::Method::POST, "/api/v1/orders", Some(&body))
                .await
        }
    };
    for i in 0..5 {
        let (s, o) = create(format!("Before {i}")).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        acknowledged.push(o["id"].as_str().expect("id").to_owned());
    }

    // Fill the disk, then write until a write finds no room (the first
    // few may still fit in space the WAL already has).
    let filler = disk.path().join("filler");
    fill(&filler);
    let mut full = None;
    for i in 0..400 {
        let (s, o) = create(format!("While full {i}")).await;
        match s {
            StatusCode::CREATED => acknowledged.push(o["id"].as_str().expect("id").to_owned()),
            StatusCode::INSUFFICIENT_STORAGE => {
                full = Some(o);
                break;
            }
            other => panic!("a write on a full disk answered {other}: {o}"),
        }
    }
    let problem = full.expect("a write fails for lack of space within 400 creates");
    assert_eq!(
        problem["type"], "https://fulfillment.invalid/problems/storage-full",
        "{problem}"
    );
    assert_eq!(problem["status"], 507);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("disk is full")
            && detail.contains("nothing was written")
            && detail.contains("Free space"),
        "{detail}"
    );
    // Every write fails the same way while the disk is full; the log says
    // so once (then once per 10 s), not once per write.
    for i in 0..30 {
        let (s, o) = create(format!("Still full {i}")).await;
        assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{o}");
    }
    {
        let text = log.text();
        let lines = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
        assert_eq!(lines("group commit failed"), 1, "{text}");
        assert_eq!(lines("answered 507"), 1, "{text}");
    }
    // Readiness says so, and keeps saying so while the disk stays full.
    for _ in 0..3 {
        let (s, body) = c.send(reqwest::Method::GET, "/readyz", None).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("storage full")),
            "{body}"
        );
    }
    // Reads still work.
    let (s, _) = c
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/orders/{}", acknowledged[0]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Free the space; no client writes: readiness comes back by itself.
    std::fs::remove_file(&filler).expect("remove filler");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, body) = c.send(reqwest::Method::GET, "/readyz", None).await;
        if s == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready 10 s after space was freed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, o) = create("After".into()).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    acknowledged.push(o["id"].as_str().expect("id").to_owned());
    for id in &acknowledged {
        let (s, o) = c
            .send(reqwest::Method::GET, &format!("/api/v1/orders/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "acknowledged order {id}: {o}");
    }
    service.stop().await;

    // Intact on disk, and everything acknowledged is there after a restart.
    fulfillment::storage::install_drivers();
    let mut conn = AnyConnection::connect(&url).await.expect("open");
    let check: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("integrity_check")
        .get(0);
    assert_eq!(check, "ok");
    let stored: i64 = sqlx::query("SELECT COUNT(*) FROM orders")
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .get(0);
    conn.close().await.ok();
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "every acknowledged order is stored, and none answered 507"
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = Service::start(cfg, listener).await.expect("restarts");
    let c = Client {
        base: format!("http://{addr}"),
        ..c
    };
    for id in &acknowledged {
        let (s, _) = c
            .send(reqwest::Method::GET, &format!("/api/v1/orders/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "acknowledged order {id} after restart");
    }
    service.stop().await;
    drop(disk);
}
