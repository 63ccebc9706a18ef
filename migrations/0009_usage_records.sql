-- sessiondb schema 9: usage recorded against a message (what an agent's turn or run used).
-- Released: never edit this file; add a new numbered file instead.
--
-- A record belongs to one message row and shares its fate: a history that holds the row (the
-- branch that wrote it, its forks, a revert or a restore that keeps it) has the record, and
-- whatever deletes the row (prune trimming a branch, purge, deleting a session) deletes the
-- record with it (ON DELETE CASCADE), so a branch that grows again over a trimmed seq never
-- finds an old record. The key is the message's rowid: deleting messages finds a record by
-- one rowid seek, and an append, which deletes nothing, never looks here.
--
-- A later migration that rebuilds `messages` must copy these rows aside first: with foreign
-- keys on, DROP TABLE deletes every row, and the cascade with them.
--
--   SELECT m.branch_id, m.seq, u.input_tokens, u.output_tokens
--   FROM usage_records u JOIN messages m ON m.id = u.message_id;
CREATE TABLE usage_records (
    message_id    INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    requests      INTEGER NOT NULL CHECK (requests >= 0),
    input_tokens  INTEGER NOT NULL CHECK (input_tokens >= 0),
    output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
    total_tokens  INTEGER NOT NULL CHECK (total_tokens >= 0),
    -- Breakdowns as the provider gives them (cached tokens, reasoning tokens, ...).
    details       TEXT CHECK (details IS NULL
                              OR (json_valid(details) AND json_type(details) = 'object')),
    recorded_at   TEXT NOT NULL
);
