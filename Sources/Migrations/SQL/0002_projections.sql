-- data-sink's tables: the event log, the current todos, and per-group offsets (DESIGN §4).

CREATE TABLE todo_events (
    event_id       text        PRIMARY KEY,
    command_id     text        NOT NULL,
    group_id       text        NOT NULL,
    group_version  bigint      NOT NULL CHECK (group_version > 0),
    stream_seq     bigint      NOT NULL,
    event_type     text        NOT NULL,
    todo_id        text,
    actor_user_id  text        NOT NULL,
    actor_name     text        NOT NULL,
    payload        jsonb       NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- One total order per group: a second event at the same version is a bug, not a duplicate.
    UNIQUE (group_id, group_version)
);
-- GET /api/v1/commands/{id} looks up a command's outcome.
CREATE INDEX todo_events_command_idx ON todo_events (command_id);

CREATE TABLE todos (
    group_id         text             NOT NULL,
    todo_id          text             NOT NULL,
    title            text             NOT NULL,
    notes            text             NOT NULL DEFAULT '',
    status           text             NOT NULL CHECK (status IN ('todo', 'in_progress', 'done')),
    position         double precision NOT NULL DEFAULT 0,
    due_date         date,
    assignee         text,
    labels           text[]           NOT NULL DEFAULT '{}',
    created_by       text             NOT NULL,
    created_by_name  text             NOT NULL,
    created_at       timestamptz      NOT NULL,
    updated_by       text             NOT NULL,
    updated_by_name  text             NOT NULL,
    updated_at       timestamptz      NOT NULL,
    -- The todo's own version; an event applies only when it is newer.
    version          bigint           NOT NULL,
    -- The group version of the last event applied to this row.
    group_version    bigint           NOT NULL,
    deleted_at       timestamptz,
    PRIMARY KEY (group_id, todo_id)
);
-- The board: live todos of a group by column, then position (stable with todo_id).
CREATE INDEX todos_board_idx ON todos (group_id, status, position, todo_id) WHERE deleted_at IS NULL;

CREATE TABLE group_projection_offsets (
    group_id       text        PRIMARY KEY,
    group_version  bigint      NOT NULL,
    stream_seq     bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
