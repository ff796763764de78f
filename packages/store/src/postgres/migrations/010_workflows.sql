-- The workflow registry (seed 001): versions are immutable; a name belongs to its first creator.
CREATE TABLE workflows (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  creator_id TEXT NOT NULL REFERENCES accounts (id),
  manifest JSONB NOT NULL,
  content_hash TEXT NOT NULL,
  -- The first workflow published with this content, or the declared parent's origin; itself for an original.
  origin_id TEXT NOT NULL,
  flagged_at BIGINT,
  flag_reason TEXT,
  created_at BIGINT NOT NULL,
  UNIQUE (name, version)
);
CREATE INDEX workflows_content ON workflows (content_hash, created_at);
CREATE INDEX workflows_creator ON workflows (creator_id, created_at);

-- What each settled run paid each workflow's creator: its own run (direct) or a run upstream of it.
CREATE TABLE workflow_earnings (
  workflow_id TEXT NOT NULL,
  job_id TEXT NOT NULL,
  amount BIGINT NOT NULL,
  direct BOOLEAN NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (workflow_id, job_id)
);
