-- An order's sync state is read from its outbox row whatever peer it goes
-- to (a store has one peer per warehouse), so the row is found by the
-- order's id alone.
CREATE INDEX outbox_order ON outbox (order_id);
