-- 001 — the initial state schema (product.md §5).
--
-- Applied by the state store inside one transaction; the store sets
-- PRAGMA user_version afterwards. Never edit this file once released: change
-- the schema in a new numbered file.
--
-- Timestamps are whole seconds since the Unix epoch, UTC (INTEGER), so that
-- every value round-trips exactly; read them with datetime(x, 'unixepoch').
-- Entity types use the API spelling. Secret values are never stored, only the
-- SHA-256 fingerprint of what was delivered to a sink.

-- Exactly one row. lineage identifies this state for its whole life (a random
-- UUID v4, set here once); serial counts the changes to the state.
CREATE TABLE meta (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  lineage TEXT    NOT NULL CHECK (length(lineage) = 36),
  serial  INTEGER NOT NULL CHECK (serial >= 0)
) STRICT;

INSERT INTO meta (id, lineage, serial) VALUES (
  1,
  lower(hex(randomblob(4))) || '-' ||
  lower(hex(randomblob(2))) || '-4' ||
  substr(lower(hex(randomblob(2))), 2) || '-' ||
  substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
  lower(hex(randomblob(6))),
  0);

-- One row per managed token, keyed by the spec key (address astro_api_token.<key>).
CREATE TABLE resources (
  key                   TEXT    PRIMARY KEY CHECK (key <> ''),
  id                    TEXT    NOT NULL UNIQUE CHECK (id <> ''),
  name                  TEXT    NOT NULL,
  description           TEXT    NOT NULL,
  type                  TEXT    NOT NULL CHECK (type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT')),
  role                  TEXT    NOT NULL,
  expiry_period_in_days INTEGER,          -- NULL: never expires
  short_token           TEXT    NOT NULL,
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL,
  start_at              INTEGER NOT NULL, -- start of the current validity window
  end_at                INTEGER,          -- NULL: the current value never expires
  sink_path             TEXT    NOT NULL,
  sink_sha256           TEXT    NOT NULL  -- '' when never delivered (imported)
) STRICT;

-- The role set of a resource; the primary key makes it a set.
CREATE TABLE resource_roles (
  resource_key TEXT NOT NULL REFERENCES resources (key) ON DELETE CASCADE ON UPDATE CASCADE,
  role         TEXT NOT NULL,
  entity_id    TEXT NOT NULL,
  entity_type  TEXT NOT NULL CHECK (entity_type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT')),
  PRIMARY KEY (resource_key, role, entity_id, entity_type)
) STRICT, WITHOUT ROWID;

-- The intent journal: a non-idempotent call (create, rotate) about to be made.
-- A row is deleted in the transaction that records the call's outcome; rows
-- left after a crash are resolved by the next run. AUTOINCREMENT: an intent id
-- is never reused.
CREATE TABLE intents (
  id                    INTEGER PRIMARY KEY AUTOINCREMENT,
  key                   TEXT    NOT NULL CHECK (key <> ''),
  kind                  TEXT    NOT NULL CHECK (kind IN ('create', 'rotate')),
  token_id              TEXT    NOT NULL, -- rotate: the token rotated; create: ''
  name                  TEXT    NOT NULL,
  description           TEXT    NOT NULL,
  type                  TEXT    NOT NULL CHECK (type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT')),
  role                  TEXT    NOT NULL,
  expiry_period_in_days INTEGER,
  sink_path             TEXT    NOT NULL,
  started_at            INTEGER NOT NULL
) STRICT;

CREATE TABLE intent_roles (
  intent_id   INTEGER NOT NULL REFERENCES intents (id) ON DELETE CASCADE,
  role        TEXT    NOT NULL,
  entity_id   TEXT    NOT NULL,
  entity_type TEXT    NOT NULL CHECK (entity_type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT')),
  PRIMARY KEY (intent_id, role, entity_id, entity_type)
) STRICT, WITHOUT ROWID;

-- Run history: one row per plan/apply/run cycle, newest has the highest id.
CREATE TABLE runs (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  trigger          TEXT    NOT NULL,
  command          TEXT    NOT NULL,
  started_at       INTEGER NOT NULL,
  finished_at      INTEGER,              -- NULL while the run is in progress
  to_add           INTEGER NOT NULL,
  to_change        INTEGER NOT NULL,
  to_destroy       INTEGER NOT NULL,
  to_rotate        INTEGER NOT NULL,
  failed           INTEGER NOT NULL,
  api_calls        INTEGER NOT NULL,
  duration_seconds REAL    NOT NULL,
  result           TEXT    NOT NULL,
  message          TEXT    NOT NULL
) STRICT;

-- The actions of a run in the order they were recorded.
CREATE TABLE run_actions (
  run_id           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq              INTEGER NOT NULL,
  address          TEXT    NOT NULL,
  action           TEXT    NOT NULL,
  ok               INTEGER NOT NULL CHECK (ok IN (0, 1)),
  message          TEXT    NOT NULL,
  duration_seconds REAL    NOT NULL,
  PRIMARY KEY (run_id, seq)
) STRICT, WITHOUT ROWID;
