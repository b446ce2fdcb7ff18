//! Who made a change: recorded in the audit trail of every order.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person logged in to the admin UI.
    Admin(String),
    /// An API client, by the name given to its token.
    Token(String),
    /// The peer service, through sync.
    Sync(String),
    /// The service itself (seeding, automatic answers).
    System(String),
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Admin(_) => "admin",
            Actor::Token(_) => "token",
            Actor::Sync(_) => "sync",
            Actor::System(_) => "system",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Actor::Admin(n) | Actor::Token(n) | Actor::Sync(n) | Actor::System(n) => n,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.name())
    }
}
