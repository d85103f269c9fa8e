-- 005 — keep the window of a resolved create (schema/005_intent_windows.sql).
--
-- A create whose answer was lost may still reach the API later, until the
-- client's timeout (and a margin) after it was sent. settle_after: the time
-- from which a listing shows any token the call made; 0 for intents
-- journalled before this migration (any listing settles them). A create
-- intent is no longer deleted when it is resolved: `resolved` marks it and
-- made_token_id names the token it made ('' when none), so that a token
-- that lands late is still recognised as made by astro-tokend. Resolved
-- creates are pruned a week after they began. Rotate intents are deleted
-- when resolved, as before.
ALTER TABLE intents ADD COLUMN settle_after BIGINT NOT NULL DEFAULT 0;
ALTER TABLE intents
  ADD COLUMN resolved INTEGER NOT NULL DEFAULT 0 CHECK (resolved IN (0, 1));
ALTER TABLE intents ADD COLUMN made_token_id TEXT NOT NULL DEFAULT '';
