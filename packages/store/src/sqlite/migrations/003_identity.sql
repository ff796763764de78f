-- Identity and ownership: accounts, their API keys and sessions, wallet-login nonces, invites;
-- every job and node belongs to an account.

CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  email TEXT UNIQUE,
  -- An EVM address, lower-case (checksummed when shown).
  wallet TEXT UNIQUE,
  password_hash TEXT,
  role TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

-- API keys are stored as the SHA-256 of the key; the prefix (the first characters after
-- havn_sk_) finds the row and is shown to its owner, the rest never leaves the client.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts (id),
  name TEXT NOT NULL,
  prefix TEXT NOT NULL UNIQUE,
  key_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- Refresh tokens (hashed). A family is one login; using a token replaces it with the next, and a
-- token used twice revokes its whole family (the second user is a thief, or the first was).
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts (id),
  family_id TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  revoked_at INTEGER
);
CREATE INDEX sessions_family ON sessions (family_id);
CREATE INDEX sessions_account ON sessions (account_id);

-- Sign-In with Ethereum nonces: each is used once, before it expires.
CREATE TABLE siwe_nonces (
  nonce TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);

-- Invitations, for a coordinator whose registration is closed (hashed like API keys).
CREATE TABLE invites (
  code_hash TEXT PRIMARY KEY,
  created_by TEXT NOT NULL REFERENCES accounts (id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_by TEXT,
  used_at INTEGER
);

ALTER TABLE jobs ADD COLUMN account_id TEXT;
-- Idempotency-Key of the submission: one job per (account, key) while the key is kept.
ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
-- When the prompt and the output were deleted (retention, or the owner), leaving hashes and receipts.
-- Whether the owner made the output readable by anyone who knows its CID.
ALTER TABLE jobs ADD COLUMN output_public INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN data_deleted_at INTEGER;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_account ON jobs (account_id, created_at);
CREATE INDEX jobs_output_cid ON jobs (output_cid) WHERE output_cid IS NOT NULL;

-- A node's key belongs to the account that first joined with it; its name belongs to that account.
ALTER TABLE nodes ADD COLUMN account_id TEXT;
CREATE INDEX jobs_retention ON jobs (finished_at) WHERE data_deleted_at IS NULL;
