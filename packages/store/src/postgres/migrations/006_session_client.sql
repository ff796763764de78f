-- Who spent a refresh token (a fingerprint of the client): a second spend within the grace is a
-- race only when it comes from the same client.
ALTER TABLE sessions ADD COLUMN used_by TEXT;
