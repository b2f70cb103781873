-- The trash (DESIGN §10). A deleted todo keeps its row, with `deleted_at` set, for 30 days: the
-- group's Trash view lists them newest first, `restore-todo` brings one back (the sink clears
-- `deleted_at`), and the sink then deletes the rows whose time is up (their events stay in the
-- history). Both indexes hold deleted rows only, so they cost nothing for the live board.
CREATE INDEX IF NOT EXISTS todos_trash ON todos (group_id, deleted_at DESC, todo_id DESC) WHERE deleted_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS todos_deleted_at ON todos (deleted_at) WHERE deleted_at IS NOT NULL;

-- The sink purges the trash; DELETE on todos is all it gets.
GRANT DELETE ON todos TO todo_data_sink;
