//! The domain: pure types and rules, no I/O. Everything else in the crate
//! depends on this module; it depends on nothing of ours.

pub mod actor;
pub mod delivery;
pub mod diff;
pub mod digest;
pub mod fulfillment;
pub mod holds;
pub mod input;
pub mod order;
pub mod parts;
pub mod role;
pub mod schema;
pub mod snapshot;
pub mod values;
pub mod warehouse;

pub use actor::Actor;
pub use fulfillment::{Action, Fulfillment, FulfillmentStatus, TransitionError};
pub use order::{Order, OrderContent, OrderId, Pricing};
pub use role::Role;
pub use values::FieldError;
