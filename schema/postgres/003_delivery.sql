-- 003 — remember a delivery hook that has not yet succeeded (schema/003_delivery.sql).
--
-- After a value reaches its sink, the token's on_delivery hook runs. The row
-- is committed with delivery_pending = 1 before the hook starts and cleared
-- once it succeeds, so that a hook that failed, timed out or was cut short by
-- a crash runs again on the next run. Existing rows have nothing pending (0).
ALTER TABLE resources
  ADD COLUMN delivery_pending INTEGER NOT NULL DEFAULT 0 CHECK (delivery_pending IN (0, 1));
