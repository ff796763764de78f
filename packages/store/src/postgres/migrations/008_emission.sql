-- Rewards minted per emission period, kept as a running total: the budget check reads one row
-- (locked, so replicas settle one at a time against it) instead of summing the period's postings.
CREATE TABLE ledger_emission (
  period_start BIGINT PRIMARY KEY,
  minted BIGINT NOT NULL
);
