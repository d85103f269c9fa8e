-- 006 — what the Astro API v1 adds to a token: DAG and DAG_TAG roles, the
-- token kind, and when it was last rotated (schema/006_v1_roles_kind.sql).
--
-- A DAG role's entity_id is the DAG id, a DAG_TAG role's the tag value; both
-- name their deployment in deployment_id, which is '' for every other role
-- and part of the key (one DAG id may exist in several deployments). Existing
-- tokens are STANDARD tokens with no recorded rotation time (NULL).
ALTER TABLE resources
  ADD COLUMN kind TEXT NOT NULL DEFAULT 'STANDARD' CHECK (kind IN ('STANDARD', 'DIRECT_ACCESS'));
ALTER TABLE resources ADD COLUMN last_rotated_at BIGINT;  -- NULL: never rotated (or not known)

-- The kind a create intent asked for (intents.kind is the intent's own kind).
ALTER TABLE intents
  ADD COLUMN token_kind TEXT NOT NULL DEFAULT 'STANDARD'
  CHECK (token_kind IN ('STANDARD', 'DIRECT_ACCESS'));

ALTER TABLE resource_roles
  ADD COLUMN deployment_id TEXT NOT NULL DEFAULT '',
  DROP CONSTRAINT resource_roles_entity_type_check,
  ADD CONSTRAINT resource_roles_entity_type_check
    CHECK (entity_type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT', 'DAG', 'DAG_TAG')),
  ADD CONSTRAINT resource_roles_deployment_id_check
    CHECK ((entity_type IN ('DAG', 'DAG_TAG')) = (deployment_id <> '')),
  DROP CONSTRAINT resource_roles_pkey,
  ADD PRIMARY KEY (resource_key, role, entity_id, entity_type, deployment_id);

ALTER TABLE intent_roles
  ADD COLUMN deployment_id TEXT NOT NULL DEFAULT '',
  DROP CONSTRAINT intent_roles_entity_type_check,
  ADD CONSTRAINT intent_roles_entity_type_check
    CHECK (entity_type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT', 'DAG', 'DAG_TAG')),
  ADD CONSTRAINT intent_roles_deployment_id_check
    CHECK ((entity_type IN ('DAG', 'DAG_TAG')) = (deployment_id <> '')),
  DROP CONSTRAINT intent_roles_pkey,
  ADD PRIMARY KEY (intent_id, role, entity_id, entity_type, deployment_id);
