-- Order numbers come from a sequence (store only). Taking numbers from the
-- `counters` row locked that row until commit, so concurrent create batches
-- (several write groups, several replicas) queued behind each other's
-- commit and fsync; `nextval` holds no lock. A number taken by a
-- transaction that rolls back is not given again (a gap), as before.
CREATE SEQUENCE order_numbers AS BIGINT MINVALUE 1;

-- Continue after the last number the counter gave. The lock keeps a
-- process still on the old code from taking one while it is copied.
LOCK TABLE counters IN EXCLUSIVE MODE;
SELECT setval('order_numbers', value) FROM counters WHERE name = 'order_number' AND value > 0;

-- The row is no longer the source: remove it rather than leave a stale value.
DELETE FROM counters WHERE name = 'order_number';
