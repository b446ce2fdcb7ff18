-- Admin UI sessions and failed sign-ins, in the database so that several
-- replicas behind a load balancer share them.

-- Only a SHA-256 (hex) of each session id is stored: a copy of this table
-- does not let anyone sign in. The CSRF token is per session; it guards
-- forms, not the session, so it is stored as is.
CREATE TABLE admin_sessions (
    id_hash     TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

-- One row per failed sign-in (also for unknown usernames), to lock a
-- username out after repeated failures.
CREATE TABLE admin_login_failures (
    id        BIGSERIAL PRIMARY KEY,
    username  TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX admin_login_failures_user ON admin_login_failures (username, at);
