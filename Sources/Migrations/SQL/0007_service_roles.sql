-- A role per service with only the grants it needs (DESIGN §11). These roles cannot log in: each
-- environment makes a login user that is a member of one (scripts/infra.sh locally, CloudNativePG's
-- managed roles in Kubernetes). The owner of the tables (who runs these migrations) stays the
-- migrations' and the operators' tools' (`todo rebuild-projection`). Every migration that adds a
-- table grants it in the same way. The domain engine keeps no state in Postgres and has no role.
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['todo_command_api', 'todo_data_sink', 'todo_streamer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', name);
        END IF;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA public TO todo_command_api, todo_data_sink, todo_streamer;

-- command-api: accounts, sessions, groups and memberships, the outbox, idempotency; it reads the
-- projection for a command's outcome and a group's todo count.
GRANT SELECT, INSERT, UPDATE ON users, groups TO todo_command_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_tokens, revoked_sessions, group_members, command_outbox, idempotency_keys
    TO todo_command_api;
GRANT USAGE ON SEQUENCE command_outbox_outbox_id_seq TO todo_command_api;
GRANT SELECT ON todos, todo_events, group_projection_offsets TO todo_command_api;

-- data sink: the projection and its offsets, and the events it could not write. (A rebuild, which
-- deletes, runs as the owner.)
GRANT SELECT, INSERT, UPDATE ON todos, todo_events, group_projection_offsets, failed_projections TO todo_data_sink;

-- streamer: reads only, and of users only who they are (never a password hash).
GRANT SELECT (user_id, username) ON users TO todo_streamer;
GRANT SELECT ON groups, group_members, todos, todo_events, group_projection_offsets, revoked_sessions TO todo_streamer;
