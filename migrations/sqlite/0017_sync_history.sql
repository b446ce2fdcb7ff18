-- Sync history: per peer (a warehouse's name at the store, `store` at a
-- warehouse) and per minute, what the relay delivered, how many attempts
-- failed, the most changes it saw waiting (sampled), and how long the
-- delivered changes had waited since they were queued (sum, count and
-- longest, in microseconds). The relay adds to the current minute's row
-- at most once per round; the admin sync page draws its charts from it.
-- Kept 2 days (the pruner deletes older minutes).
CREATE TABLE sync_history (
    peer         TEXT NOT NULL,
    minute_at    BIGINT NOT NULL,             -- the minute's start (UTC)
    delivered    BIGINT NOT NULL DEFAULT 0,
    failed       BIGINT NOT NULL DEFAULT 0,
    backlog      BIGINT NOT NULL DEFAULT 0,
    delay_count  BIGINT NOT NULL DEFAULT 0,
    delay_sum    BIGINT NOT NULL DEFAULT 0,
    delay_max    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (peer, minute_at)
);
CREATE INDEX sync_history_minute ON sync_history (minute_at);
