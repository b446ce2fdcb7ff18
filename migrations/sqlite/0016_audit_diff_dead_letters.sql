-- The audit trail's old and new values: each entry's changed fields as
-- JSON, `[{"field", "from", "to"}, …]` (docs/API.md, the audit `diff`).
-- NULL for entries written before this migration, and for events
-- (`created`, `routing`) that change no single field: both read as [].
ALTER TABLE audit_log ADD COLUMN diff TEXT;

-- The attempt that made its outbox row a dead letter (1), so that the
-- order's timeline shows the moment delivery stopped, even after a replay
-- has made the row pending again.
ALTER TABLE sync_attempts ADD COLUMN dead_letter BIGINT NOT NULL DEFAULT 0;

-- Rows dead before this migration: their latest attempt is the one that
-- stopped them (nothing is attempted once a row is dead).
UPDATE sync_attempts SET dead_letter = 1 WHERE id IN (
    SELECT MAX(a.id) FROM sync_attempts a
    JOIN outbox o ON o.peer = a.peer AND o.order_id = a.order_id
    WHERE o.state = 'dead'
    GROUP BY a.peer, a.order_id
);
