//! Integration tests: real services on random loopback ports, driven over
//! HTTP, on SQLite and on PostgreSQL (every test runs once per backend).
//! One binary with one module per feature keeps linking fast.

mod helpers;

mod api_errors;
mod auth;
mod batching;
mod db_outage;
mod dead_letters;
mod fencing;
mod hostile;
mod idempotency;
mod log_flood;
mod no_money;
mod order_flow;
mod outage;
mod pagination;
mod pg_cluster;
mod readiness;
mod reconcile;
mod scale_out;
mod storage_full;
