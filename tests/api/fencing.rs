//! Version fencing, as a property: whatever mix of duplicated, reordered and
//! dropped-then-retried snapshots arrives, each side ends with the last
//! write of the other side's owner. Runs the real apply path on a real
//! database (SQLite and PostgreSQL).

use fulfillment::domain::snapshot::{ContentSnapshot, FulfillmentSnapshot};
use fulfillment::domain::{Actor, Fulfillment, FulfillmentStatus, OrderId, Role};
use fulfillment::engine::apply::apply_batch;
use fulfillment::engine::{Created, Engine};
use fulfillment::storage::Db;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use serde_json::value::{RawValue, to_raw_value};

use crate::helpers::*;

/// A delivery schedule for versions 1..=n: arbitrary picks (duplicates,
/// any order, some versions never delivered), with the newest version
/// retried at some point, as the outbox guarantees.
fn schedule() -> impl Strategy<Value = (i64, Vec<i64>)> {
    (1i64..8).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec(1..=n, 0..16),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(n, mut picks, at)| {
                let pos = at.index(picks.len() + 1);
                picks.insert(pos, n);
                (n, picks)
            })
    })
}

fn content(id: OrderId, v: i64) -> Box<RawValue> {
    let input: fulfillment::domain::order::CreateOrderInput = serde_json::from_value({
        let mut full = order_body(&format!("Customer v{v}"));
        full["notes"] = json!(format!("v{v}"));
        full
    })
    .expect("input");
    let (ct, _) = input.parse().expect("valid");
    let created = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    to_raw_value(&ContentSnapshot::from_domain(
        id,
        &format!("SO-{}", &id.as_uuid().simple().to_string()[20..]),
        v,
        &ct,
        created,
    ))
    .expect("json")
}

fn fulfillment(id: OrderId, v: i64) -> Box<RawValue> {
    let mut f = Fulfillment::new();
    f.status = [
        FulfillmentStatus::Pending,
        FulfillmentStatus::Picking,
        FulfillmentStatus::Packed,
    ][(v % 3) as usize];
    f.cancel_rejected_reason = Some(format!("v{v}"));
    to_raw_value(&FulfillmentSnapshot::from_domain(id, v, &f)).expect("json")
}

fn run(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let Some((store, warehouse, _dbs)) = rt.block_on(async {
        let s = TestDb::new(backend).await?;
        let w = TestDb::new(backend).await?;
        let store = Engine::new(
            Db::open(&s.url, Role::Store, &Default::default())
                .await
                .expect("store db"),
            Role::Store,
        );
        // Orders go to `main` (which the fulfillment below comes from).
        store
            .set_main_warehouse("http://127.0.0.1:9")
            .await
            .expect("main warehouse");
        let warehouse = Engine::new(
            Db::open(&w.url, Role::Warehouse, &Default::default())
                .await
                .expect("warehouse db"),
            Role::Warehouse,
        );
        Some((store, warehouse, (s, w)))
    }) else {
        return;
    };
    let cases = if backend == Backend::Sqlite { 64 } else { 32 };
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let result = runner.run(&(schedule(), schedule()), |((n, picks), (m, wpicks))| {
        rt.block_on(async {
            // Store → warehouse: content snapshots.
            let id = OrderId::new();
            for (k, v) in picks.iter().enumerate() {
                let from = ["store".to_owned()];
                let r = apply_batch(
                    &warehouse,
                    &from,
                    &format!("w-{id}-{k}"),
                    &[content(id, *v)],
                )
                .await
                .expect("apply")
                .expect("fresh id");
                assert_ne!(r[0].outcome.as_str(), "rejected", "{:?}", r[0].reason);
            }
            let got = warehouse.get(id).await.expect("order at the warehouse");
            prop_assert_eq!(got.order.store_version, n);
            prop_assert_eq!(got.order.content.notes, Some(format!("v{n}")));
            prop_assert_eq!(
                got.order.content.customer.name.as_str(),
                format!("Customer v{n}")
            );

            // Warehouse → store: fulfillment snapshots of an order the store has.
            let input: fulfillment::domain::order::CreateOrderInput =
                serde_json::from_value(order_body("Fenced")).expect("input");
            let (ct, pricing) = input.parse().expect("valid");
            let Created::New(v) = store
                .create_order(&Actor::System("test".into()), ct, pricing, None, |_| {
                    String::new()
                })
                .await
                .expect("create")
            else {
                panic!("no idempotency key, so always new")
            };
            let sid = v.order.id;
            for (k, ver) in wpicks.iter().enumerate() {
                let from = ["main".to_owned()];
                apply_batch(
                    &store,
                    &from,
                    &format!("s-{sid}-{k}"),
                    &[fulfillment(sid, *ver)],
                )
                .await
                .expect("apply")
                .expect("fresh id");
            }
            let got = store.get(sid).await.expect("order at the store");
            prop_assert_eq!(got.order.warehouse_version, m);
            let f = got.order.fulfillment.expect("fulfillment known");
            prop_assert_eq!(f.cancel_rejected_reason, Some(format!("v{m}")));
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("version fencing failed: {e}");
    }
}

#[test]
fn fencing_converges_sqlite() {
    run(Backend::Sqlite);
}

#[test]
fn fencing_converges_postgres() {
    run(Backend::Postgres);
}
