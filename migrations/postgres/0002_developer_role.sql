-- sessiondb on PostgreSQL: the `developer` role (current OpenAI chat APIs), stored as itself.
-- Released: never edit this file; add a new numbered file instead.
-- NOT VALID: every stored row satisfies the wider check already; no scan of the table.
ALTER TABLE messages DROP CONSTRAINT messages_role_check;
ALTER TABLE messages ADD CONSTRAINT messages_role_check
    CHECK (role IN ('system', 'developer', 'user', 'assistant', 'tool')) NOT VALID;
