-- The scheduler (DESIGN §9) and the notifications it writes. Its role follows 0007: no login;
-- each environment makes a login user that is a member of it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'todo_scheduler') THEN
        CREATE ROLE todo_scheduler NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO todo_scheduler;

-- The due index: one row per (todo, user) reminder the scheduler has heard of on EVENTS.
-- `version` is the group version of the last event that changed the row, so a redelivered older
-- event never undoes a newer one. A reminder that ended (cleared, fired, or cancelled by the
-- todo's deletion, by done, by the member leaving) keeps its row with `fire_at` NULL for a while,
-- for that same guard. `claimed_until`: a replica took it to fire; no other takes it before then
-- (each claim of the same reminder waits longer: `fire_count`). `fire_attempt` goes up when the
-- engine refused a firing as not yet due (its clock behind the scheduler's), for a new command id.
CREATE TABLE IF NOT EXISTS scheduler_reminders (
    group_id      text        NOT NULL,
    todo_id       text        NOT NULL,
    user_id       text        NOT NULL,
    version       bigint      NOT NULL,
    fire_at       timestamptz,
    remind_at     text,
    timezone      text,
    actor_name    text        NOT NULL DEFAULT '',
    claimed_until timestamptz,
    fire_count    integer     NOT NULL DEFAULT 0,
    fire_attempt  integer     NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, todo_id, user_id)
);
CREATE INDEX IF NOT EXISTS scheduler_reminders_due ON scheduler_reminders (fire_at) WHERE fire_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS scheduler_reminders_ended ON scheduler_reminders (updated_at) WHERE fire_at IS NULL;

-- Since when events make notifications: the scheduler's first start (the history it reads then
-- is not news to anyone).
CREATE TABLE IF NOT EXISTS scheduler_state (
    name text        PRIMARY KEY,
    at   timestamptz NOT NULL
);

-- Who each todo was last assigned to, as far as the scheduler has read (an `assigned`
-- notification is for a change of assignee only).
CREATE TABLE IF NOT EXISTS scheduler_assignees (
    group_id text   NOT NULL,
    todo_id  text   NOT NULL,
    assignee text,
    version  bigint NOT NULL,
    PRIMARY KEY (group_id, todo_id)
);

-- A user's notifications: `reminder` (their reminder fired) and `assigned` (someone else made them
-- a todo's assignee). One per event and user, whichever scheduler replica wrote it.
CREATE TABLE IF NOT EXISTS notifications (
    notification_id bigserial   PRIMARY KEY,
    user_id         text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('reminder', 'assigned')),
    group_id        text        NOT NULL,
    todo_id         text        NOT NULL,
    title           text        NOT NULL,
    event_id        text        NOT NULL,
    late            boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    read_at         timestamptz,
    UNIQUE (event_id, user_id)
);
CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id, notification_id DESC);
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON scheduler_reminders, scheduler_assignees TO todo_scheduler;
GRANT SELECT, INSERT ON scheduler_state TO todo_scheduler;
GRANT SELECT, INSERT ON notifications TO todo_scheduler;
GRANT USAGE ON SEQUENCE notifications_notification_id_seq TO todo_scheduler;
-- An assignee is a username; the notification is for that user's id, while a member of the group.
GRANT SELECT (user_id, username) ON users TO todo_scheduler;
GRANT SELECT (group_id, user_id) ON group_members TO todo_scheduler;
-- The streamer shows a user their own reminders (the bell on a card) from the due index, lists
-- their notifications; command-api marks them read, and nothing else.
GRANT SELECT ON notifications, scheduler_reminders TO todo_streamer;
GRANT SELECT (notification_id, user_id, read_at), UPDATE (read_at) ON notifications TO todo_command_api;
