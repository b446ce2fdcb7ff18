//! Sync between the services (docs/DESIGN.md §2), the network side of it:
//! request signatures, the signed peer client, the relay that drains the
//! outbox to the peer (with backoff and a circuit breaker, writing down
//! its per-minute [`history`]), and the
//! reconciler's walk over the id space. What they read and write goes
//! through the engine (applying the peer's snapshots is
//! [`crate::engine::apply`]); nothing here touches storage.

pub mod backoff;
pub mod breaker;
pub mod history;
pub mod peer;
pub mod peers;
pub mod reconcile;
pub mod relay;
pub mod relays;
pub mod signature;
