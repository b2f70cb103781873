-- Search reads a stored document (DESIGN §10): each todo's tsvector is computed once, when the
-- sink writes the row, instead of on every search for every candidate row — the cost that grew
-- with the caller's todos, and in one big group with the number of matches to rank (see
-- bench/results/*-search.md). Adding the column rewrites the table once.
ALTER TABLE todos ADD COLUMN IF NOT EXISTS search_document tsvector
    GENERATED ALWAYS AS (todo_search_document(title, notes, labels)) STORED;
DROP INDEX IF EXISTS todos_search_idx;
CREATE INDEX IF NOT EXISTS todos_search_idx ON todos USING GIN (search_document) WHERE deleted_at IS NULL;
