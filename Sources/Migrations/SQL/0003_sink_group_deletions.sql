-- The sink looks up whether a group was deleted when it applies a todo event, so that a late
-- todo event (two sinks committing out of order) never brings a deleted group's todo back.
CREATE INDEX todo_events_group_deleted_idx ON todo_events (group_id) WHERE event_type = 'group.deleted';
