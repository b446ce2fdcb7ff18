-- Nothing to do: SQLite compares text in byte order (BINARY) unless told
-- otherwise. The PostgreSQL migration of the same number makes order ids
-- compare that way there too.
SELECT 1;
