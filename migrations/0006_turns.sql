-- sessiondb schema 6: idempotency keys and compactions.
-- Released: never edit this file; add a later one instead.
--
-- 1. A message may carry a caller-chosen key, unique within its session's current history
--    (checked across the lineage by the library). The partial index makes a retry's lookup a
--    seek per lineage segment and costs a keyless append nothing: SQLite skips the index for
--    rows whose key is NULL. Uniqueness within one branch's own rows is a backstop.
ALTER TABLE messages ADD COLUMN key TEXT CHECK (key IS NULL OR length(key) >= 1);
CREATE UNIQUE INDEX messages_by_key ON messages (branch_id, key) WHERE key IS NOT NULL;

-- 2. A compaction is a pointer, not a copy: the working history of a branch is `summary`
--    followed by its messages after `through_seq`; every message stays in `messages`.
--    A branch's compactions are written only in the transaction that creates the branch
--    (compacting moves the head to a new branch, as every edit does), so a cached history
--    of an unchanged head branch never needs to look again.
--    `summary` is the summary message as JSON (role, content, …):
--      SELECT through_seq, summary ->> '$.content' FROM compactions WHERE branch_id = 7;
CREATE TABLE compactions (
    id            INTEGER PRIMARY KEY,
    branch_id     INTEGER NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
    -- The last seq the summary stands for: message index through_seq - 1.
    through_seq   INTEGER NOT NULL CHECK (through_seq >= 1),
    summary       TEXT NOT NULL CHECK (json_valid(summary) AND json_type(summary) = 'object'),
    tokens_before INTEGER,
    tokens_after  INTEGER,
    created_at    TEXT NOT NULL
);
CREATE INDEX compactions_by_branch ON compactions (branch_id, through_seq);
