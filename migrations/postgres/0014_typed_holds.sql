-- Typed holds: several at once on a part, each placed and released by one
-- side. The store's travel with the content (`store_holds`), the
-- warehouse's with the fulfillment (`warehouse_holds`); each is JSON, the
-- shape the peers send: `[{"id", "type", "reason", "placed_at",
-- "released_at"}, …]`, released ones included.
ALTER TABLE orders ADD COLUMN store_holds TEXT NOT NULL DEFAULT '[]';
ALTER TABLE orders ADD COLUMN warehouse_holds TEXT NOT NULL DEFAULT '[]';
