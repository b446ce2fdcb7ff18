-- Each item holds its unit price, which order_line_prices held in a row of
-- its own with the same key (order_id, line_no): one row per line instead
-- of two for each new order. (SQLite's 0021 also turns tables with
-- composite or text keys into WITHOUT ROWID tables; a PostgreSQL table
-- has no rowid.) A line without its price makes this fail, NOT NULL,
-- rather than lose money.
ALTER TABLE order_items ADD COLUMN unit_price BIGINT;
UPDATE order_items i SET unit_price = p.unit_price
    FROM order_line_prices p
    WHERE p.order_id = i.order_id AND p.line_no = i.line_no;
ALTER TABLE order_items ALTER COLUMN unit_price SET NOT NULL;
DROP TABLE order_line_prices;
