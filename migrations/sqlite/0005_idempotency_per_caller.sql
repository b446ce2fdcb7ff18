-- Idempotency keys belong to the caller that used them (the API token, or
-- the admin user): two clients that happen to pick the same key never get
-- each other's orders. The primary key becomes (caller, key), so the table
-- is made anew. Keys remembered before this migration are kept with an
-- empty caller and still answer a retry, whoever sends it, until they
-- expire (24 h): a client retrying across the upgrade does not create a
-- second order.
CREATE TABLE idempotency_keys_by_caller (
    caller        TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    response      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (caller, key)
);
INSERT INTO idempotency_keys_by_caller (caller, key, request_hash, response, created_at)
    SELECT '', key, request_hash, response, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_by_caller RENAME TO idempotency_keys;
