-- sessiondb schema 5: messages as agents send them.
-- Released: never edit this file; add 0006_*.sql instead.
--
-- OpenAI-shaped messages may have no content, null content or a list of content parts, and
-- keys sessiondb has no column for (`name`, `refusal`, …). They are stored losslessly:
--   content       stays the message's text, so sqlite3 users, the `history` view and the
--                 search index see it: the string, the `text` of each part joined by
--                 newlines, or '' when there is none;
--   content_kind  NULL for text (every older row), else 'parts', 'null' (content: null) or
--                 'absent' (no content key);
--   content_parts the parts as a JSON array, exactly as given, when content_kind = 'parts';
--   extra         the unknown top-level keys as a JSON object, or NULL.
-- Added columns, not a rebuilt table: opening a large file does not rewrite every message,
-- and rowids (branch_id * 2^32 + seq) and the search index stay as they are.
ALTER TABLE messages ADD COLUMN content_kind TEXT
    CHECK (content_kind IS NULL OR content_kind = 'parts' OR content_kind = 'null'
           OR content_kind = 'absent');
ALTER TABLE messages ADD COLUMN content_parts TEXT
    CHECK (content_parts IS NULL
           OR (json_valid(content_parts) AND json_type(content_parts) = 'array'));
ALTER TABLE messages ADD COLUMN extra TEXT
    CHECK (extra IS NULL OR (json_valid(extra) AND json_type(extra) = 'object'));

-- The history view gains the new columns; its other columns are as before.
DROP VIEW history;
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
       messages.cost, messages.created_at, messages.content_kind, messages.content_parts,
       messages.extra
-- CROSS JOIN keeps lineage the outer loop, so messages are read by rowid range, not scanned.
FROM lineage
CROSS JOIN messages ON messages.id BETWEEN lineage.branch_id * 4294967296 + 1
                                       AND lineage.branch_id * 4294967296 + lineage.upto;
