//! `fulfillment`: keeps orders in sync, both ways, between a store and a
//! warehouse that each own their own database.
//!
//! Layers, each depending only on those above it:
//! - [`domain`]: pure types and rules (no I/O); [`plot`]: charts drawn
//!   as SVG text (no I/O, nothing of ours), for the admin sync page and
//!   the bench alike;
//! - [`storage`]: SQLite/PostgreSQL, migrations, SQL per aggregate;
//! - [`engine`]: the commands that change orders, one transaction each
//!   (the same for both roles);
//! - [`sync`]: signatures, the relay that drains the outbox, and the apply
//!   side that receives the peer's snapshots (both built on the engine);
//! - [`http`]: the REST API and operational endpoints;
//! - [`service`]: wiring one role into a running service ([`config`]: its
//!   settings and their defaults); [`cli`]: the binary's commands;
//!   [`bench`]: `fulfillment bench`, which measures a running pair;
//!   [`memory`]: giving memory back to the OS after a burst.

pub mod bench;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod plot;
pub mod service;
pub mod storage;
pub mod sync;
pub mod telemetry;
