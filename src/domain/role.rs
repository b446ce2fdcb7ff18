//! The two roles of the one engine. What differs between store and warehouse
//! is data held here (which fields a side owns, which actions it allows);
//! the machinery is shared.

use std::fmt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes orders (with prices); owns content and money.
    Store,
    /// Picks, packs and ships; owns fulfillment; never sees money.
    Warehouse,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Store => "store",
            Role::Warehouse => "warehouse",
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
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
