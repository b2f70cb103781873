-- A user's time zone (DESIGN §9): an IANA name, checked by command-api against the zones it
-- knows; NULL until the user picks one, read as UTC.
ALTER TABLE users ADD COLUMN IF NOT EXISTS timezone text CHECK (length(timezone) BETWEEN 1 AND 64);

-- The calendar reads a group's dated live todos by day (GET /api/v1/todos?due_from=&due_to=).
CREATE INDEX IF NOT EXISTS todos_calendar ON todos (group_id, due_date, todo_id)
    WHERE deleted_at IS NULL AND due_date IS NOT NULL;
