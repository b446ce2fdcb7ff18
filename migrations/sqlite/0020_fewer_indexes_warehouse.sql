-- Fewer index entries per order (issue 16); 0020_fewer_indexes_store.sql
-- is the store's, and says why.
--
-- The list's status filter is by rank now, which orders_status_rank_id
-- holds in id order.
DROP INDEX orders_status;
-- A warehouse never looks rows up by the store's order id (each part is an
-- order of its own here).
DROP INDEX orders_parts;
