-- sessiondb schema 10: LangGraph checkpoints (docs/design.md, "LangGraph checkpoints").
-- Released: never edit this file; add a new numbered file instead.
--
-- A checkpoint is a message of the thread's session; what the saver needs is keyed by that
-- message's rowid and shares its fate (ON DELETE CASCADE), so a fork inherits it and
-- whatever deletes the message deletes it. A channel version is stored once
-- (langgraph_blobs) and referenced by every checkpoint that reads it
-- (langgraph_channels); the trigger deletes a blob with its last reference.
--
-- Pending writes are the exception (below): they are keyed by the writing branch.
--
--   SELECT k.checkpoint_ns, k.checkpoint_id, c.channel, b.version
--   FROM langgraph_checkpoints k JOIN langgraph_channels c ON c.message_id = k.message_id
--   JOIN langgraph_blobs b ON b.id = c.blob_id;
CREATE TABLE langgraph_checkpoints (
    message_id           INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    -- The branch that owns the message (its rowid's high bits), for the index below.
    branch_id            INTEGER NOT NULL CHECK (branch_id = message_id / 4294967296),
    checkpoint_ns        TEXT NOT NULL,
    checkpoint_id        TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    run_id               TEXT,
    checkpoint_type      TEXT NOT NULL,
    checkpoint           BLOB NOT NULL,
    metadata             TEXT NOT NULL CHECK (json_valid(metadata) AND json_type(metadata) = 'object')
);
CREATE INDEX langgraph_checkpoints_in_branch ON langgraph_checkpoints (branch_id, checkpoint_ns, checkpoint_id);
CREATE INDEX langgraph_checkpoints_by_run ON langgraph_checkpoints (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE langgraph_blobs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    channel   TEXT NOT NULL,
    version   TEXT NOT NULL,
    blob_type TEXT NOT NULL,
    blob      BLOB
);

CREATE TABLE langgraph_channels (
    message_id INTEGER NOT NULL REFERENCES langgraph_checkpoints (message_id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    blob_id    INTEGER NOT NULL REFERENCES langgraph_blobs (id),
    PRIMARY KEY (message_id, channel)
) WITHOUT ROWID;
CREATE INDEX langgraph_channels_by_blob ON langgraph_channels (blob_id);

CREATE TRIGGER langgraph_blob_unreferenced AFTER DELETE ON langgraph_channels
WHEN NOT EXISTS (SELECT 1 FROM langgraph_channels WHERE blob_id = old.blob_id)
BEGIN
    DELETE FROM langgraph_blobs WHERE id = old.blob_id;
END;

-- A pending write names its checkpoint by id, not by row: LangGraph may write a task's
-- writes before the checkpoint's own put has committed. It belongs to the thread that wrote
-- it: branch_id is that thread's head branch (deleting the branch deletes its writes),
-- newest_branch the newest branch id of the file when it was written. A lineage that holds
-- branch_id as its head sees the write; one that holds it as an ancestor sees it only if
-- it forked from there after the write (its next branch is newer than newest_branch), so a
-- copy and its source never see each other's later writes on a checkpoint they share.
CREATE TABLE langgraph_writes (
    branch_id     INTEGER NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    newest_branch INTEGER NOT NULL,
    channel       TEXT NOT NULL,
    write_type    TEXT NOT NULL,
    blob          BLOB NOT NULL,
    task_path     TEXT NOT NULL,
    PRIMARY KEY (branch_id, checkpoint_ns, checkpoint_id, task_id, idx)
) WITHOUT ROWID;

-- A checkpoint removed from one thread while another session still inherits it: hidden in
-- every lineage that holds branch_id up to from_seq or beyond.
CREATE TABLE langgraph_hidden (
    branch_id  INTEGER NOT NULL,
    message_id INTEGER NOT NULL REFERENCES langgraph_checkpoints (message_id) ON DELETE CASCADE,
    from_seq   INTEGER NOT NULL,
    PRIMARY KEY (branch_id, message_id)
) WITHOUT ROWID;
CREATE INDEX langgraph_hidden_by_message ON langgraph_hidden (message_id);
