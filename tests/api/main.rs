//! Integration tests: real services on random loopback ports, driven over
//! HTTP, on SQLite and on PostgreSQL (every test runs once per backend).
//! One binary with one module per feature keeps linking fast.

#[path = "../common/mod.rs"]
mod common;
mod helpers;

mod admin_lists;
mod admin_paths;
mod admin_sign_in;
mod api_errors;
mod audit;
mod auth;
mod background;
mod batching;
mod breaker;
mod db_outage;
mod dead_letters;
mod fencing;
mod hostile;
mod idempotency;
mod kit;
mod log_flood;
mod no_money;
mod notify_after_commit;
mod openapi;
mod order_flow;
mod order_numbers;
mod outage;
mod pagination;
mod parts;
mod pg_cluster;
mod readiness;
mod reconcile;
mod relay_linger;
mod retry_horizon;
mod rotation;
mod routing;
mod scale_out;
mod settle_chunks;
mod signed_routes;
mod splitting;
mod storage_full;
mod sync_history;
mod unstorable;
mod warehouses;
mod without_rowid;
mod write_linger;
