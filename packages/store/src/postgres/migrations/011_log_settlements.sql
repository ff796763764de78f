-- The execution log also records settled runs: an entry is a receipt or a settlement, one of each per job.
ALTER TABLE execution_log ADD COLUMN kind TEXT NOT NULL DEFAULT 'receipt';
ALTER TABLE execution_log DROP CONSTRAINT execution_log_job_id_key;
ALTER TABLE execution_log ADD CONSTRAINT execution_log_job_kind UNIQUE (job_id, kind);
