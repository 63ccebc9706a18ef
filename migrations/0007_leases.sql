-- sessiondb leases: one run per session across processes.
-- Released: never edit this file; add a new numbered file instead.
--
-- At most one lease per session id. A lease is held while `expires_at` (ISO-8601 UTC text,
-- compared by the library after parsing) is in the future; a claim after that takes it over
-- with a new random token. No foreign key: a worker may claim a session before its first
-- message creates it, and a lease outlives nothing it protects for longer than its expiry.
CREATE TABLE leases (
    session_id  TEXT PRIMARY KEY NOT NULL,
    owner       TEXT NOT NULL,
    token       TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
