//! The two roles of the one engine, and the rules that tell them apart, as
//! data: which side owns which fields and version counter, and which
//! commands each side may run. Every check elsewhere (the engine's
//! refusals, the HTTP `Allow` header, the admin's buttons and pages, the
//! OpenAPI document of each side, the CLI) asks here; nothing else decides.

use std::fmt;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes orders (with prices); owns content and money.
    Store,
    /// Picks, packs and ships; owns fulfillment; never sees money.
    Warehouse,
}

/// The version counter each side bumps when it changes the fields it owns;
/// a snapshot carries its owner's counter, and the receiver applies only
/// newer ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Bumped by the store with the content (customer, address, lines,
    /// notes, cancel request).
    Store,
    /// Bumped by the warehouse with the fulfillment (status, holds,
    /// parcels, the answer to a cancel request).
    Warehouse,
}

/// Both version counters of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versions {
    pub store: i64,
    pub warehouse: i64,
}

impl Versions {
    pub fn of(self, counter: Counter) -> i64 {
        match counter {
            Counter::Store => self.store,
            Counter::Warehouse => self.warehouse,
        }
    }
}

/// What a user or client may ask a service to do that only one side does.
/// (Reading orders, sync status, replaying dead letters and answering the
/// peer are for both sides.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    CreateOrder,
    EditOrder,
    RequestCancel,
    ChangeFulfillment,
    /// Compare with the peer and repair: run from the store, which holds
    /// every order whole (money included); the warehouse only answers.
    Reconcile,
    /// Add, change and list the warehouses orders are routed to.
    ManageWarehouses,
    /// Route an order's unrouted lines again (after warehouses changed).
    RouteOrder,
    /// Place or release a store hold (payment, fraud…) on every part of an
    /// order. (The warehouse holds its parts as a fulfillment change.)
    HoldOrder,
}

impl Command {
    pub const ALL: [Command; 8] = [
        Command::CreateOrder,
        Command::EditOrder,
        Command::RequestCancel,
        Command::ChangeFulfillment,
        Command::Reconcile,
        Command::ManageWarehouses,
        Command::RouteOrder,
        Command::HoldOrder,
    ];

    /// The side that runs it.
    pub fn side(self) -> Role {
        match self {
            Command::CreateOrder
            | Command::EditOrder
            | Command::RequestCancel
            | Command::Reconcile
            | Command::ManageWarehouses
            | Command::RouteOrder
            | Command::HoldOrder => Role::Store,
            Command::ChangeFulfillment => Role::Warehouse,
        }
    }

    /// Why the other side refuses it, for error answers.
    pub fn refusal(self) -> &'static str {
        match self {
            Command::CreateOrder => "orders are created at the store, never at the warehouse",
            Command::EditOrder => {
                "order content is edited at the store; the warehouse changes fulfillment"
            }
            Command::RequestCancel => "cancellation is requested at the store",
            Command::ChangeFulfillment => "fulfillment is changed at the warehouse",
            Command::Reconcile => {
                "reconciliation runs from the store (it holds every order whole); the warehouse only answers it"
            }
            Command::ManageWarehouses => {
                "warehouses are set up at the store, which routes orders to them"
            }
            Command::RouteOrder => "orders are routed to warehouses by the store",
            Command::HoldOrder => "store holds are placed and released at the store",
        }
    }
}

/// A command asked of the side that does not run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.refusal())]
pub struct WrongSide(pub Command);

impl Role {
    pub const ALL: [Role; 2] = [Role::Store, Role::Warehouse];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Store => "store",
            Role::Warehouse => "warehouse",
        }
    }

    /// The name people read ("Store", "Warehouse").
    pub fn title(self) -> &'static str {
        match self {
            Role::Store => "Store",
            Role::Warehouse => "Warehouse",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "store" => Some(Role::Store),
            "warehouse" => Some(Role::Warehouse),
            _ => None,
        }
    }

    /// The other side: where this role's outbox delivers to.
    pub fn peer(self) -> Role {
        match self {
            Role::Store => Role::Warehouse,
            Role::Warehouse => Role::Store,
        }
    }

    /// The counter this side owns (and bumps, and sends).
    pub fn counter(self) -> Counter {
        match self {
            Role::Store => Counter::Store,
            Role::Warehouse => Counter::Warehouse,
        }
    }

    /// Whether this side holds money (prices, totals): the store only.
    pub fn holds_money(self) -> bool {
        self == Role::Store
    }

    pub fn may(self, command: Command) -> bool {
        command.side() == self
    }

    /// `Ok` when this side runs `command`, else why not.
    pub fn check(self, command: Command) -> Result<(), WrongSide> {
        if self.may(command) {
            Ok(())
        } else {
            Err(WrongSide(command))
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_belongs_to_exactly_one_side() {
        for c in Command::ALL {
            let sides: Vec<Role> = Role::ALL.into_iter().filter(|r| r.may(c)).collect();
            assert_eq!(sides, [c.side()], "{c:?}");
            assert_eq!(c.side().peer().check(c), Err(WrongSide(c)));
        }
        assert!(Role::Store.may(Command::Reconcile));
        assert!(!Role::Warehouse.may(Command::CreateOrder));
        assert!(Role::Warehouse.may(Command::ChangeFulfillment));
    }

    #[test]
    fn each_side_owns_its_counter_and_only_the_store_holds_money() {
        let v = Versions {
            store: 3,
            warehouse: 7,
        };
        assert_eq!(v.of(Role::Store.counter()), 3);
        assert_eq!(v.of(Role::Warehouse.counter()), 7);
        assert_eq!(v.of(Role::Store.peer().counter()), 7);
        assert!(Role::Store.holds_money() && !Role::Warehouse.holds_money());
    }
}
