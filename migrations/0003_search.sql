-- sessiondb schema 3: full-text search over message content.
-- Released: never edit this file; add 0004_*.sql instead.
--
-- An external-content FTS5 index over messages.content, kept in step by triggers, so it
-- changes in the same transaction as the messages. `rebuild` indexes what schema 1 and 2
-- files already hold.
CREATE VIRTUAL TABLE message_search USING fts5 (
    content,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search (rowid, content) VALUES (new.id, new.content);
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, content)
    VALUES ('delete', old.id, old.content);
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, content)
    VALUES ('delete', old.id, old.content);
    INSERT INTO message_search (rowid, content) VALUES (new.id, new.content);
END;

INSERT INTO message_search (message_search) VALUES ('rebuild');
