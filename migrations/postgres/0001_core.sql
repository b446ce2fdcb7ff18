-- Tables both roles share. Times are BIGINT microseconds since the Unix
-- epoch (UTC) on both backends, so the same SQL compares and orders them.
-- Flags are BIGINT 0/1 for the same reason.

CREATE TABLE IF NOT EXISTS service_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE orders (
    id                          TEXT PRIMARY KEY,
    number                      TEXT NOT NULL UNIQUE,
    store_version               BIGINT NOT NULL,
    warehouse_version           BIGINT NOT NULL,
    -- store-owned content
    customer_name               TEXT NOT NULL,
    customer_email              TEXT NOT NULL,
    customer_company            TEXT,
    ship_name                   TEXT NOT NULL,
    ship_line1                  TEXT NOT NULL,
    ship_line2                  TEXT,
    ship_city                   TEXT NOT NULL,
    ship_region                 TEXT,
    ship_postal_code            TEXT NOT NULL,
    ship_country                TEXT NOT NULL,
    notes                       TEXT,
    deliver_by                  BIGINT,
    cancel_requested            BIGINT NOT NULL DEFAULT 0,
    cancel_reason               TEXT,
    -- warehouse-owned fulfillment (NULL status at the store until reported)
    status                      TEXT,
    hold_reason                 TEXT,
    held_from                   TEXT,
    cancel_rejected_reason      TEXT,
    content_changed_after_pick  BIGINT NOT NULL DEFAULT 0,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    -- A fixed 31-bit hash of the id. Reconciliation combines it with the
    -- live version columns in SQL, so a version changed by any means (even
    -- by hand) changes the digest of its range.
    id_hash                     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX orders_status ON orders (status, id);
CREATE INDEX orders_updated ON orders (updated_at);
-- Covering index: a range digest reads no table rows.
CREATE INDEX orders_digest ON orders (id, id_hash, store_version, warehouse_version);

CREATE TABLE order_lines (
    order_id  TEXT NOT NULL REFERENCES orders (id),
    line_no   BIGINT NOT NULL,
    sku       TEXT NOT NULL,
    name      TEXT NOT NULL,
    quantity  BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_sku ON order_lines (sku);

-- One row per parcel, so split shipments need no reshaping (DESIGN.md §6).
CREATE TABLE shipments (
    order_id         TEXT NOT NULL REFERENCES orders (id),
    shipment_no      BIGINT NOT NULL,
    carrier          TEXT NOT NULL,
    tracking_number  TEXT NOT NULL,
    shipped_at       BIGINT NOT NULL,
    PRIMARY KEY (order_id, shipment_no)
);

-- At most one row per (peer, order): a newer version replaces an undelivered
-- older one. The row also is the order's sync state towards that peer.
-- The snapshot itself is read from the order when sent, so it is always the
-- newest and the outbox stays small.
CREATE TABLE outbox (
    peer             TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    version          BIGINT NOT NULL,
    state            TEXT NOT NULL,           -- pending | delivered | dead
    attempts         BIGINT NOT NULL DEFAULT 0,
    enqueued_at      BIGINT NOT NULL,         -- first enqueue since last delivery
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    delivered_at     BIGINT,
    PRIMARY KEY (peer, order_id)
);
CREATE INDEX outbox_due ON outbox (peer, state, next_attempt_at);

CREATE TABLE sync_attempts (
    id             BIGSERIAL PRIMARY KEY,
    peer           TEXT NOT NULL,
    order_id       TEXT NOT NULL,
    at             BIGINT NOT NULL,
    outcome        TEXT NOT NULL,             -- applied | stale | rejected | error
    detail         TEXT,
    next_retry_at  BIGINT
);
CREATE INDEX sync_attempts_order ON sync_attempts (order_id, id);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    order_id    TEXT NOT NULL,
    at          BIGINT NOT NULL,
    actor_kind  TEXT NOT NULL,                -- admin | token | sync | system
    actor_name  TEXT NOT NULL,
    changes     TEXT NOT NULL                 -- comma-separated field names
);
CREATE INDEX audit_log_order ON audit_log (order_id, id);

CREATE TABLE idempotency_keys (
    key           TEXT PRIMARY KEY,
    request_hash  TEXT NOT NULL,
    response      TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- webhook-ids of applied sync requests, kept for the timestamp tolerance
-- window so a captured request cannot be replayed.
CREATE TABLE seen_webhooks (
    id       TEXT PRIMARY KEY,
    seen_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);

-- Only a SHA-256 of each token is stored; tokens are 256-bit random, so a
-- fast hash is enough (no dictionary to attack).
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- One row per reconciliation pass, for operators and the admin sync page.
CREATE TABLE reconcile_runs (
    id           BIGSERIAL PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    compared     BIGINT NOT NULL,
    differences  BIGINT NOT NULL,
    repaired     BIGINT NOT NULL,
    report       TEXT NOT NULL,
    error        TEXT
);
