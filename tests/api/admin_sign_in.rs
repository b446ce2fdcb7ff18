//! Admin sign-in lockout: failures count per username *and* client
//! address, so nobody can lock an admin out from elsewhere; and counting is
//! one atomic step, so parallel attempts cannot get past the limit.

use std::net::IpAddr;

use fulfillment::domain::Role;
use fulfillment::engine::credentials;
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    a_lockout_holds_only_for_the_address_that_earned_it,
    parallel_attempts_cannot_exceed_the_limit,
    a_username_no_user_can_have_is_refused_and_counts_nothing,
);

const PASSWORD: &str = "correct horse battery";

/// The CSRF token of the sign-in form: any value of 32+ characters, sent
/// as the cookie and the field alike (double submit).
const CSRF: &str = "0123456789abcdef0123456789abcdef";

/// A client whose requests come from `from` (any 127.x.y.z is loopback).
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().expect("address"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn sign_in(side: &Side, client: &reqwest::Client, password: &str) -> StatusCode {
    sign_in_as(side, client, "admin", password).await
}

async fn sign_in_as(
    side: &Side,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> StatusCode {
    client
        .post(format!("{}/admin/login", side.url))
        .header("cookie", format!("store_admin_login={CSRF}"))
        .form(&[
            ("csrf", CSRF),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .expect("sent")
        .status()
}

async fn add_admin(side: &Side) {
    let db = side.service.as_ref().expect("running").engine().db();
    credentials::create_user(db, "admin", PASSWORD)
        .await
        .expect("admin user");
}

async fn a_lockout_holds_only_for_the_address_that_earned_it(b: Backend) {
    let Some(store) = Side::start_alone(Role::Store, b, "http://127.0.0.1:9", |_| {}).await else {
        return;
    };
    add_admin(&store).await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..5 {
        assert_eq!(
            sign_in(&store, &attacker, "guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked for that address, even with the right password.
    assert_eq!(
        sign_in(&store, &attacker, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The admin, elsewhere, is not locked out.
    let admin = client_from("127.0.0.3");
    assert_eq!(
        sign_in(&store, &admin, PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        store.sql("SELECT COUNT(*) FROM admin_sessions").await,
        ["1"]
    );
    // A right password clears its own address's count only.
    assert_eq!(
        store
            .sql("SELECT client FROM admin_login_throttle WHERE username = 'admin'")
            .await,
        ["127.0.0.2"]
    );
}

async fn parallel_attempts_cannot_exceed_the_limit(b: Backend) {
    let Some(store) = Side::start_alone(Role::Store, b, "http://127.0.0.1:9", |_| {}).await else {
        return;
    };
    add_admin(&store).await;
    let attacker = client_from("127.0.0.4");
    let attempts = (0..20).map(|_| sign_in(&store, &attacker, "guess"));
    let answers = futures_util::future::join_all(attempts).await;
    let checked = answers
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        (checked, refused),
        (5, 15),
        "only five passwords may be tried: {answers:?}"
    );
    assert_eq!(
        sign_in(&store, &attacker, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// A username with control characters (a NUL, which PostgreSQL text cannot
/// hold) names no user: the form comes back 422, as for an empty one, and
/// no failure is counted for it.
async fn a_username_no_user_can_have_is_refused_and_counts_nothing(b: Backend) {
    let Some(store) = Side::start_alone(Role::Store, b, "http://127.0.0.1:9", |_| {}).await else {
        return;
    };
    add_admin(&store).await;
    let client = client_from("127.0.0.5");
    for username in ["ad\u{0}min", "\u{0}", "ad\u{7}min"] {
        assert_eq!(
            sign_in_as(&store, &client, username, PASSWORD).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{username:?}"
        );
    }
    assert_eq!(
        store.sql("SELECT COUNT(*) FROM admin_login_throttle").await,
        ["0"]
    );
    assert_eq!(
        sign_in(&store, &client, PASSWORD).await,
        StatusCode::SEE_OTHER,
        "the real admin still signs in"
    );
}
