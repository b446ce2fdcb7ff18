-- Fewer b-trees per order (issue 16): a table with a composite or text
-- primary key is two b-trees in SQLite, the rowid table and the index that
-- enforces the key, and every new row is an entry in both (a page each to
-- write per group commit, measured from the WAL: docs/DESIGN.md §3.2).
-- WITHOUT ROWID keeps each row once, in its primary key's b-tree. That
-- suits these tables: small rows, always found by their key or a prefix
-- of it. (Not `orders`: its rows are large, and a WITHOUT ROWID table
-- keeps whole rows in its interior pages.) A secondary index then ends in
-- the primary key instead of the rowid. No query changes: the columns,
-- keys and indexes are the same. At the store the unit prices move into
-- order_items too (below). 0021_without_rowid_warehouse.sql is the
-- warehouse's; PostgreSQL has no rowid, and its 0021 only moves the
-- prices.

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

-- An item holds its unit price, which order_line_prices held in a row of
-- its own with the same key: one row per line instead of two. (A line
-- without its price makes this fail, NOT NULL, rather than lose money.)
CREATE TABLE order_items_021 (
    order_id    TEXT NOT NULL REFERENCES orders (id),
    line_no     BIGINT NOT NULL,
    sku         TEXT NOT NULL,
    name        TEXT NOT NULL,
    quantity    BIGINT NOT NULL,
    unit_price  BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
) WITHOUT ROWID;
INSERT INTO order_items_021 (order_id, line_no, sku, name, quantity, unit_price)
    SELECT i.order_id, i.line_no, i.sku, i.name, i.quantity, p.unit_price
    FROM order_items i
    LEFT JOIN order_line_prices p ON p.order_id = i.order_id AND p.line_no = i.line_no;
DROP TABLE order_items;
DROP TABLE order_line_prices;
ALTER TABLE order_items_021 RENAME TO order_items;
CREATE INDEX order_items_sku ON order_items (sku);

CREATE TABLE order_prices_021 (
    order_id       TEXT PRIMARY KEY REFERENCES orders (id),
    currency       TEXT NOT NULL,
    shipping_cost  BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO order_prices_021 (order_id, currency, shipping_cost)
    SELECT order_id, currency, shipping_cost FROM order_prices;
DROP TABLE order_prices;
ALTER TABLE order_prices_021 RENAME TO order_prices;

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
