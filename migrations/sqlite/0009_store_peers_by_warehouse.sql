-- Store only: the store's outbox rows name the warehouse they go to. Rows
-- from before there were several warehouses went to the one the store had,
-- now named `main`; so did their attempts.
UPDATE outbox SET peer = 'main' WHERE peer = 'warehouse';
UPDATE sync_attempts SET peer = 'main' WHERE peer = 'warehouse';
