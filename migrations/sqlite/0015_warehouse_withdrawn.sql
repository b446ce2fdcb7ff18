-- Warehouse only: the column the store has since migration 11, so one
-- query loads an order on either side. A warehouse never withdraws a
-- part (the store does, and says so with a cancel request): it stays 0.
ALTER TABLE orders ADD COLUMN withdrawn BIGINT NOT NULL DEFAULT 0;
