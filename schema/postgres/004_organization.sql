-- 004 — the organization a state belongs to (schema/004_organization.sql).
--
-- A state holds the tokens of one Astro organization. The first run that
-- writes the state records the configured organization_id here; from then on
-- a config naming another organization is refused before any API call.
-- Existing states record none yet ('') and adopt the configured one on their
-- next run.
ALTER TABLE meta ADD COLUMN organization_id TEXT NOT NULL DEFAULT '';
