-- The client's x-request-id, when it sent one: logged with the job from admission to the node and back.
ALTER TABLE jobs ADD COLUMN request_id TEXT;
-- Nodes an attempt of this job failed on (JSON array of node keys): a retry goes to another node
-- while one is eligible.
ALTER TABLE jobs ADD COLUMN failed_nodes TEXT NOT NULL DEFAULT '[]';
