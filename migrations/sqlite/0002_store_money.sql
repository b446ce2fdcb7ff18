-- Store only: the money of an order. Kept out of the shared tables so the
-- warehouse's database has no such column at all.
CREATE TABLE order_prices (
    order_id       TEXT PRIMARY KEY REFERENCES orders (id),
    currency       TEXT NOT NULL,
    shipping_cost  BIGINT NOT NULL
);

CREATE TABLE order_line_prices (
    order_id    TEXT NOT NULL REFERENCES orders (id),
    line_no     BIGINT NOT NULL,
    unit_price  BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
