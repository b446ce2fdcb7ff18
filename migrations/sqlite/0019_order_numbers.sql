-- The order-number counter row exists at the store from the start. The
-- store keeps the counter in memory and writes it back with every create
-- batch, guarded by a comparison with this row (how: storage::orders,
-- `OrderNumbers`); an UPDATE of a missing row would check nothing.
-- Existing stores keep their row and so their numbers.
INSERT INTO counters (name, value) VALUES ('order_number', 0) ON CONFLICT (name) DO NOTHING;
