-- The execution log also records settled runs: an entry is a receipt or a settlement, one of each per job.
CREATE TABLE execution_log_v2 (
  seq INTEGER PRIMARY KEY,
  job_id TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'receipt',
  attempt_id TEXT NOT NULL,
  node_key TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  entry_hash TEXT NOT NULL UNIQUE,
  receipt TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (job_id, kind)
);
INSERT INTO execution_log_v2 (seq, job_id, kind, attempt_id, node_key, prev_hash, entry_hash, receipt, created_at)
  SELECT seq, job_id, 'receipt', attempt_id, node_key, prev_hash, entry_hash, receipt, created_at FROM execution_log;
DROP TABLE execution_log;
ALTER TABLE execution_log_v2 RENAME TO execution_log;
