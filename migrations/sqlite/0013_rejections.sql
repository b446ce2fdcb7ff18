-- Rejected lines: what a warehouse refused of a part, as JSON
-- `[["WID-1", 2, "out of stock"], …]` (SKU, quantity, reason), oldest
-- first. Warehouse-owned: it travels in fulfillment snapshots, and the
-- store routes the quantities elsewhere.
ALTER TABLE orders ADD COLUMN rejections TEXT NOT NULL DEFAULT '[]';
