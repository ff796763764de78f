-- Receipts version 2 commit to a job's input with a salted hash, and name the workflow's version.
ALTER TABLE jobs ADD COLUMN input_salt TEXT;
ALTER TABLE jobs ADD COLUMN workflow_version TEXT;
-- Jobs still to run get their salt now; finished jobs keep their version 1 receipts.
UPDATE jobs SET input_salt = lower(hex(randomblob(32))) WHERE status IN ('queued', 'leased', 'running');
UPDATE jobs SET workflow_version = (SELECT version FROM workflows w WHERE w.id = jobs.workflow_id)
  WHERE workflow_id IS NOT NULL;
