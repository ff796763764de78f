-- Rewards minted per emission period, kept as a running total: the budget check reads one row
-- instead of summing the period's postings.
CREATE TABLE ledger_emission (
  period_start INTEGER PRIMARY KEY,
  minted INTEGER NOT NULL
);
