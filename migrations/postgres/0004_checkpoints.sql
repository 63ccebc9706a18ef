-- sessiondb PostgreSQL schema 4: LangGraph checkpoints (SQLite schema 10; the reasons are
-- written there). Released: never edit this file; add a new numbered file.
CREATE TABLE checkpoints (
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
CREATE INDEX checkpoints_in_branch ON checkpoints (branch_id, checkpoint_ns, checkpoint_id);
CREATE INDEX checkpoints_by_run ON checkpoints (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE checkpoint_blobs (
    id        BIGSERIAL PRIMARY KEY,
    channel   TEXT NOT NULL,
    version   TEXT NOT NULL,
    blob_type TEXT NOT NULL,
    blob      BYTEA
);

CREATE TABLE checkpoint_channels (
    message_id BIGINT NOT NULL REFERENCES checkpoints (message_id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    blob_id    BIGINT NOT NULL REFERENCES checkpoint_blobs (id),
    PRIMARY KEY (message_id, channel)
);
CREATE INDEX checkpoint_channels_by_blob ON checkpoint_channels (blob_id);

CREATE FUNCTION checkpoint_blob_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM checkpoint_blobs b WHERE b.id = OLD.blob_id
        AND NOT EXISTS (SELECT 1 FROM checkpoint_channels c WHERE c.blob_id = OLD.blob_id);
    RETURN NULL;
END $$;
CREATE TRIGGER checkpoint_blob_unreferenced AFTER DELETE ON checkpoint_channels
    FOR EACH ROW EXECUTE FUNCTION checkpoint_blob_unreferenced();

CREATE TABLE checkpoint_writes (
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

CREATE TABLE checkpoint_hidden (
    branch_id  BIGINT NOT NULL,
    message_id BIGINT NOT NULL REFERENCES checkpoints (message_id) ON DELETE CASCADE,
    from_seq   BIGINT NOT NULL,
    PRIMARY KEY (branch_id, message_id)
);
CREATE INDEX checkpoint_hidden_by_message ON checkpoint_hidden (message_id);
