-- sessiondb schema 2: streamed replies persisted as they arrive.
-- Released: never edit this file; add 0003_*.sql instead.
--
-- At most one partial (still streaming) assistant reply per session. It is not part of the
-- history until it is finished, when it is appended exactly like any other message; a
-- process that crashed mid-stream leaves it here for another process to finish or discard.
CREATE TABLE partial_messages (
    session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    content    TEXT NOT NULL DEFAULT '',
    model      TEXT,
    metadata   TEXT CHECK (metadata IS NULL
                           OR (json_valid(metadata) AND json_type(metadata) = 'object')),
    chunks     INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
