-- Jobs: one row per job; every status change is an UPDATE guarded by the state machine.
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  model TEXT NOT NULL,
  workflow_id TEXT,
  input TEXT NOT NULL,
  params TEXT NOT NULL,
  input_hash TEXT NOT NULL,
  stream INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  attempt_id TEXT,
  node_key TEXT,
  lease_expires_at INTEGER,
  queue_deadline_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  finished_at INTEGER,
  output TEXT,
  output_cid TEXT,
  receipt TEXT,
  error TEXT,
  route TEXT
);
CREATE INDEX jobs_queued ON jobs (model, created_at) WHERE status = 'queued';
CREATE INDEX jobs_queue_deadline ON jobs (queue_deadline_at) WHERE status = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE status IN ('leased', 'running');
CREATE INDEX jobs_node ON jobs (node_key) WHERE status IN ('leased', 'running');

-- Every dispatch is an attempt; the history stays after the job moves on.
CREATE TABLE job_attempts (
  attempt_id TEXT PRIMARY KEY,
  job_id TEXT NOT NULL,
  node_key TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  outcome TEXT,
  error TEXT
);
CREATE INDEX job_attempts_job ON job_attempts (job_id);

CREATE TABLE nodes (
  key TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  capabilities TEXT NOT NULL,
  hardware TEXT NOT NULL,
  compute_class TEXT NOT NULL,
  online INTEGER NOT NULL,
  first_seen_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL
);

-- Outputs addressed by CIDv1; identical outputs are stored once.
CREATE TABLE outputs (
  cid TEXT PRIMARY KEY,
  bytes BLOB NOT NULL,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

-- The hash-chained execution log: entry_hash = sha256(prev_hash, receipt, node signature).
CREATE TABLE execution_log (
  seq INTEGER PRIMARY KEY,
  job_id TEXT NOT NULL UNIQUE,
  attempt_id TEXT NOT NULL,
  node_key TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  entry_hash TEXT NOT NULL UNIQUE,
  receipt TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
