-- The network's coordinator keys: each replica's, with when each signed (a rotation retires one).
CREATE TABLE coordinator_keys (
  key_id TEXT PRIMARY KEY,
  public_key TEXT NOT NULL UNIQUE,
  replica TEXT NOT NULL,
  valid_from BIGINT NOT NULL,
  valid_until BIGINT
);

-- Sealed periods of the execution log: a signed Merkle root over entries from_seq..to_seq.
-- Periods are consecutive: each starts where the one before ended (from_seq is unique).
CREATE TABLE log_periods (
  from_seq BIGINT PRIMARY KEY,
  to_seq BIGINT NOT NULL UNIQUE,
  root TEXT NOT NULL,
  last_hash TEXT NOT NULL,
  signed_at BIGINT NOT NULL,
  key_id TEXT NOT NULL REFERENCES coordinator_keys (key_id),
  signature TEXT NOT NULL
);
