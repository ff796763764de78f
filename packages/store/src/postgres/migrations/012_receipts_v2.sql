-- Receipts version 2 commit to a job's input with a salted hash, and name the workflow's version.
ALTER TABLE jobs ADD COLUMN input_salt TEXT;
ALTER TABLE jobs ADD COLUMN workflow_version TEXT;
-- Jobs still to run get their salt now (gen_random_uuid is a CSPRNG, built in since PostgreSQL 13);
-- finished jobs keep their version 1 receipts.
UPDATE jobs SET input_salt = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
  WHERE status IN ('queued', 'leased', 'running');
UPDATE jobs j SET workflow_version = w.version FROM workflows w WHERE w.id = j.workflow_id;
