-- The $HAI ledger: double-entry, integer µHAI. Every transaction's postings sum to zero, and each
-- transaction has an idempotency key, so a replayed request or message posts nothing twice.
CREATE TABLE ledger_transactions (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  job_id TEXT,
  memo JSONB,
  created_at BIGINT NOT NULL
);
CREATE INDEX ledger_transactions_job ON ledger_transactions (job_id) WHERE job_id IS NOT NULL;

CREATE TABLE ledger_postings (
  id BIGSERIAL PRIMARY KEY,
  tx_id TEXT NOT NULL REFERENCES ledger_transactions (id),
  account TEXT NOT NULL,
  amount BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX ledger_postings_tx ON ledger_postings (tx_id);
CREATE INDEX ledger_postings_account ON ledger_postings (account, id);

-- Each ledger account's balance, kept in step with its postings in the same transaction.
CREATE TABLE ledger_balances (
  account TEXT PRIMARY KEY,
  balance BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- A job's money: who pays (a ledger account), what it escrowed, the price terms it was admitted
-- under, what it was charged, and where its money stands (NULL: a free network).
ALTER TABLE jobs ADD COLUMN money_state TEXT;
ALTER TABLE jobs ADD COLUMN payer TEXT;
ALTER TABLE jobs ADD COLUMN escrow BIGINT;
ALTER TABLE jobs ADD COLUMN price JSONB;
ALTER TABLE jobs ADD COLUMN charge BIGINT;
ALTER TABLE jobs ADD COLUMN compute_class TEXT;
CREATE INDEX jobs_money ON jobs (money_state, finished_at) WHERE money_state IN ('charged', 'held');
