//! The write linger (`--write-linger`): a create that arrives while no
//! other is in flight waits for company, and is written with the first one
//! that joins it; alone, it is written when the linger ends; with `0` it is
//! written at once. Orders written in one batch share their creation time
//! (one clock reading per batch), which is how a test sees who shared.

use std::time::{Duration, Instant};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    a_lone_create_waits_for_company_and_goes_with_the_first_to_come,
    with_no_linger_a_lone_create_is_written_at_once,
);

/// Long enough that the bounds below hold on a slow machine.
const LINGER: Duration = Duration::from_millis(400);
const APART: Duration = Duration::from_millis(100);

/// Creates an order; its answer and how long it took.
async fn timed_create(store: &Side, name: &str) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let order = create_order(store, name).await;
    (order, started.elapsed())
}

/// Two creates `APART` from each other, the first alone when it arrives.
async fn two_apart(store: &Side) -> ((serde_json::Value, Duration), (serde_json::Value, Duration)) {
    tokio::join!(timed_create(store, "First"), async {
        tokio::time::sleep(APART).await;
        timed_create(store, "Second").await
    })
}

async fn a_lone_create_waits_for_company_and_goes_with_the_first_to_come(b: Backend) {
    let Some(pair) = Pair::start_with(b, |c| {
        c.reconcile_interval = None;
        c.write_linger = LINGER;
    })
    .await
    else {
        return;
    };
    assert_eq!(pair.store.cfg.write_linger, LINGER);
    // Alone, with no one coming: written when the linger ends.
    let (alone, took) = timed_create(&pair.store, "Alone").await;
    assert!(took >= LINGER - Duration::from_millis(20), "took {took:?}");
    // The second joins the first, which then goes at once: one batch.
    let ((first, first_took), (second, _)) = two_apart(&pair.store).await;
    assert_eq!(
        first["created_at"], second["created_at"],
        "{first} {second}"
    );
    assert_ne!(first["created_at"], alone["created_at"]);
    assert!(
        first_took >= APART - Duration::from_millis(20) && first_took < LINGER,
        "the first waited {first_took:?}: for the second, not for the linger"
    );
    // Both are stored and travel as any order does.
    for o in [&alone, &first, &second] {
        wait_for_order(&pair.store, &id_of(o), "the order is synced", |o| {
            o["sync"]["state"] == "synced"
        })
        .await;
    }
    pair.stop().await;
}

async fn with_no_linger_a_lone_create_is_written_at_once(b: Backend) {
    let Some(pair) = Pair::start_with(b, |c| {
        c.reconcile_interval = None;
        c.write_linger = Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let ((first, first_took), (second, _)) = two_apart(&pair.store).await;
    assert_ne!(
        first["created_at"], second["created_at"],
        "{first} {second}"
    );
    assert!(first_took < APART, "the first waited {first_took:?}");
    pair.stop().await;
}
