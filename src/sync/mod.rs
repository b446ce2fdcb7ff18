//! Sync between the services (docs/DESIGN.md §2): request signatures, the relay
//! that drains the outbox to the peer (with backoff and a circuit breaker),
//! and the apply side that receives the peer's snapshots.

pub mod apply;
pub mod backoff;
pub mod breaker;
pub mod peer;
pub mod reconcile;
pub mod relay;
pub mod signature;
