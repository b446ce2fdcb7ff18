-- Order ids compare in byte order whatever the database's default
-- collation. Reconciliation walks id ranges such as ['', '~') and
-- ['0193a2b4-', '0193a2b4.'), and lists page by `id < cursor`; under a
-- language collation (ICU en-US, glibc en_US.UTF-8: what most clusters are
-- created with) '~', ':' and '.' sort before digits, so those ranges were
-- empty and a pass compared nothing. "C" is byte order, the order SQLite
-- uses and the order the ranges are built in. The indexes on the column
-- are rebuilt with it.
ALTER TABLE orders ALTER COLUMN id TYPE TEXT COLLATE "C";
