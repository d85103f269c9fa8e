-- 001 — the initial state schema on PostgreSQL (product.md §5), the same
-- state as schema/001_init.sql, plus the writer lease a shared database needs.
--
-- Applied by the state store inside one transaction, which also records the
-- version in tokend_schema. Never edit this file once released: change the
-- schema in a new numbered file, mirroring the SQLite migration of that
-- number.
--
-- Timestamps of the state are whole seconds since the Unix epoch, UTC
-- (BIGINT), as in SQLite, so every value round-trips exactly. Entity types use
-- the API spelling. Secret values are never stored, only the SHA-256
-- fingerprint of what was delivered to a sink.

-- Exactly one row. lineage identifies this state for its whole life (a random
-- UUID v4, set here once); serial counts the changes to the state.
CREATE TABLE meta (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  lineage TEXT    NOT NULL CHECK (length(lineage) = 36),
  serial  BIGINT  NOT NULL CHECK (serial >= 0)
);

INSERT INTO meta (id, lineage, serial) VALUES (1, gen_random_uuid()::text, 0);

-- One row per managed token, keyed by the spec key (address astro_api_token.<key>).
CREATE TABLE resources (
  key                   TEXT    PRIMARY KEY CHECK (key <> ''),
  id                    TEXT    NOT NULL UNIQUE CHECK (id <> ''),
  name                  TEXT    NOT NULL,
  description           TEXT    NOT NULL,
  type                  TEXT    NOT NULL CHECK (type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT')),
  role                  TEXT    NOT NULL,
  expiry_period_in_days INTEGER,         -- NULL: never expires
  short_token           TEXT    NOT NULL,
  created_at            BIGINT  NOT NULL,
  updated_at            BIGINT  NOT NULL,
  start_at              BIGINT  NOT NULL, -- start of the current validity window
  end_at                BIGINT,           -- NULL: the current value never expires
  sink_path             TEXT    NOT NULL,
  sink_sha256           TEXT    NOT NULL  -- '' when never delivered (imported)
);

-- The role set of a resource; the primary key makes it a set.
CREATE TABLE resource_roles (
  resource_key TEXT NOT NULL REFERENCES resources (key) ON DELETE CASCADE ON UPDATE CASCADE,
  role         TEXT NOT NULL,
  entity_id    TEXT NOT NULL,
  entity_type  TEXT NOT NULL CHECK (entity_type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT')),
  PRIMARY KEY (resource_key, role, entity_id, entity_type)
);

-- The intent journal: a non-idempotent call (create, rotate) about to be made.
-- A row is deleted in the transaction that records the call's outcome; rows
-- left after a crash are resolved by the next run. An identity column: an
-- intent id is never reused.
CREATE TABLE intents (
  id                    BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  key                   TEXT    NOT NULL CHECK (key <> ''),
  kind                  TEXT    NOT NULL CHECK (kind IN ('create', 'rotate')),
  token_id              TEXT    NOT NULL, -- rotate: the token rotated; create: ''
  name                  TEXT    NOT NULL,
  description           TEXT    NOT NULL,
  type                  TEXT    NOT NULL CHECK (type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT')),
  role                  TEXT    NOT NULL,
  expiry_period_in_days INTEGER,
  sink_path             TEXT    NOT NULL,
  started_at            BIGINT  NOT NULL
);

CREATE TABLE intent_roles (
  intent_id   BIGINT NOT NULL REFERENCES intents (id) ON DELETE CASCADE,
  role        TEXT   NOT NULL,
  entity_id   TEXT   NOT NULL,
  entity_type TEXT   NOT NULL CHECK (entity_type IN ('ORGANIZATION', 'WORKSPACE', 'DEPLOYMENT')),
  PRIMARY KEY (intent_id, role, entity_id, entity_type)
);

-- Run history: one row per plan/apply/run cycle, newest has the highest id.
CREATE TABLE runs (
  id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  trigger          TEXT    NOT NULL,
  command          TEXT    NOT NULL,
  started_at       BIGINT  NOT NULL,
  finished_at      BIGINT,               -- NULL while the run is in progress
  to_add           INTEGER NOT NULL,
  to_change        INTEGER NOT NULL,
  to_destroy       INTEGER NOT NULL,
  to_rotate        INTEGER NOT NULL,
  failed           INTEGER NOT NULL,
  api_calls        INTEGER NOT NULL,
  duration_seconds DOUBLE PRECISION NOT NULL,
  result           TEXT    NOT NULL,
  message          TEXT    NOT NULL
);

-- The actions of a run in the order they were recorded.
CREATE TABLE run_actions (
  run_id           BIGINT  NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq              INTEGER NOT NULL,
  address          TEXT    NOT NULL,
  action           TEXT    NOT NULL,
  ok               INTEGER NOT NULL CHECK (ok IN (0, 1)),
  message          TEXT    NOT NULL,
  duration_seconds DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (run_id, seq)
);

-- The writer lease (PostgreSQL only): exactly one row saying who may write
-- the state. epoch increases on every takeover and fences every write;
-- expires_at is the database's clock, so hosts need not agree on the time.
-- holder_locked: the holder also holds the session-level advisory lock, so a
-- free advisory lock means its session is gone.
CREATE TABLE writer_lease (
  id             INTEGER     PRIMARY KEY CHECK (id = 1),
  epoch          BIGINT      NOT NULL CHECK (epoch >= 0),
  holder_host    TEXT        NOT NULL,
  holder_pid     INTEGER     NOT NULL,
  holder_command TEXT        NOT NULL,
  holder_since   BIGINT      NOT NULL, -- when this holder took the lease, seconds since the epoch
  holder_locked  BOOLEAN     NOT NULL,
  expires_at     TIMESTAMPTZ NOT NULL
);

INSERT INTO writer_lease VALUES (1, 0, '', 0, '', 0, false, '-infinity');
