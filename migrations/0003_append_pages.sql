-- sessiondb schema 3: an append writes three pages instead of seven.
-- Released: never edit this file; add 0004_*.sql instead.
--
-- 1. A message's rowid is branch_id * 2^32 + seq. A branch's rows are one contiguous rowid
--    range, so an append writes one b-tree page instead of a table page and a
--    (branch_id, seq) index page, and reading a range is one rowid range scan. branch_id and
--    seq stay as columns for readers. The foreign key on branch_id goes with the index: without
--    an index on branch_id, SQLite would scan every message each time a branch is deleted.
--    `check` reports messages whose branch is missing.
-- 2. branches.length goes: a branch's length is its last own seq, or its fork point if it
--    has no rows of its own (view branch_lengths), so an append no longer rewrites its branch.
-- 3. No schema change, but appends stop drawing from version_clock: a session's version now
--    grows by one per change, and version_clock only hands out the first version of a new
--    session and records the last version of a deleted one, so a deleted and recreated session
--    still never repeats a version.

-- The search index is keyed by message rowids, which change; the next search rebuilds it.
DROP TRIGGER IF EXISTS message_search_insert;
DROP TRIGGER IF EXISTS message_search_delete;
DROP TRIGGER IF EXISTS message_search_update;
DROP TABLE IF EXISTS message_search;
DROP VIEW history;

CREATE TABLE messages_3 (
    -- branch_id * 4294967296 + seq.
    id            INTEGER PRIMARY KEY CHECK (id = branch_id * 4294967296 + seq),
    branch_id     INTEGER NOT NULL CHECK (branch_id BETWEEN 1 AND 2147483647),
    -- 1-based position in the branch's full history: message index i is seq = i + 1.
    seq           INTEGER NOT NULL CHECK (seq BETWEEN 1 AND 4294967295),
    -- Not `role IN (...)`: SQLite builds a temporary b-tree for an IN list of more than two
    -- values each time the check runs, which was 16 % of an append's instructions.
    role          TEXT NOT NULL CHECK (role = 'system' OR role = 'user' OR role = 'assistant'
                                       OR role = 'tool'),
    content       TEXT NOT NULL,
    tool_calls    TEXT CHECK (tool_calls IS NULL
                              OR (json_valid(tool_calls) AND json_type(tool_calls) = 'array')),
    tool_call_id  TEXT,
    metadata      TEXT CHECK (metadata IS NULL
                              OR (json_valid(metadata) AND json_type(metadata) = 'object')),
    model         TEXT,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    cost          REAL,
    -- Usage of the history up to and including this message, so the totals of any prefix
    -- (after a fork or revert) are one row away.
    running_input_tokens  INTEGER NOT NULL,
    running_output_tokens INTEGER NOT NULL,
    running_cost          REAL    NOT NULL,
    created_at    TEXT NOT NULL
);
INSERT INTO messages_3 (id, branch_id, seq, role, content, tool_calls, tool_call_id, metadata,
                        model, input_tokens, output_tokens, cost, running_input_tokens,
                        running_output_tokens, running_cost, created_at)
SELECT branch_id * 4294967296 + seq, branch_id, seq, role, content, tool_calls, tool_call_id,
       metadata, model, input_tokens, output_tokens, cost, running_input_tokens,
       running_output_tokens, running_cost, created_at
FROM messages ORDER BY branch_id, seq;
DROP TABLE messages;
ALTER TABLE messages_3 RENAME TO messages;

ALTER TABLE branches DROP COLUMN length;

-- Every branch's length:  SELECT length FROM branch_lengths WHERE branch_id = 7;
CREATE VIEW branch_lengths (branch_id, length) AS
SELECT b.id, max(b.fork_seq, coalesce((SELECT m.seq FROM messages m
                                       WHERE m.id BETWEEN b.id * 4294967296
                                                      AND b.id * 4294967296 + 4294967295
                                       ORDER BY m.id DESC LIMIT 1), 0))
FROM branches b;

-- Every session's current history, in order:
--   SELECT position, role, content FROM history WHERE session_id = 'x' ORDER BY position;
CREATE VIEW history AS
WITH RECURSIVE lineage (session_id, branch_id, upto) AS (
    SELECT id, head_branch_id, 4294967295 FROM sessions
    UNION ALL
    SELECT lineage.session_id, branches.parent_branch_id, branches.fork_seq
    FROM lineage JOIN branches ON branches.id = lineage.branch_id
    WHERE branches.parent_branch_id IS NOT NULL
)
SELECT lineage.session_id AS session_id,
       messages.seq - 1   AS position,
       messages.role, messages.content, messages.tool_calls, messages.tool_call_id,
       messages.metadata, messages.model, messages.input_tokens, messages.output_tokens,
       messages.cost, messages.created_at
-- CROSS JOIN keeps lineage the outer loop, so messages are read by rowid range, not scanned.
FROM lineage
CROSS JOIN messages ON messages.id BETWEEN lineage.branch_id * 4294967296 + 1
                                       AND lineage.branch_id * 4294967296 + lineage.upto;
