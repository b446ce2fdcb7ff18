//! Which methods each side serves on the routes where the sides differ,
//! derived from the role rules ([`crate::domain::role`]): a route's
//! methods are listed with the command each runs, so the `Allow` header,
//! the refusal of the other side's methods and which side's OpenAPI
//! document lists an operation come from one place.
//!
//! [`Api`] is the only way a route gets into a side's API router: each
//! handler is registered together with its documentation
//! (`utoipa_axum::routes!`), either as served by this side ([`Api::serve`])
//! or as running a command ([`Api::runs`]): served by the side that runs
//! it, while the other side routes the same handler, which answers 405, and
//! does not document it.

use utoipa::openapi::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::domain::Role;
use crate::domain::role::Command;

use super::AppState;
use super::error::{ApiError, ApiResult};

/// A route's methods, each with the command it runs (`None`: both sides).
pub struct Route(pub &'static [(&'static str, Option<Command>)]);

/// `/api/v1/orders`
pub const ORDERS: Route = Route(&[("GET", None), ("POST", Some(Command::CreateOrder))]);
/// `/api/v1/orders/{id}`
pub const ORDER: Route = Route(&[("GET", None), ("PATCH", Some(Command::EditOrder))]);
/// `/api/v1/orders/{id}/cancel`
pub const CANCEL: Route = Route(&[("POST", Some(Command::RequestCancel))]);
/// `/api/v1/orders/{id}/route`
pub const ROUTE: Route = Route(&[("POST", Some(Command::RouteOrder))]);
/// `/api/v1/orders/{id}/shipments`
pub const SHIPMENTS: Route = Route(&[("POST", Some(Command::ChangeFulfillment))]);
/// `/api/v1/orders/{id}/reject`
pub const REJECT: Route = Route(&[("POST", Some(Command::ChangeFulfillment))]);
/// `/api/v1/orders/{id}/fulfillment`
pub const FULFILLMENT: Route = Route(&[("POST", Some(Command::ChangeFulfillment))]);
/// `/api/v1/sync/reconcile`
pub const RECONCILE: Route = Route(&[("GET", None), ("POST", Some(Command::Reconcile))]);
/// `/api/v1/warehouses`
pub const WAREHOUSES: Route = Route(&[
    ("GET", Some(Command::ManageWarehouses)),
    ("POST", Some(Command::ManageWarehouses)),
]);
/// `/api/v1/warehouses/{name}` (`DELETE` is never served: see
/// [`Api::never`]).
pub const WAREHOUSE: Route = Route(&[
    ("GET", Some(Command::ManageWarehouses)),
    ("PATCH", Some(Command::ManageWarehouses)),
]);

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

/// One side's API: its router and its OpenAPI document, built together.
pub struct Api {
    role: Role,
    router: OpenApiRouter<AppState>,
    refused: Vec<(&'static str, String)>,
}

/// The operations of a path item, by method (upper case).
pub fn operations(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("OPTIONS", &item.options),
        ("HEAD", &item.head),
        ("PATCH", &item.patch),
        ("TRACE", &item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

impl Api {
    /// An empty API for `role`, its document started with
    /// [`super::openapi::base`].
    pub fn new(role: Role) -> Self {
        Self {
            role,
            router: OpenApiRouter::with_openapi(super::openapi::base(role)),
            refused: Vec::new(),
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Operations this side serves: routed and documented.
    pub fn serve(mut self, operations: UtoipaMethodRouter<AppState>) -> Self {
        self.router = self.router.routes(operations);
        self
    }

    /// An operation that runs `command`, listed in `route` (the methods
    /// and commands of its path, for `Allow`): routed and documented by
    /// the side that runs it. The other side routes the same handler,
    /// which refuses it (405, after authentication and the path id) before
    /// anything else, and does not document it.
    ///
    /// Panics when `route` does not list the operation's method with
    /// `command`: the `Allow` header would then disagree with the routes.
    pub fn runs(
        self,
        route: &Route,
        command: Command,
        operations: UtoipaMethodRouter<AppState>,
    ) -> Self {
        self.register(route, command, operations, true)
    }

    /// An operation that no side ever performs, on a path of `command`'s
    /// side: it always answers 405 saying what to do instead (a warehouse
    /// is deactivated, never deleted). Documented, like the path's other
    /// operations, by the side that runs `command`; the other side routes
    /// the same handler, which refuses it as any command of this side, and
    /// does not document it.
    ///
    /// Panics when `route` lists the operation's method: `Allow` names
    /// only the methods that can succeed.
    pub fn never(
        self,
        route: &Route,
        command: Command,
        operations: UtoipaMethodRouter<AppState>,
    ) -> Self {
        self.register(route, command, operations, false)
    }

    fn register(
        mut self,
        route: &Route,
        command: Command,
        operations: UtoipaMethodRouter<AppState>,
        served: bool,
    ) -> Self {
        let (_, paths, method_router) = &operations;
        for (path, item) in &paths.paths {
            for (method, _) in self::operations(item) {
                let listed = route.0.iter().any(|(m, _)| *m == method);
                if served {
                    assert!(
                        route.0.contains(&(method, Some(command))),
                        "{method} {path}: the route table does not say it runs {command:?}"
                    );
                } else {
                    assert!(
                        !listed,
                        "{method} {path}: never served, so the route table (Allow) must not list it"
                    );
                }
                if !self.role.may(command) {
                    self.refused.push((method, path.clone()));
                }
            }
        }
        if self.role.may(command) {
            return self.serve(operations);
        }
        for path in paths.paths.keys() {
            self.router = self.router.route(path, method_router.clone());
        }
        self
    }

    /// The operations this side routes but leaves out of its document
    /// (the other side's commands), as `(method, path)`.
    pub fn refused(&self) -> &[(&'static str, String)] {
        &self.refused
    }

    /// This side's OpenAPI document.
    pub fn openapi(self) -> OpenApi {
        self.router.into_openapi()
    }

    /// The router (without state) and the document.
    pub fn split(self) -> (axum::Router<AppState>, OpenApi) {
        self.router.split_for_parts()
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
        assert_eq!(WAREHOUSES.allow(Role::Store), "GET, POST");
        assert_eq!(WAREHOUSE.allow(Role::Store), "GET, PATCH");
        assert_eq!(WAREHOUSE.allow(Role::Warehouse), "");
    }
}
