-- SQLite's 0021 turns tables with composite or text primary keys into
-- WITHOUT ROWID tables (fewer b-trees per row). A PostgreSQL table has no
-- rowid and its primary key index is the only one: nothing to do.
SELECT 1;
