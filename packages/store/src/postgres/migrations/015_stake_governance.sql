-- Stake lives in the ledger (stake:… and unbonding:… accounts). What it adds here: quarantine
-- per node (heartbeat epochs), each node's availability promise, and governance — the parameter
-- table, proposals with their stake-weighted votes, and what governance holds (paused nodes,
-- paused or flagged model names).
ALTER TABLE nodes ADD COLUMN epoch BIGINT;
ALTER TABLE nodes ADD COLUMN missed_epochs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN quarantined_at BIGINT;
ALTER TABLE nodes ADD COLUMN promise TEXT;
CREATE INDEX ledger_balances_positive ON ledger_balances (account) WHERE balance > 0;
CREATE INDEX reputation_events_cause ON reputation_events (cause, created_at);

CREATE TABLE params (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  updated_by TEXT NOT NULL
);

CREATE TABLE proposals (
  id TEXT PRIMARY KEY,
  idempotency_key TEXT NOT NULL UNIQUE,
  proposer TEXT NOT NULL,
  action TEXT NOT NULL,
  reason TEXT NOT NULL,
  state TEXT NOT NULL,
  by_admin BOOLEAN NOT NULL,
  created_at BIGINT NOT NULL,
  ends_at BIGINT NOT NULL,
  decided_at BIGINT,
  tally TEXT
);
CREATE INDEX proposals_state ON proposals (state, ends_at);
CREATE INDEX proposals_created ON proposals (created_at);

CREATE TABLE votes (
  proposal_id TEXT NOT NULL REFERENCES proposals (id),
  voter TEXT NOT NULL,
  choice TEXT NOT NULL,
  weight TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (proposal_id, voter)
);

CREATE TABLE governance_holds (
  subject TEXT NOT NULL,
  kind TEXT NOT NULL,
  reason TEXT NOT NULL,
  proposal_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (subject, kind)
);
