-- Search over the caller's groups (DESIGN §10): Postgres full-text search, no other server.
-- A todo's document is its title (weight A), its labels (B) and its notes (C), parsed with the
-- `simple` configuration: words are lower-cased but not stemmed, which suits titles in any
-- language and makes a prefix of the last word typed match (`plan:*`). The parser keeps some
-- punctuated words whole (`login.swift`, `api.example.com`): a prefix finds them (`login`), a later
-- part does not (`swift`); splitting them as the search box does cost 40% more per document, and
-- queries compute documents (see bench/results/*-search.md). The GIN index holds the live todos;
-- queries compute the same expression, so the planner can use it. (Lower-casing and letter
-- classes follow the database's LC_CTYPE: C.UTF-8.)
CREATE FUNCTION todo_search_document(title text, notes text, labels text[]) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple'::regconfig, title), 'A')
        || setweight(to_tsvector('simple'::regconfig, array_to_string(labels, ' ')), 'B')
        || setweight(to_tsvector('simple'::regconfig, notes), 'C')
$$;

CREATE INDEX todos_search_idx ON todos USING GIN (todo_search_document(title, notes, labels)) WHERE deleted_at IS NULL;

-- Searches start from the caller's memberships.
GRANT EXECUTE ON FUNCTION todo_search_document(text, text, text[]) TO todo_streamer;
