-- Sessions that ended before their access tokens expired (DESIGN §11): logout, refresh-token
-- reuse, password change, sign out everywhere. A session is a refresh-token family; its id is the
-- access tokens' `sid`. Every verifying process loads the rows at start and hears of new ones on
-- core NATS; a row is kept until the session's last access token has expired.
CREATE TABLE revoked_sessions (
    session_id  uuid        PRIMARY KEY,
    user_id     uuid        NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX revoked_sessions_revoked_idx ON revoked_sessions (revoked_at);
CREATE INDEX revoked_sessions_expires_idx ON revoked_sessions (expires_at);
