-- Several warehouses: a row of `orders` is one *part* of an order, one
-- warehouse's share of it, and the unit that syncs (docs/DESIGN.md §6.3).
-- `order_id` is the store order it belongs to and `part_no` its number
-- among the order's parts; the first part has the order's own id, so an
-- order that one warehouse ships whole is one row, as before.
ALTER TABLE orders ADD COLUMN order_id TEXT;
ALTER TABLE orders ADD COLUMN part_no BIGINT NOT NULL DEFAULT 1;
UPDATE orders SET order_id = id;
CREATE INDEX orders_parts ON orders (order_id, part_no);
