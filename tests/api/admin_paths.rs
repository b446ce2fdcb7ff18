//! The admin UI's paths and docs/API.md §8 agree: every admin route the
//! router is built with (read from src/http/admin/mod.rs) is in §8's table
//! with the same methods, and every path of the table is served: with a
//! session, each documented GET answers a page (not the 404 of unknown
//! paths, not 405) on the side that serves it, and 404 on the other side
//! for a "Store only"/"Warehouse only" page; each documented POST reaches
//! its handler, which refuses it for want of a CSRF token (403), not 404
//! or 405.

use std::collections::{BTreeMap, BTreeSet};

use fulfillment::domain::Role;
use fulfillment::engine::credentials;
use reqwest::StatusCode;

use crate::helpers::*;

/// Path → methods.
type Paths = BTreeMap<String, BTreeSet<String>>;

/// One row of §8's table: its paths, methods, and which side serves it
/// (`None`: both).
struct Row {
    paths: Vec<String>,
    methods: BTreeSet<String>,
    only: Option<Role>,
}

fn rows_in_api_md() -> Vec<Row> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md"))
        .expect("docs/API.md");
    let section = text
        .split("\n## 8. Admin UI")
        .nth(1)
        .and_then(|s| s.split("\n## 9.").next())
        .expect("docs/API.md has §8 and §9");
    section
        .lines()
        .filter(|l| l.starts_with("| `/admin"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let paths = cells[1]
                .split(',')
                .map(|p| p.trim().trim_matches('`').to_owned())
                .collect();
            let methods = cells[2].split(',').map(|m| m.trim().to_owned()).collect();
            let only = if cells[3].starts_with("Store only") {
                Some(Role::Store)
            } else if cells[3].starts_with("Warehouse only") {
                Some(Role::Warehouse)
            } else {
                None
            };
            Row {
                paths,
                methods,
                only,
            }
        })
        .collect()
}

/// The admin routes as src/http/admin/mod.rs builds them: each
/// `.route("/admin/…", only(get(…).post(…)))`, less the static assets and
/// the catch-all.
fn routes_in_source() -> Paths {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/http/admin/mod.rs"
    ))
    .expect("src/http/admin/mod.rs");
    let mut out = Paths::new();
    for chunk in src.split(".route(").skip(1) {
        let Some(path) = chunk
            .trim_start()
            .strip_prefix('"')
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        if path.starts_with("/admin/static/") || path.contains("{*") {
            continue;
        }
        let handlers = chunk.split(".layer(").next().unwrap_or(chunk);
        let mut methods = BTreeSet::new();
        if handlers.contains("only(get(") {
            methods.insert("GET".to_owned());
        }
        if handlers.contains("only(post(") || handlers.contains(".post(") {
            methods.insert("POST".to_owned());
        }
        out.insert(path.to_owned(), methods);
    }
    out
}

/// Signs in with a fresh admin user (the sign-in form's CSRF token is
/// double-submitted) and returns the session cookie.
async fn session(side: &Side) -> String {
    let db = side.service.as_ref().expect("running").engine().db();
    credentials::create_user(db, "paths", "correct horse battery")
        .await
        .expect("admin user");
    let csrf = "0123456789abcdef0123456789abcdef";
    let role = side.role.as_str();
    let res = client()
        .post(format!("{}/admin/login", side.url))
        .header("cookie", format!("{role}_admin_login={csrf}"))
        .form(&[
            ("csrf", csrf),
            ("username", "paths"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{role}: sign-in");
    let name = format!("{role}_admin_session=");
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&name))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_and_api_md_section_8_agree() {
    let rows = rows_in_api_md();
    let mut documented = Paths::new();
    for r in &rows {
        for p in &r.paths {
            documented
                .entry(p.clone())
                .or_default()
                .extend(r.methods.iter().cloned());
        }
    }
    let routed = routes_in_source();
    assert!(routed.len() > 15, "{routed:?}");
    assert_eq!(
        documented, routed,
        "docs/API.md §8 lists exactly the admin routes (path and methods) of src/http/admin/mod.rs"
    );

    let Some(pair) = Pair::start(Backend::Sqlite).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Admin Paths").await);
    wait_for_order(&pair.warehouse, &id, "the order at the warehouse", |_| true).await;
    let http = client();
    for side in [&pair.store, &pair.warehouse] {
        let cookie = session(side).await;
        for r in &rows {
            for path in &r.paths {
                let url = format!(
                    "{}{}",
                    side.url,
                    path.replace("{id}", &id).replace("{name}", "main")
                );
                let serves = r.only.is_none_or(|o| o == side.role);
                for method in &r.methods {
                    let res = match method.as_str() {
                        "GET" => http.get(&url),
                        _ => http.post(&url).form(&[("x", "y")]),
                    }
                    .header("cookie", &cookie)
                    .send()
                    .await
                    .expect("request");
                    let status = res.status();
                    let what = format!("{} {method} {path}", side.role);
                    match (method.as_str(), serves) {
                        ("GET", true) => assert!(
                            status == StatusCode::OK || status == StatusCode::SEE_OTHER,
                            "{what}: {status}"
                        ),
                        ("GET", false) => assert_eq!(status, StatusCode::NOT_FOUND, "{what}"),
                        // The handler is reached: it checks the token first.
                        _ => assert_eq!(status, StatusCode::FORBIDDEN, "{what}"),
                    }
                }
            }
        }
    }
    pair.stop().await;
}
