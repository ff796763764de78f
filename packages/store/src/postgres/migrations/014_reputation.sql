-- Reputation (seed 003): each node's score, and every change with its cause.
ALTER TABLE nodes ADD COLUMN reputation DOUBLE PRECISION;
ALTER TABLE nodes ADD COLUMN reputation_at BIGINT;
CREATE TABLE reputation_events (
  id BIGSERIAL PRIMARY KEY,
  node_key TEXT NOT NULL,
  delta DOUBLE PRECISION NOT NULL,
  score DOUBLE PRECISION NOT NULL,
  cause TEXT NOT NULL,
  job_id TEXT,
  count INTEGER NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL
);
CREATE INDEX reputation_events_node ON reputation_events (node_key, id);
