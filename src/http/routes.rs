//! Which methods each side serves on the routes where the sides differ,
//! derived from the role rules ([`crate::domain::role`]): a route's
//! methods are listed with the command each runs, so the `Allow` header and
//! the refusal of the other side's methods come from one place.

use crate::domain::Role;
use crate::domain::role::Command;

use super::error::{ApiError, ApiResult};

/// A route's methods, each with the command it runs (`None`: both sides).
pub struct Route(pub &'static [(&'static str, Option<Command>)]);

/// `/api/v1/orders`
pub const ORDERS: Route = Route(&[("GET", None), ("POST", Some(Command::CreateOrder))]);
/// `/api/v1/orders/{id}`
pub const ORDER: Route = Route(&[("GET", None), ("PATCH", Some(Command::EditOrder))]);
/// `/api/v1/orders/{id}/cancel`
pub const CANCEL: Route = Route(&[("POST", Some(Command::RequestCancel))]);
/// `/api/v1/orders/{id}/fulfillment`
pub const FULFILLMENT: Route = Route(&[("POST", Some(Command::ChangeFulfillment))]);
/// `/api/v1/sync/reconcile`
pub const RECONCILE: Route = Route(&[("GET", None), ("POST", Some(Command::Reconcile))]);

impl Route {
    /// The methods `role` serves here, as an `Allow` header value (empty
    /// when it serves none).
    pub fn allow(&self, role: Role) -> String {
        self.0
            .iter()
            .filter(|(_, c)| c.is_none_or(|c| role.may(c)))
            .map(|(m, _)| *m)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `Ok` when `role` runs `command`; otherwise 405 saying why, with the
    /// methods this side does serve here.
    pub fn check(&self, role: Role, command: Command) -> ApiResult<()> {
        role.check(command).map_err(|e| ApiError::MethodNotAllowed {
            detail: e.to_string(),
            allow: Some(self.allow(role)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_follows_the_role_rules() {
        assert_eq!(ORDERS.allow(Role::Store), "GET, POST");
        assert_eq!(ORDERS.allow(Role::Warehouse), "GET");
        assert_eq!(ORDER.allow(Role::Store), "GET, PATCH");
        assert_eq!(CANCEL.allow(Role::Warehouse), "");
        assert_eq!(FULFILLMENT.allow(Role::Warehouse), "POST");
        assert_eq!(RECONCILE.allow(Role::Warehouse), "GET");
        assert!(RECONCILE.check(Role::Store, Command::Reconcile).is_ok());
        assert!(
            RECONCILE
                .check(Role::Warehouse, Command::Reconcile)
                .is_err()
        );
    }
}
