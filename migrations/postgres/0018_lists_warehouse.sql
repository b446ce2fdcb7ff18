-- The admin UI's lists and forms (issue 15). Migration 18 has one file
-- per role: they differ only in the status the order list sorts by, at the
-- warehouse `status` (each part's own status); 0018_lists_store.sql is the store's.

-- A failed form's values and errors, kept for one read by the page its
-- redirect names (post/redirect/get; src/http/admin/flash.rs).
ALTER TABLE admin_sessions ADD COLUMN flash TEXT;

-- The order list's sort orders, each ending in the id so that pages seek
-- (keyset) both ways and each order is on exactly one page. The
-- expressions are written exactly as src/storage/orders.rs (`Sort`)
-- writes them: an index serves a sort only when they match.
DROP INDEX orders_updated;
CREATE INDEX orders_updated_id ON orders (updated_at, id);
CREATE INDEX orders_deliver_by_id ON orders ((COALESCE(deliver_by, 9223372036854775807)), id);
CREATE INDEX orders_status_rank_id ON orders ((CASE status WHEN 'pending' THEN 1 WHEN 'picking' THEN 2 WHEN 'packed' THEN 3 WHEN 'on_hold' THEN 4 WHEN 'partially_shipped' THEN 5 WHEN 'shipped' THEN 6 WHEN 'rejected' THEN 7 WHEN 'cancelled' THEN 8 ELSE 0 END), id);
