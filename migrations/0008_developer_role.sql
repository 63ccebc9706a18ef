-- sessiondb: the `developer` role (current OpenAI chat APIs), stored as itself.
-- Released: never edit this file; add a new numbered file instead.
--
-- Only the CHECK on messages.role widens: every stored row already satisfies the new one and
-- no byte of the file changes but the table's text in sqlite_schema, so it is edited in
-- place (SQLite's documented procedure for schema changes that leave the stored format
-- alone) instead of rebuilding a table that may hold millions of messages. The table created
-- and dropped after it changes the schema cookie, so every connection, in every process,
-- reloads the schema before its next statement.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'OR role = ''tool'')', 'OR role = ''tool'' OR role = ''developer'')')
 WHERE type = 'table' AND name = 'messages';
PRAGMA writable_schema = OFF;
CREATE TABLE schema_reload (x);
DROP TABLE schema_reload;
