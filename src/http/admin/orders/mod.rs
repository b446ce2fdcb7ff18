//! Order pages: the list, one order (with its fulfillment, sync state,
//! delivery timeline and audit trail), the store's create/edit/cancel forms
//! and the warehouse's fulfillment buttons.
//!
//! Role differences are data: the store's views carry money, the
//! warehouse's never do (its [`OrderView`] has no pricing to read); which
//! fulfillment buttons exist is asked of the state machine itself.

mod actions;
mod detail;
mod edit;
mod list;
mod timeline;

pub use actions::{cancel, fulfillment, place_hold, reject, release_hold, route, ship_parcel};
pub use detail::show;
pub use edit::{create, edit, edit_form, new_form};
pub use list::{ListRow, list, list_row};
// What the pages share with each other (each file takes `super::*`).
use detail::*;

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;

use super::flash::{self, Flash, Notice};
use super::form::{FIELDS, LineValues, OrderValues, merge_errors};
use super::format::{self, Badge};
use super::session::{AdminUser, Fields};
use super::{AdminError, AdminResult, Chrome, render};
use crate::domain::delivery::SyncState;
use crate::domain::fulfillment::ShippedLine;
use crate::domain::holds::{HoldType, TypedHold, parse_hold};
use crate::domain::order::Line;
use crate::domain::role::Command;
use crate::domain::{Action, Fulfillment, FulfillmentStatus, OrderId, Role};
use crate::engine::{Created, EngineError, OrderView, PartView};
use crate::http::AppState;
use crate::http::orders::ListParams;

/// Orders per page of the list.
pub(super) const PAGE_SIZE: u32 = 25;
/// Delivery attempts read for an order page (per part at the store):
/// identical failures in a row are folded into one row, so a long outage
/// takes a line, not the whole page.
pub(super) const TIMELINE_LIMIT: i64 = 200;

pub(super) fn order_id(raw: &str) -> AdminResult<OrderId> {
    OrderId::parse(raw).ok_or(AdminError::NotFound)
}

/// The pages of a command the other side runs do not exist here (404),
/// like any other unknown page: the warehouse has no order form.
pub(super) fn only_if(state: &AppState, command: Command) -> AdminResult<()> {
    state
        .engine
        .role()
        .check(command)
        .map_err(|_| AdminError::NotFound)
}
