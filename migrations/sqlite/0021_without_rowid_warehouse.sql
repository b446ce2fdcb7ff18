-- Fewer b-trees per order (issue 16): the warehouse's tables of
-- 0021_without_rowid_store.sql (which says why) become WITHOUT ROWID; the
-- store's money and item tables do not exist here. order_lines keeps the
-- SKU index the warehouse searches by.

CREATE TABLE order_lines_021 (
    order_id  TEXT NOT NULL REFERENCES orders (id),
    line_no   BIGINT NOT NULL,
    sku       TEXT NOT NULL,
    name      TEXT NOT NULL,
    quantity  BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
) WITHOUT ROWID;
INSERT INTO order_lines_021 (order_id, line_no, sku, name, quantity)
    SELECT order_id, line_no, sku, name, quantity FROM order_lines;
DROP TABLE order_lines;
ALTER TABLE order_lines_021 RENAME TO order_lines;
CREATE INDEX order_lines_sku ON order_lines (sku);

CREATE TABLE shipments_021 (
    order_id         TEXT NOT NULL REFERENCES orders (id),
    shipment_no      BIGINT NOT NULL,
    carrier          TEXT NOT NULL,
    tracking_number  TEXT NOT NULL,
    shipped_at       BIGINT NOT NULL,
    lines            TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (order_id, shipment_no)
) WITHOUT ROWID;
INSERT INTO shipments_021 (order_id, shipment_no, carrier, tracking_number, shipped_at, lines)
    SELECT order_id, shipment_no, carrier, tracking_number, shipped_at, lines FROM shipments;
DROP TABLE shipments;
ALTER TABLE shipments_021 RENAME TO shipments;

-- The outbox's key is (order_id, peer) now, the same pair in the other
-- order: an order's rows are then found by its key's prefix, which
-- outbox_order (order_id) was there for, so that index goes, one entry
-- less per change queued. A peer's rows are found by outbox_due, which
-- starts with the peer; ON CONFLICT (peer, order_id) names the same key.
CREATE TABLE outbox_021 (
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
    PRIMARY KEY (order_id, peer)
) WITHOUT ROWID;
INSERT INTO outbox_021 (peer, order_id, version, state, attempts, enqueued_at,
                        next_attempt_at, lease_until, last_error, delivered_at)
    SELECT peer, order_id, version, state, attempts, enqueued_at,
           next_attempt_at, lease_until, last_error, delivered_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_021 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (peer, state, next_attempt_at);

CREATE TABLE seen_webhooks_021 (
    id       TEXT PRIMARY KEY,
    seen_at  BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO seen_webhooks_021 (id, seen_at) SELECT id, seen_at FROM seen_webhooks;
DROP TABLE seen_webhooks;
ALTER TABLE seen_webhooks_021 RENAME TO seen_webhooks;
