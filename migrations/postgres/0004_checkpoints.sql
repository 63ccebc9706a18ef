-- sessiondb PostgreSQL schema 4: LangGraph checkpoints (SQLite schema 10; the reasons are
-- written there). Released: never edit this file; add a new numbered file.
CREATE TABLE langgraph_checkpoints (
    message_id           BIGINT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    -- The branch that owns the message (its rowid's high bits), for the index below.
    branch_id            BIGINT NOT NULL CHECK (branch_id = message_id / 4294967296),
    checkpoint_ns        TEXT NOT NULL,
    checkpoint_id        TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    run_id               TEXT,
    checkpoint_type      TEXT NOT NULL,
    checkpoint           BYTEA NOT NULL,
    metadata             TEXT NOT NULL CHECK (jsonb_typeof(CAST(metadata AS JSONB)) = 'object')
);
CREATE INDEX langgraph_checkpoints_in_branch ON langgraph_checkpoints (branch_id, checkpoint_ns, checkpoint_id);
CREATE INDEX langgraph_checkpoints_by_run ON langgraph_checkpoints (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE langgraph_blobs (
    id        BIGSERIAL PRIMARY KEY,
    channel   TEXT NOT NULL,
    version   TEXT NOT NULL,
    blob_type TEXT NOT NULL,
    blob      BYTEA
);

CREATE TABLE langgraph_channels (
    message_id BIGINT NOT NULL REFERENCES langgraph_checkpoints (message_id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    blob_id    BIGINT NOT NULL REFERENCES langgraph_blobs (id),
    PRIMARY KEY (message_id, channel)
);
CREATE INDEX langgraph_channels_by_blob ON langgraph_channels (blob_id);

CREATE FUNCTION langgraph_blob_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM langgraph_blobs b WHERE b.id = OLD.blob_id
        AND NOT EXISTS (SELECT 1 FROM langgraph_channels c WHERE c.blob_id = OLD.blob_id);
    RETURN NULL;
END $$;
CREATE TRIGGER langgraph_blob_unreferenced AFTER DELETE ON langgraph_channels
    FOR EACH ROW EXECUTE FUNCTION langgraph_blob_unreferenced();

CREATE TABLE langgraph_writes (
    branch_id     BIGINT NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    idx           BIGINT NOT NULL,
    newest_branch BIGINT NOT NULL,
    channel       TEXT NOT NULL,
    write_type    TEXT NOT NULL,
    blob          BYTEA NOT NULL,
    task_path     TEXT NOT NULL,
    PRIMARY KEY (branch_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

CREATE TABLE langgraph_hidden (
    branch_id  BIGINT NOT NULL,
    message_id BIGINT NOT NULL REFERENCES langgraph_checkpoints (message_id) ON DELETE CASCADE,
    from_seq   BIGINT NOT NULL,
    PRIMARY KEY (branch_id, message_id)
);
CREATE INDEX langgraph_hidden_by_message ON langgraph_hidden (message_id);
