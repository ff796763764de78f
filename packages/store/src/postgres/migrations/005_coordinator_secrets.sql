-- Secrets the coordinator makes for itself when none is configured (the key that signs access
-- tokens): kept here so every replica on one database uses the same.
CREATE TABLE coordinator_secrets (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
