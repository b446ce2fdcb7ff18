//! A flood of badly signed sync requests costs a few log lines, not one per
//! request, and every refusal is counted in `fulfillment_sync_refused_total`.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::*;

both_backends!(refused_sync_requests_are_counted_not_logged_one_by_one);

async fn refused_sync_requests_are_counted_not_logged_one_by_one(b: Backend) {
    let log = CapturedLogs::install("warn");
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let wh = &pair.warehouse;
    let body = br#"{"changes": []}"#.to_vec();
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = fulfillment::sync::signature::Secrets::new(&["not-the-secret"])
        .expect("secret")
        .sign("flood", ts.parse().expect("ts"), &body);
    let send = |i: usize| {
        let (http, url, body, ts, sig) = (
            wh.http.clone(),
            format!("{}/api/v1/sync/changes", wh.url),
            body.clone(),
            ts.clone(),
            sig.clone(),
        );
        async move {
            http.post(url)
                .header("content-type", "application/json")
                .header("webhook-id", format!("flood-{i}"))
                .header("webhook-timestamp", ts)
                .header("webhook-signature", sig)
                .body(body)
                .send()
                .await
                .expect("sent")
                .status()
        }
    };
    for chunk in (0..500).collect::<Vec<_>>().chunks(50) {
        let answers: Vec<_> = chunk.iter().map(|&i| tokio::spawn(send(i))).collect();
        for a in answers {
            assert_eq!(a.await.expect("task"), StatusCode::UNAUTHORIZED);
        }
    }
    let metrics = reqwest::get(format!("{}/metrics", wh.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let refused: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("fulfillment_sync_refused_total"))
        .collect();
    assert_eq!(refused.len(), 1, "{metrics}");
    assert!(
        refused[0].contains(r#"reason="signature""#) && refused[0].ends_with(" 500"),
        "{}",
        refused[0]
    );
    pair.stop().await;
    {
        let text = log.text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("sync request"))
            .collect();
        assert!(!lines.is_empty(), "the first refusal is logged: {text}");
        assert!(lines.len() <= 3, "{} lines: {lines:#?}", lines.len());
    }
}
