-- 002 — remember that a token's current value is unknown (schema/002_rotate_pending.sql).
--
-- When a rotation's new value is lost (a crash between the API call and the
-- sink write), the token must be rotated again on the next run. Existing rows
-- start with a known value (0).
ALTER TABLE resources
  ADD COLUMN rotate_pending INTEGER NOT NULL DEFAULT 0 CHECK (rotate_pending IN (0, 1));

-- Pending intents are looked up by the resource they concern.
CREATE INDEX intents_by_key ON intents (key);
