-- 006 — what the Astro API v1 adds to a token: DAG and DAG_TAG roles (with
-- the deployment holding the DAG), the token kind, and when it was last
-- rotated.
--
-- A DAG role's entity_id is the DAG id, a DAG_TAG role's the tag value; both
-- name their deployment in deployment_id, which is '' for every other role
-- and part of the key (one DAG id may exist in several deployments). SQLite
-- cannot change a CHECK or a primary key in place, so the role tables are
-- rebuilt with their rows; nothing references them. Existing tokens are
-- STANDARD tokens with no recorded rotation time (NULL).
ALTER TABLE resources
  ADD COLUMN kind TEXT NOT NULL DEFAULT 'STANDARD' CHECK (kind IN ('STANDARD', 'DIRECT_ACCESS'));
ALTER TABLE resources ADD COLUMN last_rotated_at INTEGER;  -- NULL: never rotated (or not known)

-- The kind a create intent asked for (intents.kind is the intent's own kind).
ALTER TABLE intents
  ADD COLUMN token_kind TEXT NOT NULL DEFAULT 'STANDARD'
  CHECK (token_kind IN ('STANDARD', 'DIRECT_ACCESS'));

CREATE TABLE resource_roles_006 (
  resource_key  TEXT NOT NULL REFERENCES resources (key) ON DELETE CASCADE ON UPDATE CASCADE,
  role          TEXT NOT NULL,
  entity_id     TEXT NOT NULL,
  entity_type   TEXT NOT NULL
    CHECK (entity_type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT', 'DAG', 'DAG_TAG')),
  deployment_id TEXT NOT NULL DEFAULT '',
  CHECK ((entity_type IN ('DAG', 'DAG_TAG')) = (deployment_id <> '')),
  PRIMARY KEY (resource_key, role, entity_id, entity_type, deployment_id)
) STRICT, WITHOUT ROWID;
INSERT INTO resource_roles_006 (resource_key, role, entity_id, entity_type)
  SELECT resource_key, role, entity_id, entity_type FROM resource_roles;
DROP TABLE resource_roles;
ALTER TABLE resource_roles_006 RENAME TO resource_roles;

CREATE TABLE intent_roles_006 (
  intent_id     INTEGER NOT NULL REFERENCES intents (id) ON DELETE CASCADE,
  role          TEXT    NOT NULL,
  entity_id     TEXT    NOT NULL,
  entity_type   TEXT    NOT NULL
    CHECK (entity_type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT', 'DAG', 'DAG_TAG')),
  deployment_id TEXT    NOT NULL DEFAULT '',
  CHECK ((entity_type IN ('DAG', 'DAG_TAG')) = (deployment_id <> '')),
  PRIMARY KEY (intent_id, role, entity_id, entity_type, deployment_id)
) STRICT, WITHOUT ROWID;
INSERT INTO intent_roles_006 (intent_id, role, entity_id, entity_type)
  SELECT intent_id, role, entity_id, entity_type FROM intent_roles;
DROP TABLE intent_roles;
ALTER TABLE intent_roles_006 RENAME TO intent_roles;
