-- sessiondb schema 4: a cached history can tell a branch that only grew from one that came
-- back as head after it was trimmed.
-- Released: never edit this file; add 0005_*.sql instead.
--
-- head_since is the version at which head_branch_id last changed. A reader holding a cached
-- history of version v on the same head branch may fetch just the new tail only when
-- head_since <= v: the branch was head the whole time, and a head branch only grows. Otherwise
-- the branch may have been trimmed by prune (or rewritten by restore) while it was not head.
-- Existing rows start at 0: no process has a cached history of this file from before.
ALTER TABLE sessions ADD COLUMN head_since INTEGER NOT NULL DEFAULT 0;
