-- sessiondb PostgreSQL schema 3: usage recorded against a message (SQLite schema 9; the
-- reasons are written there). Released: never edit this file; add a new numbered file.
-- Each deleted message probes this table's primary key (the cascade), which prune and purge
-- pay per row.
CREATE TABLE usage_records (
    message_id    BIGINT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    requests      BIGINT NOT NULL CHECK (requests >= 0),
    input_tokens  BIGINT NOT NULL CHECK (input_tokens >= 0),
    output_tokens BIGINT NOT NULL CHECK (output_tokens >= 0),
    total_tokens  BIGINT NOT NULL CHECK (total_tokens >= 0),
    details       TEXT CHECK (details IS NULL OR jsonb_typeof(CAST(details AS JSONB)) = 'object'),
    recorded_at   TEXT NOT NULL
);
