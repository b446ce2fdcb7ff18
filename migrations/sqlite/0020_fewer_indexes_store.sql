-- Fewer index entries per order (issue 16): every index on `orders` is one
-- more entry to write for each new order, and one more to move whenever a
-- column it holds changes. 0020_fewer_indexes_warehouse.sql is the
-- warehouse's.
--
-- orders_digest held the versions of every order for range digests over
-- all of them; the store only ever digests one warehouse's orders, which
-- orders_warehouse covers, so it was rewritten on every version bump for
-- nothing.
DROP INDEX orders_digest;
-- The store's lists filter by the rolled-up order_status, and now by its
-- rank (src/storage/orders.rs, `filters`), which orders_status_rank_id
-- holds in id order; nothing reads a part's own status by index.
DROP INDEX orders_order_status;
DROP INDEX orders_status;
-- The store searches the SKUs an order was ordered with (order_items,
-- indexed by order_items_sku), never its parts' lines by SKU: each line of
-- each new order was one more entry, at a random place in this index.
DROP INDEX order_lines_sku;
