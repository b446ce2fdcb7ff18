-- Store only: the warehouses the store routes orders to and syncs with.
-- Warehouses are rows, not configuration: adding one needs no restart.
-- `secret` is the one it signs with (NULL: the store's --sync-secret);
-- it is never shown. `countries` holds ISO codes separated by spaces and
-- `sku_prefixes` a JSON array of strings; empty means "every".
CREATE TABLE warehouses (
    name          TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    secret        TEXT,
    countries     TEXT NOT NULL,
    sku_prefixes  TEXT NOT NULL,
    priority      BIGINT NOT NULL,
    active        BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Which warehouse an order is routed to (NULL: not yet, its lines wait for
-- a warehouse that takes them). Orders from before there were several
-- warehouses went to the one the store had, now named `main`.
ALTER TABLE orders ADD COLUMN warehouse TEXT;
UPDATE orders SET warehouse = 'main';
-- Covering, like orders_digest: a reconciliation with one warehouse reads
-- the digests of its orders from the index alone.
CREATE INDEX orders_warehouse ON orders (warehouse, id, id_hash, store_version, warehouse_version);
