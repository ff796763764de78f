-- Reputation (seed 003): each node's score, and every change with its cause.
ALTER TABLE nodes ADD COLUMN reputation REAL;
ALTER TABLE nodes ADD COLUMN reputation_at INTEGER;
CREATE TABLE reputation_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  node_key TEXT NOT NULL,
  delta REAL NOT NULL,
  score REAL NOT NULL,
  cause TEXT NOT NULL,
  job_id TEXT,
  count INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL
);
CREATE INDEX reputation_events_node ON reputation_events (node_key, id);
