-- Store only. An order's *items* are its lines as ordered (their prices
-- stay in order_line_prices, by line_no); each part's lines in
-- order_lines are its share of them. Until now every order was one part
-- holding every line, so the items are the lines.
CREATE TABLE order_items (
    order_id  TEXT NOT NULL REFERENCES orders (id),
    line_no   BIGINT NOT NULL,
    sku       TEXT NOT NULL,
    name      TEXT NOT NULL,
    quantity  BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_items_sku ON order_items (sku);
INSERT INTO order_items (order_id, line_no, sku, name, quantity)
    SELECT order_id, line_no, sku, name, quantity FROM order_lines;
-- A part whose lines an edit moved to other warehouses: it is asked to
-- cancel and counts for nothing in the order.
ALTER TABLE orders ADD COLUMN withdrawn BIGINT NOT NULL DEFAULT 0;
-- On the first part's row only: the order's fulfillment status rolled up
-- over its parts (what lists filter on), kept by the store in the
-- transaction that changes any part.
ALTER TABLE orders ADD COLUMN order_status TEXT;
UPDATE orders SET order_status = status;
CREATE INDEX orders_order_status ON orders (order_status, id);
