-- Text limits hold in characters (code points, as length() counts) and in UTF-8 bytes
-- (DESIGN §5): the table checks both, as command-api does.
ALTER TABLE groups DROP CONSTRAINT groups_name_check;
ALTER TABLE groups ADD CONSTRAINT groups_name_check CHECK (length(name) BETWEEN 1 AND 100 AND octet_length(name) <= 400);

-- Events the sink could not write even after its retries (DESIGN §3). The group's projection
-- does not wait for them: a `command.rejected` row (code `projection_failed`) takes the event's
-- place in todo_events, so the offset moves on and the command reports an outcome. The event as
-- received is kept here for operators; `todo rebuild-projection` tries each again and forgets the
-- ones it could write.
CREATE TABLE failed_projections (
    event_id       text        PRIMARY KEY,
    group_id       text        NOT NULL,
    group_version  bigint      NOT NULL,
    stream_seq     bigint      NOT NULL,
    event_type     text        NOT NULL,
    error          text        NOT NULL,
    -- The message bytes as received (they may hold what text columns refuse, such as NUL).
    payload        bytea       NOT NULL,
    failed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX failed_projections_group_idx ON failed_projections (group_id, group_version);
