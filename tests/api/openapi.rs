//! The OpenAPI documents and the routers agree, on both sides: every
//! operation a side documents is served (no request to it reaches the
//! router's fallbacks), every operation a side serves is documented, except
//! the other side's commands, which it refuses with 405 and an `Allow`
//! header naming exactly the methods its document lists with a success
//! answer on that path. docs/API.md, the users' reference, names the same
//! operations. Checked by requests to running services, for every method
//! on every path any of these name, and against the list of routes the
//! router was built from (`http::api(role)`).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use fulfillment::domain::Role;

type Op = (String, String);

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The operations of a document, as (METHOD, path).
fn operations(doc: &Value) -> BTreeSet<Op> {
    doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .map(move |(method, _)| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// The API operations docs/API.md names (`GET /api/v1/orders/{id}`, ...).
fn operations_in_api_md() -> BTreeSet<Op> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md"))
        .expect("docs/API.md");
    let mut ops = BTreeSet::new();
    for method in METHODS {
        for (i, _) in text.match_indices(&format!("{method} /")) {
            let rest = &text[i + method.len() + 1..];
            let path: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && !"`|)?,".contains(*c))
                .collect();
            if path.starts_with("/api/v1/") || ["/healthz", "/readyz", "/metrics"].contains(&&*path)
            {
                ops.insert((method.to_owned(), path));
            }
        }
    }
    ops
}

/// An answer of the router's own fallbacks: no route here, or not this
/// method (`http::router`).
fn is_fallback(status: StatusCode, body: &Value) -> bool {
    let detail = body["detail"].as_str().unwrap_or_default();
    (status == StatusCode::NOT_FOUND && detail.starts_with("no such route"))
        || (status == StatusCode::METHOD_NOT_ALLOWED
            && detail == "this route does not take that method")
}

/// Sends `method path` with the side's token (and `{}` as a JSON body where
/// a body fits), with a fresh order id for `{id}`.
async fn send(side: &Side, method: &str, path: &str) -> (StatusCode, Option<String>, Value) {
    let url = format!(
        "{}{}",
        side.url,
        path.replace("{id}", &uuid::Uuid::now_v7().to_string())
    );
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = side
        .http
        .request(method.clone(), url)
        .bearer_auth(&side.token);
    if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
        req = req.json(&json!({}));
    }
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let allow = res
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = res.text().await.expect("body read");
    (
        status,
        allow,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// The methods `doc` lists on `path` with a success (2xx) answer: what
/// `Allow` says this side serves there.
fn served_methods(doc: &Value, path: &str) -> BTreeSet<String> {
    doc["paths"][path]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, op)| {
            op["responses"]
                .as_object()
                .is_some_and(|r| r.keys().any(|s| s.starts_with('2')))
        })
        .map(|(m, _)| m.to_uppercase())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let Some(pair) = Pair::start(Backend::Sqlite).await else {
        return;
    };
    let reference = operations_in_api_md();
    assert!(reference.len() > 15, "{reference:?}");
    let mut paths: BTreeSet<String> = reference.iter().map(|(_, p)| p.clone()).collect();
    let mut sides = Vec::new();
    for side in [&pair.store, &pair.warehouse] {
        let role = side.role;
        let (s, doc) = side.get("/api/v1/openapi.json").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            doc,
            fulfillment::http::openapi::document(role),
            "{role}: the served document is the generated one"
        );
        let documented = operations(&doc);
        let refused: BTreeSet<Op> = fulfillment::http::api(role)
            .refused()
            .iter()
            .map(|(m, p)| ((*m).to_owned(), p.clone()))
            .collect();
        assert!(
            documented.is_disjoint(&refused),
            "{role}: refused operations are not documented"
        );
        paths.extend(documented.iter().map(|(_, p)| p.clone()));
        sides.push((side, doc, documented, refused));
    }
    // Both sides route the same operations; what one refuses, the other
    // documents.
    let routed = |i: usize| -> BTreeSet<Op> { sides[i].2.union(&sides[i].3).cloned().collect() };
    assert_eq!(routed(0), routed(1), "both sides route the same operations");
    assert_eq!(
        sides[0].3,
        sides[1].2.difference(&sides[0].2).cloned().collect()
    );
    assert_eq!(
        sides[1].3,
        sides[0].2.difference(&sides[1].2).cloned().collect()
    );
    assert_eq!(
        routed(0),
        reference,
        "docs/API.md names exactly the operations the services route"
    );

    for (side, doc, documented, refused) in &sides {
        let role: Role = side.role;
        for path in &paths {
            for method in METHODS {
                let op = (method.to_owned(), path.clone());
                let (status, allow, body) = send(side, method, path).await;
                if documented.contains(&op) {
                    assert!(
                        !is_fallback(status, &body),
                        "{role}: {method} {path} is documented but not served: {status} {body}"
                    );
                } else if refused.contains(&op) {
                    assert_eq!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{role}: {method} {path} {body}"
                    );
                    assert!(!is_fallback(status, &body), "{role}: {method} {path}");
                    let allow: BTreeSet<String> = allow
                        .unwrap_or_default()
                        .split(',')
                        .map(|m| m.trim().to_owned())
                        .filter(|m| !m.is_empty())
                        .collect();
                    assert_eq!(
                        allow,
                        served_methods(doc, path),
                        "{role}: {method} {path}: Allow names what the document serves"
                    );
                } else {
                    assert!(
                        is_fallback(status, &body),
                        "{role}: {method} {path} is served ({status} {body}) but not documented"
                    );
                }
            }
        }
    }
    pair.stop().await;
}
