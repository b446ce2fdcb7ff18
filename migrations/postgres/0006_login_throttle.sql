-- Failed sign-ins are counted per username *and* client address, in one
-- row each, by one atomic upsert per attempt. Counting per username alone
-- let anyone who knew an admin's name lock them out; counting by reading
-- the failures and then inserting one let parallel attempts get past the
-- limit. The window starts at the first failure and lasts the lockout.
DROP TABLE admin_login_failures;
CREATE TABLE admin_login_throttle (
    username      TEXT NOT NULL,
    client        TEXT NOT NULL,
    window_start  BIGINT NOT NULL,
    failures      BIGINT NOT NULL,
    PRIMARY KEY (username, client)
);
CREATE INDEX admin_login_throttle_window ON admin_login_throttle (window_start);
