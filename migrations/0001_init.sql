-- sessiondb schema 1. Released: never edit this file; add 0002_*.sql instead.
--
-- History is append-only. A branch is a log of messages; it may start from a fork point
-- (parent_branch_id, fork_seq) and then inherits the parent's messages 1..=fork_seq without
-- copying them. A session's current history is the lineage of its head branch.

-- One database-wide counter: every mutation of a session takes the next value as the session's
-- version, so a deleted and recreated session never repeats a version.
CREATE TABLE version_clock (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO version_clock (id, version) VALUES (1, 0);

CREATE TABLE sessions (
    id                TEXT PRIMARY KEY NOT NULL,
    title             TEXT,
    agent_name        TEXT,
    agent_id          TEXT,
    user_id           TEXT,
    metadata          TEXT NOT NULL DEFAULT '{}'
                      CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    -- The session this one was forked from; cleared when that session is deleted.
    parent_session_id TEXT REFERENCES sessions (id) ON DELETE SET NULL,
    head_branch_id    INTEGER NOT NULL
                      REFERENCES branches (id) DEFERRABLE INITIALLY DEFERRED,
    message_count     INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    input_tokens      INTEGER NOT NULL DEFAULT 0,
    output_tokens     INTEGER NOT NULL DEFAULT 0,
    cost              REAL    NOT NULL DEFAULT 0,
    version           INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX sessions_by_updated ON sessions (updated_at DESC, id DESC);
-- Not (agent_name, updated_at): every append changes updated_at, and each index holding it
-- is one more page written per append. Listing one agent's sessions sorts them instead.
CREATE INDEX sessions_by_agent ON sessions (agent_name);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_parent ON sessions (parent_session_id);
-- Foreign-key checks on branches (inserting one while a session's head is being set,
-- deleting one) look sessions up by head.
CREATE INDEX sessions_by_head ON sessions (head_branch_id);

-- AUTOINCREMENT: a branch id is never reused, so (head branch, length) cannot name a different
-- history after a delete; readers rely on that to extend cached histories.
CREATE TABLE branches (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL once the owning session is deleted but another session still inherits from it.
    session_id       TEXT REFERENCES sessions (id) ON DELETE SET NULL,
    name             TEXT NOT NULL,
    parent_branch_id INTEGER REFERENCES branches (id),
    fork_seq         INTEGER NOT NULL DEFAULT 0 CHECK (fork_seq >= 0),
    -- Number of messages in the branch's full history, inherited part included.
    length           INTEGER NOT NULL DEFAULT 0 CHECK (length >= fork_seq),
    created_at       TEXT NOT NULL,
    -- Set when set_chat_history, revert, restore or clear replaced this branch as head;
    -- such branches stay readable until prune collects them after the retention window.
    superseded_at    TEXT
);
CREATE UNIQUE INDEX branches_by_name ON branches (session_id, name);
CREATE INDEX branches_by_parent ON branches (parent_branch_id);

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    branch_id     INTEGER NOT NULL REFERENCES branches (id),
    -- 1-based position in the branch's full history: message index i is seq = i + 1.
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    role          TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
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
    created_at    TEXT NOT NULL,
    UNIQUE (branch_id, seq)
);

-- AUTOINCREMENT: a deleted snapshot's id never comes back naming another snapshot.
CREATE TABLE snapshots (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    label      TEXT,
    metadata   TEXT NOT NULL DEFAULT '{}'
               CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    branch_id  INTEGER NOT NULL REFERENCES branches (id),
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    created_at TEXT NOT NULL
);
CREATE INDEX snapshots_by_session ON snapshots (session_id, id);
CREATE INDEX snapshots_by_branch ON snapshots (branch_id);

-- Every session's current history, in order:
--   SELECT position, role, content FROM history WHERE session_id = 'x' ORDER BY position;
CREATE VIEW history AS
WITH RECURSIVE lineage (session_id, branch_id, upto) AS (
    SELECT id, head_branch_id, 9223372036854775807 FROM sessions
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
FROM lineage
JOIN messages ON messages.branch_id = lineage.branch_id AND messages.seq <= lineage.upto;
