-- Jobs: one row per job; every status change is an UPDATE guarded by the state machine.
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  model TEXT NOT NULL,
  workflow_id TEXT,
  input JSONB NOT NULL,
  params JSONB NOT NULL,
  input_hash TEXT NOT NULL,
  stream BOOLEAN NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  attempt_id TEXT,
  node_key TEXT,
  lease_expires_at BIGINT,
  queue_deadline_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  finished_at BIGINT,
  output JSONB,
  output_cid TEXT,
  receipt JSONB,
  error JSONB,
  route JSONB
);
CREATE INDEX jobs_queued ON jobs (model, created_at) WHERE status = 'queued';
CREATE INDEX jobs_queue_deadline ON jobs (queue_deadline_at) WHERE status = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status IN ('leased', 'running');
CREATE INDEX jobs_node ON jobs (node_key) WHERE status IN ('leased', 'running');

CREATE TABLE job_attempts (
  attempt_id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL,
  node_key TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  ended_at BIGINT,
  outcome TEXT,
  error JSONB
);
CREATE INDEX job_attempts_job ON job_attempts (job_id);

CREATE TABLE nodes (
  key TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  capabilities JSONB NOT NULL,
  hardware JSONB NOT NULL,
  compute_class TEXT NOT NULL,
  online BOOLEAN NOT NULL,
  first_seen_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL
);

CREATE TABLE outputs (
  cid TEXT PRIMARY KEY,
  bytes BYTEA NOT NULL,
  size INTEGER NOT NULL,
  created_at BIGINT NOT NULL
);

CREATE TABLE execution_log (
  seq BIGINT PRIMARY KEY,
  job_id TEXT NOT NULL UNIQUE,
  attempt_id TEXT NOT NULL,
  node_key TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  entry_hash TEXT NOT NULL UNIQUE,
  receipt JSONB NOT NULL,
  created_at BIGINT NOT NULL
);

-- One row that every appender locks: replicas on one database extend a single chain.
CREATE TABLE execution_log_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq BIGINT NOT NULL,
  entry_hash TEXT NOT NULL
);
INSERT INTO execution_log_head (id, seq, entry_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
