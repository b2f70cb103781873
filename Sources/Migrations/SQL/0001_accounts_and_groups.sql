-- command-api's tables: accounts, sessions, groups and memberships (DESIGN §4, §5).

CREATE TABLE users (
    user_id        uuid        PRIMARY KEY,
    username       text        NOT NULL CHECK (username ~ '^[a-z0-9_.-]{3,32}$'),
    password_hash  text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- Usernames are unique case-insensitively.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

-- Refresh tokens are stored only as a SHA-256 hash. Rotation links a family; presenting a rotated
-- token again revokes the whole family (reuse detection).
CREATE TABLE refresh_tokens (
    token_hash   bytea       PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    family_id    uuid        NOT NULL,
    issued_at    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    rotated_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- group_id is one NATS subject token (it is part of the group's subjects).
CREATE TABLE groups (
    group_id    text        PRIMARY KEY CHECK (group_id ~ '^[A-Za-z0-9_-]{1,128}$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_by  uuid        NOT NULL REFERENCES users (user_id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

CREATE TABLE group_members (
    group_id   text        NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    role       text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
-- "My groups" and membership checks by user.
CREATE INDEX group_members_user_idx ON group_members (user_id, group_id);

-- Membership changes are committed together with a row here; a relay publishes each row as a
-- command on the group's command subject (Nats-Msg-Id = command_id) and marks it published.
CREATE TABLE command_outbox (
    outbox_id     bigserial   PRIMARY KEY,
    command_id    text        NOT NULL UNIQUE,
    group_id      text        NOT NULL,
    subject       text        NOT NULL,
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text
);
CREATE INDEX command_outbox_unpublished_idx ON command_outbox (outbox_id) WHERE published_at IS NULL;

-- Idempotency-Key per user on POST /api/v1/command, kept at least 24 h.
CREATE TABLE idempotency_keys (
    user_id       uuid        NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash  bytea       NOT NULL,
    command_id    text        NOT NULL,
    todo_id       text,
    shard         integer     NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
